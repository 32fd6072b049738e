/*
 * test_task.c: unit tests for src/task.c, the wire format v1 codec.
 *
 * Data-driven part (jansson test/suites style): every directory under
 * $RETRY_TEST_DATA/codec/valid holds `input` (a message) and `expected` (its
 * canonical re-encoding by rt_task_encode); decoding `expected` must encode
 * to the same bytes again. Every directory under codec/invalid holds `input`
 * and `expected`, the exact error sentence. A trailing newline of `expected`
 * is not part of the value. The expected files were produced with Python's
 * json module, independently of the C encoder.
 *
 * The rest covers what files cannot: tasks built in C (the client's path),
 * rt_task_validate() rejections that JSON cannot express, size limits,
 * unterminated buffers, and the state of *out after a failed decode.
 */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "task.h"

/* ---- helpers ---- */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted case names under $RETRY_TEST_DATA/codec/<kind>. */
static char **list_cases(const char *kind, size_t *n, char *dir, size_t dirsz)
{
    const char *data = getenv("RETRY_TEST_DATA");
    assert_non_null(data);
    snprintf(dir, dirsz, "%s/codec/%s", data, kind);
    DIR *d = opendir(dir);
    assert_non_null(d);
    char **names = NULL;
    size_t count = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        names = realloc(names, (count + 1) * sizeof *names);
        assert_non_null(names);
        names[count] = strdup(de->d_name);
        assert_non_null(names[count]);
        count++;
    }
    closedir(d);
    qsort(names, count, sizeof *names, cmp_str);
    *n = count;
    return names;
}

