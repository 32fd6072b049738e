/*
 * test_async.c: unit tests of async calls (retry_async_submit, client/async.c):
 * the completion runs exactly once with the right outcome and on the right
 * thread, RETRY_PENDING on the first failure, rejected calls never call
 * back, a full queue, and retry_client_destroy() draining pending calls
 * (running those due within flush_timeout_ms, ending and shipping the rest
 * through librdkafka's mock cluster) with every ctx freed once.
 *
 * Delays are 1-2 ms, or 60 s for calls that must still be pending when the
 * client is destroyed; waits are bounded (10 s) and nothing asserts on the
 * wall clock. Callbacks run on worker threads, so they only record, under
 * a mutex; the test thread asserts. RETRY_TEST_VERBOSE=1 prints the
 * library's log; RETRY_TEST_SKIP_KAFKA=1 skips the Kafka test (for
 * ThreadSanitizer builds, whose runtime librdkafka's threads crash).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "retry/retry.h"

/* ---- recording completions ------------------------------------------- */

static pthread_mutex_t rec_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rec_cv = PTHREAD_COND_INITIALIZER;

/* What the test sees of one call; owned by the test, outlives the job. */
typedef struct slot {
    int done;  /* on_done calls */
    int freed; /* ctx_free calls */
    retry_async_result res;
    pthread_t done_thread;
    int calls; /* fn calls seen by on_done */
    int chained_rc; /* what a submit from on_done returned, -1 = none */
} slot;

/* The ctx of one call: heap-allocated, freed by job_free. */
typedef struct job {
    const int *codes; /* returned in order, the last one repeated */
    int n;
    int calls;
    slot *slot;
    retry_client *chain; /* when set, on_done submits another call */
} job;

static job *job_new(slot *s, const int *codes, int n)
{
    job *j = calloc(1, sizeof *j);

    assert_non_null(j);
    memset(s, 0, sizeof *s);
    s->chained_rc = -1;
    j->codes = codes;
    j->n = n;
    j->slot = s;
    return j;
}

static int job_run(void *ctx)
{
    job *j = ctx;
    int i = j->calls < j->n ? j->calls : j->n - 1;

    j->calls++;
    return j->codes[i];
}

static void job_free(void *ctx)
{
    job *j = ctx;

    pthread_mutex_lock(&rec_mu);
    j->slot->freed++;
    pthread_cond_broadcast(&rec_cv);
    pthread_mutex_unlock(&rec_mu);
    free(j);
}

static int always_ok(void *ctx)
{
    (void)ctx;
    return 0;
}

static void job_done(void *arg, void *ctx, const retry_async_result *res)
{
    job *j = ctx;
    int chained = -1;

    (void)arg;
    if (j->chain != NULL) {
        chained = (int)retry_async_submit(j->chain, NULL, always_ok, NULL, NULL, NULL, NULL);
    }
    pthread_mutex_lock(&rec_mu);
    j->slot->done++;
    j->slot->res = *res;
    j->slot->done_thread = pthread_self();
    j->slot->calls = j->calls;
    j->slot->chained_rc = chained;
    pthread_cond_broadcast(&rec_cv);
    pthread_mutex_unlock(&rec_mu);
}

/* Waits (at most 10 s) until s has been freed; returns s->freed. */
static int wait_freed(slot *s)
{
    struct timespec ts;
    int n;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 10;
    pthread_mutex_lock(&rec_mu);
    while (s->freed == 0)
        if (pthread_cond_timedwait(&rec_cv, &rec_mu, &ts) == ETIMEDOUT)
            break;
    n = s->freed;
    pthread_mutex_unlock(&rec_mu);
    return n;
}

/* ---- clients ---------------------------------------------------------- */

typedef struct clock_hook {
    pthread_mutex_t mu;
    int64_t now_ms;
} clock_hook;

static int64_t hook_now(void *opaque)
{
    clock_hook *h = opaque;
    int64_t t;

    pthread_mutex_lock(&h->mu);
    t = h->now_ms;
    pthread_mutex_unlock(&h->mu);
    return t;
}

static clock_hook the_clock = {PTHREAD_MUTEX_INITIALIZER, 1700000000000LL};

