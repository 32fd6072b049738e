/*
 * test_call.c: unit tests of the client call loop (RETRY_CALL, policies,
 * backoff delays, predicates, recover, deadline), the client handle's
 * configuration checks and the error names. No Kafka, no wall clock: the
 * client's sleep_fn records the delays and drives a fake clock.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "retry/retry.h"

#define MAX_REC 64

typedef struct fixture {
    int64_t delays[MAX_REC];
    int ndelays;
    int64_t now_ms;
    int log_lines;
    char last_log[512];
    retry_client *client;
} fixture;

static void rec_sleep(void *opaque, int64_t ms)
{
    fixture *f = opaque;
    if (f->ndelays < MAX_REC)
        f->delays[f->ndelays++] = ms;
    f->now_ms += ms;
}

static int64_t rec_now(void *opaque)
{
    fixture *f = opaque;
    return f->now_ms;
}

static void rec_log(void *opaque, int level, const char *msg)
{
    fixture *f = opaque;
    (void)level;
    f->log_lines++;
    snprintf(f->last_log, sizeof f->last_log, "%s", msg);
}

static retry_client *make_client(fixture *f, uint64_t seed, int enabled)
{
    retry_client_conf conf = RETRY_CLIENT_CONF_DEFAULT;
    char errstr[256];
    retry_client *c = NULL;

    conf.group = "unit-test";
    conf.sleep_fn = rec_sleep;
    conf.now_ms_fn = rec_now;
    conf.log_cb = rec_log;
    conf.opaque = f;
    conf.rng_seed = seed;
    conf.enabled = enabled;
    assert_int_equal(retry_client_new(&conf, &c, errstr, sizeof errstr), RETRY_OK);
    assert_non_null(c);
    return c;
}

static int setup(void **state)
{
    static fixture f;
    memset(&f, 0, sizeof f);
    f.now_ms = 1000000;
    f.client = make_client(&f, 42, 1);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    retry_client_destroy(f->client);
    return 0;
}

/* A callee scripted with a list of codes; it returns them in order and
 * repeats the last one. */
typedef struct script {
    const int *codes;
    int n;
    int calls;
} script;

static int scripted(script *s)
{
    int i = s->calls < s->n ? s->calls : s->n - 1;
    s->calls++;
    return s->codes[i];
}

static void test_success_first_time(void **state)
{
    fixture *f = *state;
    static const int codes[] = {0};
    script s = {codes, 1, 0};
    retry_policy p = RETRY_POLICY_DEFAULT;
    retry_err how = RETRY_ERR_INTERNAL;
    int rc = -1;

    RETRY_CALL_EX(rc, how, f->client, &p, scripted(&s));
    assert_int_equal(rc, 0);
    assert_int_equal(how, RETRY_OK);
    assert_int_equal(s.calls, 1);
    assert_int_equal(f->ndelays, 0);
}

static void test_fails_twice_then_succeeds_fixed(void **state)
{
    fixture *f = *state;
    static const int codes[] = {5, 5, 0};
    script s = {codes, 3, 0};
    retry_policy p = RETRY_POLICY_DEFAULT;
    int rc = -1;

    p.max_attempts = 5;
    p.delay_ms = 250;
    RETRY_CALL(rc, f->client, &p, scripted(&s));
    assert_int_equal(rc, 0);
    assert_int_equal(s.calls, 3);
    assert_int_equal(f->ndelays, 2);
    assert_int_equal(f->delays[0], 250);
    assert_int_equal(f->delays[1], 250);
}

static void test_exhausted_returns_last_code(void **state)
{
    fixture *f = *state;
    static const int codes[] = {11, 12, 13, 14};
    script s = {codes, 4, 0};
    retry_policy p = RETRY_POLICY_DEFAULT;
    retry_err how = RETRY_OK;
    retry_stats st;
    int rc = 0;

    RETRY_CALL_EX(rc, how, f->client, &p, scripted(&s));
    assert_int_equal(s.calls, 3);
    assert_int_equal(rc, 13);
    assert_int_equal(how, RETRY_ERR_EXHAUSTED);
    /* Default delay is 0, and the sleep hook still sees every pause. */
    assert_int_equal(f->ndelays, 2);
    assert_int_equal(f->delays[0], 0);
    retry_client_stats(f->client, &st);
    assert_int_equal(st.calls, 1);
    assert_int_equal(st.attempts, 3);
    assert_int_equal(st.exhausted, 1);
    assert_int_equal(st.shipped, 0);
}

