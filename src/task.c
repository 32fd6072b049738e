/*
 * task.c: the retry task and its wire format v1 codec (DESIGN.md, "Wire
 * format v1"). The client encodes the task it ships to Kafka; retryd decodes
 * what ingest receives (Kafka or POST /api/v1/tasks), stores the poison
 * reason when decoding fails, and decodes the stored payload again when the
 * dispatcher re-executes it.
 *
 * Pure code over jansson: no I/O, no global state. Validation is shared: the
 * per-field checkers below (check_*) are called by rt_task_decode() as each
 * field is read and by rt_task_validate() on a struct filled in C, so both
 * paths accept the same tasks and reject them with the same sentences.
 */
#include "task.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEVEL_MAX_MS 86400000LL        /* policy.levels[i] and initial_delay_ms */
#define MAX_DELAY_MAX_MS 604800000LL   /* policy.max_delay_ms: 7 days */
#define TIMEOUT_MAX_MS 600000LL        /* target.timeout_ms: 10 minutes */
#define EMAIL_MAX 254                  /* RFC 5321 path limit */
#define ALL_EVENTS (RT_EVENT_SUCCEEDED | RT_EVENT_EXHAUSTED | RT_EVENT_STOPPED)

/* Where error sentences go; the buffer may be NULL/0 (then nothing is
 * written). */
typedef struct errbuf {
    char *buf;
    size_t size;
} errbuf;

/* Formats one sentence into the error buffer; always returns -1. */
static int fail(errbuf *e, const char *fmt, ...)
{
    if (e->buf != NULL && e->size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->buf, e->size, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int required(errbuf *e, const char *path)
{
    return fail(e, "field '%s': required", path);
}

static int bad_int(errbuf *e, const char *path, long long lo, long long hi)
{
    return fail(e, "field '%s': must be an integer in %lld..%lld", path, lo, hi);
}

/* ---- character classes and string checks ---- */

static int is_alnum(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* 1 when s holds a C0 control character or DEL. */
static int has_ctl(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 1;
    return 0;
}

/* 1 when s is well-formed UTF-8 (no overlongs, surrogates or values beyond
 * U+10FFFF). jansson guarantees this for decoded strings; the check matters
 * for tasks filled in C, which json_string() would otherwise refuse late. */
static int utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char c = *p;
        size_t n;
        unsigned cp;
        if (c < 0x80) {
            p++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        p += n + 1;
    }
    return 1;
}

/* 1 when s is 1..max bytes of [A-Za-z0-9._-] plus the extra characters. */
static int name_ok(const char *s, size_t max, const char *extra)
{
    size_t n = 0;
    if (s == NULL || *s == '\0')
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++) {
        if (n >= max)
            return 0;
        if (!is_alnum(*p) && *p != '.' && *p != '_' && *p != '-' &&
            (extra == NULL || strchr(extra, *p) == NULL))
            return 0;
    }
    return 1;
}

/* The checkers take NULL to mean "present but not a string" (decode) and emit
 * the same sentence as for a bad value, so a wrong type and a wrong value
 * read alike. Callers report absence themselves with required(). */

static int check_group(errbuf *e, const char *s)
{
    if (!name_ok(s, RT_GROUP_MAX, NULL))
        return fail(e, "field 'group': must match [A-Za-z0-9._-]{1,%d}", RT_GROUP_MAX);
    return 0;
}

static int check_scene(errbuf *e, const char *s)
{
    if (!name_ok(s, RT_SCENE_MAX, ":"))
        return fail(e, "field 'scene': must match [A-Za-z0-9._:-]{1,%d}", RT_SCENE_MAX);
    return 0;
}

/* A free-form string of 1..max bytes, valid UTF-8, without control
 * characters (idempotency_key, trace_id). */
static int check_text(errbuf *e, const char *path, const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (s == NULL || n == 0 || n > max)
        return fail(e, "field '%s': must be a string of 1..%zu bytes", path, max);
    if (!utf8_ok(s))
        return fail(e, "field '%s': must be valid UTF-8", path);
    if (has_ctl(s))
        return fail(e, "field '%s': must not contain control characters", path);
    return 0;
}

/* Any string, as long as it is valid UTF-8 (body, error.message). */
static int check_any_string(errbuf *e, const char *path, const char *s)
{
    if (s == NULL)
        return fail(e, "field '%s': must be a string", path);
    if (!utf8_ok(s))
        return fail(e, "field '%s': must be valid UTF-8", path);
    return 0;
}

/* http:// or https://, a non-empty authority, at most RT_URL_MAX bytes, no
 * spaces or control characters (libcurl would refuse them at dispatch; better
 * to poison the message at ingest). */
static int check_url(errbuf *e, const char *path, const char *s)
{
    size_t skip = 0;
    if (s != NULL) {
        if (strncmp(s, "http://", 7) == 0)
            skip = 7;
        else if (strncmp(s, "https://", 8) == 0)
            skip = 8;
    }
    if (skip == 0 || strlen(s) > RT_URL_MAX || s[skip] == '\0' || s[skip] == '/' ||
        s[skip] == '?' || s[skip] == '#')
        return fail(e, "field '%s': must be an http:// or https:// URL of at most %d bytes",
                    path, RT_URL_MAX);
    if (!utf8_ok(s))
        return fail(e, "field '%s': must be valid UTF-8", path);
    if (has_ctl(s) || strchr(s, ' ') != NULL)
        return fail(e, "field '%s': must not contain spaces or control characters", path);
    return 0;
}

static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};