/* Library messages go to stderr when RETRY_TEST_VERBOSE is set. */
static void test_log(void *opaque, int level, const char *msg)
{
    (void)opaque;
    if (getenv("RETRY_TEST_VERBOSE") != NULL)
        fprintf(stderr, "log %d: %s\n", level, msg);
}

static retry_client *client_with(int workers, int queue_max, const char *brokers)
{
    retry_client_conf conf = RETRY_CLIENT_CONF_DEFAULT;
    retry_client *c = NULL;
    char errstr[256];

    conf.group = "async-test";
    conf.brokers = brokers;
    conf.async_workers = workers;
    conf.async_queue_max = queue_max;
    conf.now_ms_fn = hook_now;
    conf.log_cb = test_log;
    conf.opaque = &the_clock;
    assert_int_equal(retry_client_new(&conf, &c, errstr, sizeof errstr), RETRY_OK);
    return c;
}

static retry_policy fast_policy(int max_attempts, int64_t delay_ms)
{
    retry_policy p = RETRY_POLICY_DEFAULT;

    p.max_attempts = max_attempts;
    p.delay_ms = delay_ms;
    p.multiplier = 0.0;
    p.max_delay_ms = 0;
    p.jitter = RETRY_JITTER_NONE;
    p.send_queue = 1;
    p.scene = "async.test";
    return p;
}

/* ---- tests ------------------------------------------------------------ */

static void test_success_first_time_completes_on_caller(void **state)
{
    static const int codes[] = {0};
    retry_client *c = client_with(2, 100, NULL);
    retry_policy p = fast_policy(3, 1);
    slot s;
    job *j = job_new(&s, codes, 1);

    (void)state;
    assert_int_equal(retry_async_submit(c, &p, job_run, j, job_free, job_done, NULL), RETRY_OK);
    /* Already complete, on this thread, before submit returned. */
    assert_int_equal(s.done, 1);
    assert_int_equal(s.freed, 1);
    assert_true(pthread_equal(s.done_thread, pthread_self()));
    assert_int_equal(s.res.outcome, RETRY_OK);
    assert_int_equal(s.res.rc, 0);
    assert_int_equal(s.res.attempts, 1);
    assert_int_equal(s.calls, 1);
    assert_int_equal(retry_async_pending(c), 0);
    retry_client_destroy(c);
    assert_int_equal(s.done, 1);
}

static void test_success_after_retries_on_worker(void **state)
{
    static const int codes[] = {7, 7, 0};
    retry_client *c = client_with(2, 100, NULL);
    retry_policy p = fast_policy(5, 1);
    retry_stats st;
    slot s;
    job *j = job_new(&s, codes, 3);

    (void)state;
    assert_int_equal(retry_async_submit(c, &p, job_run, j, job_free, job_done, NULL),
                     RETRY_PENDING);
    assert_int_equal(wait_freed(&s), 1);
    assert_int_equal(s.done, 1);
    assert_false(pthread_equal(s.done_thread, pthread_self()));
    assert_int_equal(s.res.outcome, RETRY_OK);
    assert_int_equal(s.res.rc, 0);
    assert_int_equal(s.res.attempts, 3);
    assert_int_equal(s.calls, 3);
    assert_int_equal(s.res.drained, 0);
    retry_client_stats(c, &st);
    assert_int_equal(st.succeeded, 1);
    assert_int_equal(st.attempts, 3);
    retry_client_destroy(c);
    assert_int_equal(s.done, 1);
    assert_int_equal(s.freed, 1);
}

static void test_exhausted(void **state)
{
    static const int codes[] = {7, 8, 9};
    retry_client *c = client_with(1, 100, NULL);
    retry_policy p = fast_policy(3, 1);
    slot s;
    job *j = job_new(&s, codes, 3);

    (void)state;
    p.multiplier = 2.0; /* 1 ms, 2 ms */
    assert_int_equal(retry_async_submit(c, &p, job_run, j, job_free, job_done, NULL),
                     RETRY_PENDING);
    assert_int_equal(wait_freed(&s), 1);
    assert_int_equal(s.res.outcome, RETRY_ERR_EXHAUSTED);
    assert_int_equal(s.res.rc, 9);
    assert_int_equal(s.res.attempts, 3);
    assert_int_equal(s.res.shipped, 0);
    assert_int_equal(s.res.recovered, 0);
    retry_client_destroy(c);
    assert_int_equal(s.done, 1);
}