static void test_exponential_delays(void **state)
{
    fixture *f = *state;
    static const int codes[] = {1};
    script s = {codes, 1, 0};
    retry_policy p = RETRY_POLICY_DEFAULT;
    int rc;

    p.max_attempts = 5;
    p.delay_ms = 100;
    p.multiplier = 2.0;
    RETRY_CALL(rc, f->client, &p, scripted(&s));
    assert_int_equal(rc, 1);
    assert_int_equal(s.calls, 5);
    assert_int_equal(f->ndelays, 4);
    assert_int_equal(f->delays[0], 100);
    assert_int_equal(f->delays[1], 200);
    assert_int_equal(f->delays[2], 400);
    assert_int_equal(f->delays[3], 800);
}

static void test_exponential_capped(void **state)
{
    fixture *f = *state;
    static const int codes[] = {1};
    script s = {codes, 1, 0};
    retry_policy p = RETRY_POLICY_DEFAULT;
    int rc;

    p.max_attempts = 6;
    p.delay_ms = 100;
    p.multiplier = 3.0;
    p.max_delay_ms = 500;
    RETRY_CALL(rc, f->client, &p, scripted(&s));
    assert_int_equal(f->ndelays, 5);
    assert_int_equal(f->delays[0], 100);
    assert_int_equal(f->delays[1], 300);
    assert_int_equal(f->delays[2], 500);
    assert_int_equal(f->delays[3], 500);
    assert_int_equal(f->delays[4], 500);
    (void)rc;
}

/* Runs one always-failing call with the given jitter, recording delays. */
static void run_jitter(fixture *f, retry_jitter j, int attempts)
{
    static const int codes[] = {9};
    script s = {codes, 1, 0};
    retry_policy p = RETRY_POLICY_DEFAULT;
    int rc;

    p.max_attempts = attempts;
    p.delay_ms = 100;
    p.multiplier = 2.0;
    p.max_delay_ms = 2000;
    p.jitter = j;
    f->ndelays = 0;
    RETRY_CALL(rc, f->client, &p, scripted(&s));
    assert_int_equal(rc, 9);
    assert_int_equal(f->ndelays, attempts - 1);
}

static void test_jitter_bounds(void **state)
{
    fixture *f = *state;
    int i, k;

    for (k = 0; k < 20; k++) {
        run_jitter(f, RETRY_JITTER_FULL, 6);
        for (i = 0; i < f->ndelays; i++) {
            int64_t base = 100LL << i;
            assert_in_range(f->delays[i], 0, base);
        }
        run_jitter(f, RETRY_JITTER_EQUAL, 6);
        for (i = 0; i < f->ndelays; i++) {
            int64_t base = 100LL << i;
            assert_in_range(f->delays[i], base / 2, base);
        }
        run_jitter(f, RETRY_JITTER_DECORRELATED, 8);
        for (i = 0; i < f->ndelays; i++) {
            int64_t prev = i == 0 ? 100 : f->delays[i - 1];
            int64_t hi = prev * 3 < 2000 ? prev * 3 : 2000;
            assert_in_range(f->delays[i], 100, hi);
        }
    }
}

static void test_jitter_seed_is_deterministic(void **state)
{
    fixture a, b;
    int i;

    (void)state;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.client = make_client(&a, 7, 1);
    b.client = make_client(&b, 7, 1);
    run_jitter(&a, RETRY_JITTER_FULL, 8);
    run_jitter(&b, RETRY_JITTER_FULL, 8);
    for (i = 0; i < a.ndelays; i++)
        assert_int_equal(a.delays[i], b.delays[i]);
    retry_client_destroy(a.client);
    retry_client_destroy(b.client);
}

static void test_stop_on_stops_at_once(void **state)
{
    fixture *f = *state;
    static const int codes[] = {404};
    static const int stop[] = {400, 404};
    script s = {codes, 1, 0};
    retry_policy p = RETRY_POLICY_DEFAULT;
    retry_err how = RETRY_OK;
    int rc;

    p.max_attempts = 10;
    p.stop_on = stop;
    p.stop_on_count = 2;
    RETRY_CALL_EX(rc, how, f->client, &p, scripted(&s));
    assert_int_equal(s.calls, 1);
    assert_int_equal(rc, 404);
    assert_int_equal(how, RETRY_ERR_STOPPED);
    assert_int_equal(f->ndelays, 0);
}