static int check_method(errbuf *e, const char *s)
{
    if (s != NULL)
        for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
            if (strcmp(s, methods[i]) == 0)
                return 0;
    return fail(e, "field 'target.method': must be one of GET POST PUT PATCH DELETE");
}

/* RFC 9110 token: 1*tchar. */
static int check_header_name(errbuf *e, const char *s)
{
    static const char tchar_extra[] = "!#$%&'*+-.^_`|~";
    int ok = s != NULL && *s != '\0';
    for (const unsigned char *p = (const unsigned char *)s; ok && *p; p++)
        if (!is_alnum(*p) && strchr(tchar_extra, *p) == NULL)
            ok = 0;
    if (!ok)
        return fail(e, "field 'target.headers': header names must be HTTP tokens");
    return 0;
}

/* The name is a valid token here, so it is safe to put in the sentence. */
static int check_header_value(errbuf *e, const char *name, const char *v)
{
    if (v == NULL)
        return fail(e, "field 'target.headers.%s': must be a string", name);
    if (!utf8_ok(v))
        return fail(e, "field 'target.headers.%s': must be valid UTF-8", name);
    if (strpbrk(v, "\r\n") != NULL)
        return fail(e, "field 'target.headers.%s': must not contain CR or LF", name);
    return 0;
}

/* Exactly one '@', non-empty local part and domain, at most EMAIL_MAX bytes,
 * valid UTF-8, no spaces or control characters (alerts put it in SMTP
 * commands and headers). */
static int check_owner(errbuf *e, size_t i, const char *s)
{
    const char *at = s ? strchr(s, '@') : NULL;
    if (s == NULL || at == NULL || at == s || at[1] == '\0' || strchr(at + 1, '@') != NULL ||
        strlen(s) > EMAIL_MAX || !utf8_ok(s) || has_ctl(s) || strchr(s, ' ') != NULL)
        return fail(e, "field 'owners[%zu]': must be an e-mail address (local@domain)", i);
    return 0;
}

static int check_status_list(errbuf *e, const char *path, const int *v, size_t n)
{
    if (n > RT_MAX_STATUS_LIST)
        return fail(e, "field '%s': must be an array of at most %d status codes", path,
                    RT_MAX_STATUS_LIST);
    for (size_t i = 0; i < n; i++)
        if (v[i] < 100 || v[i] > 599)
            return fail(e, "field '%s[%zu]': must be an integer in 100..599", path, i);
    return 0;
}

static int check_levels(errbuf *e, const int64_t *v, size_t n)
{
    if (n < 1 || n > RT_MAX_LEVELS)
        return fail(e, "field 'policy.levels': must be an array of 1..%d delays in ms",
                    RT_MAX_LEVELS);
    for (size_t i = 0; i < n; i++)
        if (v[i] < 0 || v[i] > LEVEL_MAX_MS)
            return fail(e, "field 'policy.levels[%zu]': must be an integer in 0..%lld", i,
                        LEVEL_MAX_MS);
    return 0;
}

static int check_multiplier(errbuf *e, double m)
{
    if (!(m >= 1.0 && m <= 100.0)) /* also rejects NaN */
        return fail(e, "field 'policy.multiplier': must be a number in 1.0..100.0");
    return 0;
}

static int bad_backoff(errbuf *e)
{
    return fail(e, "field 'policy.backoff': must be one of fixed exponential levels random");
}

static int bad_jitter(errbuf *e)
{
    return fail(e, "field 'policy.jitter': must be one of none full equal decorrelated");
}

static int bad_deadline(errbuf *e)
{
    return fail(e, "field 'policy.deadline': must be a positive integer (ms since epoch)");
}

static int bad_created_at(errbuf *e)
{
    return fail(e, "field 'created_at': must be a non-negative integer (ms since epoch)");
}

static int bad_callback_on(errbuf *e)
{
    return fail(e, "field 'callback.on': must be a non-empty array of event names");
}

/* ---- init / free / names ---- */

/* Sets every field to its "absent" value: NULL strings and arrays, v =
 * RT_WIRE_VERSION, method "POST", timeout_ms 10000, policy.set 0,
 * callback_on all events, local_attempts -1, the rest 0. Does not free. */
void rt_task_init(rt_task *t)
{
    memset(t, 0, sizeof *t);
    t->v = RT_WIRE_VERSION;
    strcpy(t->target.method, "POST");
    t->target.timeout_ms = RT_TIMEOUT_MS_DEFAULT;
    t->callback_on = ALL_EVENTS;
    t->local_attempts = -1;
}

/* Frees every owned string and array and re-initialises the task, so it is
 * safe to free twice or to reuse. NULL does nothing. */
void rt_task_free(rt_task *t)
{
    if (t == NULL)
        return;
    free(t->group);
    free(t->scene);
    free(t->idempotency_key);
    free(t->target.url);
    for (size_t i = 0; i < t->target.nheaders && t->target.headers; i++) {
        free(t->target.headers[i].name);
        free(t->target.headers[i].value);
    }
    free(t->target.headers);
    free(t->target.body);
    free(t->target.args);
    free(t->callback_url);
    free(t->error_message);
    free(t->trace_id);
    for (size_t i = 0; i < t->nowners && t->owners; i++)
        free(t->owners[i]);
    free(t->owners);
    rt_task_init(t);
}

