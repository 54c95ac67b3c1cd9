/* Hexadecimal digits and UUID text. */
#include "hex.h"

int vrev__hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool dash_at(size_t i)
{
    return i == 8 || i == 13 || i == 18 || i == 23;
}

bool vrev__uuid_parse(const char *s, size_t len, uint8_t out[16])
{
    if (!s || (len != 32 && len != 36))
        return false;
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (len == 36 && dash_at(i)) {
            if (s[i] != '-')
                return false;
            continue;
        }
        int v = vrev__hex_digit(s[i]);
        if (v < 0)
            return false;
        if (k % 2 == 0)
            out[k / 2] = (uint8_t)(v << 4);
        else
            out[k / 2] |= (uint8_t)v;
        k++;
    }
    return true;
}

void vrev__uuid_format(const uint8_t uuid[16], char out[37])
{
    static const char digits[] = "0123456789abcdef";
    size_t t = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[t++] = '-';
        out[t++] = digits[uuid[i] >> 4];
        out[t++] = digits[uuid[i] & 15];
    }
    out[36] = '\0';
}