static void test_retry_on_restricts(void **state)
{
    fixture *f = *state;
    static const int other[] = {6};
    static const int listed[] = {5};
    static const int retry_on[] = {5, 50};
    script s1 = {other, 1, 0}, s2 = {listed, 1, 0};
    retry_policy p = RETRY_POLICY_DEFAULT;
    retry_err how;
    int rc;

    p.max_attempts = 4;
    p.retry_on = retry_on;
    p.retry_on_count = 2;
    RETRY_CALL_EX(rc, how, f->client, &p, scripted(&s1));
    assert_int_equal(s1.calls, 1);
    assert_int_equal(how, RETRY_ERR_STOPPED);
    RETRY_CALL_EX(rc, how, f->client, &p, scripted(&s2));
    assert_int_equal(s2.calls, 4);
    assert_int_equal(how, RETRY_ERR_EXHAUSTED);
    assert_int_equal(rc, 5);
}

typedef struct recover_rec {
    int calls;
    int last_code;
    int ret;
} recover_rec;

static int recover_fn(void *ctx, int last_code)
{
    recover_rec *r = ctx;
    r->calls++;
    r->last_code = last_code;
    return r->ret;
}

static void test_recover_once_on_exhaustion(void **state)
{
    fixture *f = *state;
    static const int codes[] = {21, 22, 23};
    script s = {codes, 3, 0};
    recover_rec r = {0, 0, 777};
    retry_policy p = RETRY_POLICY_DEFAULT;
    retry_err how;
    int rc;

    p.recover = recover_fn;
    p.recover_ctx = &r;
    RETRY_CALL_EX(rc, how, f->client, &p, scripted(&s));
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.last_code, 23);
    assert_int_equal(rc, 777);
    assert_int_equal(how, RETRY_ERR_EXHAUSTED);
}

static void test_recover_on_stop_not_on_success(void **state)
{
    fixture *f = *state;
    static const int stop_codes[] = {3};
    static const int stop[] = {3};
    static const int ok_codes[] = {1, 0};
    script s1 = {stop_codes, 1, 0}, s2 = {ok_codes, 2, 0};
    recover_rec r = {0, 0, 0};
    retry_policy p = RETRY_POLICY_DEFAULT;
    int rc;

    p.recover = recover_fn;
    p.recover_ctx = &r;
    p.stop_on = stop;
    p.stop_on_count = 1;
    RETRY_CALL(rc, f->client, &p, scripted(&s1));
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.last_code, 3);
    assert_int_equal(rc, 0); /* recover turned the failure into success */
    RETRY_CALL(rc, f->client, &p, scripted(&s2));
    assert_int_equal(rc, 0);
    assert_int_equal(r.calls, 1);
}

static void test_deadline(void **state)
{
    fixture *f = *state;
    static const int codes[] = {8};
    script s = {codes, 1, 0};
    recover_rec r = {0, 0, -8};
    retry_policy p = RETRY_POLICY_DEFAULT;
    retry_err how;
    retry_stats st;
    int rc;

    f->now_ms = 1000;
    p.max_attempts = 10;
    p.delay_ms = 100;
    p.deadline_ms = 1250;
    p.recover = recover_fn;
    p.recover_ctx = &r;
    /* Attempts at t=1000, 1100, 1200; a fourth at 1300 would pass 1250. */
    RETRY_CALL_EX(rc, how, f->client, &p, scripted(&s));
    assert_int_equal(s.calls, 3);
    assert_int_equal(how, RETRY_ERR_DEADLINE);
    assert_int_equal(r.calls, 1);
    assert_int_equal(rc, -8);
    retry_client_stats(f->client, &st);
    assert_int_equal(st.deadline, 1);
}