static void test_stopped(void **state)
{
    static const int codes[] = {404};
    int stop[] = {404}; /* the caller's, changed right after submit */
    char scene[] = "async.test";
    retry_client *c = client_with(2, 100, NULL);
    retry_policy p = fast_policy(5, 1);
    slot s;
    job *j = job_new(&s, codes, 1);

    (void)state;
    p.stop_on = stop;
    p.stop_on_count = 1;
    p.scene = scene;
    /* The policy is copied, lists and strings too: the caller's may change
     * right after submit (the first failure is judged later, on a worker). */
    assert_int_equal(retry_async_submit(c, &p, job_run, j, job_free, job_done, NULL),
                     RETRY_PENDING);
    stop[0] = 500;
    memset(scene, 'x', sizeof scene - 1);
    p.stop_on_count = 0;
    p.scene = NULL;
    assert_int_equal(wait_freed(&s), 1);
    assert_int_equal(s.res.outcome, RETRY_ERR_STOPPED);
    assert_int_equal(s.res.rc, 404);
    assert_int_equal(s.res.attempts, 1);
    assert_int_equal(s.calls, 1);
    retry_client_destroy(c);
}

static int recover_calls;

static int recover_42(void *ctx, int last_code)
{
    (void)ctx;
    pthread_mutex_lock(&rec_mu);
    recover_calls++;
    pthread_mutex_unlock(&rec_mu);
    return last_code == 5 ? 42 : -1;
}

static void test_recover_then_done(void **state)
{
    static const int codes[] = {5};
    retry_client *c = client_with(2, 100, NULL);
    retry_policy p = fast_policy(2, 1);
    slot s;
    job *j = job_new(&s, codes, 1);

    (void)state;
    recover_calls = 0;
    p.recover = recover_42;
    assert_int_equal(retry_async_submit(c, &p, job_run, j, job_free, job_done, NULL),
                     RETRY_PENDING);
    assert_int_equal(wait_freed(&s), 1);
    assert_int_equal(s.res.outcome, RETRY_ERR_EXHAUSTED);
    assert_int_equal(s.res.rc, 42);
    assert_int_equal(s.res.recovered, 1);
    assert_int_equal(s.res.attempts, 2);
    pthread_mutex_lock(&rec_mu);
    assert_int_equal(recover_calls, 1);
    pthread_mutex_unlock(&rec_mu);
    retry_client_destroy(c);
}

static void test_deadline(void **state)
{
    static const int codes[] = {5};
    retry_client *c = client_with(2, 100, NULL);
    retry_policy p = fast_policy(5, 100);
    slot s;
    job *j = job_new(&s, codes, 1);

    (void)state;
    /* The injected clock stands still: the first retry would end past it. */
    p.deadline_ms = hook_now(&the_clock) + 50;
    assert_int_equal(retry_async_submit(c, &p, job_run, j, job_free, job_done, NULL),
                     RETRY_PENDING);
    assert_int_equal(wait_freed(&s), 1);
    assert_int_equal(s.res.outcome, RETRY_ERR_DEADLINE);
    assert_int_equal(s.res.attempts, 1);
    retry_client_destroy(c);
}

static int must_not_run(void *ctx)
{
    (void)ctx;
    fail_msg("fn of a rejected call ran");
    return 0;
}

static void must_not_free(void *ctx)
{
    (void)ctx;
    fail_msg("ctx of a rejected call freed");
}

static void must_not_complete(void *arg, void *ctx, const retry_async_result *res)
{
    (void)arg;
    (void)ctx;
    (void)res;
    fail_msg("on_done of a rejected call ran");
}