/* "succeeded", "exhausted" or "stopped" for one RT_EVENT_* bit; "unknown"
 * for anything else (never NULL). */
const char *rt_event_name(unsigned event_bit)
{
    switch (event_bit) {
    case RT_EVENT_SUCCEEDED:
        return "succeeded";
    case RT_EVENT_EXHAUSTED:
        return "exhausted";
    case RT_EVENT_STOPPED:
        return "stopped";
    default:
        return "unknown";
    }
}

/* ---- target.args (dispatch) ---- */

/* Smallest %g precision that reads back as exactly m, so that 1.1 is written
 * "1.1" rather than jansson's default "1.1000000000000001". */
static int real_precision(double m)
{
    char tmp[40];
    for (int p = 3; p < 17; p++) { /* 3: "100" rather than "1e+02" */
        snprintf(tmp, sizeof tmp, "%.*g", p, m);
        if (strtod(tmp, NULL) == m)
            return p;
    }
    return 17;
}

/* The largest real_precision() of the reals inside v (depth-first), at
 * least prec. jansson formats every real of one dump with one precision, so
 * the largest one needed keeps them all exact. */
static int json_precision(const json_t *v, int prec)
{
    if (json_is_real(v)) {
        int p = real_precision(json_real_value(v));
        return p > prec ? p : prec;
    }
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            prec = json_precision(json_array_get(v, i), prec);
    } else if (json_is_object(v)) {
        const char *k;
        json_t *item;
        json_object_foreach((json_t *)v, k, item)
            prec = json_precision(item, prec);
    }
    return prec;
}

#define ARGS_DUMP_FLAGS (JSON_ENCODE_ANY | JSON_COMPACT | JSON_PRESERVE_ORDER)

char *rt_json_dumps_exact(const json_t *v)
{
    return json_dumps(v, ARGS_DUMP_FLAGS | JSON_REAL_PRECISION(json_precision(v, 3)));
}

/* Parses target.args text (any JSON value, same rules as a message). NULL
 * when it is not JSON. */