static void test_invalid_policy_never_evaluates(void **state)
{
    fixture *f = *state;
    static const int codes[] = {0};
    script s = {codes, 1, 0};
    retry_policy p = RETRY_POLICY_DEFAULT;
    retry_err how = RETRY_OK;
    int rc = 0;

    p.max_attempts = 0;
    RETRY_CALL_EX(rc, how, f->client, &p, scripted(&s));
    assert_int_equal(s.calls, 0);
    assert_int_equal(rc, RETRY_ERR_INVALID_ARG);
    assert_int_equal(how, RETRY_ERR_INVALID_ARG);
    assert_non_null(strstr(f->last_log, "max_attempts"));

    retry_policy_init(&p);
    p.scene = "bad scene!";
    RETRY_CALL_EX(rc, how, f->client, &p, scripted(&s));
    assert_int_equal(s.calls, 0);
    assert_int_equal(how, RETRY_ERR_INVALID_ARG);
}

static void test_null_client_and_policy(void **state)
{
    static const int codes[] = {2, 0};
    script s = {codes, 2, 0};
    int rc = -1;

    (void)state;
    RETRY_CALL(rc, NULL, NULL, scripted(&s));
    assert_int_equal(rc, 0);
    assert_int_equal(s.calls, 2);
}

static void test_disabled_client_runs_once(void **state)
{
    fixture f;
    static const int codes[] = {4};
    script s = {codes, 1, 0};
    recover_rec r = {0, 0, 0};
    retry_policy p = RETRY_POLICY_DEFAULT;
    int rc;

    (void)state;
    memset(&f, 0, sizeof f);
    f.client = make_client(&f, 1, 0);
    p.max_attempts = 5;
    p.recover = recover_fn;
    p.recover_ctx = &r;
    RETRY_CALL(rc, f.client, &p, scripted(&s));
    assert_int_equal(s.calls, 1);
    assert_int_equal(rc, 4);
    assert_int_equal(r.calls, 0);
    retry_client_destroy(f.client);
}

static void test_two_calls_in_one_scope_and_if_else(void **state)
{
    fixture *f = *state;
    static const int a_codes[] = {1, 0};
    static const int b_codes[] = {0};
    script a = {a_codes, 2, 0}, b = {b_codes, 1, 0};
    int rc1 = -1, rc2 = -1;

    RETRY_CALL(rc1, f->client, NULL, scripted(&a));
    RETRY_CALL(rc2, f->client, NULL, scripted(&b));
    assert_int_equal(rc1, 0);
    assert_int_equal(rc2, 0);
    if (a.calls == 2)
        RETRY_CALL(rc1, f->client, NULL, scripted(&b));
    else
        RETRY_CALL(rc1, f->client, NULL, scripted(&a));
    assert_int_equal(b.calls, 2);
}

static void test_log_one_line_per_attempt(void **state)
{
    fixture *f = *state;
    static const int codes[] = {1, 1, 0};
    script s = {codes, 3, 0};
    int rc;

    f->log_lines = 0;
    RETRY_CALL(rc, f->client, NULL, scripted(&s));
    assert_int_equal(rc, 0);
    assert_int_equal(f->log_lines, 3);
    assert_non_null(strstr(f->last_log, "attempt 3/3 succeeded"));
}

static void test_error_names(void **state)
{
    int e;

    (void)state;
    for (e = RETRY_OK; e <= RETRY_ERR_INTERNAL; e++) {
        assert_string_not_equal(retry_err_name(e), "RETRY_ERR_UNKNOWN");
        assert_string_not_equal(retry_strerror(e), "unknown error code");
    }
    assert_string_equal(retry_err_name(RETRY_ERR_EXHAUSTED), "RETRY_ERR_EXHAUSTED");
    assert_string_equal(retry_err_name(12345), "RETRY_ERR_UNKNOWN");
    assert_string_equal(retry_strerror(-1), "unknown error code");
    /* The numbers are ABI: they never change. */
    assert_int_equal(RETRY_PENDING, 1);
    assert_int_equal(RETRY_ERR_EXHAUSTED, 2);
    assert_int_equal(RETRY_ERR_DEADLINE, 9);
    assert_string_equal(retry_version(), RETRY_VERSION_STR);
}

