/*
 * client/ship.c: turns an exhausted call into a retry task, wire format v1
 * (DESIGN.md "Wire format v1", codec in src/task.h), ready for the producer:
 * target {type http, method, url, headers, body, timeout_ms, success_status},
 * error, local_attempts, created_at, callback, and the idempotency key, which
 * is the request's own or the SHA-256 digest of scene, method, url and body
 * (src/digest.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "digest.h"
#include "internal.h"

const char *rc_http_method(const retry_http_request *req)
{
    if (req->method != NULL)
        return req->method;
    return req->body != NULL ? "POST" : "GET";
}

size_t rc_http_body_len(const retry_http_request *req)
{
    if (req->body == NULL)
        return 0;
    return req->body_len != 0 ? req->body_len : strlen(req->body);
}

retry_err rc_http_request_check(const retry_http_request *req, char *err, size_t errsz)
{
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
    const char *m;
    size_t i;
    int ok = 0;

    if (req == NULL) {
        snprintf(err, errsz, "the request is NULL");
        return RETRY_ERR_INVALID_ARG;
    }
    if (req->url == NULL ||
        (strncmp(req->url, "http://", 7) != 0 && strncmp(req->url, "https://", 8) != 0)) {
        snprintf(err, errsz, "request url \"%.100s\" must start with http:// or https://",
                 req->url != NULL ? req->url : "(null)");
        return RETRY_ERR_INVALID_ARG;
    }
    m = rc_http_method(req);
    for (i = 0; i < sizeof methods / sizeof methods[0]; i++)
        ok |= strcmp(m, methods[i]) == 0;
    if (!ok) {
        snprintf(err, errsz, "request method \"%.20s\" must be GET, POST, PUT, PATCH or DELETE", m);
        return RETRY_ERR_INVALID_ARG;
    }
    if (req->header_count > 0 && req->headers == NULL) {
        snprintf(err, errsz, "request headers is NULL but header_count is %zu", req->header_count);
        return RETRY_ERR_INVALID_ARG;
    }
    for (i = 0; i < req->header_count; i++) {
        const char *h = req->headers[i];
        const char *colon = h != NULL ? strchr(h, ':') : NULL;
        if (colon == NULL || colon == h || strpbrk(h, "\r\n") != NULL) {
            snprintf(err, errsz, "request headers[%zu] \"%.100s\" is not a \"Name: value\" line", i,
                     h != NULL ? h : "(null)");
            return RETRY_ERR_INVALID_ARG;
        }
    }
    if (req->timeout_ms <= 0) {
        snprintf(err, errsz, "request timeout_ms must be > 0");
        return RETRY_ERR_INVALID_ARG;
    }
    if (req->success_status_count > 0 && req->success_status == NULL) {
        snprintf(err, errsz, "request success_status is NULL but its count is %zu",
                 req->success_status_count);
        return RETRY_ERR_INVALID_ARG;
    }
    if (req->success_status_count > RT_MAX_STATUS_LIST) {
        snprintf(err, errsz, "request success_status has %zu entries, at most %d are allowed",
                 req->success_status_count, RT_MAX_STATUS_LIST);
        return RETRY_ERR_INVALID_ARG;
    }
    for (i = 0; i < req->success_status_count; i++) {
        if (req->success_status[i] < 100 || req->success_status[i] > 599) {
            snprintf(err, errsz, "request success_status[%zu] = %d is not an HTTP status", i,
                     req->success_status[i]);
            return RETRY_ERR_INVALID_ARG;
        }
    }
    return RETRY_OK;
}

retry_err rc_idempotency_key(const char *scene, const retry_http_request *req,
                             char out[RETRY_IDEMPOTENCY_KEY_MAX + 1], char *err, size_t errsz)
{
    out[0] = '\0';
    if (req->idempotency_key != NULL) {
        size_t n = strlen(req->idempotency_key);
        if (n < 1 || n > RETRY_IDEMPOTENCY_KEY_MAX) {
            snprintf(err, errsz, "request idempotency_key must be 1..%d bytes long",
                     RETRY_IDEMPOTENCY_KEY_MAX);
            return RETRY_ERR_INVALID_ARG;
        }
        memcpy(out, req->idempotency_key, n + 1);
        return RETRY_OK;
    }
    if (scene == NULL)
        return RETRY_OK;
    if (rt_idempotency_digest(scene, rc_http_method(req), req->url, req->body,
                              rc_http_body_len(req), out) != 0) {
        out[0] = '\0';
        snprintf(err, errsz, "cannot compute the idempotency digest (libcrypto failed)");
        return RETRY_ERR_INTERNAL;
    }
    return RETRY_OK;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);

    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* Fills t->target.headers from "Name: value" lines (checked already). */
