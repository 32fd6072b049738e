/*
 * test_utf8.c: rt_utf8_sanitize keeps valid UTF-8, replaces what is not,
 * never cuts a character in half, and always terminates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "utf8.h"

static void check(const char *in, size_t len, size_t outsz, const char *expected)
{
    char out[64];
    assert_true(outsz <= sizeof out);
    size_t n = rt_utf8_sanitize(in, len, out, outsz);
    assert_string_equal(out, expected);
    assert_int_equal(n, strlen(expected));
}

/* Input length from the literal itself, so embedded NULs count. */
#define CHECK(lit, outsz, expected) check((lit), sizeof(lit) - 1, (outsz), (expected))

static void valid_text_is_kept(void **state)
{
    CHECK("plain", 64, "plain");
    CHECK("d\xc3\xa9" "faillance", 64, "d\xc3\xa9" "faillance");
    CHECK("\xe2\x82\xac \xf0\x9f\x98\x80", 64, "\xe2\x82\xac \xf0\x9f\x98\x80");
    CHECK("tab\tnl\n", 64, "tab\tnl\n");
}

static void invalid_bytes_are_replaced(void **state)
{
    CHECK("d\xe9" "faillance", 64, "d?faillance");           /* Latin-1 */
    CHECK("\xc0\xaf", 64, "??");                              /* overlong '/' */
    CHECK("\xed\xa0\x80", 64, "???");                         /* surrogate */
    CHECK("\xf4\x90\x80\x80", 64, "????");                    /* > U+10FFFF */
    CHECK("\xff\xfe", 64, "??");
    CHECK("a\0b", 64, "a?b");
    CHECK("bell\x07" "del\x7f", 64, "bell del ");
}

static void truncated_sequence_at_end_is_replaced(void **state)
{
    /* The input was cut in the middle of a character. */
    CHECK("ab\xe2\x82", 64, "ab??");
}

static void output_is_cut_on_a_character_boundary(void **state)
{
    /* "é" needs 2 bytes + NUL: with 4 bytes of room after "ab" it must not fit. */
    CHECK("ab\xc3\xa9", 4, "ab");
    CHECK("ab\xc3\xa9", 5, "ab\xc3\xa9");
    CHECK("abc", 1, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_text_is_kept),
        cmocka_unit_test(invalid_bytes_are_replaced),
        cmocka_unit_test(truncated_sequence_at_end_is_replaced),
        cmocka_unit_test(output_is_cut_on_a_character_boundary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