static json_t *args_parse(const char *s)
{
    return json_loads(s, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
}

static int check_args(errbuf *e, const char *s)
{
    if (strlen(s) > RT_TASK_MAX_BYTES)
        return fail(e, "field 'target.args': must encode to at most %d bytes", RT_TASK_MAX_BYTES);
    json_t *v = utf8_ok(s) ? args_parse(s) : NULL;
    if (v == NULL)
        return fail(e, "field 'target.args': must be JSON text");
    json_decref(v);
    return 0;
}

static int not_for_dispatch(errbuf *e, const char *field)
{
    return fail(e, "field 'target.%s': not allowed when target.type is \"dispatch\"", field);
}

/* ---- validation of a struct filled in C ---- */

static int validate_dispatch_target(errbuf *e, const rt_http_target *tg)
{
    if (memchr(tg->method, '\0', sizeof tg->method) == NULL || strcmp(tg->method, "POST") != 0)
        return not_for_dispatch(e, "method");
    if (tg->url == NULL)
        return required(e, "target.url");
    if (check_url(e, "target.url", tg->url) != 0)
        return -1;
    if (tg->nheaders > 0)
        return not_for_dispatch(e, "headers");
    if (tg->body != NULL)
        return not_for_dispatch(e, "body");
    if (tg->args != NULL && check_args(e, tg->args) != 0)
        return -1;
    if (tg->timeout_ms < 1 || tg->timeout_ms > TIMEOUT_MAX_MS)
        return bad_int(e, "target.timeout_ms", 1, TIMEOUT_MAX_MS);
    return check_status_list(e, "target.success_status", tg->success_status,
                             tg->nsuccess_status);
}

static int bad_target_type(errbuf *e)
{
    return fail(e, "field 'target.type': must be \"http\" or \"dispatch\"");
}

static int validate_target(errbuf *e, const rt_http_target *tg)
{
    if (tg->type == RT_TARGET_DISPATCH)
        return validate_dispatch_target(e, tg);
    if (tg->type != RT_TARGET_HTTP)
        return bad_target_type(e);
    if (tg->args != NULL)
        return fail(e, "field 'target.args': only allowed when target.type is \"dispatch\"");
    if (memchr(tg->method, '\0', sizeof tg->method) == NULL ||
        check_method(e, tg->method) != 0)
        return check_method(e, NULL);
    if (tg->url == NULL)
        return required(e, "target.url");
    if (check_url(e, "target.url", tg->url) != 0)
        return -1;
    if (tg->nheaders > 0 && tg->headers == NULL)
        return fail(e, "field 'target.headers': must be an object of strings");
    for (size_t i = 0; i < tg->nheaders; i++) {
        if (check_header_name(e, tg->headers[i].name) != 0 ||
            check_header_value(e, tg->headers[i].name, tg->headers[i].value) != 0)
            return -1;
        /* JSON cannot carry the same key twice (decode rejects duplicates),
         * so neither may a task built in C: encoding would drop one. */
        for (size_t j = 0; j < i; j++)
            if (strcmp(tg->headers[j].name, tg->headers[i].name) == 0)
                return fail(e, "field 'target.headers': duplicate header name %s",
                            tg->headers[i].name);
    }
    if (tg->body != NULL && check_any_string(e, "target.body", tg->body) != 0)
        return -1;
    if (tg->timeout_ms < 1 || tg->timeout_ms > TIMEOUT_MAX_MS)
        return bad_int(e, "target.timeout_ms", 1, TIMEOUT_MAX_MS);
    return check_status_list(e, "target.success_status", tg->success_status,
                             tg->nsuccess_status);
}

static int validate_policy(errbuf *e, const rt_policy *p)
{
    unsigned s = p->set;
    if ((s & RT_POL_MAX_ATTEMPTS) && (p->max_attempts < 1 || p->max_attempts > 1000))
        return bad_int(e, "policy.max_attempts", 1, 1000);
    if ((s & RT_POL_BACKOFF) && (unsigned)p->backoff > RT_BACKOFF_RANDOM)
        return bad_backoff(e);
    if ((s & RT_POL_INITIAL_DELAY) &&
        (p->initial_delay_ms < 0 || p->initial_delay_ms > LEVEL_MAX_MS))
        return bad_int(e, "policy.initial_delay_ms", 0, LEVEL_MAX_MS);
    if ((s & RT_POL_MULTIPLIER) && check_multiplier(e, p->multiplier) != 0)
        return -1;
    if ((s & RT_POL_MAX_DELAY) && (p->max_delay_ms < 0 || p->max_delay_ms > MAX_DELAY_MAX_MS))
        return bad_int(e, "policy.max_delay_ms", 0, MAX_DELAY_MAX_MS);
    if ((s & RT_POL_JITTER) && (unsigned)p->jitter > RT_JITTER_DECORRELATED)
        return bad_jitter(e);
    if ((s & RT_POL_STOP_ON_STATUS) &&
        check_status_list(e, "policy.stop_on_status", p->stop_on_status, p->nstop_on_status) != 0)
        return -1;
    if ((s & RT_POL_DEADLINE) && p->deadline <= 0)
        return bad_deadline(e);
    if ((s & RT_POL_LEVELS) && check_levels(e, p->levels, p->nlevels) != 0)
        return -1;
    return 0;
}

/* Checks a task with the decoder's rules, fields in the table's order, and
 * reports the first problem. Returns 0, or -1 with one sentence in err. The
 * task is only read. Fields whose RT_POL_* bit is clear, callback_on without
 * callback_url, and error_code/error_message without has_error are not
 * looked at. */
int rt_task_validate(const rt_task *t, char *err, size_t errsz)
{
    errbuf e = {err, errsz};
    if (t->v != RT_WIRE_VERSION)
        return fail(&e, "field 'v': must be the integer %d", RT_WIRE_VERSION);
    if (t->group == NULL)
        return required(&e, "group");
    if (check_group(&e, t->group) != 0)
        return -1;
    if (t->scene == NULL)
        return required(&e, "scene");
    if (check_scene(&e, t->scene) != 0)
        return -1;
    if (t->idempotency_key == NULL)
        return required(&e, "idempotency_key");
    if (check_text(&e, "idempotency_key", t->idempotency_key, RT_IDEMPOTENCY_KEY_MAX) != 0)
        return -1;
    if (validate_target(&e, &t->target) != 0)
        return -1;
    if (validate_policy(&e, &t->policy) != 0)
        return -1;
    if (t->callback_url != NULL) {
        if (check_url(&e, "callback.url", t->callback_url) != 0)
            return -1;
        if (t->callback_on == 0 || (t->callback_on & ~(unsigned)ALL_EVENTS) != 0)
            return bad_callback_on(&e);
    }
    if (t->has_error && t->error_message != NULL &&
        check_any_string(&e, "error.message", t->error_message) != 0)
        return -1;
    if (t->local_attempts < -1)
        return bad_int(&e, "local_attempts", 0, INT_MAX);
    if (t->created_at < 0)
        return bad_created_at(&e);
    if (t->priority < -1000 || t->priority > 1000)
        return bad_int(&e, "priority", -1000, 1000);
    if (t->trace_id != NULL && check_text(&e, "trace_id", t->trace_id, RT_TRACE_ID_MAX) != 0)
        return -1;
    if (t->nowners > RT_MAX_OWNERS || (t->nowners > 0 && t->owners == NULL))
        return fail(&e, "field 'owners': must be an array of at most %d e-mail addresses",
                    RT_MAX_OWNERS);
    for (size_t i = 0; i < t->nowners; i++)
        if (check_owner(&e, i, t->owners[i]) != 0)
            return -1;
    return 0;
}

/* ---- decoding ---- */

/* strdup that reports allocation failure as a sentence. */
static int dup_into(errbuf *e, char **dst, const char *s)
{
    *dst = strdup(s);
    if (*dst == NULL)
        return fail(e, "out of memory");
    return 0;
}

/* Reads an optional integer member into *out. Returns 1 when present and in
 * lo..hi, 0 when absent, -1 (with the standard sentence) otherwise. */
static int get_int(errbuf *e, json_t *obj, const char *key, const char *path, long long lo,
                   long long hi, long long *out)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return bad_int(e, path, lo, hi);
    *out = json_integer_value(v);
    return 1;
}

/* The string value of a member, or NULL when it is absent or not a string;
 * *present tells which. */