static int copy_headers(rt_http_target *tg, const retry_http_request *req)
{
    size_t i;

    if (req->header_count == 0)
        return 0;
    tg->headers = calloc(req->header_count, sizeof *tg->headers);
    if (tg->headers == NULL)
        return -1;
    for (i = 0; i < req->header_count; i++) {
        const char *h = req->headers[i];
        const char *colon = strchr(h, ':');
        const char *v = colon + 1;

        while (*v == ' ' || *v == '\t')
            v++;
        tg->headers[i].name = dup_n(h, (size_t)(colon - h));
        tg->headers[i].value = strdup(v);
        tg->nheaders = i + 1;
        if (tg->headers[i].name == NULL || tg->headers[i].value == NULL)
            return -1;
    }
    return 0;
}

/* The fields every shipped task carries whatever its target: group, scene,
 * idempotency key, deadline, callback, the last local error and the counts.
 * Returns 0, or -1 when a copy failed (the task is left for rt_task_free). */
static int fill_common(rt_task *t, const retry_client *c, const retry_policy *p, const char *idem,
                       int error_code, const char *error_message, int local_attempts,
                       int64_t created_at)
{
    t->group = strdup(c->group);
    t->scene = strdup(p->scene);
    t->idempotency_key = strdup(idem);
    if (p->deadline_ms > 0) {
        t->policy.set |= RT_POL_DEADLINE;
        t->policy.deadline = p->deadline_ms;
    }
    t->callback_url = p->callback_url != NULL ? strdup(p->callback_url) : NULL;
    t->has_error = 1;
    t->error_code = error_code;
    t->error_message = strdup(error_message);
    t->local_attempts = local_attempts;
    t->created_at = created_at;
    if (t->group == NULL || t->scene == NULL || t->idempotency_key == NULL ||
        (p->callback_url != NULL && t->callback_url == NULL) || t->error_message == NULL)
        return -1;
    return 0;
}

/* Validates and encodes a built task into *json (malloc'd; rt_task_encode
 * validates first) and writes the Kafka message key "<group>/<idempotency_key>".
 * A task breaking the wire format (err names the field) gives
 * RETRY_ERR_INVALID_ARG; an allocation failure RETRY_ERR_NOMEM. */
static retry_err encode_with_key(const retry_client *c, const rt_task *t, const char *idem,
                                 char **json, char *key, size_t keysz, char *err, size_t errsz)
{
    *json = rt_task_encode(t, err, errsz);
    if (*json == NULL) {
        if (err[0] != '\0') return RETRY_ERR_INVALID_ARG;
        snprintf(err, errsz, "out of memory encoding the task");
        return RETRY_ERR_NOMEM;
    }
    snprintf(key, keysz, "%s/%s", c->group, idem);
    return RETRY_OK;
}

