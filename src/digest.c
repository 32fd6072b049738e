/*
 * digest.c: the default idempotency key. When the application gives no key,
 * the client derives one from the call itself so that a call shipped twice
 * (for example after a spool replay) maps onto the same retry task in retryd.
 *
 * The key is SHA-256 (OpenSSL libcrypto, EVP interface) over four fields,
 * scene, method, URL and body, in that order, each preceded by its length as
 * an 8-byte big-endian integer. The length prefixes make the encoding
 * injective: ("a", "bc") and ("ab", "c") hash different byte strings.
 */
#include "digest.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <string.h>

/* Feeds one length-prefixed field into the digest. 0 or -1. */
static int update_field(EVP_MD_CTX *ctx, const void *p, size_t len)
{
    unsigned char prefix[8];
    uint64_t n = (uint64_t)len;
    for (int i = 7; i >= 0; i--) {
        prefix[i] = (unsigned char)(n & 0xff);
        n >>= 8;
    }
    if (EVP_DigestUpdate(ctx, prefix, sizeof prefix) != 1)
        return -1;
    if (len > 0 && EVP_DigestUpdate(ctx, p, len) != 1)
        return -1;
    return 0;
}

/* Writes the lowercase hex SHA-256 of
 *   be64(len(scene)) scene be64(len(method)) method be64(len(url)) url
 *   be64(body_len) body
 * plus a NUL into out. scene, method and url are NUL-terminated; NULL for any
 * of them, or for body, is hashed as an empty field. Returns 0, or -1 (out
 * then holds an empty string) when libcrypto fails. Thread-safe: no shared
 * state, one EVP_MD_CTX per call. */
int rt_idempotency_digest(const char *scene, const char *method, const char *url,
                          const char *body, size_t body_len, char out[RT_DIGEST_HEX_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int rc = -1;

    out[0] = '\0';
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return -1;
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        goto out;
    if (update_field(ctx, scene, scene ? strlen(scene) : 0) != 0 ||
        update_field(ctx, method, method ? strlen(method) : 0) != 0 ||
        update_field(ctx, url, url ? strlen(url) : 0) != 0 ||
        update_field(ctx, body, body ? body_len : 0) != 0)
        goto out;
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen * 2 != RT_DIGEST_HEX_LEN)
        goto out;
    for (unsigned int i = 0; i < mdlen; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0x0f];
    }
    out[RT_DIGEST_HEX_LEN] = '\0';
    rc = 0;
out:
    EVP_MD_CTX_free(ctx);
    return rc;
}