static void test_rejected_never_calls_back(void **state)
{
    retry_client *c = client_with(2, 100, NULL);
    retry_policy p = fast_policy(0, 1); /* invalid */
    int ctx = 0;

    (void)state;
    assert_int_equal(retry_async_submit(NULL, NULL, must_not_run, &ctx, must_not_free,
                                        must_not_complete, NULL),
                     RETRY_ERR_INVALID_ARG);
    assert_int_equal(retry_async_submit(c, NULL, NULL, &ctx, must_not_free, must_not_complete,
                                        NULL),
                     RETRY_ERR_INVALID_ARG);
    assert_int_equal(retry_async_submit(c, &p, must_not_run, &ctx, must_not_free,
                                        must_not_complete, NULL),
                     RETRY_ERR_INVALID_ARG);
    assert_int_equal(retry_async_pending(c), 0);
    assert_int_equal(retry_async_pending(NULL), 0);
    retry_client_destroy(c);
}

static void test_queue_full_then_destroy_drains(void **state)
{
    static const int codes[] = {7};
    retry_client *c = client_with(1, 2, NULL);
    retry_policy p = fast_policy(3, 60000); /* still pending at destroy */
    slot s1, s2;
    job *j1 = job_new(&s1, codes, 1);
    job *j2 = job_new(&s2, codes, 1);
    int ctx = 0;

    (void)state;
    assert_int_equal(retry_async_submit(c, &p, job_run, j1, job_free, job_done, NULL),
                     RETRY_PENDING);
    assert_int_equal(retry_async_submit(c, &p, job_run, j2, job_free, job_done, NULL),
                     RETRY_PENDING);
    assert_int_equal(retry_async_pending(c), 2);
    /* The third is refused before its first attempt, whatever it would do. */
    assert_int_equal(retry_async_submit(c, &p, must_not_run, &ctx, must_not_free,
                                        must_not_complete, NULL),
                     RETRY_ERR_QUEUE_FULL);
    assert_string_equal(retry_err_name(RETRY_ERR_QUEUE_FULL), "RETRY_ERR_QUEUE_FULL");
    assert_int_equal(s1.done + s2.done, 0);

    retry_client_destroy(c);
    /* destroy returned: both ended as exhausted, drained, freed once. */
    assert_int_equal(s1.done, 1);
    assert_int_equal(s2.done, 1);
    assert_int_equal(s1.freed, 1);
    assert_int_equal(s2.freed, 1);
    assert_int_equal(s1.res.outcome, RETRY_ERR_EXHAUSTED);
    assert_int_equal(s1.res.drained, 1);
    assert_int_equal(s1.res.attempts, 1);
    assert_int_equal(s1.res.rc, 7);
    assert_int_equal(s2.res.drained, 1);
}

static void test_destroy_runs_due_attempts_and_refuses_new(void **state)
{
    static const int fail[] = {7};
    retry_client *c = client_with(2, 100, NULL);
    retry_policy quick = fast_policy(3, 1);
    retry_policy slow = fast_policy(3, 60000);
    slot sa, sb;
    job *a = job_new(&sa, fail, 1);
    job *b = job_new(&sb, fail, 1);

    (void)state;
    quick.multiplier = 2.0;
    b->chain = c; /* its on_done submits during the drain: refused */
    assert_int_equal(retry_async_submit(c, &quick, job_run, a, job_free, job_done, NULL),
                     RETRY_PENDING);
    assert_int_equal(retry_async_submit(c, &slow, job_run, b, job_free, job_done, NULL),
                     RETRY_PENDING);
    retry_client_destroy(c); /* flush_timeout_ms = 10000 */

    /* a's retries fell due within flush_timeout_ms: it ran to its end. */
    assert_int_equal(sa.done, 1);
    assert_int_equal(sa.freed, 1);
    assert_int_equal(sa.res.outcome, RETRY_ERR_EXHAUSTED);
    assert_int_equal(sa.res.attempts, 3);
    assert_int_equal(sa.res.drained, 0);
    /* b's next attempt was a minute away: ended at once. */
    assert_int_equal(sb.done, 1);
    assert_int_equal(sb.freed, 1);
    assert_int_equal(sb.res.attempts, 1);
    assert_int_equal(sb.res.drained, 1);
    assert_int_equal(sb.chained_rc, RETRY_ERR_INVALID_ARG);
}

/* A listener and a stateful predicate for the drain test: the predicate
 * allows one retry, then refuses (it must be asked once per failure). */
static char drain_trace[512];
static int drain_pred_calls;

