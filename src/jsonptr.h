/*
 * jsonptr.h: JSON Pointer (RFC 6901) over jansson values, which jansson does
 * not provide. Used by retryd's per-scene stop rule that looks into a
 * response body ("stop when /error/code is E1001").
 */
#ifndef RT_JSONPTR_H
#define RT_JSONPTR_H

#include <jansson.h>

/* Checks the syntax of a pointer: "" (the whole document) or "/" followed by
 * reference tokens in which '~' is only used as "~0" or "~1". Returns 0 or -1. */
int rt_jsonptr_valid(const char *ptr);

/* Resolves ptr in doc. Returns a borrowed reference, or NULL when the pointer
 * is invalid or names nothing (missing member, array index out of range or
 * not a plain decimal). Pure, thread-safe. */
json_t *rt_jsonptr_get(json_t *doc, const char *ptr);

/* Writes the value as text for comparison with a configured value: a string
 * without its quotes, anything else as compact JSON ("42", "true", "null",
 * "{...}"). Returns 0, or -1 if it does not fit in outsz bytes. */
int rt_json_scalar_text(const json_t *v, char *out, size_t outsz);

#endif
