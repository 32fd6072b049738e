/*
 * test_jsonptr.c: RFC 6901 section 5's example document and pointers, plus
 * the failure cases and rt_json_scalar_text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "jsonptr.h"

/* RFC 6901 section 5. */
static const char RFC_DOC[] =
    "{\"foo\": [\"bar\", \"baz\"], \"\": 0, \"a/b\": 1, \"c%d\": 2, \"e^f\": 3, \"g|h\": 4,"
    " \"i\\\\j\": 5, \"k\\\"l\": 6, \" \": 7, \"m~n\": 8}";

static json_t *doc(void)
{
    json_t *d = json_loads(RFC_DOC, 0, NULL);
    assert_non_null(d);
    return d;
}

static void rfc_examples(void **state)
{
    json_t *d = doc();
    assert_ptr_equal(rt_jsonptr_get(d, ""), d);
    assert_string_equal(json_string_value(json_array_get(rt_jsonptr_get(d, "/foo"), 1)), "baz");
    assert_string_equal(json_string_value(rt_jsonptr_get(d, "/foo/0")), "bar");
    static const struct {
        const char *ptr;
        int value;
    } cases[] = {{"/", 0},   {"/a~1b", 1}, {"/c%d", 2}, {"/e^f", 3}, {"/g|h", 4},
                 {"/i\\j", 5}, {"/k\"l", 6}, {"/ ", 7},  {"/m~0n", 8}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *v = rt_jsonptr_get(d, cases[i].ptr);
        assert_non_null(v);
        assert_int_equal(json_integer_value(v), cases[i].value);
    }
    json_decref(d);
}

static void missing_and_invalid(void **state)
{
    json_t *d = doc();
    assert_null(rt_jsonptr_get(d, "/nope"));
    assert_null(rt_jsonptr_get(d, "/foo/2"));      /* out of range */
    assert_null(rt_jsonptr_get(d, "/foo/01"));     /* leading zero */
    assert_null(rt_jsonptr_get(d, "/foo/-"));      /* past-the-end is not a value */
    assert_null(rt_jsonptr_get(d, "/foo/0/x"));    /* into a string */
    assert_null(rt_jsonptr_get(d, "foo"));         /* no leading slash */
    assert_null(rt_jsonptr_get(d, "/m~2n"));       /* bad escape */
    assert_int_equal(rt_jsonptr_valid("/a~"), -1);
    assert_int_equal(rt_jsonptr_valid("/a~1/b~0"), 0);
    json_decref(d);
}

static void scalar_text(void **state)
{
    char buf[16];
    json_t *v = json_string("E1001");
    assert_int_equal(rt_json_scalar_text(v, buf, sizeof buf), 0);
    assert_string_equal(buf, "E1001");
    json_decref(v);
    v = json_integer(42);
    assert_int_equal(rt_json_scalar_text(v, buf, sizeof buf), 0);
    assert_string_equal(buf, "42");
    json_decref(v);
    v = json_false();
    assert_int_equal(rt_json_scalar_text(v, buf, sizeof buf), 0);
    assert_string_equal(buf, "false");
    v = json_string("a string longer than sixteen bytes");
    assert_int_equal(rt_json_scalar_text(v, buf, sizeof buf), -1);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc_examples),
        cmocka_unit_test(missing_and_invalid),
        cmocka_unit_test(scalar_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