static void drain_add(const char *kind, const retry_event *ev)
{
    size_t n;

    pthread_mutex_lock(&rec_mu);
    n = strlen(drain_trace);
    snprintf(drain_trace + n, sizeof drain_trace - n, "%s%d%s ", kind, ev->attempt,
             ev->delay_ms >= 0 ? "+" : "");
    pthread_mutex_unlock(&rec_mu);
}

static void drain_on_attempt(void *ctx, const retry_event *ev)
{
    (void)ctx;
    drain_add("A", ev);
}

static void drain_on_failure(void *ctx, const retry_event *ev)
{
    (void)ctx;
    drain_add("F", ev);
}

static void drain_on_success(void *ctx, const retry_event *ev)
{
    (void)ctx;
    drain_add("S", ev);
}

static void drain_on_exhausted(void *ctx, const retry_event *ev)
{
    (void)ctx;
    drain_add("X", ev);
}

static int first_only(void *ctx, int code, int attempt)
{
    int n;

    (void)ctx;
    (void)code;
    (void)attempt;
    pthread_mutex_lock(&rec_mu);
    n = ++drain_pred_calls;
    pthread_mutex_unlock(&rec_mu);
    return n == 1;
}

/* Waits (at most 10 s) until the predicate has been asked n times. */
static void wait_pred_calls(int n)
{
    int i, got = 0;

    for (i = 0; i < 1000; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};

        pthread_mutex_lock(&rec_mu);
        got = drain_pred_calls;
        pthread_mutex_unlock(&rec_mu);
        if (got >= n)
            return;
        nanosleep(&ts, NULL);
    }
    fail_msg("the predicate was asked %d time(s), expected %d", got, n);
}

/* A call whose retry is pending when the client is destroyed ends as
 * exhausted without its last failure being judged again: should_retry is
 * asked once, on_failure fires once, and on_attempt only for attempts that
 * ran. */
static void test_drain_does_not_judge_twice(void **state)
{
    static const int fail[] = {7};
    static const retry_listener listener = {drain_on_attempt, drain_on_failure, drain_on_success,
                                            drain_on_exhausted, NULL};
    retry_client *c = client_with(1, 10, NULL);
    retry_policy p = fast_policy(5, 60000);
    slot s;
    job *j = job_new(&s, fail, 1);

    (void)state;
    drain_trace[0] = '\0';
    drain_pred_calls = 0;
    p.should_retry = first_only;
    p.listener = &listener;
    assert_int_equal(retry_async_submit(c, &p, job_run, j, job_free, job_done, NULL),
                     RETRY_PENDING);
    wait_pred_calls(1); /* judged on the worker: a retry in 60 s */
    retry_client_destroy(c);
    assert_int_equal(s.done, 1);
    assert_int_equal(s.freed, 1);
    assert_int_equal(s.res.outcome, RETRY_ERR_EXHAUSTED);
    assert_int_equal(s.res.drained, 1);
    assert_int_equal(s.res.attempts, 1);
    assert_int_equal(s.res.rc, 7);
    assert_int_equal(s.calls, 1);
    assert_int_equal(drain_pred_calls, 1);
    /* attempt 1, its failure with a retry planned, then exhausted. */
    assert_string_equal(drain_trace, "A1 F1+ X1 ");
}

static void test_destroy_with_zero_flush_timeout(void **state)
{
    static const int fail[] = {7};
    retry_client_conf conf = RETRY_CLIENT_CONF_DEFAULT;
    retry_policy p = fast_policy(3, 1);
    retry_client *c = NULL;
    slot s[8];
    int i;

    (void)state;
    conf.group = "async-test";
    conf.flush_timeout_ms = 0;
    assert_int_equal(retry_client_new(&conf, &c, NULL, 0), RETRY_OK);
    for (i = 0; i < 8; i++) {
        job *j = job_new(&s[i], fail, 1);
        assert_int_equal(retry_async_submit(c, &p, job_run, j, job_free, job_done, NULL),
                         RETRY_PENDING);
    }
    retry_client_destroy(c);
    for (i = 0; i < 8; i++) {
        assert_int_equal(s[i].done, 1);
        assert_int_equal(s[i].freed, 1);
        assert_int_equal(s[i].res.outcome, RETRY_ERR_EXHAUSTED);
        assert_in_range(s[i].res.attempts, 1, 3);
    }
}

