/*
 * test_policy.c: unit tests of the client's policy surface: the levels
 * (call site > scene > client defaults > built-in), the client config file
 * and RETRY_CLIENT_* environment overrides, enabled = false, the
 * should_retry predicate, listeners, the retry budget, max_elapsed_ms and
 * decorrelated_v2 jitter through a call. No Kafka, no wall clock: the
 * client's sleep_fn records the delays and drives a fake clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "retry/retry.h"

#define MAX_REC 64

typedef struct fixture {
    int64_t delays[MAX_REC];
    int ndelays;
    int64_t now_ms;
    char events[2048]; /* listener trace */
    char path[256];
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
    return ((fixture *)opaque)->now_ms;
}

/* Writes text to a fresh file and remembers its path in f->path. */
static const char *write_conf(fixture *f, const char *text)
{
    static int n;
    FILE *fp;

    snprintf(f->path, sizeof f->path, "/tmp/retry_test_policy_%d_%d.ini", (int)getpid(), n++);
    fp = fopen(f->path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    return f->path;
}

static void conf_for(fixture *f, retry_client_conf *conf)
{
    retry_client_conf_init(conf);
    conf->group = "unit-test";
    conf->sleep_fn = rec_sleep;
    conf->now_ms_fn = rec_now;
    conf->opaque = f;
    conf->rng_seed = 42;
    f->now_ms = 1000000;
}

static retry_client *new_client(const retry_client_conf *conf)
{
    char errstr[512] = "";
    retry_client *c = NULL;
    retry_err e = retry_client_new(conf, &c, errstr, sizeof errstr);
    if (e != RETRY_OK)
        fail_msg("retry_client_new: %s: %s", retry_err_name(e), errstr);
    return c;
}

/* A callee that fails with code until call number ok_at (1-based; 0 =
 * never). */
typedef struct callee {
    int code;
    int ok_at;
    int calls;
} callee;

static int call_it(callee *c)
{
    c->calls++;
    return c->ok_at > 0 && c->calls >= c->ok_at ? 0 : c->code;
}

static void test_levels(void **state)
{
    fixture f;
    retry_client_conf conf;
    retry_policy defaults = RETRY_POLICY_DEFAULT, scene_a = RETRY_POLICY_DEFAULT;
    retry_policy scene_b = RETRY_POLICY_DEFAULT, call = RETRY_POLICY_DEFAULT, eff;
    retry_client *c;
    callee ce = {5, 0, 0};
    retry_err how;
    int rc;

    (void)state;
    memset(&f, 0, sizeof f);
    conf_for(&f, &conf);
    defaults.max_attempts = 4;
    defaults.delay_ms = 10;
    conf.defaults = &defaults;
    conf.config_path = write_conf(&f, "[defaults]\n"
                                      "delay_ms = 20\n"
                                      "[scene:a]\n"
                                      "max_attempts = 6   ; the file wins over the code\n");
    c = new_client(&conf);
    scene_a.max_attempts = 2;
    scene_a.delay_ms = 7;
    scene_a.multiplier = 2.0;
    assert_int_equal(retry_scene_register(c, "a", &scene_a), RETRY_OK);
    scene_b.max_attempts = 5;
    assert_int_equal(retry_scene_register(c, "b", &scene_b), RETRY_OK);

    /* No scene: [defaults] delay_ms over conf.defaults, max_attempts from
     * conf.defaults, the rest built-in. */
    assert_int_equal(retry_policy_resolve(c, &call, &eff), RETRY_OK);
    assert_int_equal(eff.max_attempts, 4);
    assert_int_equal(eff.delay_ms, 20);
    assert_true(eff.multiplier == 0.0);
    assert_int_equal(eff.jitter, RETRY_JITTER_NONE);
    assert_int_equal(eff.send_queue, 1);
    assert_int_equal(eff.max_elapsed_ms, 0);

    /* Scene a: the file's max_attempts over the registered one, the
     * registered delay and multiplier over the defaults. */
    call.scene = "a";
    RETRY_CALL_EX(rc, how, c, &call, call_it(&ce));
    assert_int_equal(rc, 5);
    assert_int_equal(how, RETRY_ERR_EXHAUSTED);
    assert_int_equal(ce.calls, 6);
    assert_int_equal(f.ndelays, 5);
    assert_int_equal(f.delays[0], 7);
    assert_int_equal(f.delays[1], 14);
    assert_int_equal(f.delays[4], 112);

    /* The call site wins over everything. */
    call.max_attempts = 2;
    call.delay_ms = 1;
    ce.calls = 0;
    f.ndelays = 0;
    RETRY_CALL(rc, c, &call, call_it(&ce));
    assert_int_equal(ce.calls, 2);
    assert_int_equal(f.delays[0], 1);

    /* Scene b: registered max_attempts, defaults for the rest; an unknown
     * scene gets the defaults. */
    retry_policy_init(&call);
    call.scene = "b";
    retry_policy_resolve(c, &call, &eff);
    assert_int_equal(eff.max_attempts, 5);
    assert_int_equal(eff.delay_ms, 20);
    call.scene = "nope";
    retry_policy_resolve(c, &call, &eff);
    assert_int_equal(eff.max_attempts, 4);

    /* Re-registering replaces; the file still wins for scene a. */
    scene_a.delay_ms = 3;
    assert_int_equal(retry_scene_register(c, "a", &scene_a), RETRY_OK);
    call.scene = "a";
    retry_policy_resolve(c, &call, &eff);
    assert_int_equal(eff.max_attempts, 6);
    assert_int_equal(eff.delay_ms, 3);

    /* Invalid registrations. */
    retry_policy bad = RETRY_POLICY_DEFAULT;
    bad.max_attempts = 0;
    assert_int_equal(retry_scene_register(c, "x", &bad), RETRY_ERR_INVALID_ARG);
    retry_policy_init(&bad);
    bad.deadline_ms = 5;
    assert_int_equal(retry_scene_register(c, "x", &bad), RETRY_ERR_INVALID_ARG);
    assert_int_equal(retry_scene_register(c, "bad name", &scene_b), RETRY_ERR_INVALID_ARG);
    assert_int_equal(retry_scene_register(NULL, "x", &scene_b), RETRY_ERR_INVALID_ARG);

    /* Without a client: built-in defaults. */
    retry_policy_init(&call);
    assert_int_equal(retry_policy_resolve(NULL, &call, &eff), RETRY_OK);
    assert_int_equal(eff.max_attempts, 3);
    assert_int_equal(eff.delay_ms, 0);
    retry_client_destroy(c);
    unlink(f.path);
}

static void test_lists_inherit_and_explicit_empty(void **state)
{
    fixture f;
    retry_client_conf conf;
    retry_policy call = RETRY_POLICY_DEFAULT, eff;
    static const int none[1] = {0};
    retry_client *c;

    (void)state;
    memset(&f, 0, sizeof f);
    conf_for(&f, &conf);
    conf.config_path = write_conf(&f, "[scene:s]\nretry_on = 502, 503,-7\nstop_on = 400\n"
                                      "callback_url = http://127.0.0.1:9/cb\n");
    c = new_client(&conf);
    call.scene = "s";
    retry_policy_resolve(c, &call, &eff);
    assert_int_equal(eff.retry_on_count, 3);
    assert_int_equal(eff.retry_on[2], -7);
    assert_int_equal(eff.stop_on_count, 1);
    assert_string_equal(eff.callback_url, "http://127.0.0.1:9/cb");
    /* A non-NULL list with count 0 overrides with "empty". */
    call.retry_on = none;
    call.retry_on_count = 0;
    retry_policy_resolve(c, &call, &eff);
    assert_int_equal(eff.retry_on_count, 0);
    assert_int_equal(eff.stop_on_count, 1);
    retry_client_destroy(c);
    unlink(f.path);
}

static void test_env_overrides(void **state)
{
    fixture f;
    retry_client_conf conf;
    retry_policy call = RETRY_POLICY_DEFAULT, reg = RETRY_POLICY_DEFAULT, eff;
    retry_client *c;

    (void)state;
    memset(&f, 0, sizeof f);
    conf_for(&f, &conf);
    conf.config_path = write_conf(&f, "[defaults]\nmax_attempts = 2\n"
                                      "[scene:pay.notify]\ndelay_ms = 5\nmax_delay_ms = 9\n");
    setenv("RETRY_CLIENT_DEFAULTS_MAX_ATTEMPTS", "7", 1);
    setenv("RETRY_CLIENT_SCENE_PAY_NOTIFY_DELAY_MS", "33", 1);
    setenv("RETRY_CLIENT_SCENE_REG_X_JITTER", "decorrelated_v2", 1);
    c = new_client(&conf);
    unsetenv("RETRY_CLIENT_DEFAULTS_MAX_ATTEMPTS");
    unsetenv("RETRY_CLIENT_SCENE_PAY_NOTIFY_DELAY_MS");
    unsetenv("RETRY_CLIENT_SCENE_REG_X_JITTER");

    retry_policy_resolve(c, &call, &eff);
    assert_int_equal(eff.max_attempts, 7);
    call.scene = "pay.notify";
    retry_policy_resolve(c, &call, &eff);
    assert_int_equal(eff.delay_ms, 33);
    assert_int_equal(eff.max_delay_ms, 9);
    /* A scene registered later gets its variables too, over the code. */
    reg.jitter = RETRY_JITTER_FULL;
    reg.max_attempts = 4;
    assert_int_equal(retry_scene_register(c, "reg.x", &reg), RETRY_OK);
    call.scene = "reg.x";
    retry_policy_resolve(c, &call, &eff);
    assert_int_equal(eff.jitter, RETRY_JITTER_DECORRELATED_V2);
    assert_int_equal(eff.max_attempts, 4);
    retry_client_destroy(c);
    unlink(f.path);
}

static void test_enabled_false(void **state)
{
    fixture f;
    retry_client_conf conf;
    retry_policy p = RETRY_POLICY_DEFAULT;
    retry_client *c;
    callee ce = {3, 0, 0};
    int rc;

    (void)state;
    memset(&f, 0, sizeof f);
    conf_for(&f, &conf);
    p.max_attempts = 5;

    /* From the file. */
    conf.config_path = write_conf(&f, "enabled = false\n");
    c = new_client(&conf);
    RETRY_CALL(rc, c, &p, call_it(&ce));
    assert_int_equal(rc, 3);
    assert_int_equal(ce.calls, 1);
    retry_client_destroy(c);
    unlink(f.path);

    /* The environment wins over the file ([client] section this time). */
    conf.config_path = write_conf(&f, "[client]\nenabled = true\n");
    setenv("RETRY_CLIENT_ENABLED", "false", 1);
    c = new_client(&conf);
    unsetenv("RETRY_CLIENT_ENABLED");
    ce.calls = 0;
    RETRY_CALL(rc, c, &p, call_it(&ce));
    assert_int_equal(ce.calls, 1);
    retry_client_destroy(c);
    unlink(f.path);

    /* And back on from the environment over conf.enabled = 0. */
    conf.config_path = NULL;
    conf.enabled = 0;
    setenv("RETRY_CLIENT_ENABLED", "on", 1);
    c = new_client(&conf);
    unsetenv("RETRY_CLIENT_ENABLED");
    ce.calls = 0;
    RETRY_CALL(rc, c, &p, call_it(&ce));
    assert_int_equal(ce.calls, 5);
    retry_client_destroy(c);
}

/* Expects retry_client_new() to fail with RETRY_ERR_INVALID_ARG and an
 * errstr containing want (and the path when with_path). */
static void expect_bad(fixture *f, const char *text, const char *want, int with_path)
{
    retry_client_conf conf;
    retry_client *c = (retry_client *)1;
    char errstr[512] = "";

    conf_for(f, &conf);
    conf.config_path = text != NULL ? write_conf(f, text) : "/nonexistent/retry.ini";
    assert_int_equal(retry_client_new(&conf, &c, errstr, sizeof errstr), RETRY_ERR_INVALID_ARG);
    assert_null(c);
    if (strstr(errstr, want) == NULL)
        fail_msg("errstr \"%s\" lacks \"%s\"", errstr, want);
    if (with_path && strstr(errstr, conf.config_path) == NULL)
        fail_msg("errstr \"%s\" lacks the path", errstr);
    if (text != NULL)
        unlink(f->path);
}

static void test_bad_config(void **state)
{
    fixture f;

    (void)state;
    memset(&f, 0, sizeof f);
    expect_bad(&f, "[defaults]\nmax_attempts = 0\n", ":2: [defaults] max_attempts must be", 1);
    expect_bad(&f, "# c\n\n[defaults]\ndelay_ms = soon\n", ":4: [defaults] delay_ms", 1);
    expect_bad(&f, "[defaults]\nmax_attemps = 3\n", ":2: [defaults] max_attemps: unknown key", 1);
    expect_bad(&f, "max_attempts = 3\n", ":1: [client] max_attempts: unknown key here", 1);
    expect_bad(&f, "[defaults]\nenabled = false\n", ":2: [defaults] enabled: unknown key here", 1);
    expect_bad(&f, "[server]\nx = 1\n", ":1: unknown section [server]", 1);
    expect_bad(&f, "[scene:bad name]\n", ":1: [scene:bad name]: the scene name", 1);
    expect_bad(&f, "[defaults]\njitter = wobbly\n", ":2: [defaults] jitter must be", 1);
    expect_bad(&f, "[scene:s]\nretry_on = 500, x\n", ":2: [scene:s] retry_on must be", 1);
    expect_bad(&f, "[scene:s]\ncallback_url = ftp://x\n", ":2: [scene:s] callback_url", 1);
    expect_bad(&f, "enabled = maybe\n", ":1: [client] enabled must be true or false", 1);
    expect_bad(&f, "[defaults]\nno equals sign\n", ":2: expected 'key = value'", 1);
    expect_bad(&f, NULL, "cannot open", 1);
    {
        char longline[400];
        memset(longline, 'a', sizeof longline - 2);
        longline[sizeof longline - 2] = '\n';
        longline[sizeof longline - 1] = '\0';
        expect_bad(&f, longline, ":1: line longer than", 1);
    }

    setenv("RETRY_CLIENT_DEFAULTS_MAX_ATTEMPTS", "many", 1);
    expect_bad(&f, "", "environment variable RETRY_CLIENT_DEFAULTS_MAX_ATTEMPTS: max_attempts", 0);
    unsetenv("RETRY_CLIENT_DEFAULTS_MAX_ATTEMPTS");
    setenv("RETRY_CLIENT_FROBNICATE", "1", 1);
    expect_bad(&f, "", "environment variable RETRY_CLIENT_FROBNICATE: no such client key", 0);
    unsetenv("RETRY_CLIENT_FROBNICATE");
}

/* should_retry: retries even codes only, and records what it saw. */
typedef struct pred_rec {
    int seen_codes[8];
    int seen_attempts[8];
    int n;
} pred_rec;

static int retry_even(void *ctx, int code, int attempt)
{
    pred_rec *r = ctx;
    if (r->n < 8) {
        r->seen_codes[r->n] = code;
        r->seen_attempts[r->n] = attempt;
        r->n++;
    }
    return code % 2 == 0;
}

static int seq_call(const int *codes, int *i)
{
    return codes[(*i)++];
}

static void test_should_retry(void **state)
{
    fixture f;
    retry_client_conf conf;
    retry_policy p = RETRY_POLICY_DEFAULT;
    static const int codes[] = {2, 4, 7, 0};
    static const int stop[] = {4};
    pred_rec r;
    retry_client *c;
    retry_err how;
    int rc, i = 0;

    (void)state;
    memset(&f, 0, sizeof f);
    memset(&r, 0, sizeof r);
    conf_for(&f, &conf);
    c = new_client(&conf);
    p.max_attempts = 10;
    p.should_retry = retry_even;
    p.should_retry_ctx = &r;
    RETRY_CALL_EX(rc, how, c, &p, seq_call(codes, &i));
    assert_int_equal(how, RETRY_ERR_STOPPED);
    assert_int_equal(rc, 7);
    assert_int_equal(i, 3);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.seen_codes[1], 4);
    assert_int_equal(r.seen_attempts[2], 3);

    /* stop_on is judged before the predicate. */
    i = 0;
    r.n = 0;
    p.stop_on = stop;
    p.stop_on_count = 1;
    RETRY_CALL_EX(rc, how, c, &p, seq_call(codes, &i));
    assert_int_equal(how, RETRY_ERR_STOPPED);
    assert_int_equal(i, 2);
    assert_int_equal(r.n, 1);

    /* A scene can carry the predicate. */
    retry_policy sc = RETRY_POLICY_DEFAULT;
    sc.should_retry = retry_even;
    sc.should_retry_ctx = &r;
    sc.max_attempts = 10;
    assert_int_equal(retry_scene_register(c, "pred", &sc), RETRY_OK);
    retry_policy_init(&p);
    p.scene = "pred";
    i = 0;
    RETRY_CALL_EX(rc, how, c, &p, seq_call(codes, &i));
    assert_int_equal(how, RETRY_ERR_STOPPED);
    assert_int_equal(i, 3);
    retry_client_destroy(c);
}

