/*
 * test_breaker.c: every transition of the per-scene circuit breaker, with an
 * explicit clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "breaker.h"

static const rd_breaker_conf CONF = {0.8, 10, 5, 1000};

static void fail_n(rd_breakers *b, const char *scene, int n, int64_t now, int *opened)
{
    int64_t until;
    double ratio;
    for (int i = 0; i < n; i++)
        *opened += rd_breaker_record(b, &CONF, scene, 1, now, &until, &ratio);
}

static void opens_after_min_attempts_at_ratio(void **state)
{
    rd_breakers *b = rd_breakers_new();
    int64_t until = 0, retry_at = 0;
    double ratio = 0;
    int opened = 0;
    fail_n(b, "pay", 4, 100, &opened);
    assert_int_equal(opened, 0); /* 4 < min_attempts */
    assert_int_equal(rd_breaker_allow(b, &CONF, "pay", 100, &retry_at), 1);
    assert_int_equal(rd_breaker_record(b, &CONF, "pay", 1, 100, &until, &ratio), 1);
    assert_int_equal(until, 1100);
    assert_true(ratio >= 0.99);
    /* Open: not dispatched, retried at the end of the cool-down. */
    assert_int_equal(rd_breaker_allow(b, &CONF, "pay", 500, &retry_at), 0);
    assert_int_equal(retry_at, 1100);
    /* Other scenes are not affected. */
    assert_int_equal(rd_breaker_allow(b, &CONF, "mail", 500, &retry_at), 1);
    assert_int_equal(rd_breakers_open(b, 500), 1);
    rd_breakers_free(b);
}

static void below_ratio_stays_closed(void **state)
{
    rd_breakers *b = rd_breakers_new();
    int64_t until, retry_at;
    double ratio;
    int opened = 0;
    /* S F F F S F F F S F: 7 failures in 10, and the ratio never reaches 0.8
     * once 5 results are known (0.6, 0.67, 0.71, 0.75, 0.67, 0.7). */
    for (int i = 0; i < 10; i++)
        opened += rd_breaker_record(b, &CONF, "pay", i % 4 != 0, 0, &until, &ratio);
    assert_int_equal(opened, 0);
    assert_int_equal(rd_breaker_allow(b, &CONF, "pay", 0, &retry_at), 1);
    rd_breakers_free(b);
}

static void window_forgets_old_results(void **state)
{
    rd_breakers *b = rd_breakers_new();
    int64_t until, retry_at;
    double ratio;
    int opened = 0;
    for (int i = 0; i < 10; i++) rd_breaker_record(b, &CONF, "pay", 0, 0, &until, &ratio);
    /* 7 failures push 7 successes out: 7 of 10 failed -> still closed. */
    fail_n(b, "pay", 7, 0, &opened);
    assert_int_equal(opened, 0);
    /* The 8th failure makes 8 of 10. */
    fail_n(b, "pay", 1, 0, &opened);
    assert_int_equal(opened, 1);
    assert_int_equal(rd_breaker_allow(b, &CONF, "pay", 10, &retry_at), 0);
    rd_breakers_free(b);
}

static void half_open_probe_decides(void **state)
{
    rd_breakers *b = rd_breakers_new();
    int64_t until, retry_at;
    double ratio;
    int opened = 0;
    fail_n(b, "pay", 5, 0, &opened);
    assert_int_equal(opened, 1);
    /* After the cool-down exactly one probe goes. */
    assert_int_equal(rd_breaker_allow(b, &CONF, "pay", 1000, &retry_at), 1);
    assert_int_equal(rd_breaker_allow(b, &CONF, "pay", 1001, &retry_at), 0);
    assert_int_equal(retry_at, 1001 + 100 + 1);
    /* The probe fails: open again, without a second alert. */
    assert_int_equal(rd_breaker_record(b, &CONF, "pay", 1, 1002, &until, &ratio), 0);
    assert_int_equal(rd_breaker_allow(b, &CONF, "pay", 1500, &retry_at), 0);
    assert_int_equal(retry_at, 2002);
    /* Next probe succeeds: closed, and the old failures are forgotten. */
    assert_int_equal(rd_breaker_allow(b, &CONF, "pay", 2002, &retry_at), 1);
    assert_int_equal(rd_breaker_record(b, &CONF, "pay", 0, 2003, &until, &ratio), 0);
    assert_int_equal(rd_breaker_allow(b, &CONF, "pay", 2004, &retry_at), 1);
    assert_int_equal(rd_breaker_allow(b, &CONF, "pay", 2004, &retry_at), 1);
    opened = 0;
    fail_n(b, "pay", 4, 2005, &opened);
    assert_int_equal(opened, 0);
    assert_int_equal(rd_breakers_open(b, 2005), 0);
    rd_breakers_free(b);
}

static void ratio_zero_turns_breakers_off(void **state)
{
    rd_breakers *b = rd_breakers_new();
    rd_breaker_conf off = CONF;
    off.failure_ratio = 0;
    int64_t until, retry_at;
    double ratio;
    for (int i = 0; i < 50; i++)
        assert_int_equal(rd_breaker_record(b, &off, "pay", 1, 0, &until, &ratio), 0);
    assert_int_equal(rd_breaker_allow(b, &off, "pay", 0, &retry_at), 1);
    rd_breakers_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(opens_after_min_attempts_at_ratio),
        cmocka_unit_test(below_ratio_stays_closed),
        cmocka_unit_test(window_forgets_old_results),
        cmocka_unit_test(half_open_probe_decides),
        cmocka_unit_test(ratio_zero_turns_breakers_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