static void test_chained_submit_from_on_done(void **state)
{
    static const int codes[] = {7, 0};
    retry_client *c = client_with(2, 100, NULL);
    retry_policy p = fast_policy(2, 1);
    slot s;
    job *j = job_new(&s, codes, 2);

    (void)state;
    j->chain = c;
    assert_int_equal(retry_async_submit(c, &p, job_run, j, job_free, job_done, NULL),
                     RETRY_PENDING);
    assert_int_equal(wait_freed(&s), 1);
    assert_int_equal(s.res.outcome, RETRY_OK);
    /* always_ok succeeded at once on the worker thread. */
    assert_int_equal(s.chained_rc, RETRY_OK);
    retry_client_destroy(c);
}

/* Several threads submit at once; every call completes and is freed once. */
enum { SUBMITTERS = 4, PER_THREAD = 100 };

typedef struct submitter {
    retry_client *c;
    slot slots[PER_THREAD];
    int accepted;
} submitter;

static void *submit_many(void *arg)
{
    static const int codes[] = {7, 0};
    submitter *sb = arg;
    retry_policy p = fast_policy(3, 0);
    int i;

    for (i = 0; i < PER_THREAD; i++) {
        job *j = calloc(1, sizeof *j);
        retry_err e;

        if (j == NULL)
            break;
        memset(&sb->slots[i], 0, sizeof sb->slots[i]);
        j->codes = codes;
        j->n = 2;
        j->slot = &sb->slots[i];
        e = retry_async_submit(sb->c, i % 2 ? &p : NULL, job_run, j, job_free, job_done, NULL);
        if (e == RETRY_PENDING || e == RETRY_OK)
            sb->accepted++;
        else
            free(j);
    }
    return NULL;
}

static void test_many_threads(void **state)
{
    static submitter subs[SUBMITTERS];
    pthread_t th[SUBMITTERS];
    retry_client *c = client_with(3, 1000, NULL);
    retry_stats st;
    int i, k;

    (void)state;
    for (i = 0; i < SUBMITTERS; i++) {
        memset(&subs[i], 0, sizeof subs[i]);
        subs[i].c = c;
        assert_int_equal(pthread_create(&th[i], NULL, submit_many, &subs[i]), 0);
    }
    for (i = 0; i < SUBMITTERS; i++)
        pthread_join(th[i], NULL);
    for (i = 0; i < SUBMITTERS; i++) {
        assert_int_equal(subs[i].accepted, PER_THREAD);
        for (k = 0; k < PER_THREAD; k++)
            assert_int_equal(wait_freed(&subs[i].slots[k]), 1);
    }
    retry_client_stats(c, &st);
    assert_int_equal(st.succeeded, SUBMITTERS * PER_THREAD);
    assert_int_equal(st.attempts, 2 * SUBMITTERS * PER_THREAD);
    assert_int_equal(retry_async_pending(c), 0);
    retry_client_destroy(c);
    for (i = 0; i < SUBMITTERS; i++)
        for (k = 0; k < PER_THREAD; k++) {
            assert_int_equal(subs[i].slots[k].done, 1);
            assert_int_equal(subs[i].slots[k].freed, 1);
            assert_int_equal(subs[i].slots[k].res.outcome, RETRY_OK);
        }
}

static void test_conf_checks(void **state)
{
    retry_client_conf conf = RETRY_CLIENT_CONF_DEFAULT;
    retry_client *c = NULL;
    char errstr[256];

    (void)state;
    assert_int_equal(conf.async_workers, 2);
    assert_int_equal(conf.async_queue_max, 10000);
    conf.group = "async-test";
    conf.async_workers = 0;
    assert_int_equal(retry_client_new(&conf, &c, errstr, sizeof errstr), RETRY_ERR_INVALID_ARG);
    assert_non_null(strstr(errstr, "async_workers"));
    conf.async_workers = 1;
    conf.async_queue_max = 0;
    assert_int_equal(retry_client_new(&conf, &c, errstr, sizeof errstr), RETRY_ERR_INVALID_ARG);
    assert_null(c);
}

/* ---- shipping through the mock Kafka cluster ------------------------- */

