/*
 * test_decide.c: every branch of rd_decide (server/decide.h): success by
 * default 2xx and by an explicit success list, stop_on_status, retry with the
 * backoff delay, exhaustion by max_attempts and by deadline, transport errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "decide.h"

static rt_policy policy(void)
{
    rt_policy p;
    memset(&p, 0, sizeof p);
    p.set = RT_POL_MAX_ATTEMPTS | RT_POL_BACKOFF | RT_POL_INITIAL_DELAY | RT_POL_MULTIPLIER |
            RT_POL_MAX_DELAY | RT_POL_JITTER | RT_POL_STOP_ON_STATUS | RT_POL_LEVELS;
    p.max_attempts = 3;
    p.backoff = RT_BACKOFF_EXPONENTIAL;
    p.initial_delay_ms = 1000;
    p.multiplier = 2.0;
    p.max_delay_ms = 60000;
    p.jitter = RT_JITTER_NONE;
    p.stop_on_status[0] = 400;
    p.stop_on_status[1] = 404;
    p.nstop_on_status = 2;
    return p;
}

static rt_http_target target(void)
{
    rt_http_target t;
    memset(&t, 0, sizeof t);
    t.timeout_ms = 10000;
    return t;
}

static void success_any_2xx(void **state)
{
    rt_policy p = policy();
    rt_http_target t = target();
    rd_decision d;
    rt_rng rng;
    rt_rng_seed(&rng, 1);
    rd_decide(&p, &t, &(rd_answer){1, 204, -1, 0}, 1, 5000, 0, &rng, &d);
    assert_string_equal(d.outcome, "succeeded");
    assert_string_equal(d.status, "succeeded");
    rd_decide(&p, &t, &(rd_answer){1, 302, -1, 0}, 1, 5000, 0, &rng, &d);
    assert_string_equal(d.outcome, "failed");
}

static void success_list_overrides_2xx(void **state)
{
    rt_policy p = policy();
    rt_http_target t = target();
    t.success_status[0] = 200;
    t.success_status[1] = 409; /* "already done" counts as success here */
    t.nsuccess_status = 2;
    rd_decision d;
    rd_decide(&p, &t, &(rd_answer){1, 409, -1, 0}, 1, 5000, 0, NULL, &d);
    assert_string_equal(d.status, "succeeded");
    rd_decide(&p, &t, &(rd_answer){1, 201, -1, 0}, 1, 5000, 0, NULL, &d);
    assert_string_equal(d.outcome, "failed");
    assert_string_equal(d.status, "pending");
}

static void stop_on_status_stops(void **state)
{
    rt_policy p = policy();
    rt_http_target t = target();
    rd_decision d;
    rd_decide(&p, &t, &(rd_answer){1, 404, -1, 0}, 1, 5000, 0, NULL, &d);
    assert_string_equal(d.outcome, "stopped");
    assert_string_equal(d.status, "stopped");
}

static void retry_uses_backoff(void **state)
{
    rt_policy p = policy();
    rt_http_target t = target();
    rd_decision d;
    rd_decide(&p, &t, &(rd_answer){1, 503, -1, 0}, 1, 5000, 0, NULL, &d);
    assert_string_equal(d.status, "pending");
    assert_int_equal(d.delay_ms, 1000);
    assert_int_equal(d.next_fire_at, 6000);
    rd_decide(&p, &t, &(rd_answer){1, 503, -1, 0}, 2, 5000, 1000, NULL, &d);
    assert_int_equal(d.delay_ms, 2000);
    assert_int_equal(d.next_fire_at, 7000);
}

static void transport_error_retries_even_if_status_matches(void **state)
{
    rt_policy p = policy();
    rt_http_target t = target();
    rd_decision d;
    /* No response: the stale status must not be read as a stop or success. */
    rd_decide(&p, &t, &(rd_answer){0, 404, -1, 0}, 1, 5000, 0, NULL, &d);
    assert_string_equal(d.outcome, "failed");
    assert_string_equal(d.status, "pending");
    rd_decide(&p, &t, &(rd_answer){0, 200, -1, 0}, 1, 5000, 0, NULL, &d);
    assert_string_equal(d.status, "pending");
}

static void max_attempts_exhausts(void **state)
{
    rt_policy p = policy();
    rt_http_target t = target();
    rd_decision d;
    rd_decide(&p, &t, &(rd_answer){1, 503, -1, 0}, 3, 5000, 2000, NULL, &d);
    assert_string_equal(d.outcome, "failed");
    assert_string_equal(d.status, "exhausted");
    /* The last attempt may still succeed. */
    rd_decide(&p, &t, &(rd_answer){1, 200, -1, 0}, 3, 5000, 2000, NULL, &d);
    assert_string_equal(d.status, "succeeded");
}

static void deadline_exhausts_when_next_fire_passes_it(void **state)
{
    rt_policy p = policy();
    p.set |= RT_POL_DEADLINE;
    p.deadline = 5500;
    rt_http_target t = target();
    rd_decision d;
    rd_decide(&p, &t, &(rd_answer){1, 503, -1, 0}, 1, 5000, 0, NULL, &d); /* next would be 6000 */
    assert_string_equal(d.status, "exhausted");
    p.deadline = 6000;
    rd_decide(&p, &t, &(rd_answer){1, 503, -1, 0}, 1, 5000, 0, NULL, &d); /* exactly at the deadline: allowed */
    assert_string_equal(d.status, "pending");
}

static void retry_after_delays_but_is_capped(void **state)
{
    rt_policy p = policy(); /* fixed 1000 ms first delay, max_delay_ms 60000 */
    rt_http_target t = target();
    rd_decision d;
    rd_decide(&p, &t, &(rd_answer){1, 503, 5000, 0}, 1, 0, 0, NULL, &d);
    assert_string_equal(d.status, "pending");
    assert_int_equal(d.delay_ms, 5000); /* the server asked for longer */
    rd_decide(&p, &t, &(rd_answer){1, 429, 500, 0}, 1, 0, 0, NULL, &d);
    assert_int_equal(d.delay_ms, 1000); /* the backoff is longer: it wins */
    rd_decide(&p, &t, &(rd_answer){1, 429, 3600000, 0}, 1, 0, 0, NULL, &d);
    assert_int_equal(d.delay_ms, 60000); /* capped by max_delay_ms */
    rd_decide(&p, &t, &(rd_answer){1, 500, 5000, 0}, 1, 0, 0, NULL, &d);
    assert_int_equal(d.delay_ms, 1000); /* only 429 and 503 are honoured */
}

static void body_stop_rule_stops_even_a_200(void **state)
{
    rt_policy p = policy();
    rt_http_target t = target();
    rd_decision d;
    rd_decide(&p, &t, &(rd_answer){1, 200, -1, 1}, 1, 0, 0, NULL, &d);
    assert_string_equal(d.outcome, "stopped");
    assert_string_equal(d.status, "stopped");
    /* Without a response there is no body to judge. */
    rd_decide(&p, &t, &(rd_answer){0, 0, -1, 1}, 1, 0, 0, NULL, &d);
    assert_string_equal(d.status, "pending");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(success_any_2xx),
        cmocka_unit_test(success_list_overrides_2xx),
        cmocka_unit_test(stop_on_status_stops),
        cmocka_unit_test(retry_uses_backoff),
        cmocka_unit_test(transport_error_retries_even_if_status_matches),
        cmocka_unit_test(max_attempts_exhausts),
        cmocka_unit_test(deadline_exhausts_when_next_fire_passes_it),
        cmocka_unit_test(retry_after_delays_but_is_capped),
        cmocka_unit_test(body_stop_rule_stops_even_a_200),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
