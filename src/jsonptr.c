/*
 * jsonptr.c: RFC 6901 JSON Pointer evaluation (see jsonptr.h). Section 4 of
 * the RFC: split on '/', in each token replace "~1" by '/' then "~0" by '~';
 * an array token must be "0" or a decimal without a leading zero.
 */
#include "jsonptr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rt_jsonptr_valid(const char *ptr)
{
    if (!ptr) return -1;
    if (*ptr == '\0') return 0;
    if (*ptr != '/') return -1;
    for (const char *p = ptr; *p; p++)
        if (*p == '~' && p[1] != '0' && p[1] != '1') return -1;
    return 0;
}

/* Copies the token starting at p (up to '/' or NUL) unescaped into tok. */
static size_t unescape_token(const char *p, char *tok, size_t toksz, int *too_long)
{
    size_t n = 0, i = 0;
    *too_long = 0;
    while (p[i] && p[i] != '/') {
        char c = p[i];
        if (c == '~') {
            c = p[i + 1] == '1' ? '/' : '~';
            i++;
        }
        if (n + 1 >= toksz) {
            *too_long = 1;
            return i;
        }
        tok[n++] = c;
        i++;
    }
    tok[n] = '\0';
    return i;
}

static int array_index(const char *tok, size_t *out)
{
    if (tok[0] == '\0' || (tok[0] == '0' && tok[1] != '\0') || strlen(tok) > 9) return -1;
    size_t v = 0;
    for (const char *p = tok; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (size_t)(*p - '0');
    }
    *out = v;
    return 0;
}

json_t *rt_jsonptr_get(json_t *doc, const char *ptr)
{
    if (!doc || rt_jsonptr_valid(ptr) != 0) return NULL;
    json_t *cur = doc;
    const char *p = ptr;
    char tok[256];
    while (*p == '/' && cur) {
        p++;
        int too_long;
        p += unescape_token(p, tok, sizeof tok, &too_long);
        if (too_long) return NULL;
        if (json_is_object(cur)) {
            cur = json_object_get(cur, tok);
        } else if (json_is_array(cur)) {
            size_t idx;
            cur = array_index(tok, &idx) == 0 ? json_array_get(cur, idx) : NULL;
        } else {
            return NULL;
        }
    }
    return cur;
}

int rt_json_scalar_text(const json_t *v, char *out, size_t outsz)
{
    if (!v || outsz == 0) return -1;
    if (json_is_string(v)) {
        size_t len = json_string_length(v);
        if (len + 1 > outsz) return -1;
        memcpy(out, json_string_value(v), len);
        out[len] = '\0';
        return 0;
    }
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text) return -1;
    int fits = strlen(text) + 1 <= outsz;
    if (fits) strcpy(out, text);
    free(text);
    return fits ? 0 : -1;
}