static void kafka_quiet(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

static void test_ships_exhausted_and_drained(void **state)
{
    static const int fail[] = {503};
    char errstr[256];
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    rd_kafka_t *mrk;
    rd_kafka_mock_cluster_t *mc;
    retry_http_request req = RETRY_HTTP_REQUEST_DEFAULT;
    char url[64], key[32];
    retry_policy p = fast_policy(2, 1);
    retry_policy slow = fast_policy(3, 60000);
    retry_client *c;
    retry_stats st;
    slot s1, s2;
    job *j1 = job_new(&s1, fail, 1);
    job *j2 = job_new(&s2, fail, 1);

    (void)state;
    if (getenv("RETRY_TEST_SKIP_KAFKA") != NULL) {
        /* For ThreadSanitizer runs: librdkafka's threads (C11 thrd_create)
         * crash TSan's runtime on Debian 12. */
        rd_kafka_conf_destroy(kc);
        skip();
    }
    rd_kafka_conf_set_log_cb(kc, kafka_quiet);
    mrk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, sizeof errstr);
    assert_non_null(mrk);
    mc = rd_kafka_mock_cluster_new(mrk, 1);
    assert_non_null(mc);
    assert_int_equal(rd_kafka_mock_topic_create(mc, "retry.tasks", 1, 1), 0);
    c = client_with(2, 100, rd_kafka_mock_cluster_bootstraps(mc));

    /* The request lives on this frame only until submit returns: it is
     * copied with the policy. */
    snprintf(url, sizeof url, "http://127.0.0.1:9/orders/%d", 1);
    snprintf(key, sizeof key, "order-%d", 1);
    req.url = url;
    req.body = "{\"amount\":10}";
    req.idempotency_key = key;
    p.ship_as = &req;
    assert_int_equal(retry_async_submit(c, &p, job_run, j1, job_free, job_done, NULL),
                     RETRY_PENDING);
    memset(url, 'x', sizeof url - 1);
    memset(key, 'y', sizeof key - 1);
    assert_int_equal(wait_freed(&s1), 1);
    assert_int_equal(s1.res.outcome, RETRY_ERR_EXHAUSTED);
    assert_int_equal(s1.res.shipped, 1);
    assert_int_equal(s1.res.attempts, 2);
    assert_int_equal(retry_client_flush(c, 10000), RETRY_OK);
    retry_client_stats(c, &st);
    assert_int_equal(st.shipped, 1);
    assert_int_equal(st.delivered, 1);

    /* Pending at destroy: handed to retryd instead of being lost. */
    snprintf(url, sizeof url, "http://127.0.0.1:9/orders/%d", 2);
    snprintf(key, sizeof key, "order-%d", 2);
    slow.ship_as = &req;
    /* A predicate that refuses after its first answer: judging the last
     * failure again at destroy would stop the call, unshipped. */
    drain_pred_calls = 0;
    slow.should_retry = first_only;
    assert_int_equal(retry_async_submit(c, &slow, job_run, j2, job_free, job_done, NULL),
                     RETRY_PENDING);
    wait_pred_calls(1);
    retry_client_destroy(c);
    assert_int_equal(s2.done, 1);
    assert_int_equal(s2.freed, 1);
    assert_int_equal(s2.res.outcome, RETRY_ERR_EXHAUSTED);
    assert_int_equal(s2.res.drained, 1);
    assert_int_equal(s2.res.shipped, 1);
    assert_int_equal(s2.res.attempts, 1);

    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(mrk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_success_first_time_completes_on_caller),
        cmocka_unit_test(test_success_after_retries_on_worker),
        cmocka_unit_test(test_exhausted),
        cmocka_unit_test(test_stopped),
        cmocka_unit_test(test_recover_then_done),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_rejected_never_calls_back),
        cmocka_unit_test(test_queue_full_then_destroy_drains),
        cmocka_unit_test(test_destroy_runs_due_attempts_and_refuses_new),
        cmocka_unit_test(test_drain_does_not_judge_twice),
        cmocka_unit_test(test_destroy_with_zero_flush_timeout),
        cmocka_unit_test(test_chained_submit_from_on_done),
        cmocka_unit_test(test_many_threads),
        cmocka_unit_test(test_conf_checks),
        cmocka_unit_test(test_ships_exhausted_and_drained),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