static void test_client_new_rejects_bad_conf(void **state)
{
    retry_client_conf conf;
    retry_client *c = (retry_client *)&conf;
    char errstr[256];
    static const char *const bad_props[] = {"no-equals-sign"};

    (void)state;
    retry_client_conf_init(&conf);
    assert_int_equal(conf.flush_timeout_ms, 10000);
    assert_string_equal(conf.topic, "retry.tasks");
    assert_int_equal(conf.enabled, 1);

    assert_int_equal(retry_client_new(&conf, &c, errstr, sizeof errstr), RETRY_ERR_INVALID_ARG);
    assert_null(c);
    assert_non_null(strstr(errstr, "group is required"));

    conf.group = "order service"; /* space */
    assert_int_equal(retry_client_new(&conf, &c, errstr, sizeof errstr), RETRY_ERR_INVALID_ARG);
    assert_non_null(strstr(errstr, "group \"order service\" is invalid"));
    assert_non_null(strstr(errstr, "[A-Za-z0-9._-]{1,64}"));

    conf.group = "0123456789012345678901234567890123456789012345678901234567890123456789";
    assert_int_equal(retry_client_new(&conf, &c, errstr, sizeof errstr), RETRY_ERR_INVALID_ARG);

    conf.group = "order-service";
    conf.topic = "";
    assert_int_equal(retry_client_new(&conf, &c, errstr, sizeof errstr), RETRY_ERR_INVALID_ARG);
    assert_non_null(strstr(errstr, "topic"));

    conf.topic = "retry.tasks";
    conf.brokers = "127.0.0.1:1";
    conf.kafka_props = bad_props;
    conf.kafka_props_count = 1;
    assert_int_equal(retry_client_new(&conf, &c, errstr, sizeof errstr), RETRY_ERR_INVALID_ARG);
    assert_non_null(strstr(errstr, "name=value"));

    assert_int_equal(retry_client_new(NULL, &c, errstr, sizeof errstr), RETRY_ERR_INVALID_ARG);
    retry_client_destroy(NULL);
    assert_int_equal(retry_client_flush(NULL, 0), RETRY_ERR_INVALID_ARG);
}

/* One client shared by several threads: the counters add up. */
#define MT_THREADS 4
#define MT_CALLS 2000

static void *mt_worker(void *arg)
{
    retry_client *c = arg;
    static const int codes[] = {1, 0};
    int i, rc;

    for (i = 0; i < MT_CALLS; i++) {
        script s = {codes, 2, 0};
        RETRY_CALL(rc, c, NULL, scripted(&s));
        if (rc != 0)
            return arg;
    }
    return NULL;
}

static void test_shared_client_threads(void **state)
{
    retry_client_conf conf = RETRY_CLIENT_CONF_DEFAULT;
    retry_client *c = NULL;
    pthread_t th[MT_THREADS];
    retry_stats st;
    void *res;
    int i;

    (void)state;
    conf.group = "unit-test";
    assert_int_equal(retry_client_new(&conf, &c, NULL, 0), RETRY_OK);
    for (i = 0; i < MT_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, mt_worker, c), 0);
    for (i = 0; i < MT_THREADS; i++) {
        assert_int_equal(pthread_join(th[i], &res), 0);
        assert_null(res);
    }
    retry_client_stats(c, &st);
    assert_int_equal(st.calls, MT_THREADS * MT_CALLS);
    assert_int_equal(st.succeeded, MT_THREADS * MT_CALLS);
    assert_int_equal(st.attempts, 2 * MT_THREADS * MT_CALLS);
    retry_client_destroy(c);
}

static void test_flush_without_brokers(void **state)
{
    fixture *f = *state;
    assert_int_equal(retry_client_flush(f->client, 0), RETRY_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_success_first_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fails_twice_then_succeeds_fixed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exhausted_returns_last_code, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exponential_delays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exponential_capped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jitter_bounds, setup, teardown),
        cmocka_unit_test(test_jitter_seed_is_deterministic),
        cmocka_unit_test_setup_teardown(test_stop_on_stops_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_on_restricts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_once_on_exhaustion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_on_stop_not_on_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_policy_never_evaluates, setup, teardown),
        cmocka_unit_test(test_null_client_and_policy),
        cmocka_unit_test(test_disabled_client_runs_once),
        cmocka_unit_test_setup_teardown(test_two_calls_in_one_scope_and_if_else, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_one_line_per_attempt, setup, teardown),
        cmocka_unit_test(test_error_names),
        cmocka_unit_test(test_client_new_rejects_bad_conf),
        cmocka_unit_test_setup_teardown(test_flush_without_brokers, setup, teardown),
        cmocka_unit_test(test_shared_client_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