/* Listeners append "<tag><kind>:<attempt>:<code>:<delay>:<outcome> ". */
typedef struct trace {
    fixture *f;
    char tag;
} trace;

static void trace_add(const trace *t, char kind, const retry_event *ev)
{
    size_t len = strlen(t->f->events);
    snprintf(t->f->events + len, sizeof t->f->events - len, "%c%c:%d:%d:%lld:%d ", t->tag, kind,
             ev->attempt, ev->code, (long long)ev->delay_ms, (int)ev->outcome);
}

static void on_attempt(void *ctx, const retry_event *ev)
{
    trace_add(ctx, 'A', ev);
}
static void on_failure(void *ctx, const retry_event *ev)
{
    assert_non_null(strstr(ev->what, "code"));
    trace_add(ctx, 'F', ev);
}
static void on_success(void *ctx, const retry_event *ev)
{
    trace_add(ctx, 'S', ev);
}
static void on_exhausted(void *ctx, const retry_event *ev)
{
    trace_add(ctx, 'X', ev);
}

static int log_lines;
static void count_log(void *opaque, int level, const char *msg)
{
    (void)opaque;
    (void)level;
    (void)msg;
    log_lines++;
}

static void test_listeners(void **state)
{
    fixture f;
    retry_client_conf conf;
    retry_policy p = RETRY_POLICY_DEFAULT;
    trace tc, tp;
    retry_listener cl, pl;
    retry_client *c;
    callee ce = {9, 3, 0};
    int rc;

    (void)state;
    memset(&f, 0, sizeof f);
    conf_for(&f, &conf);
    tc.f = tp.f = &f;
    tc.tag = 'c';
    tp.tag = 'p';
    memset(&cl, 0, sizeof cl);
    cl.on_attempt = on_attempt;
    cl.on_failure = on_failure;
    cl.on_success = on_success;
    cl.on_exhausted = on_exhausted;
    cl.ctx = &tc;
    pl = cl;
    pl.on_attempt = NULL; /* hooks may be NULL */
    pl.ctx = &tp;
    conf.listeners = &cl;
    conf.listener_count = 1;
    conf.log_cb = count_log;
    c = new_client(&conf);
    log_lines = 0; /* after the client's own "created" line */

    p.delay_ms = 100;
    p.multiplier = 2.0;
    p.listener = &pl;
    RETRY_CALL(rc, c, &p, call_it(&ce));
    assert_int_equal(rc, 0);
    assert_string_equal(f.events, "cA:1:0:-1:0 cF:1:9:100:0 pF:1:9:100:0 "
                                  "cA:2:0:-1:0 cF:2:9:200:0 pF:2:9:200:0 "
                                  "cA:3:0:-1:0 cS:3:0:-1:0 pS:3:0:-1:0 ");
    /* The built-in log output is a listener too: one line per attempt. */
    assert_int_equal(log_lines, 3);

    /* Exhaustion: the last failure has no delay, then on_exhausted. */
    f.events[0] = '\0';
    ce.calls = 0;
    ce.ok_at = 0;
    p.max_attempts = 2;
    p.listener = NULL;
    RETRY_CALL(rc, c, &p, call_it(&ce));
    assert_string_equal(f.events, "cA:1:0:-1:0 cF:1:9:100:0 cA:2:0:-1:0 cF:2:9:-1:2 cX:2:9:-1:2 ");
    retry_client_destroy(c);
}