static const char *get_str(json_t *obj, const char *key, int *present)
{
    json_t *v = json_object_get(obj, key);
    *present = v != NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Reads a required string member through a checker and copies it. */
static int take_required(errbuf *e, json_t *obj, const char *key, const char *path,
                         int (*check)(errbuf *, const char *), char **dst)
{
    int present;
    const char *s = get_str(obj, key, &present);
    if (!present)
        return required(e, path);
    if (check(e, s) != 0)
        return -1;
    return dup_into(e, dst, s);
}

static int check_idem(errbuf *e, const char *s)
{
    return check_text(e, "idempotency_key", s, RT_IDEMPOTENCY_KEY_MAX);
}

static int check_trace(errbuf *e, const char *s)
{
    return check_text(e, "trace_id", s, RT_TRACE_ID_MAX);
}

static int check_target_url(errbuf *e, const char *s)
{
    return check_url(e, "target.url", s);
}

static int check_callback_url(errbuf *e, const char *s)
{
    return check_url(e, "callback.url", s);
}

/* Reads an optional status-code array into v/n. 1 present, 0 absent, -1. */
static int get_status_list(errbuf *e, json_t *obj, const char *key, const char *path, int *v,
                           size_t *n)
{
    json_t *a = json_object_get(obj, key);
    if (a == NULL)
        return 0;
    if (!json_is_array(a) || json_array_size(a) > RT_MAX_STATUS_LIST)
        return check_status_list(e, path, NULL, RT_MAX_STATUS_LIST + 1);
    size_t i;
    json_t *item;
    json_array_foreach(a, i, item) {
        if (!json_is_integer(item) || json_integer_value(item) < 100 ||
            json_integer_value(item) > 599)
            return fail(e, "field '%s[%zu]': must be an integer in 100..599", path, i);
        v[i] = (int)json_integer_value(item);
    }
    *n = json_array_size(a);
    return 1;
}

static int decode_headers(errbuf *e, json_t *h, rt_http_target *tg)
{
    if (!json_is_object(h))
        return fail(e, "field 'target.headers': must be an object of strings");
    size_t n = json_object_size(h);
    if (n == 0)
        return 0;
    tg->headers = calloc(n, sizeof *tg->headers);
    if (tg->headers == NULL)
        return fail(e, "out of memory");
    const char *name;
    json_t *val;
    json_object_foreach(h, name, val) {
        const char *s = json_is_string(val) ? json_string_value(val) : NULL;
        if (check_header_name(e, name) != 0 || check_header_value(e, name, s) != 0)
            return -1;
        rt_header *hd = &tg->headers[tg->nheaders++];
        if (dup_into(e, &hd->name, name) != 0 || dup_into(e, &hd->value, s) != 0)
            return -1;
    }
    return 0;
}

/* target.timeout_ms and target.success_status, shared by both target types. */
static int decode_timeout_and_success(errbuf *e, json_t *o, rt_http_target *tg)
{
    long long x;
    int r = get_int(e, o, "timeout_ms", "target.timeout_ms", 1, TIMEOUT_MAX_MS, &x);
    if (r < 0)
        return -1;
    if (r > 0)
        tg->timeout_ms = x;
    if (get_status_list(e, o, "success_status", "target.success_status", tg->success_status,
                        &tg->nsuccess_status) < 0)
        return -1;
    return 0;
}

/* target.type "dispatch": url, args, timeout_ms, success_status. The HTTP
 * fields are refused rather than ignored: a producer that sets them expects
 * them to be sent, and retryd would not. */
static int decode_dispatch_target(errbuf *e, json_t *o, rt_http_target *tg)
{
    tg->type = RT_TARGET_DISPATCH;
    static const char *const http_only[] = {"method", "headers", "body"};
    for (size_t i = 0; i < sizeof http_only / sizeof http_only[0]; i++)
        if (json_object_get(o, http_only[i]) != NULL)
            return not_for_dispatch(e, http_only[i]);
    if (take_required(e, o, "url", "target.url", check_target_url, &tg->url) != 0)
        return -1;
    json_t *args = json_object_get(o, "args");
    if (args != NULL && !json_is_null(args)) {
        tg->args = rt_json_dumps_exact(args);
        if (tg->args == NULL)
            return fail(e, "out of memory");
        if (check_args(e, tg->args) != 0)
            return -1;
    }
    return decode_timeout_and_success(e, o, tg);
}

static int decode_target(errbuf *e, json_t *root, rt_http_target *tg)
{
    json_t *o = json_object_get(root, "target");
    int present;
    if (o == NULL)
        return required(e, "target");
    if (!json_is_object(o))
        return fail(e, "field 'target': must be an object");

    const char *type = get_str(o, "type", &present);
    if (!present)
        return required(e, "target.type");
    if (type != NULL && strcmp(type, "dispatch") == 0)
        return decode_dispatch_target(e, o, tg);
    if (type == NULL || strcmp(type, "http") != 0)
        return bad_target_type(e);

    const char *method = get_str(o, "method", &present);
    if (present) {
        if (check_method(e, method) != 0)
            return -1;
        strcpy(tg->method, method); /* at most "DELETE", fits char[8] */
    }
    if (take_required(e, o, "url", "target.url", check_target_url, &tg->url) != 0)
        return -1;
    json_t *h = json_object_get(o, "headers");
    if (h != NULL && decode_headers(e, h, tg) != 0)
        return -1;
    const char *body = get_str(o, "body", &present);
    if (present) {
        if (check_any_string(e, "target.body", body) != 0 || dup_into(e, &tg->body, body) != 0)
            return -1;
    }
    return decode_timeout_and_success(e, o, tg);
}

static int decode_policy(errbuf *e, json_t *root, rt_policy *p)
{
    json_t *o = json_object_get(root, "policy");
    json_t *v;
    long long x;
    int r, present;
    if (o == NULL)
        return 0;
    if (!json_is_object(o))
        return fail(e, "field 'policy': must be an object");

    if ((r = get_int(e, o, "max_attempts", "policy.max_attempts", 1, 1000, &x)) < 0)
        return -1;
    if (r > 0) {
        p->max_attempts = (int)x;
        p->set |= RT_POL_MAX_ATTEMPTS;
    }
    const char *s = get_str(o, "backoff", &present);
    if (present) {
        if (rt_backoff_kind_parse(s, &p->backoff) != 0)
            return bad_backoff(e);
        p->set |= RT_POL_BACKOFF;
    }
    if ((r = get_int(e, o, "initial_delay_ms", "policy.initial_delay_ms", 0, LEVEL_MAX_MS,
                     &x)) < 0)
        return -1;
    if (r > 0) {
        p->initial_delay_ms = x;
        p->set |= RT_POL_INITIAL_DELAY;
    }
    if ((v = json_object_get(o, "multiplier")) != NULL) {
        if (!json_is_number(v) || check_multiplier(e, json_number_value(v)) != 0)
            return check_multiplier(e, NAN);
        p->multiplier = json_number_value(v);
        p->set |= RT_POL_MULTIPLIER;
    }
    if ((r = get_int(e, o, "max_delay_ms", "policy.max_delay_ms", 0, MAX_DELAY_MAX_MS, &x)) < 0)
        return -1;
    if (r > 0) {
        p->max_delay_ms = x;
        p->set |= RT_POL_MAX_DELAY;
    }
    s = get_str(o, "jitter", &present);
    if (present) {
        if (rt_jitter_kind_parse(s, &p->jitter) != 0)
            return bad_jitter(e);
        p->set |= RT_POL_JITTER;
    }
    if ((r = get_status_list(e, o, "stop_on_status", "policy.stop_on_status", p->stop_on_status,
                             &p->nstop_on_status)) < 0)
        return -1;
    if (r > 0)
        p->set |= RT_POL_STOP_ON_STATUS;
    if ((v = json_object_get(o, "deadline")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) <= 0)
            return bad_deadline(e);
        p->deadline = json_integer_value(v);
        p->set |= RT_POL_DEADLINE;
    }
    if ((v = json_object_get(o, "levels")) != NULL) {
        if (!json_is_array(v) || json_array_size(v) < 1 || json_array_size(v) > RT_MAX_LEVELS)
            return check_levels(e, NULL, 0);
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) {
            if (!json_is_integer(item) || json_integer_value(item) < 0 ||
                json_integer_value(item) > LEVEL_MAX_MS)
                return fail(e, "field 'policy.levels[%zu]': must be an integer in 0..%lld", i,
                            LEVEL_MAX_MS);
            p->levels[i] = json_integer_value(item);
        }
        p->nlevels = json_array_size(v);
        p->set |= RT_POL_LEVELS;
    }
    return 0;
}

