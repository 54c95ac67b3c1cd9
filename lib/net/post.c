/* vrev_ctx_post: running a function in a context's loop, asked for from any thread; and the
 * frees that wait for the loop (an object freed from inside one of its own callbacks).
 *
 * The queue is a list under a mutex. A post from an empty queue writes to an eventfd (a pipe
 * where there is none) that a persistent read event of the context's loop watches: no
 * evthread_use_pthreads(), which would change libevent for the whole process. One write wakes
 * the loop for every post made until the loop takes the list, so a burst costs one system call
 * on each side. The nodes come from the C library's malloc(), not from the context's
 * allocator, which is called only from the loop's thread (ctx.h says why). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/eventfd.h>
#endif

#include "net.h"

struct post_node {
    struct post_node *next;
    void (*fn)(void *user);
    void *user;
};

struct vrev__post {
    pthread_mutex_t lock;
    struct post_node *head, *tail; /* under lock */
    bool woken;                    /* under lock: written to the wake-up, not taken yet */
    bool closed;                   /* under lock: the wake-up is gone, posts fail */
    int rfd, wfd;                  /* the same eventfd, or a pipe's two ends */
    struct event *ev;
};

static void drain(int fd)
{
    uint64_t buf[64];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

static void wake(int fd)
{
    uint64_t one = 1;
    ssize_t n;
    do /* EAGAIN: full, hence readable already */
        n = write(fd, &one, sizeof(one));
    while (n < 0 && errno == EINTR);
}

/* Take the whole queue, then run it in order: what is posted meanwhile waits for the next
 * wake-up, so a function that posts again does not keep the loop here. */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct vrev__post *q = arg;
    drain(q->rfd);
    pthread_mutex_lock(&q->lock);
    struct post_node *n = q->head;
    q->head = q->tail = NULL;
    q->woken = false;
    pthread_mutex_unlock(&q->lock);
    while (n) {
        struct post_node *next = n->next;
        n->fn(n->user);
        free(n);
        n = next;
    }
}

static int make_fds(struct vrev__post *q)
{
#ifdef __linux__
    q->rfd = q->wfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return q->rfd < 0 ? -1 : 0;
#else
    int p[2];
    if (pipe(p) < 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        fcntl(p[i], F_SETFD, FD_CLOEXEC);
        fcntl(p[i], F_SETFL, O_NONBLOCK);
    }
    q->rfd = p[0];
    q->wfd = p[1];
    return 0;
#endif
}

/* The wake-up goes (its event, on the loop, and its descriptors) and the queued posts are
 * dropped, not run: the objects they would use may be gone already. A poster checks `closed`
 * under the lock before it writes, so none touches a descriptor closed here; the queue itself
 * stays until vrev_ctx_free (a poster may still be reading ctx->post). Idempotent. */
static void close_post(vrev_ctx *ctx)
{
    struct vrev__post *q = ctx->post;
    pthread_mutex_lock(&q->lock);
    struct post_node *n = q->head;
    q->head = q->tail = NULL;
    q->closed = true;
    pthread_mutex_unlock(&q->lock);
    if (q->ev)
        event_free(q->ev);
    q->ev = NULL;
    for (struct post_node *next; n; n = next) {
        next = n->next;
        free(n);
    }
    if (q->rfd >= 0)
        close(q->rfd);
    if (q->wfd >= 0 && q->wfd != q->rfd)
        close(q->wfd);
    q->rfd = q->wfd = -1;
}

static void free_post(vrev_ctx *ctx)
{
    struct vrev__post *q = ctx->post;
    close_post(ctx); /* a program's loop that was closed is gone by now: nothing left on it */
    ctx->post = NULL;
    pthread_mutex_destroy(&q->lock);
    vrev__free(ctx, q);
}

int vrev__post_init(vrev_ctx *ctx)
{
    struct vrev__post *q = vrev__calloc(ctx, 1, sizeof(*q));
    if (!q)
        return VREV_ERR_NOMEM;
    q->rfd = q->wfd = -1;
    if (pthread_mutex_init(&q->lock, NULL) != 0) {
        vrev__free(ctx, q);
        return VREV_ERR_NOMEM;
    }
    ctx->post = q;
    ctx->free_post = free_post;
    if (make_fds(q) < 0) {
        free_post(ctx);
        return VREV_ERR_IO;
    }
    q->ev = event_new(ctx->base, q->rfd, EV_READ | EV_PERSIST, on_wake, q);
    if (!q->ev || event_add(q->ev, NULL) < 0) {
        free_post(ctx);
        return VREV_ERR_NOMEM;
    }
    return 0;
}

int vrev_ctx_post(vrev_ctx *ctx, void (*fn)(void *user), void *user)
{
    if (!ctx || !fn)
        return VREV_ERR_INVAL;
    struct vrev__post *q = ctx->post;
    if (!q)
        return VREV_ERR_STATE;
    struct post_node *n = malloc(sizeof(*n));
    if (!n)
        return VREV_ERR_NOMEM;
    n->next = NULL;
    n->fn = fn;
    n->user = user;
    pthread_mutex_lock(&q->lock);
    if (q->closed) { /* vrev_ctx_close_lingering: the descriptors are closed */
        pthread_mutex_unlock(&q->lock);
        free(n);
        return VREV_ERR_STATE;
    }
    if (q->tail)
        q->tail->next = n;
    else
        q->head = n;
    q->tail = n;
    if (!q->woken) /* under the lock: the loop has not taken the list since */
        wake(q->wfd);
    q->woken = true;
    pthread_mutex_unlock(&q->lock);
    return 0;
}

int vrev_ctx_post_enable(vrev_ctx *ctx)
{
    if (!ctx)
        return VREV_ERR_INVAL;
    if (ctx->post) /* enabled already (closed since?), or a loop of the context's own */
        return ctx->post->closed ? VREV_ERR_STATE : 0; /* written in this thread only */
    if (!ctx->base || ctx->no_linger) /* no loop, or vrev_ctx_close_lingering was called */
        return VREV_ERR_STATE;
    int rc = vrev__post_init(ctx);
    if (rc == 0) /* the program frees its loop before the context: close it with the objects */
        ctx->close_post = close_post;
    return rc;
}

/* --- frees deferred to the loop --------------------------------------------------------------- */

static void on_deferred(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct vrev__defer *d = arg;
    d->fn(d->obj); /* the object's public free, outside every callback now: it frees at once */
}

int vrev__defer_init(struct vrev__defer *d, vrev_ctx *ctx, void (*fn)(void *obj), void *obj)
{
    d->fn = fn;
    d->obj = obj;
    d->ev = event_new(ctx->base, -1, 0, on_deferred, d);
    return d->ev ? 0 : VREV_ERR_NOMEM;
}

bool vrev__defer_free(struct vrev__defer *d, vrev_ctx *ctx)
{
    if (!d->ev || ctx->in_user_cb == 0)
        return false;
    if (!d->pending) /* a second free from the same callback is the same request */
        event_active(d->ev, EV_TIMEOUT, 1);
    d->pending = true;
    return true;
}

void vrev__defer_cleanup(struct vrev__defer *d)
{
    if (d->ev)
        event_free(d->ev);
    d->ev = NULL;
}