static void test_budget(void **state)
{
    fixture f;
    retry_client_conf conf;
    retry_policy p = RETRY_POLICY_DEFAULT;
    retry_client *c;
    callee fails = {6, 0, 0}, ok = {6, 1, 0};
    retry_stats st;
    retry_err how;
    int rc, i;

    (void)state;
    memset(&f, 0, sizeof f);
    conf_for(&f, &conf);
    conf.budget_tokens = 100; /* the file wins: 10 */
    conf.config_path = write_conf(&f, "budget_tokens = 10\nbudget_retry_cost = 5\n");
    c = new_client(&conf);
    p.max_attempts = 3;

    /* Two retries take the 10 tokens. */
    RETRY_CALL_EX(rc, how, c, &p, call_it(&fails));
    assert_int_equal(how, RETRY_ERR_EXHAUSTED);
    assert_int_equal(fails.calls, 3);
    /* Empty: the next failing call fails fast after its first attempt. */
    fails.calls = 0;
    RETRY_CALL_EX(rc, how, c, &p, call_it(&fails));
    assert_int_equal(how, RETRY_ERR_BUDGET);
    assert_int_equal(rc, 6);
    assert_int_equal(fails.calls, 1);
    retry_client_stats(c, &st);
    assert_int_equal(st.budget_denied, 1);
    assert_int_equal(st.exhausted, 1);
    assert_int_equal(st.calls, 2);
    /* Five successes put 5 tokens back (refill 1): one retry again. */
    for (i = 0; i < 5; i++) {
        ok.calls = 0;
        RETRY_CALL(rc, c, &p, call_it(&ok));
        assert_int_equal(rc, 0);
    }
    fails.calls = 0;
    RETRY_CALL_EX(rc, how, c, &p, call_it(&fails));
    assert_int_equal(how, RETRY_ERR_BUDGET);
    assert_int_equal(fails.calls, 2);
    assert_string_equal(retry_err_name(RETRY_ERR_BUDGET), "RETRY_ERR_BUDGET");
    assert_string_not_equal(retry_strerror(RETRY_ERR_BUDGET), "unknown error code");
    retry_client_destroy(c);
    unlink(f.path);

    /* Bad budget settings. */
    {
        char errstr[256];
        retry_client *c2 = NULL;
        conf_for(&f, &conf);
        conf.budget_tokens = 10;
        conf.budget_retry_cost = 0;
        assert_int_equal(retry_client_new(&conf, &c2, errstr, sizeof errstr),
                         RETRY_ERR_INVALID_ARG);
        assert_non_null(strstr(errstr, "budget_retry_cost"));
    }
}

