/*
 * utf8.h: making untrusted bytes safe to store as text. retryd keeps the head
 * of a target's error answer in utf8mb4 columns and JSON bodies; a Latin-1
 * page, a binary body or a character cut in half would make MySQL (strict
 * mode) or jansson refuse the whole write.
 */
#ifndef RT_UTF8_H
#define RT_UTF8_H

#include <stddef.h>

/* Copies `in` (len bytes, need not be NUL-terminated) into out, which holds
 * outsz bytes (>= 1), replacing every byte that does not start a valid UTF-8
 * sequence (RFC 3629: no overlongs, no surrogates, <= U+10FFFF) with '?',
 * and every control character but \t and \n with ' ' and NUL with '?'. Stops
 * at a character boundary so that out is always valid UTF-8 and always
 * NUL-terminated. Returns the number of bytes written (without the NUL).
 * Pure, thread-safe. */
size_t rt_utf8_sanitize(const char *in, size_t len, char *out, size_t outsz);

#endif
