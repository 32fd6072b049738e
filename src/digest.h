/*
 * digest.h: the default idempotency key, a SHA-256 (OpenSSL libcrypto) over
 * scene, method, URL and body, each preceded by its length so that field
 * boundaries cannot be forged ("a|bc" vs "ab|c").
 */
#ifndef RT_DIGEST_H
#define RT_DIGEST_H

#include <stddef.h>

#define RT_DIGEST_HEX_LEN 64

/* Writes 64 lowercase hex chars + NUL into out (>= 65 bytes). body may be NULL
 * (treated as empty). Returns 0, or -1 if libcrypto fails. Thread-safe. */
int rt_idempotency_digest(const char *scene, const char *method, const char *url,
                          const char *body, size_t body_len, char out[RT_DIGEST_HEX_LEN + 1]);

#endif