retry_err rc_task_json(const retry_client *c, const retry_policy *p,
                       const retry_http_request *req, int error_code, const char *error_message,
                       int local_attempts, int64_t created_at, char **json, char *key,
                       size_t keysz, char *err, size_t errsz)
{
    char idem[RETRY_IDEMPOTENCY_KEY_MAX + 1];
    size_t body_len = rc_http_body_len(req);
    retry_err e;
    rt_task t;

    *json = NULL;
    err[0] = '\0';
    e = rc_http_request_check(req, err, errsz);
    if (e != RETRY_OK)
        return e;
    if (p->scene == NULL) {
        snprintf(err, errsz, "policy scene is required to ship a call to retryd "
                             "(or set send_queue = 0)");
        return RETRY_ERR_INVALID_ARG;
    }
    if (req->body != NULL && memchr(req->body, '\0', body_len) != NULL) {
        snprintf(err, errsz, "request body contains NUL bytes and cannot travel as a JSON string");
        return RETRY_ERR_INVALID_ARG;
    }
    e = rc_idempotency_key(p->scene, req, idem, err, errsz);
    if (e != RETRY_OK)
        return e;

    rt_task_init(&t);
    e = RETRY_ERR_NOMEM;
    int common = fill_common(&t, c, p, idem, error_code, error_message, local_attempts,
                             created_at);
    snprintf(t.target.method, sizeof t.target.method, "%s", rc_http_method(req));
    t.target.url = strdup(req->url);
    t.target.body = req->body != NULL ? dup_n(req->body, body_len) : NULL;
    t.target.timeout_ms = req->timeout_ms;
    if (req->success_status_count > 0)
        memcpy(t.target.success_status, req->success_status,
               req->success_status_count * sizeof(int));
    t.target.nsuccess_status = req->success_status_count;
    if (common != 0 || t.target.url == NULL || (req->body != NULL && t.target.body == NULL) ||
        copy_headers(&t.target, req) != 0) {
        snprintf(err, errsz, "out of memory building the task");
        goto out;
    }
    e = encode_with_key(c, &t, idem, json, key, keysz, err, errsz);
out:
    rt_task_free(&t);
    return e;
}

/* The task of an exhausted dispatch call (retry/dispatch.h): target type
 * dispatch to the client's endpoint, args as given, everything else as for
 * an HTTP call. */
retry_err rc_dispatch_task_json(const retry_client *c, const retry_policy *p,
                                const rc_dispatch_ship *d, int error_code,
                                const char *error_message, int local_attempts,
                                int64_t created_at, char **json, char *key, size_t keysz,
                                char *err, size_t errsz)
{
    retry_err e = RETRY_ERR_NOMEM;
    rt_task t;

    *json = NULL;
    err[0] = '\0';
    if (p->scene == NULL) {
        snprintf(err, errsz, "a dispatch call needs a scene");
        return RETRY_ERR_INVALID_ARG;
    }
    if (d->url == NULL) {
        snprintf(err, errsz, "the dispatch endpoint does not run (retry_dispatch_serve), so "
                             "retryd could not reach the handler (or set send_queue = 0)");
        return RETRY_ERR_INVALID_ARG;
    }
    rt_task_init(&t);
    int common = fill_common(&t, c, p, d->idempotency_key, error_code, error_message,
                             local_attempts, created_at);
    t.target.type = RT_TARGET_DISPATCH;
    t.target.url = strdup(d->url);
    t.target.args = d->args != NULL ? strdup(d->args) : NULL;
    t.target.timeout_ms = d->timeout_ms;
    /* The endpoint answers 422 for RETRY_DISPATCH_STOP and 400 for a body it
     * cannot read: neither gets better by retrying. */
    t.policy.set |= RT_POL_STOP_ON_STATUS;
    t.policy.stop_on_status[0] = 400;
    t.policy.stop_on_status[1] = 422;
    t.policy.nstop_on_status = 2;
    if (common != 0 || t.target.url == NULL || (d->args != NULL && t.target.args == NULL)) {
        snprintf(err, errsz, "out of memory building the task");
        goto out;
    }
    e = encode_with_key(c, &t, d->idempotency_key, json, key, keysz, err, errsz);
out:
    rt_task_free(&t);
    return e;
}