static int decode_callback(errbuf *e, json_t *root, rt_task *t)
{
    json_t *o = json_object_get(root, "callback");
    if (o == NULL)
        return 0;
    if (!json_is_object(o))
        return fail(e, "field 'callback': must be an object");
    if (take_required(e, o, "url", "callback.url", check_callback_url, &t->callback_url) != 0)
        return -1;
    json_t *on = json_object_get(o, "on");
    if (on == NULL)
        return 0;
    if (!json_is_array(on) || json_array_size(on) == 0)
        return bad_callback_on(e);
    unsigned bits = 0;
    size_t i;
    json_t *item;
    json_array_foreach(on, i, item) {
        const char *s = json_is_string(item) ? json_string_value(item) : "";
        unsigned b;
        for (b = RT_EVENT_SUCCEEDED; b <= RT_EVENT_STOPPED; b <<= 1)
            if (strcmp(s, rt_event_name(b)) == 0)
                break;
        if (b > RT_EVENT_STOPPED)
            return fail(e, "field 'callback.on[%zu]': must be one of succeeded exhausted stopped",
                        i);
        bits |= b;
    }
    t->callback_on = bits;
    return 0;
}

static int decode_error(errbuf *e, json_t *root, rt_task *t)
{
    json_t *o = json_object_get(root, "error");
    long long x;
    int r, present;
    if (o == NULL)
        return 0;
    if (!json_is_object(o))
        return fail(e, "field 'error': must be an object");
    if ((r = get_int(e, o, "code", "error.code", INT_MIN, INT_MAX, &x)) < 0)
        return -1;
    if (r == 0)
        return required(e, "error.code");
    t->has_error = 1;
    t->error_code = (int)x;
    const char *s = get_str(o, "message", &present);
    if (present) {
        if (check_any_string(e, "error.message", s) != 0 || dup_into(e, &t->error_message, s) != 0)
            return -1;
    }
    return 0;
}