static void free_cases(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static char *read_case(const char *dir, const char *name, const char *file, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s", dir, name, file);
    char *s = read_file(path, len);
    if (s == NULL)
        fail_msg("case %s: cannot read %s", name, path);
    return s;
}

/* A task with every field set, built in C as the client does. */
static void fill_full(rt_task *t)
{
    rt_task_init(t);
    t->group = strdup("order-service");
    t->scene = strdup("payment.notify");
    t->idempotency_key = strdup("ord-42/attempt\xc3\xa9");
    strcpy(t->target.method, "PATCH");
    t->target.url = strdup("https://pay.example/v1/notify?id=42");
    t->target.nheaders = 2;
    t->target.headers = calloc(2, sizeof(rt_header));
    t->target.headers[0].name = strdup("Content-Type");
    t->target.headers[0].value = strdup("application/json");
    t->target.headers[1].name = strdup("X-Sig");
    t->target.headers[1].value = strdup("a=b; c=\"d\"");
    t->target.body = strdup("{\"id\":42,\"s\":\"x\\ny\"}\t");
    t->target.timeout_ms = 1234;
    t->target.success_status[0] = 200;
    t->target.success_status[1] = 202;
    t->target.nsuccess_status = 2;
    rt_policy *p = &t->policy;
    p->set = RT_POL_MAX_ATTEMPTS | RT_POL_BACKOFF | RT_POL_INITIAL_DELAY | RT_POL_MULTIPLIER |
             RT_POL_MAX_DELAY | RT_POL_JITTER | RT_POL_STOP_ON_STATUS | RT_POL_DEADLINE |
             RT_POL_LEVELS;
    p->max_attempts = 12;
    p->backoff = RT_BACKOFF_LEVELS;
    p->initial_delay_ms = 250;
    p->multiplier = 1.0 / 3.0 + 1.0; /* needs 17 digits to round-trip */
    p->max_delay_ms = 600000;
    p->jitter = RT_JITTER_EQUAL;
    p->stop_on_status[0] = 400;
    p->stop_on_status[1] = 410;
    p->stop_on_status[2] = 422;
    p->nstop_on_status = 3;
    p->deadline = 1767225600000;
    p->levels[0] = 1000;
    p->levels[1] = 5000;
    p->levels[2] = 60000;
    p->nlevels = 3;
    t->callback_url = strdup("http://cb.example/hook");
    t->callback_on = RT_EVENT_EXHAUSTED | RT_EVENT_STOPPED;
    t->has_error = 1;
    t->error_code = -110;
    t->error_message = strdup("timed out");
    t->local_attempts = 3;
    t->created_at = 1767225000123;
    t->priority = -5;
    t->trace_id = strdup("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    t->nowners = 2;
    t->owners = calloc(2, sizeof(char *));
    t->owners[0] = strdup("ops@example.com");
    t->owners[1] = strdup("dev+retry@example.org");
}

static void assert_task_equal(const rt_task *a, const rt_task *b)
{
    assert_int_equal(a->v, b->v);
    assert_string_equal(a->group, b->group);
    assert_string_equal(a->scene, b->scene);
    assert_string_equal(a->idempotency_key, b->idempotency_key);
    assert_string_equal(a->target.method, b->target.method);
    assert_string_equal(a->target.url, b->target.url);
    assert_int_equal(a->target.nheaders, b->target.nheaders);
    for (size_t i = 0; i < a->target.nheaders; i++) {
        assert_string_equal(a->target.headers[i].name, b->target.headers[i].name);
        assert_string_equal(a->target.headers[i].value, b->target.headers[i].value);
    }
    if (a->target.body == NULL)
        assert_null(b->target.body);
    else
        assert_string_equal(a->target.body, b->target.body);
    assert_int_equal(a->target.timeout_ms, b->target.timeout_ms);
    assert_int_equal(a->target.nsuccess_status, b->target.nsuccess_status);
    assert_memory_equal(a->target.success_status, b->target.success_status,
                        a->target.nsuccess_status * sizeof(int));
    const rt_policy *p = &a->policy, *q = &b->policy;
    assert_int_equal(p->set, q->set);
    assert_int_equal(p->max_attempts, q->max_attempts);
    assert_int_equal(p->backoff, q->backoff);
    assert_int_equal(p->initial_delay_ms, q->initial_delay_ms);
    assert_true(p->multiplier == q->multiplier); /* bit-exact round trip */
    assert_int_equal(p->max_delay_ms, q->max_delay_ms);
    assert_int_equal(p->jitter, q->jitter);
    assert_int_equal(p->nstop_on_status, q->nstop_on_status);
    assert_memory_equal(p->stop_on_status, q->stop_on_status, p->nstop_on_status * sizeof(int));
    assert_int_equal(p->deadline, q->deadline);
    assert_int_equal(p->nlevels, q->nlevels);
    assert_memory_equal(p->levels, q->levels, p->nlevels * sizeof(int64_t));
    if (a->callback_url == NULL)
        assert_null(b->callback_url);
    else
        assert_string_equal(a->callback_url, b->callback_url);
    assert_int_equal(a->callback_on, b->callback_on);
    assert_int_equal(a->has_error, b->has_error);
    assert_int_equal(a->error_code, b->error_code);
    if (a->error_message == NULL)
        assert_null(b->error_message);
    else
        assert_string_equal(a->error_message, b->error_message);
    assert_int_equal(a->local_attempts, b->local_attempts);
    assert_int_equal(a->created_at, b->created_at);
    assert_int_equal(a->priority, b->priority);
    if (a->trace_id == NULL)
        assert_null(b->trace_id);
    else
        assert_string_equal(a->trace_id, b->trace_id);
    assert_int_equal(a->nowners, b->nowners);
    for (size_t i = 0; i < a->nowners; i++)
        assert_string_equal(a->owners[i], b->owners[i]);
}

/* The "absent" state promised by rt_task_init. */
static void assert_initialised(const rt_task *t)
{
    assert_int_equal(t->v, RT_WIRE_VERSION);
    assert_null(t->group);
    assert_null(t->scene);
    assert_null(t->idempotency_key);
    assert_string_equal(t->target.method, "POST");
    assert_null(t->target.url);
    assert_null(t->target.headers);
    assert_int_equal(t->target.nheaders, 0);
    assert_null(t->target.body);
    assert_int_equal(t->target.timeout_ms, 10000);
    assert_int_equal(t->target.nsuccess_status, 0);
    assert_int_equal(t->policy.set, 0);
    assert_null(t->callback_url);
    assert_int_equal(t->callback_on, RT_EVENT_SUCCEEDED | RT_EVENT_EXHAUSTED | RT_EVENT_STOPPED);
    assert_int_equal(t->has_error, 0);
    assert_null(t->error_message);
    assert_int_equal(t->local_attempts, -1);
    assert_int_equal(t->created_at, 0);
    assert_int_equal(t->priority, 0);
    assert_null(t->trace_id);
    assert_null(t->owners);
    assert_int_equal(t->nowners, 0);
}

/* ---- data-driven cases ---- */

static void test_valid_cases(void **state)
{
    (void)state;
    char dir[512];
    size_t n;
    char **names = list_cases("valid", &n, dir, sizeof dir);
    assert_true(n >= 10);
    for (size_t i = 0; i < n; i++) {
        size_t ilen, elen;
        char *input = read_case(dir, names[i], "input", &ilen);
        char *expected = read_case(dir, names[i], "expected", &elen);
        chomp(expected);
        char err[256] = "";
        rt_task t, t2;
        if (rt_task_decode(input, ilen, &t, err, sizeof err) != 0)
            fail_msg("valid case %s: decode failed: %s", names[i], err);
        assert_int_equal(rt_task_validate(&t, err, sizeof err), 0);
        char *enc = rt_task_encode(&t, err, sizeof err);
        if (enc == NULL)
            fail_msg("valid case %s: encode failed: %s", names[i], err);
        if (strcmp(enc, expected) != 0)
            fail_msg("valid case %s:\n got      %s\n expected %s", names[i], enc, expected);
        /* The canonical form is a fixed point. */
        if (rt_task_decode(expected, strlen(expected), &t2, err, sizeof err) != 0)
            fail_msg("valid case %s: decode(expected) failed: %s", names[i], err);
        char *enc2 = rt_task_encode(&t2, err, sizeof err);
        assert_non_null(enc2);
        if (strcmp(enc2, expected) != 0)
            fail_msg("valid case %s: re-encoding differs:\n %s", names[i], enc2);
        assert_task_equal(&t, &t2);
        free(enc);
        free(enc2);
        rt_task_free(&t);
        rt_task_free(&t2);
        free(input);
        free(expected);
    }
    print_message("%zu valid codec cases\n", n);
    free_cases(names, n);
}

static void test_invalid_cases(void **state)
{
    (void)state;
    char dir[512];
    size_t n;
    char **names = list_cases("invalid", &n, dir, sizeof dir);
    assert_true(n >= 30);
    for (size_t i = 0; i < n; i++) {
        size_t ilen, elen;
        char *input = read_case(dir, names[i], "input", &ilen);
        char *expected = read_case(dir, names[i], "expected", &elen);
        chomp(expected);
        char err[512] = "";
        rt_task t;
        if (rt_task_decode(input, ilen, &t, err, sizeof err) != -1)
            fail_msg("invalid case %s: decode succeeded", names[i]);
        if (strcmp(err, expected) != 0)
            fail_msg("invalid case %s:\n got      %s\n expected %s", names[i], err, expected);
        assert_initialised(&t);
        rt_task_free(&t); /* still safe */
        free(input);
        free(expected);
    }
    print_message("%zu invalid codec cases\n", n);
    free_cases(names, n);
}

/* ---- tasks built in C ---- */

static void test_full_task_round_trip(void **state)
{
    (void)state;
    rt_task t, d;
    char err[256] = "";
    fill_full(&t);
    assert_int_equal(rt_task_validate(&t, err, sizeof err), 0);
    char *enc = rt_task_encode(&t, err, sizeof err);
    assert_non_null(enc);
    /* Key order is the table's; callback.on lists only the chosen events. */
    const char *prefix = "{\"v\":1,\"group\":\"order-service\",\"scene\":\"payment.notify\","
                         "\"idempotency_key\":\"ord-42/attempt\xc3\xa9\",\"target\":{\"type\":"
                         "\"http\",\"method\":\"PATCH\",\"url\":";
    assert_memory_equal(enc, prefix, strlen(prefix));
    assert_non_null(strstr(enc, "\"callback\":{\"url\":\"http://cb.example/hook\",\"on\":["
                                "\"exhausted\",\"stopped\"]},\"error\":{\"code\":-110,"));
    assert_non_null(strstr(enc, "\"owners\":[\"ops@example.com\",\"dev+retry@example.org\"]}"));
    assert_int_equal(rt_task_decode(enc, strlen(enc), &d, err, sizeof err), 0);
    assert_task_equal(&t, &d);
    char *enc2 = rt_task_encode(&d, err, sizeof err);
    assert_string_equal(enc, enc2);
    free(enc);
    free(enc2);
    rt_task_free(&t);
    rt_task_free(&d);
}

static void test_minimal_task_from_c(void **state)
{
    (void)state;
    rt_task t;
    char err[256] = "";
    rt_task_init(&t);
    assert_initialised(&t);
    t.group = strdup("g");
    t.scene = strdup("s");
    t.idempotency_key = strdup("k");
    t.target.url = strdup("http://h/");
    char *enc = rt_task_encode(&t, err, sizeof err);
    assert_string_equal(enc, "{\"v\":1,\"group\":\"g\",\"scene\":\"s\",\"idempotency_key\":\"k\","
                             "\"target\":{\"type\":\"http\",\"method\":\"POST\",\"url\":"
                             "\"http://h/\",\"timeout_ms\":10000}}");
    free(enc);
    /* Multipliers are written with the fewest digits that read back exactly. */
    t.policy.set = RT_POL_MULTIPLIER;
    t.policy.multiplier = 1.1;
    enc = rt_task_encode(&t, err, sizeof err);
    assert_non_null(strstr(enc, "\"policy\":{\"multiplier\":1.1}"));
    free(enc);
    t.policy.multiplier = 100.0;
    enc = rt_task_encode(&t, err, sizeof err);
    assert_non_null(strstr(enc, "\"policy\":{\"multiplier\":100.0}"));
    free(enc);
    rt_task_free(&t);
    assert_initialised(&t);
    rt_task_free(&t); /* twice is fine */
    rt_task_free(NULL);
}

/* Expects validate and encode to reject t with exactly `want`. */
static void expect_invalid(const rt_task *t, const char *want)
{
    char err[256] = "";
    assert_int_equal(rt_task_validate(t, err, sizeof err), -1);
    assert_string_equal(err, want);
    err[0] = '\0';
    assert_null(rt_task_encode(t, err, sizeof err));
    assert_string_equal(err, want);
}

static void test_validate_rejections(void **state)
{
    (void)state;
    rt_task t;
    fill_full(&t);
    char err[256];
    assert_int_equal(rt_task_validate(&t, NULL, 0), 0);

    t.v = 2;
    expect_invalid(&t, "field 'v': must be the integer 1");
    t.v = 1;

    char *saved = t.group;
    t.group = NULL;
    expect_invalid(&t, "field 'group': required");
    t.group = saved;
    saved = t.scene;
    t.scene = NULL;
    expect_invalid(&t, "field 'scene': required");
    t.scene = saved;
    saved = t.idempotency_key;
    t.idempotency_key = "bad\xff";
    expect_invalid(&t, "field 'idempotency_key': must be valid UTF-8");
    t.idempotency_key = "\xc0\xaf"; /* overlong '/' */
    expect_invalid(&t, "field 'idempotency_key': must be valid UTF-8");
    t.idempotency_key = "\xed\xa0\x80"; /* surrogate */
    expect_invalid(&t, "field 'idempotency_key': must be valid UTF-8");
    t.idempotency_key = NULL;
    expect_invalid(&t, "field 'idempotency_key': required");
    t.idempotency_key = saved;

    strcpy(t.target.method, "FOO");
    expect_invalid(&t, "field 'target.method': must be one of GET POST PUT PATCH DELETE");
    memcpy(t.target.method, "DELETEXX", 8); /* not NUL-terminated */
    expect_invalid(&t, "field 'target.method': must be one of GET POST PUT PATCH DELETE");
    strcpy(t.target.method, "GET");

    saved = t.target.url;
    t.target.url = NULL;
    expect_invalid(&t, "field 'target.url': required");
    t.target.url = saved;

    rt_header *hs = t.target.headers;
    t.target.headers = NULL;
    expect_invalid(&t, "field 'target.headers': must be an object of strings");
    t.target.headers = hs;
    saved = hs[1].name;
    hs[1].name = NULL;
    expect_invalid(&t, "field 'target.headers': header names must be HTTP tokens");
    hs[1].name = "X Y";
    expect_invalid(&t, "field 'target.headers': header names must be HTTP tokens");
    hs[1].name = "Content-Type";
    expect_invalid(&t, "field 'target.headers': duplicate header name Content-Type");
    hs[1].name = saved;
    char *v = hs[1].value;
    hs[1].value = NULL;
    expect_invalid(&t, "field 'target.headers.X-Sig': must be a string");
    hs[1].value = "a\rb";
    expect_invalid(&t, "field 'target.headers.X-Sig': must not contain CR or LF");
    hs[1].value = v;

    saved = t.target.body;
    t.target.body = "\x80";
    expect_invalid(&t, "field 'target.body': must be valid UTF-8");
    t.target.body = saved;
    t.target.timeout_ms = 0;
    expect_invalid(&t, "field 'target.timeout_ms': must be an integer in 1..600000");
    t.target.timeout_ms = 1;
    t.target.nsuccess_status = 33;
    expect_invalid(&t, "field 'target.success_status': must be an array of at most 32 status codes");
    t.target.nsuccess_status = 2;

    t.policy.max_attempts = 0;
    expect_invalid(&t, "field 'policy.max_attempts': must be an integer in 1..1000");
    t.policy.set &= ~(unsigned)RT_POL_MAX_ATTEMPTS; /* unset fields are not checked */
    assert_int_equal(rt_task_validate(&t, err, sizeof err), 0);
    t.policy.backoff = (rt_backoff_kind)7;
    expect_invalid(&t, "field 'policy.backoff': must be one of fixed exponential levels random");
    t.policy.backoff = RT_BACKOFF_RANDOM;
    t.policy.initial_delay_ms = -1;
    expect_invalid(&t, "field 'policy.initial_delay_ms': must be an integer in 0..86400000");
    t.policy.initial_delay_ms = 0;
    t.policy.multiplier = NAN;
    expect_invalid(&t, "field 'policy.multiplier': must be a number in 1.0..100.0");
    t.policy.multiplier = 0.99;
    expect_invalid(&t, "field 'policy.multiplier': must be a number in 1.0..100.0");
    t.policy.multiplier = 3.0;
    t.policy.max_delay_ms = 604800001;
    expect_invalid(&t, "field 'policy.max_delay_ms': must be an integer in 0..604800000");
    t.policy.max_delay_ms = 0;
    t.policy.jitter = (rt_jitter_kind)9;
    expect_invalid(&t, "field 'policy.jitter': must be one of none full equal decorrelated");
    t.policy.jitter = RT_JITTER_NONE;
    t.policy.stop_on_status[2] = 700;
    expect_invalid(&t, "field 'policy.stop_on_status[2]': must be an integer in 100..599");
    t.policy.stop_on_status[2] = 500;
    t.policy.deadline = -1;
    expect_invalid(&t, "field 'policy.deadline': must be a positive integer (ms since epoch)");
    t.policy.deadline = 1;
    t.policy.nlevels = 0;
    expect_invalid(&t, "field 'policy.levels': must be an array of 1..32 delays in ms");
    t.policy.nlevels = 3;
    t.policy.levels[2] = 86400001;
    expect_invalid(&t, "field 'policy.levels[2]': must be an integer in 0..86400000");
    t.policy.levels[2] = 3;

    t.callback_on = 0;
    expect_invalid(&t, "field 'callback.on': must be a non-empty array of event names");
    t.callback_on = 8;
    expect_invalid(&t, "field 'callback.on': must be a non-empty array of event names");
    saved = t.callback_url;
    t.callback_url = NULL; /* callback_on is ignored without a URL */
    assert_int_equal(rt_task_validate(&t, err, sizeof err), 0);
    t.callback_url = "ftp://x/";
    expect_invalid(&t, "field 'callback.url': must be an http:// or https:// URL of at most 2048 bytes");
    t.callback_url = saved;
    t.callback_on = RT_EVENT_SUCCEEDED;

    saved = t.error_message;
    t.error_message = "\xfe";
    expect_invalid(&t, "field 'error.message': must be valid UTF-8");
    t.error_message = NULL; /* optional */
    assert_int_equal(rt_task_validate(&t, err, sizeof err), 0);
    t.error_message = saved;

    t.local_attempts = -2;
    expect_invalid(&t, "field 'local_attempts': must be an integer in 0..2147483647");
    t.local_attempts = -1;
    t.created_at = -1;
    expect_invalid(&t, "field 'created_at': must be a non-negative integer (ms since epoch)");
    t.created_at = 0;
    t.priority = 1001;
    expect_invalid(&t, "field 'priority': must be an integer in -1000..1000");
    t.priority = 0;
    saved = t.trace_id;
    t.trace_id = "";
    expect_invalid(&t, "field 'trace_id': must be a string of 1..128 bytes");
    t.trace_id = saved;
    t.nowners = 33;
    expect_invalid(&t, "field 'owners': must be an array of at most 32 e-mail addresses");
    t.nowners = 2;
    saved = t.owners[1];
    t.owners[1] = NULL;
    expect_invalid(&t, "field 'owners[1]': must be an e-mail address (local@domain)");
    t.owners[1] = saved;

    assert_int_equal(rt_task_validate(&t, err, sizeof err), 0);
    rt_task_free(&t);
}

/* ---- dispatch targets built in C (docs/wire-format.md) ---- */

static void fill_dispatch(rt_task *t)
{
    rt_task_init(t);
    t->group = strdup("g");
    t->scene = strdup("s");
    t->idempotency_key = strdup("k");
    t->target.type = RT_TARGET_DISPATCH;
    t->target.url = strdup("http://127.0.0.1:7801/dispatch");
}

static void test_dispatch_validate(void **state)
{
    (void)state;
    rt_task t;
    char err[256] = "";

    fill_dispatch(&t);
    assert_int_equal(rt_task_validate(&t, err, sizeof err), 0);
    t.target.args = strdup("{\"a\":1,\"a\":2}");
    expect_invalid(&t, "field 'target.args': must be JSON text");
    free(t.target.args);
    t.target.args = strdup("{\"a\":");
    expect_invalid(&t, "field 'target.args': must be JSON text");
    free(t.target.args);
    t.target.args = strdup("\"\xc3\x28\"");
    expect_invalid(&t, "field 'target.args': must be JSON text");
    free(t.target.args);
    t.target.args = strdup(" [1, 2] ");
    assert_int_equal(rt_task_validate(&t, err, sizeof err), 0);
    strcpy(t.target.method, "PUT");
    expect_invalid(&t, "field 'target.method': not allowed when target.type is \"dispatch\"");
    strcpy(t.target.method, "POST");
    t.target.body = strdup("b");
    expect_invalid(&t, "field 'target.body': not allowed when target.type is \"dispatch\"");
    free(t.target.body);
    t.target.body = NULL;
    t.target.type = RT_TARGET_HTTP;
    expect_invalid(&t, "field 'target.args': only allowed when target.type is \"dispatch\"");
    t.target.type = (rt_target_type)7;
    expect_invalid(&t, "field 'target.type': must be \"http\" or \"dispatch\"");
    t.target.type = RT_TARGET_DISPATCH;
    free(t.target.url);
    t.target.url = NULL;
    expect_invalid(&t, "field 'target.url': required");
    rt_task_free(&t);
}

/* args travel as text: spacing is normalised, key order kept, "null" is
 * absent, and every real reads back exactly even when the message mixes
 * reals needing few and many digits (jansson uses one precision per dump). */
static void test_dispatch_encode(void **state)
{
    (void)state;
    rt_task t, back;
    char err[256] = "";

    fill_dispatch(&t);
    t.target.args = strdup("null");
    char *s = rt_task_encode(&t, err, sizeof err);
    assert_non_null(s);
    assert_string_equal(s, "{\"v\":1,\"group\":\"g\",\"scene\":\"s\",\"idempotency_key\":\"k\","
                           "\"target\":{\"type\":\"dispatch\",\"url\":\"http://127.0.0.1:7801/"
                           "dispatch\",\"timeout_ms\":10000}}");
    free(s);
    free(t.target.args);
    t.target.args = strdup(" { \"z\" : [0.30000000000000004, 0.5], \"a\" : 1.1 } ");
    t.policy.set = RT_POL_MULTIPLIER;
    t.policy.multiplier = 1.5;
    s = rt_task_encode(&t, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(rt_task_decode(s, strlen(s), &back, err, sizeof err), 0);
    assert_int_equal(back.target.type, RT_TARGET_DISPATCH);
    assert_true(back.policy.multiplier == 1.5);
    /* Decoding re-dumps args with the precision its own reals need. */
    assert_string_equal(back.target.args, "{\"z\":[0.30000000000000004,0.5],\"a\":1.1000000000000001}");
    char *s2 = rt_task_encode(&back, err, sizeof err);
    assert_non_null(s2);
    assert_string_equal(s, s2);
    free(s);
    free(s2);
    rt_task_free(&back);
    /* Without a real needing 17 digits, reals stay short. */
    free(t.target.args);
    t.target.args = strdup("{\"a\":1.1,\"b\":[2.0,1e-7]}");
    s = rt_task_encode(&t, err, sizeof err);
    assert_non_null(s);
    assert_non_null(strstr(s, "\"args\":{\"a\":1.1,\"b\":[2.0,1e-7]}"));
    assert_non_null(strstr(s, "\"multiplier\":1.5"));
    free(s);
    rt_task_free(&t);
}

/* The 1 MiB limit holds for encoding too: a task retryd would poison is
 * refused where it is built. */
static void test_dispatch_args_size(void **state)
{
    (void)state;
    rt_task t;
    char err[256] = "";
    size_t n = RT_TASK_MAX_BYTES;

    fill_dispatch(&t);
    t.target.args = malloc(n + 1);
    assert_non_null(t.target.args);
    memset(t.target.args, ' ', n);
    memcpy(t.target.args, "\"x\"", 3);
    t.target.args[n] = '\0';
    /* Padded text of exactly the limit is fine; it encodes small. */
    assert_int_equal(rt_task_validate(&t, err, sizeof err), 0);
    char *s = rt_task_encode(&t, err, sizeof err);
    assert_non_null(s);
    free(s);
    /* A string that fills the limit makes the message too large. */
    memset(t.target.args, 'a', n);
    t.target.args[0] = '"';
    t.target.args[n - 1] = '"';
    assert_int_equal(rt_task_validate(&t, err, sizeof err), 0);
    assert_null(rt_task_encode(&t, err, sizeof err));
    assert_non_null(strstr(err, "message: too large ("));
    t.target.args = realloc(t.target.args, n + 2);
    memmove(t.target.args + 1, t.target.args, n + 1);
    t.target.args[0] = ' ';
    expect_invalid(&t, "field 'target.args': must encode to at most 1048576 bytes");
    rt_task_free(&t);
}

/* ---- decode edge cases ---- */

static const char MINIMAL[] = "{\"v\":1,\"group\":\"g\",\"scene\":\"s\",\"idempotency_key\":\"k\","
                              "\"target\":{\"type\":\"http\",\"url\":\"http://h/\"}}";

static void test_size_limit(void **state)
{
    (void)state;
    char err[256] = "";
    rt_task t;
    size_t n = RT_TASK_MAX_BYTES;
    char *buf = malloc(n + 1);
    assert_non_null(buf);
    /* Exactly the limit: a valid message padded with whitespace. */
    memset(buf, ' ', n + 1);
    memcpy(buf, MINIMAL, strlen(MINIMAL));
    assert_int_equal(rt_task_decode(buf, n, &t, err, sizeof err), 0);
    rt_task_free(&t);
    assert_int_equal(rt_task_decode(buf, n + 1, &t, err, sizeof err), -1);
    assert_string_equal(err, "message: too large (1048577 bytes, limit 1048576)");
    assert_initialised(&t);
    free(buf);
}

static void test_unterminated_buffer_and_odd_arguments(void **state)
{
    (void)state;
    char err[256] = "";
    rt_task t;
    /* The length bounds the input: what follows is never read. */
    char buf[sizeof MINIMAL + 8];
    memcpy(buf, MINIMAL, strlen(MINIMAL));
    memcpy(buf + strlen(MINIMAL), "garbage!", 8);
    assert_int_equal(rt_task_decode(buf, strlen(MINIMAL), &t, err, sizeof err), 0);
    assert_string_equal(t.group, "g");
    rt_task_free(&t);
    assert_int_equal(rt_task_decode(buf, strlen(MINIMAL) - 1, &t, err, sizeof err), -1);

    assert_int_equal(rt_task_decode(NULL, 0, &t, err, sizeof err), -1);
    assert_string_equal(err,
                        "invalid JSON at line 1 column 0: '[' or '{' expected near end of file");
    /* No error buffer, or a tiny one. */
    assert_int_equal(rt_task_decode("[]", 2, &t, NULL, 0), -1);
    char tiny[8];
    assert_int_equal(rt_task_decode("[]", 2, &t, tiny, sizeof tiny), -1);
    assert_string_equal(tiny, "message");
}

/* A late error must release everything decoded before it. Run under ASan
 * (RETRY_SANITIZE) to see leaks. */
static void test_late_error_frees_everything(void **state)
{
    (void)state;
    const char *msg =
        "{\"v\":1,\"group\":\"g\",\"scene\":\"s\",\"idempotency_key\":\"k\",\"target\":"
        "{\"type\":\"http\",\"url\":\"http://h/\",\"headers\":{\"A\":\"1\",\"B\":\"2\"},"
        "\"body\":\"b\"},\"callback\":{\"url\":\"http://cb/\"},\"error\":{\"code\":1,"
        "\"message\":\"m\"},\"trace_id\":\"t\",\"owners\":[\"a@b\",\"c@d\",\"bad\"]}";
    char err[256] = "";
    rt_task t;
    memset(&t, 0x5a, sizeof t); /* *out need not be initialised */
    assert_int_equal(rt_task_decode(msg, strlen(msg), &t, err, sizeof err), -1);
    assert_string_equal(err, "field 'owners[2]': must be an e-mail address (local@domain)");
    assert_initialised(&t);
    rt_task_free(&t);

    /* Same for a bad header value after a good one. */
    const char *msg2 = "{\"v\":1,\"group\":\"g\",\"scene\":\"s\",\"idempotency_key\":\"k\","
                       "\"target\":{\"type\":\"http\",\"url\":\"http://h/\",\"headers\":"
                       "{\"A\":\"1\",\"B\":false}}}";
    assert_int_equal(rt_task_decode(msg2, strlen(msg2), &t, err, sizeof err), -1);
    assert_string_equal(err, "field 'target.headers.B': must be a string");
    assert_initialised(&t);
}

static void test_event_names(void **state)
{
    (void)state;
    assert_string_equal(rt_event_name(RT_EVENT_SUCCEEDED), "succeeded");
    assert_string_equal(rt_event_name(RT_EVENT_EXHAUSTED), "exhausted");
    assert_string_equal(rt_event_name(RT_EVENT_STOPPED), "stopped");
    assert_string_equal(rt_event_name(0), "unknown");
    assert_string_equal(rt_event_name(RT_EVENT_SUCCEEDED | RT_EVENT_STOPPED), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_cases),
        cmocka_unit_test(test_invalid_cases),
        cmocka_unit_test(test_full_task_round_trip),
        cmocka_unit_test(test_minimal_task_from_c),
        cmocka_unit_test(test_validate_rejections),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_dispatch_validate),
        cmocka_unit_test(test_dispatch_encode),
        cmocka_unit_test(test_dispatch_args_size),
        cmocka_unit_test(test_unterminated_buffer_and_odd_arguments),
        cmocka_unit_test(test_late_error_frees_everything),
        cmocka_unit_test(test_event_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