static void test_max_elapsed(void **state)
{
    fixture f;
    retry_client_conf conf;
    retry_policy p = RETRY_POLICY_DEFAULT;
    retry_client *c;
    callee ce = {1, 0, 0};
    retry_err how;
    int rc;

    (void)state;
    memset(&f, 0, sizeof f);
    conf_for(&f, &conf);
    c = new_client(&conf);
    p.max_attempts = 10;
    p.delay_ms = 100;
    p.max_elapsed_ms = 250;
    /* t=0 fail, retry at 100; t=100 fail, retry at 200; t=200 fail: 300 >= 250. */
    RETRY_CALL_EX(rc, how, c, &p, call_it(&ce));
    assert_int_equal(how, RETRY_ERR_DEADLINE);
    assert_int_equal(ce.calls, 3);
    /* The earlier of deadline_ms and max_elapsed_ms applies. */
    ce.calls = 0;
    p.deadline_ms = f.now_ms + 150;
    RETRY_CALL_EX(rc, how, c, &p, call_it(&ce));
    assert_int_equal(how, RETRY_ERR_DEADLINE);
    assert_int_equal(ce.calls, 2);
    retry_client_destroy(c);
}

static void test_v2_jitter_in_a_call(void **state)
{
    fixture f;
    retry_client_conf conf;
    retry_policy p = RETRY_POLICY_DEFAULT;
    retry_client *c;
    callee ce = {1, 0, 0};
    int rc, i;
    int64_t sum = 0;

    (void)state;
    memset(&f, 0, sizeof f);
    conf_for(&f, &conf);
    conf.config_path = write_conf(&f, "[defaults]\njitter = decorrelated_v2\ndelay_ms = 100\n"
                                      "max_delay_ms = 5000\n");
    c = new_client(&conf);
    p.max_attempts = 6;
    RETRY_CALL(rc, c, &p, call_it(&ce));
    assert_int_equal(rc, 1);
    assert_int_equal(f.ndelays, 5);
    for (i = 0; i < 5; i++) {
        assert_true(f.delays[i] >= 0 && f.delays[i] <= 5000);
        sum += f.delays[i];
    }
    /* The delays telescope: their sum is f(t_5) / 1.4 * 100 <= 2^5 / 1.4 * 100. */
    assert_true(sum <= 2300);
    assert_true(sum > 0);
    retry_client_destroy(c);
    unlink(f.path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_lists_inherit_and_explicit_empty),
        cmocka_unit_test(test_env_overrides),
        cmocka_unit_test(test_enabled_false),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_should_retry),
        cmocka_unit_test(test_listeners),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_max_elapsed),
        cmocka_unit_test(test_v2_jitter_in_a_call),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
