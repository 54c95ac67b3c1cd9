/* M9: the WebSocket upgrade's HTTP/1.1 heads (lib/codec/http1.c), the first bytes an
 * untrusted peer sends to a ws listener (and the answer a client reads).
 *
 * Input: byte 0 picks the mode (bit 0: a response head) and the piece size the reader is fed
 * in (bits 1-7); the rest is the head. Oracles beyond the sanitizers: feeding in pieces gives
 * what feeding at once gives; the reader never takes a byte past the head, nor more than
 * VREV_HTTP1_HEAD_MAX; every parsed piece lies inside the reader's buffer; a request the
 * checks accept has a key whose 101 answer re-parses and checks out; the error answers fit
 * and re-parse as responses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/http1.h"
#include "core/core.h"

static struct vrev__http1_reader whole, pieces, answer;

static void inside(const struct vrev__http1_reader *r, struct vrev__http1_str s)
{
    if (s.len && (s.p < r->buf || s.p + s.len > r->buf + r->len))
        abort();
}

static void check_head(const struct vrev__http1_reader *r)
{
    const struct vrev__http1_head *h = &r->head;
    inside(r, h->method);
    inside(r, h->target);
    inside(r, h->reason);
    if (h->n_headers > VREV_HTTP1_HEADERS_MAX)
        abort();
    for (size_t i = 0; i < h->n_headers; i++) {
        inside(r, h->headers[i].name);
        inside(r, h->headers[i].value);
    }
}

static void check_answers(const struct vrev__http1_head *h)
{
    static const struct vrev__ws_server_opts opts[] = {{.path = "/ray"},
                                                       {.path = "/", .host = "a.example"}};
    char out[1024];
    for (size_t k = 0; k < 2; k++) {
        struct vrev__ws_request w;
        int status = vrev__ws_check_request(h, &opts[k], &w);
        int len = status == 101 ? vrev__ws_write_101(out, sizeof(out), &w)
                                : vrev__http1_write_error(out, sizeof(out), status, NULL);
        if (len <= 0)
            abort();
        size_t used;
        vrev__http1_reader_init(&answer, true);
        if (vrev__http1_reader_feed(&answer, (const uint8_t *)out, (size_t)len, &used) <= 0)
            abort();
        if (status == 101) {
            char key[VREV_WS_KEY_LEN + 1];
            if (w.key.len != VREV_WS_KEY_LEN)
                abort();
            memcpy(key, w.key.p, VREV_WS_KEY_LEN);
            key[VREV_WS_KEY_LEN] = '\0';
            if (vrev__ws_check_response(&answer.head, key) != 0)
                abort();
        }
        struct vrev__http1_str f = vrev__http1_xff_first(w.forwarded);
        if (f.len > w.forwarded.len)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool response = data[0] & 1;
    size_t step = (size_t)(data[0] >> 1) + 1;
    const uint8_t *p = data + 1;
    size_t n = size - 1, used_all, used = 0, total = 0;
    vrev__http1_reader_init(&whole, response);
    vrev__http1_reader_init(&pieces, response);
    int a = vrev__http1_reader_feed(&whole, p, n, &used_all);
    int b = 0;
    for (size_t off = 0; b == 0 && off < n; off += step) {
        b = vrev__http1_reader_feed(&pieces, p + off, n - off < step ? n - off : step, &used);
        total += used;
    }
    if (a != b || (a > 0 && (used_all != (size_t)a || total != (size_t)a)) ||
        used_all > VREV_HTTP1_HEAD_MAX || (a == 0 && used_all != n))
        abort();
    if (a > 0) {
        check_head(&whole);
        if (!response)
            check_answers(&whole.head);
        else
            (void)vrev__ws_check_response(&whole.head, "dGhlIHNhbXBsZSBub25jZQ==");
    }
    uint8_t dec[64];
    int d = vrev__base64_decode((const char *)p, n < 80 ? n : 80, dec, sizeof(dec), false);
    if (d > 0) { /* canonical base64 re-encodes to itself */
        char enc[96];
        vrev__base64_encode(dec, (size_t)d, enc);
        if (strlen(enc) != (n < 80 ? n : 80) || memcmp(enc, p, strlen(enc)) != 0)
            abort();
    }
    (void)vrev__http1_path_match((const char *)p, n, "/ray", data[0] & 2);
    return 0;
}
