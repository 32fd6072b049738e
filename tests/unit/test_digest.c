/*
 * test_digest.c: unit tests for src/digest.c, the default idempotency key
 * (SHA-256 over length-prefixed scene, method, URL and body).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "digest.h"

/* Independent reference: builds the whole byte string in one buffer, hashes
 * it with one-shot EVP_Digest and hex-encodes with snprintf. */
static void reference(const char *f[4], const size_t len[4], char out[65])
{
    unsigned char buf[4096];
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        for (int b = 7; b >= 0; b--)
            buf[n++] = (unsigned char)(((uint64_t)len[i] >> (8 * b)) & 0xff);
        memcpy(buf + n, f[i], len[i]);
        n += len[i];
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    assert_int_equal(EVP_Digest(buf, n, md, &mdlen, EVP_sha256(), NULL), 1);
    assert_int_equal(mdlen, 32);
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void test_fixed_vector(void **state)
{
    (void)state;
    char out[RT_DIGEST_HEX_LEN + 1];
    const char *body = "{\"id\":1}";
    assert_int_equal(rt_idempotency_digest("payment.notify", "POST", "http://example.com/notify",
                                           body, strlen(body), out),
                     0);
    /* Computed once in the shell:
     * printf '\0\0\0\0\0\0\0\x0epayment.notify\0\0\0\0\0\0\0\x04POST'\
     * '\0\0\0\0\0\0\0\x19http://example.com/notify\0\0\0\0\0\0\0\x08{"id":1}' | sha256sum */
    assert_string_equal(out, "4f22751c8e2d46e184f060d0d4962708ccba9a7e46f2eb05bda8ae23d500faf2");

    const char *f[4] = {"payment.notify", "POST", "http://example.com/notify", body};
    size_t len[4] = {14, 4, 25, 8};
    char ref[65];
    reference(f, len, ref);
    assert_string_equal(out, ref);
}

static void test_empty_and_null(void **state)
{
    (void)state;
    char a[RT_DIGEST_HEX_LEN + 1], b[RT_DIGEST_HEX_LEN + 1];
    /* Four empty fields: 32 zero bytes; printf with 32 '\0' | sha256sum. */
    assert_int_equal(rt_idempotency_digest("", "", "", NULL, 0, a), 0);
    assert_string_equal(a, "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925");
    /* NULL anywhere hashes as empty; a NULL body ignores body_len. */
    assert_int_equal(rt_idempotency_digest(NULL, NULL, NULL, NULL, 99, b), 0);
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), RT_DIGEST_HEX_LEN);
    for (size_t i = 0; i < RT_DIGEST_HEX_LEN; i++)
        assert_true((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'f'));
}

static void test_boundaries_cannot_be_forged(void **state)
{
    (void)state;
    char x[RT_DIGEST_HEX_LEN + 1], y[RT_DIGEST_HEX_LEN + 1];
    assert_int_equal(rt_idempotency_digest("a", "bc", "u", "b", 1, x), 0);
    assert_int_equal(rt_idempotency_digest("ab", "c", "u", "b", 1, y), 0);
    assert_string_not_equal(x, y);
    assert_int_equal(rt_idempotency_digest("s", "GET", "http://h/ab", "c", 1, x), 0);
    assert_int_equal(rt_idempotency_digest("s", "GET", "http://h/a", "bc", 2, y), 0);
    assert_string_not_equal(x, y);
    /* The field order matters too. */
    assert_int_equal(rt_idempotency_digest("x", "y", "u", "", 0, x), 0);
    assert_int_equal(rt_idempotency_digest("y", "x", "u", "", 0, y), 0);
    assert_string_not_equal(x, y);
}

static void test_body_is_binary_safe(void **state)
{
    (void)state;
    const char body[] = {'a', '\0', 'b'};
    char x[RT_DIGEST_HEX_LEN + 1], y[RT_DIGEST_HEX_LEN + 1], ref[65];
    assert_int_equal(rt_idempotency_digest("s", "PUT", "https://h/", body, 3, x), 0);
    assert_int_equal(rt_idempotency_digest("s", "PUT", "https://h/", body, 1, y), 0);
    assert_string_not_equal(x, y);
    const char *f[4] = {"s", "PUT", "https://h/", body};
    size_t len[4] = {1, 3, 10, 3};
    reference(f, len, ref);
    assert_string_equal(x, ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_vector),
        cmocka_unit_test(test_empty_and_null),
        cmocka_unit_test(test_boundaries_cannot_be_forged),
        cmocka_unit_test(test_body_is_binary_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