static int decode_owners(errbuf *e, json_t *root, rt_task *t)
{
    json_t *a = json_object_get(root, "owners");
    if (a == NULL)
        return 0;
    if (!json_is_array(a) || json_array_size(a) > RT_MAX_OWNERS)
        return fail(e, "field 'owners': must be an array of at most %d e-mail addresses",
                    RT_MAX_OWNERS);
    if (json_array_size(a) == 0)
        return 0;
    t->owners = calloc(json_array_size(a), sizeof *t->owners);
    if (t->owners == NULL)
        return fail(e, "out of memory");
    size_t i;
    json_t *item;
    json_array_foreach(a, i, item) {
        const char *s = json_is_string(item) ? json_string_value(item) : NULL;
        if (check_owner(e, i, s) != 0)
            return -1;
        if (dup_into(e, &t->owners[t->nowners], s) != 0)
            return -1;
        t->nowners++;
    }
    return 0;
}

/* All fields of a parsed object, in the table's order. */
static int decode_root(errbuf *e, json_t *root, rt_task *t)
{
    long long x;
    int r, present;
    json_t *v = json_object_get(root, "v");
    if (v == NULL)
        return required(e, "v");
    if (!json_is_integer(v) || json_integer_value(v) != RT_WIRE_VERSION)
        return fail(e, "field 'v': must be the integer %d", RT_WIRE_VERSION);
    if (take_required(e, root, "group", "group", check_group, &t->group) != 0 ||
        take_required(e, root, "scene", "scene", check_scene, &t->scene) != 0 ||
        take_required(e, root, "idempotency_key", "idempotency_key", check_idem,
                      &t->idempotency_key) != 0)
        return -1;
    if (decode_target(e, root, &t->target) != 0 || decode_policy(e, root, &t->policy) != 0 ||
        decode_callback(e, root, t) != 0 || decode_error(e, root, t) != 0)
        return -1;
    if ((r = get_int(e, root, "local_attempts", "local_attempts", 0, INT_MAX, &x)) < 0)
        return -1;
    if (r > 0)
        t->local_attempts = (int)x;
    if ((v = json_object_get(root, "created_at")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return bad_created_at(e);
        t->created_at = json_integer_value(v);
    }
    if ((r = get_int(e, root, "priority", "priority", -1000, 1000, &x)) < 0)
        return -1;
    if (r > 0)
        t->priority = (int)x;
    const char *s = get_str(root, "trace_id", &present);
    if (present) {
        if (check_trace(e, s) != 0 || dup_into(e, &t->trace_id, s) != 0)
            return -1;
    }
    return decode_owners(e, root, t);
}

/* Decodes and validates one wire format v1 message of len bytes (no NUL
 * needed; buf may be NULL when len is 0). *out need not be initialised and
 * its old contents are not freed. Returns 0 with *out filled (free it with
 * rt_task_free), or -1 with one sentence in err and *out freed and
 * re-initialised, so rt_task_free(out) is still safe. Thread-safe on
 * distinct outputs. */
int rt_task_decode(const char *buf, size_t len, rt_task *out, char *err, size_t errsz)
{
    errbuf e = {err, errsz};
    json_error_t jerr;
    int rc = -1;

    rt_task_init(out);
    if (len > RT_TASK_MAX_BYTES)
        return fail(&e, "message: too large (%zu bytes, limit %d)", len, RT_TASK_MAX_BYTES);
    json_t *root = json_loadb(buf ? buf : "", buf ? len : 0, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return fail(&e, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
                    jerr.text);
    if (!json_is_object(root)) {
        fail(&e, "message: must be a JSON object");
        goto out;
    }
    if (decode_root(&e, root, out) != 0)
        goto out;
    /* Decode checked every field already; validating the result keeps the
     * promise that a decoded task always encodes. */
    rc = rt_task_validate(out, err, errsz);
out:
    json_decref(root);
    if (rc != 0)
        rt_task_free(out);
    return rc;
}

/* ---- encoding ---- */

/* Adds v under key; v may be NULL (a failed jansson constructor). Sets *bad
 * on any failure; json_object_set_new() releases v even when it fails. */
static void put(json_t *o, const char *key, json_t *v, int *bad)
{
    if (o == NULL || v == NULL || json_object_set_new(o, key, v) != 0) {
        if (o == NULL)
            json_decref(v);
        *bad = 1;
    }
}

static json_t *int_array(const int *v, size_t n, int *bad)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++)
        if (json_array_append_new(a, json_integer(v[i])) != 0)
            *bad = 1;
    return a;
}

/* A dispatch target; *args_prec receives the precision its reals need. */
static json_t *encode_dispatch_target(const rt_http_target *tg, int *bad, int *args_prec)
{
    json_t *o = json_object();
    put(o, "type", json_string("dispatch"), bad);
    put(o, "url", json_string(tg->url), bad);
    if (tg->args != NULL) {
        json_t *a = args_parse(tg->args); /* validated: NULL only when out of memory */
        if (a == NULL)
            *bad = 1;
        else if (json_is_null(a))
            json_decref(a);
        else {
            *args_prec = json_precision(a, *args_prec);
            put(o, "args", a, bad);
        }
    }
    put(o, "timeout_ms", json_integer(tg->timeout_ms), bad);
    if (tg->nsuccess_status > 0)
        put(o, "success_status", int_array(tg->success_status, tg->nsuccess_status, bad), bad);
    return o;
}

