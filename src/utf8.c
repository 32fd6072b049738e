/*
 * utf8.c: see utf8.h. The validity rules are RFC 3629 section 4 (the
 * UTF8-octets grammar), written out as byte ranges.
 */
#include "utf8.h"

#include <stdint.h>

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when p[0..] is not one. */
static size_t seq_len(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;      /* no overlongs */
        if (c == 0xED) hi = 0x9F;      /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;      /* no overlongs */
        if (c == 0xF4) hi = 0x8F;      /* <= U+10FFFF */
    } else {
        return 0;
    }
    if (avail < n) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    return n;
}

size_t rt_utf8_sanitize(const char *in, size_t len, char *out, size_t outsz)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t i = 0, o = 0;
    if (outsz == 0) return 0;
    while (i < len) {
        size_t n = seq_len(p + i, len - i);
        if (n == 0) {
            if (o + 1 >= outsz) break;
            out[o++] = '?';
            i++;
            continue;
        }
        if (o + n >= outsz) break;
        if (n == 1) {
            unsigned char c = p[i];
            out[o++] = c == 0 ? '?' : (c < 0x20 && c != '\t' && c != '\n') || c == 0x7F ? ' '
                                                                                     : (char)c;
        } else {
            for (size_t k = 0; k < n; k++) out[o + k] = (char)p[i + k];
            o += n;
        }
        i += n;
    }
    out[o] = '\0';
    return o;
}