static json_t *encode_target(const rt_http_target *tg, int *bad, int *args_prec)
{
    if (tg->type == RT_TARGET_DISPATCH)
        return encode_dispatch_target(tg, bad, args_prec);
    json_t *o = json_object();
    put(o, "type", json_string("http"), bad);
    put(o, "method", json_string(tg->method), bad);
    put(o, "url", json_string(tg->url), bad);
    if (tg->nheaders > 0) {
        json_t *h = json_object();
        for (size_t i = 0; i < tg->nheaders; i++)
            put(h, tg->headers[i].name, json_string(tg->headers[i].value), bad);
        put(o, "headers", h, bad);
    }
    if (tg->body != NULL)
        put(o, "body", json_string(tg->body), bad);
    put(o, "timeout_ms", json_integer(tg->timeout_ms), bad);
    if (tg->nsuccess_status > 0)
        put(o, "success_status", int_array(tg->success_status, tg->nsuccess_status, bad), bad);
    return o;
}

static json_t *encode_policy(const rt_policy *p, int *bad)
{
    json_t *o = json_object();
    unsigned s = p->set;
    if (s & RT_POL_MAX_ATTEMPTS)
        put(o, "max_attempts", json_integer(p->max_attempts), bad);
    if (s & RT_POL_BACKOFF)
        put(o, "backoff", json_string(rt_backoff_kind_name(p->backoff)), bad);
    if (s & RT_POL_INITIAL_DELAY)
        put(o, "initial_delay_ms", json_integer(p->initial_delay_ms), bad);
    if (s & RT_POL_MULTIPLIER)
        put(o, "multiplier", json_real(p->multiplier), bad);
    if (s & RT_POL_MAX_DELAY)
        put(o, "max_delay_ms", json_integer(p->max_delay_ms), bad);
    if (s & RT_POL_JITTER)
        put(o, "jitter", json_string(rt_jitter_kind_name(p->jitter)), bad);
    if (s & RT_POL_STOP_ON_STATUS)
        put(o, "stop_on_status", int_array(p->stop_on_status, p->nstop_on_status, bad), bad);
    if (s & RT_POL_DEADLINE)
        put(o, "deadline", json_integer(p->deadline), bad);
    if (s & RT_POL_LEVELS) {
        json_t *a = json_array();
        for (size_t i = 0; a != NULL && i < p->nlevels; i++)
            if (json_array_append_new(a, json_integer(p->levels[i])) != 0)
                *bad = 1;
        put(o, "levels", a, bad);
    }
    return o;
}

/* Encodes a task as compact JSON, canonical form (see task.h). Validates
 * first: returns NULL with the validation sentence for an invalid task, or
 * NULL with "out of memory". The result is malloc'd and NUL-terminated; the
 * caller frees it with free(). The task is only read. */
char *rt_task_encode(const rt_task *t, char *err, size_t errsz)
{
    errbuf e = {err, errsz};
    int bad = 0;
    int prec = 0; /* largest precision the reals need; 0 = no reals */

    if (rt_task_validate(t, err, errsz) != 0)
        return NULL;
    json_t *root = json_object();
    put(root, "v", json_integer(t->v), &bad);
    put(root, "group", json_string(t->group), &bad);
    put(root, "scene", json_string(t->scene), &bad);
    put(root, "idempotency_key", json_string(t->idempotency_key), &bad);
    put(root, "target", encode_target(&t->target, &bad, &prec), &bad);
    if (t->policy.set != 0)
        put(root, "policy", encode_policy(&t->policy, &bad), &bad);
    if (t->callback_url != NULL) {
        json_t *cb = json_object();
        put(cb, "url", json_string(t->callback_url), &bad);
        if (t->callback_on != ALL_EVENTS) {
            json_t *on = json_array();
            for (unsigned b = RT_EVENT_SUCCEEDED; on != NULL && b <= RT_EVENT_STOPPED; b <<= 1)
                if ((t->callback_on & b) &&
                    json_array_append_new(on, json_string(rt_event_name(b))) != 0)
                    bad = 1;
            put(cb, "on", on, &bad);
        }
        put(root, "callback", cb, &bad);
    }
    if (t->has_error) {
        json_t *eo = json_object();
        put(eo, "code", json_integer(t->error_code), &bad);
        if (t->error_message != NULL)
            put(eo, "message", json_string(t->error_message), &bad);
        put(root, "error", eo, &bad);
    }
    if (t->local_attempts >= 0)
        put(root, "local_attempts", json_integer(t->local_attempts), &bad);
    if (t->created_at > 0)
        put(root, "created_at", json_integer(t->created_at), &bad);
    if (t->priority != 0)
        put(root, "priority", json_integer(t->priority), &bad);
    if (t->trace_id != NULL)
        put(root, "trace_id", json_string(t->trace_id), &bad);
    if (t->nowners > 0) {
        json_t *a = json_array();
        for (size_t i = 0; a != NULL && i < t->nowners; i++)
            if (json_array_append_new(a, json_string(t->owners[i])) != 0)
                bad = 1;
        put(root, "owners", a, &bad);
    }

    char *s = NULL;
    if (!bad) {
        if (t->policy.set & RT_POL_MULTIPLIER) {
            int p = real_precision(t->policy.multiplier);
            prec = p > prec ? p : prec;
        }
        s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER |
                                 JSON_REAL_PRECISION(prec > 0 ? prec : 17));
    }
    json_decref(root);
    if (s == NULL) {
        fail(&e, "out of memory");
    } else if (strlen(s) > RT_TASK_MAX_BYTES) {
        /* retryd would poison it: refuse it here, where the caller can act. */
        fail(&e, "message: too large (%zu bytes encoded, limit %d)", strlen(s),
             RT_TASK_MAX_BYTES);
        free(s);
        s = NULL;
    }
    return s;
}
