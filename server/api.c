/*
 * api.c: HTTP API handlers (see api.h).
 */
#include "api.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "clock.h"
#include "ingest.h"
#include "log.h"
#include "scheduler.h"
#include "node.h"
#include "workq.h"

#ifndef RT_TASK_MAX_BYTES
#define RT_TASK_MAX_BYTES (1024 * 1024)
#endif

struct rd_api {
    rd_daemon *d;
    struct evhttp *http;
};

typedef enum api_kind {
    API_INSERT,
    API_POISON,
    API_GET_TASK,
    API_LIST,
    API_ATTEMPTS,
    API_ACTION,
    API_TOP,
    API_SUMMARY,
    API_NODES,
    API_PING
} api_kind;

typedef struct api_job {
    rd_job job;
    rd_api *api;
    struct evhttp_request *req;   /* NULL when detached (client gone) */
    api_kind kind;
    uint64_t id;
    char action[16];
    /* list filter; strings owned here */
    rd_task_filter filter;
    char *fstatus, *fgroup, *fscene, *fkey;
    int64_t since;
    int limit;
    /* insert */
    rt_task task;
    int task_ok;
    char *payload;
    rd_ingest_row row;
    int duplicate;
    /* poison */
    char *raw;
    size_t raw_len;
    char reason[512];
    char source[128];
    json_t *result;
} api_job;

/* ---- replies ------------------------------------------------------------- */

static void reply_json(struct evhttp_request *req, int code, json_t *body)
{
    struct evbuffer *buf = evbuffer_new();
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (buf && text) evbuffer_add(buf, text, strlen(text));
    if (buf) evbuffer_add(buf, "\n", 1);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json");
    const char *reason = code == 200   ? "OK"
                         : code == 201 ? "Created"
                         : code == 400 ? "Bad Request"
                         : code == 401 ? "Unauthorized"
                         : code == 404 ? "Not Found"
                         : code == 405 ? "Method Not Allowed"
                         : code == 409 ? "Conflict"
                         : code == 503 ? "Service Unavailable"
                                       : "Error";
    evhttp_send_reply(req, code, reason, buf);
    free(text);
    if (buf) evbuffer_free(buf);
}

static void reply_error(struct evhttp_request *req, int code, const char *error,
                        const char *detail)
{
    json_t *o = json_pack("{s:s, s:s}", "error", error, "detail", detail);
    reply_json(req, code, o);
    json_decref(o);
    LOG_DEBUG("http", "%d %s: %s", code, error, detail);
}

static void reply_store_error(struct evhttp_request *req, int rc, const char *err)
{
    if (rc == RD_STORE_NOTFOUND)
        reply_error(req, 404, "not_found", err);
    else if (rc == RD_STORE_CONFLICT)
        reply_error(req, 409, "conflict", err);
    else if (rc == RD_STORE_CONN)
        reply_error(req, 503, "unavailable", err);
    else
        reply_error(req, 500, "internal", err);
}

/* ---- jobs ---------------------------------------------------------------- */

/* libevent 2.1 calls this from evhttp_connection_free. Two cases:
 *  - the connection failed (timeout, EOF) while we were working: evhttp has
 *    detached the request (its connection is now NULL) and not freed it;
 *    evhttp_send_reply on a detached request frees it, so keep it;
 *  - the whole evhttp is being freed (shutdown): the request is freed right
 *    after this callback, so forget it and drop the reply. */
static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    api_job *j = arg;
    if (j->req && evhttp_request_get_connection(j->req) != NULL) j->req = NULL;
}

static void api_job_free(api_job *j)
{
    if (j->task_ok) rt_task_free(&j->task);
    free(j->payload);
    free(j->raw);
    free(j->fstatus);
    free(j->fgroup);
    free(j->fscene);
    free(j->fkey);
    json_decref(j->result);
    free(j);
}

static int api_run(rd_store *s, rd_job *job)
{
    api_job *j = (api_job *)job;
    int rc = RD_STORE_OK;
    char *err = job->err;
    size_t es = sizeof job->err;
    int64_t now = rt_now_ms();
    switch (j->kind) {
    case API_INSERT:
        return rd_store_insert_one(s, &j->row, now, &j->id, &j->duplicate, err, es);
    case API_POISON: {
        rd_poison_row p = {j->raw, j->raw_len, j->reason, j->source};
        size_t ins;
        return rd_store_ingest(s, NULL, 0, &p, 1, now, &ins, err, es);
    }
    case API_GET_TASK:
        j->result = rd_store_task_json(s, j->id, &rc, err, es);
        return rc;
    case API_LIST:
        j->result = rd_store_list_tasks(s, &j->filter, &rc, err, es);
        return rc;
    case API_ATTEMPTS:
        j->result = rd_store_attempts_json(s, j->id, &rc, err, es);
        return rc;
    case API_ACTION:
        rc = rd_store_task_action(s, j->id, j->action, now, err, es);
        if (rc == RD_STORE_OK) j->result = rd_store_task_json(s, j->id, &rc, err, es);
        return rc;
    case API_TOP:
        j->result = rd_store_report_top(s, j->since, j->limit, &rc, err, es);
        return rc;
    case API_SUMMARY:
        j->result = rd_store_report_summary(s, j->since, &rc, err, es);
        return rc;
    case API_NODES:
        j->result = rd_store_nodes_json(s, now, RD_NODE_HEARTBEAT_MS, RD_NODE_STALE_MS, &rc, err,
                                        es);
        return rc;
    case API_PING:
        return rd_store_ping(s, err, es);
    }
    return RD_STORE_ERR;
}

static void api_done(rd_daemon *d, rd_job *job)
{
    api_job *j = (api_job *)job;
    struct evhttp_request *req = j->req;
    struct evhttp_connection *evcon = req ? evhttp_request_get_connection(req) : NULL;
    if (evcon) evhttp_connection_set_closecb(evcon, NULL, NULL);
    if (j->kind == API_POISON) {
        if (job->rc)
            LOG_ERROR("http", "rejected task from %s not kept in retry_poison: %s", j->source,
                      job->err);
        else
            atomic_fetch_add(&d->m.poison, 1);
    }
    if (j->kind == API_INSERT && job->rc == RD_STORE_OK) {
        atomic_fetch_add(j->duplicate ? &d->m.tasks_duplicate : &d->m.tasks_ingested, 1);
        if (!j->duplicate) rd_scheduler_wake_at(d->sched, rt_now_ms()); /* due now */
        LOG_INFO("http", "task %" PRIu64 " %s (group %s, key %s)", j->id,
                 j->duplicate ? "already known" : "accepted", j->task.group,
                 j->task.idempotency_key);
    }
    if (!req || j->kind == API_POISON) {
        api_job_free(j);
        return;
    }
    if (job->rc != RD_STORE_OK) {
        reply_store_error(req, job->rc, job->err);
    } else if (j->kind == API_INSERT) {
        json_t *o = json_pack("{s:I, s:b, s:s}", "id", (json_int_t)j->id, "duplicate",
                              j->duplicate, "status", j->duplicate ? "known" : "pending");
        reply_json(req, j->duplicate ? 200 : 201, o);
        json_decref(o);
    } else if (j->kind == API_LIST) {
        json_t *o = json_object();
        size_t n = json_array_size(j->result);
        json_object_set(o, "tasks", j->result);
        if (n == (size_t)j->filter.limit && n > 0) {
            json_t *last = json_array_get(j->result, n - 1);
            json_object_set_new(o, "next_cursor",
                                json_integer(json_integer_value(json_object_get(last, "id"))));
        } else {
            json_object_set_new(o, "next_cursor", json_null());
        }
        reply_json(req, 200, o);
        json_decref(o);
    } else if (j->kind == API_ATTEMPTS) {
        json_t *o = json_pack("{s:I, s:O}", "task_id", (json_int_t)j->id, "attempts", j->result);
        reply_json(req, 200, o);
        json_decref(o);
    } else if (j->kind == API_TOP) {
        json_t *o = json_pack("{s:I, s:i, s:O}", "since", (json_int_t)j->since, "limit", j->limit,
                              "scenes", j->result);
        reply_json(req, 200, o);
        json_decref(o);
    } else {
        reply_json(req, 200, j->result);
    }
    api_job_free(j);
}

static api_job *job_new(rd_api *api, struct evhttp_request *req, api_kind kind)
{
    api_job *j = calloc(1, sizeof *j);
    if (!j) {
        if (req) reply_error(req, 500, "internal", "out of memory");
        return NULL;
    }
    j->api = api;
    j->req = req;
    j->kind = kind;
    j->job.run = api_run;
    j->job.done = api_done;
    return j;
}

static void submit(api_job *j)
{
    if (j->req)
        evhttp_connection_set_closecb(evhttp_request_get_connection(j->req), on_conn_close, j);
    rd_workq_submit(j->api->d->wq, &j->job);
}

/* ---- handlers ------------------------------------------------------------ */

static void peer_name(struct evhttp_request *req, char *out, size_t outsz)
{
    char *host = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(evhttp_request_get_connection(req), &host, &port);
    snprintf(out, outsz, "http:%s:%u", host ? host : "?", (unsigned)port);
}

static void handle_post_task(rd_api *api, struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    char *body = malloc(len + 1);
    if (!body) {
        reply_error(req, 500, "internal", "out of memory");
        return;
    }
    evbuffer_copyout(in, body, len);
    body[len] = '\0';
    api_job *j = job_new(api, req, API_INSERT);
    if (!j) {
        free(body);
        return;
    }
    char err[512];
    if (rd_ingest_prepare(api->d->cfg, body, len, rt_now_ms(), &j->task, &j->payload, &j->row,
                          err, sizeof err) != 0) {
        reply_error(req, 400, "invalid_task", err);
        /* Keep what was rejected, as for Kafka: the bytes and the reason. */
        j->req = NULL;
        j->kind = API_POISON;
        j->raw = body;
        j->raw_len = len;
        snprintf(j->reason, sizeof j->reason, "%s", err);
        peer_name(req, j->source, sizeof j->source);
        LOG_WARN("http", "rejected task from %s: %s", j->source, err);
        rd_workq_submit(api->d->wq, &j->job);
        return;
    }
    free(body);
    j->task_ok = 1;
    j->row.task = &j->task;
    submit(j);
}

static int parse_u64(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 19) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

static int query_int(struct evkeyvalq *q, const char *name, int64_t lo, int64_t hi, int64_t dflt,
                     int64_t *out, char *err, size_t errsz)
{
    const char *v = evhttp_find_header(q, name);
    if (!v) {
        *out = dflt;
        return 0;
    }
    char *end;
    long long x = strtoll(v, &end, 10);
    if (*v == '\0' || *end != '\0' || x < lo || x > hi) {
        snprintf(err, errsz, "query parameter '%s' must be an integer in %" PRId64 "..%" PRId64,
                 name, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

static char *dup_param(struct evkeyvalq *q, const char *name)
{
    const char *v = evhttp_find_header(q, name);
    return v ? strdup(v) : NULL;
}

static void handle_list(rd_api *api, struct evhttp_request *req, struct evkeyvalq *q)
{
    char err[256];
    int64_t limit, cursor;
    if (query_int(q, "limit", 1, 1000, 100, &limit, err, sizeof err) ||
        query_int(q, "cursor", 0, INT64_MAX, 0, &cursor, err, sizeof err)) {
        reply_error(req, 400, "invalid_request", err);
        return;
    }
    const char *st = evhttp_find_header(q, "status");
    static const char *const statuses[] = {"pending", "running", "succeeded", "exhausted",
                                           "stopped", "paused", "cancelled"};
    if (st) {
        int ok = 0;
        for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
            ok |= strcmp(st, statuses[i]) == 0;
        if (!ok) {
            reply_error(req, 400, "invalid_request",
                        "query parameter 'status' must be one of pending, running, succeeded, "
                        "exhausted, stopped, paused, cancelled");
            return;
        }
    }
    api_job *j = job_new(api, req, API_LIST);
    if (!j) return;
    j->fstatus = dup_param(q, "status");
    j->fgroup = dup_param(q, "group");
    j->fscene = dup_param(q, "scene");
    j->fkey = dup_param(q, "idempotency_key");
    j->filter = (rd_task_filter){j->fstatus, j->fgroup, j->fscene, j->fkey, (int)limit,
                                 (uint64_t)cursor};
    submit(j);
}

/* Reports: `since` (ms, default 24 h ago) and, for top, `limit` (10). */
static void handle_report(rd_api *api, struct evhttp_request *req, struct evkeyvalq *q,
                          api_kind kind)
{
    char err[256];
    int64_t limit, since;
    int64_t day_ago = rt_now_ms() - 24LL * 3600 * 1000;
    if (query_int(q, "limit", 1, 1000, 10, &limit, err, sizeof err) ||
        query_int(q, "since", 0, INT64_MAX, day_ago, &since, err, sizeof err)) {
        reply_error(req, 400, "invalid_request", err);
        return;
    }
    api_job *j = job_new(api, req, kind);
    if (!j) return;
    j->limit = (int)limit;
    j->since = since;
    submit(j);
}

static void append_metric(struct evbuffer *b, const char *name, const char *help,
                          const char *type, uint64_t v)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name,
                        type, name, v);
}

static void handle_metrics(rd_api *api, struct evhttp_request *req)
{
    rd_metrics *m = &api->d->m;
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
#define C(field, help) append_metric(b, "retryd_" #field "_total", help, "counter", atomic_load(&m->field))
    C(tasks_ingested, "New tasks stored (Kafka and HTTP).");
    C(tasks_duplicate, "Deliveries of an idempotency key already stored.");
    C(poison, "Rejected messages kept in retry_poison.");
    C(attempts_succeeded, "Attempts answered with a success status.");
    C(attempts_failed, "Attempts that failed and may be retried.");
    C(attempts_stopped, "Attempts answered with a stop_on_status code.");
    C(tasks_succeeded, "Tasks ended succeeded.");
    C(tasks_exhausted, "Tasks ended exhausted (dead letter).");
    C(tasks_stopped, "Tasks ended stopped.");
    C(lease_takeovers, "Expired leases taken over from other nodes.");
    C(fence_conflicts, "Attempt results discarded because the fencing token moved on.");
    C(callbacks_sent, "Callbacks delivered.");
    C(callbacks_failed, "Callbacks given up after all tries.");
    C(alerts_sent, "Alerts delivered.");
    C(alerts_failed, "Alerts given up after all tries.");
    C(store_errors, "Failed MySQL operations.");
    C(breaker_opened, "Per-scene circuit breakers that opened on this node.");
    C(breaker_deferred, "Attempts deferred because their scene's breaker was open.");
    C(purged_tasks, "Succeeded tasks deleted by retention.");
    C(purged_attempts, "Attempt rows deleted by retention.");
#undef C
    append_metric(b, "retryd_inflight", "Attempts in flight on this node.", "gauge",
                  (uint64_t)atomic_load(&m->inflight));
    append_metric(b, "retryd_breakers_open", "Scenes whose breaker is open or half-open.",
                  "gauge", (uint64_t)atomic_load(&m->breakers_open));
    append_metric(b, "retryd_mysql_up", "1 when the last MySQL contact succeeded.", "gauge",
                  (uint64_t)atomic_load(&m->mysql_ok));
    append_metric(b, "retryd_kafka_up", "1 when the consumer reaches its brokers.", "gauge",
                  (uint64_t)atomic_load(&m->kafka_ok));
    evbuffer_add_printf(b, "# HELP retryd_fire_lateness_ms How late attempts start after their "
                           "due time (next_fire_at), in ms.\n# TYPE retryd_fire_lateness_ms "
                           "histogram\n");
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= RD_LATENESS_BUCKETS; i++) {
        cumulative += atomic_load(&m->lateness_bucket[i]);
        if (i < RD_LATENESS_BUCKETS)
            evbuffer_add_printf(b, "retryd_fire_lateness_ms_bucket{le=\"%" PRId64 "\"} %" PRIu64
                                   "\n",
                                RD_LATENESS_BOUNDS_MS[i], cumulative);
        else
            evbuffer_add_printf(b, "retryd_fire_lateness_ms_bucket{le=\"+Inf\"} %" PRIu64 "\n",
                                cumulative);
    }
    evbuffer_add_printf(b, "retryd_fire_lateness_ms_sum %" PRIu64 "\nretryd_fire_lateness_ms_count %" PRIu64 "\n",
                        (uint64_t)atomic_load(&m->lateness_sum_ms),
                        (uint64_t)atomic_load(&m->lateness_count));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static void handle_healthz(rd_api *api, struct evhttp_request *req)
{
    rd_daemon *d = api->d;
    int mysql = atomic_load(&d->m.mysql_ok), kafka = atomic_load(&d->m.kafka_ok);
    int stopping = atomic_load(&d->stopping);
    json_t *o = json_pack("{s:s, s:s, s:s}", "status",
                          mysql && kafka && !stopping ? "ok" : "unavailable", "mysql",
                          mysql ? "ok" : "down", "kafka", kafka ? "ok" : "down");
    if (stopping) json_object_set_new(o, "detail", json_string("shutting down"));
    reply_json(req, mysql && kafka && !stopping ? 200 : 503, o);
    json_decref(o);
}

static int authorized(rd_api *api, struct evhttp_request *req)
{
    const char *token = api->d->cfg->http_token;
    if (!token || !*token) return 1;
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!h || strncmp(h, "Bearer ", 7) != 0) return 0;
    /* Compare without an early exit so timing says nothing about the token. */
    const char *given = h + 7;
    size_t lt = strlen(token), lg = strlen(given);
    unsigned diff = (unsigned)(lt ^ lg);
    for (size_t i = 0; i < lt; i++) diff |= (unsigned)(token[i] ^ (i < lg ? given[i] : 0));
    return diff == 0;
}

static void route(struct evhttp_request *req, void *arg)
{
    rd_api *api = arg;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = evhttp_uri_get_path(uri);
    if (!path) path = "/";
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    const char *qs = evhttp_uri_get_query(uri);
    if (qs && evhttp_parse_query_str(qs, &q) != 0) {
        reply_error(req, 400, "invalid_request", "the query string is malformed");
        return;
    }
    int is_get = cmd == EVHTTP_REQ_GET, is_post = cmd == EVHTTP_REQ_POST;

    if (strcmp(path, "/healthz") == 0) {
        if (is_get) handle_healthz(api, req);
        else reply_error(req, 405, "method_not_allowed", "use GET");
        goto out;
    }
    if (strcmp(path, "/metrics") == 0) {
        if (is_get) handle_metrics(api, req);
        else reply_error(req, 405, "method_not_allowed", "use GET");
        goto out;
    }
    if (strncmp(path, "/api/", 5) == 0 && !authorized(api, req)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
        reply_error(req, 401, "unauthorized", "missing or wrong 'Authorization: Bearer' token");
        goto out;
    }
    static const char tasks[] = "/api/v1/tasks";
    if (strcmp(path, tasks) == 0) {
        if (is_post) handle_post_task(api, req);
        else if (is_get) handle_list(api, req, &q);
        else reply_error(req, 405, "method_not_allowed", "use GET or POST");
        goto out;
    }
    if (strncmp(path, tasks, sizeof tasks - 1) == 0 && path[sizeof tasks - 1] == '/') {
        const char *idp = path + sizeof tasks;
        const char *slash = strchr(idp, '/');
        size_t idlen = slash ? (size_t)(slash - idp) : strlen(idp);
        uint64_t id;
        if (parse_u64(idp, idlen, &id) != 0) {
            reply_error(req, 404, "not_found", "task ids are positive integers");
            goto out;
        }
        const char *sub = slash ? slash + 1 : NULL;
        if (!sub) {
            if (!is_get) {
                reply_error(req, 405, "method_not_allowed", "use GET");
                goto out;
            }
            api_job *j = job_new(api, req, API_GET_TASK);
            if (j) {
                j->id = id;
                submit(j);
            }
            goto out;
        }
        if (strcmp(sub, "attempts") == 0) {
            if (!is_get) {
                reply_error(req, 405, "method_not_allowed", "use GET");
                goto out;
            }
            api_job *j = job_new(api, req, API_ATTEMPTS);
            if (j) {
                j->id = id;
                submit(j);
            }
            goto out;
        }
        if (strcmp(sub, "replay") == 0 || strcmp(sub, "pause") == 0 ||
            strcmp(sub, "resume") == 0 || strcmp(sub, "cancel") == 0) {
            if (!is_post) {
                reply_error(req, 405, "method_not_allowed", "use POST");
                goto out;
            }
            api_job *j = job_new(api, req, API_ACTION);
            if (j) {
                j->id = id;
                snprintf(j->action, sizeof j->action, "%s", sub);
                submit(j);
            }
            goto out;
        }
        reply_error(req, 404, "not_found", "no such task resource");
        goto out;
    }
    int is_top = strcmp(path, "/api/v1/reports/top") == 0;
    if (is_top || strcmp(path, "/api/v1/reports/summary") == 0) {
        if (is_get) handle_report(api, req, &q, is_top ? API_TOP : API_SUMMARY);
        else reply_error(req, 405, "method_not_allowed", "use GET");
        goto out;
    }
    if (strcmp(path, "/api/v1/nodes") == 0) {
        api_job *j = is_get ? job_new(api, req, API_NODES) : NULL;
        if (j) submit(j);
        else if (!is_get) reply_error(req, 405, "method_not_allowed", "use GET");
        goto out;
    }
    reply_error(req, 404, "not_found", "no such path; see docs/api.md");
out:
    evhttp_clear_headers(&q);
}

/* The health probe: a MySQL ping through the store pool every 2 s so that
 * /healthz answers from memory and never waits on the database. */
static void ping_done(rd_daemon *d, rd_job *job)
{
    d->health_busy = 0;
    api_job_free((api_job *)job);
}

static void on_health_timer(evutil_socket_t fd, short what, void *arg)
{
    rd_api *api = arg;
    rd_daemon *d = api->d;
    if (d->health_busy || atomic_load(&d->stopping)) return;
    api_job *j = job_new(api, NULL, API_PING);
    if (!j) return;
    j->job.done = ping_done;
    d->health_busy = 1;
    rd_workq_submit(d->wq, &j->job);
}

int rd_api_start(rd_daemon *d, rd_api **out, char *err, size_t errsz)
{
    const char *listen = d->cfg->http_listen;
    const char *colon = strrchr(listen, ':');
    if (!colon) {
        snprintf(err, errsz, "[http] listen '%s': expected host:port", listen);
        return -1;
    }
    char host[256];
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    int port = atoi(colon + 1);
    rd_api *api = calloc(1, sizeof *api);
    if (!api) {
        snprintf(err, errsz, "http: out of memory");
        return -1;
    }
    api->d = d;
    api->http = evhttp_new(d->base);
    if (!api->http) {
        free(api);
        snprintf(err, errsz, "evhttp_new failed");
        return -1;
    }
    evhttp_set_max_body_size(api->http, RT_TASK_MAX_BYTES + 1);
    evhttp_set_timeout(api->http, 30);
    evhttp_set_allowed_methods(api->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                              EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(api->http, route, api);
    if (evhttp_bind_socket(api->http, host, (ev_uint16_t)port) != 0) {
        snprintf(err, errsz, "[http] listen %s: cannot bind (in use, or bad address)", listen);
        evhttp_free(api->http);
        free(api);
        return -1;
    }
    d->health_timer = event_new(d->base, -1, EV_PERSIST, on_health_timer, api);
    struct timeval tv = {2, 0};
    if (d->health_timer) event_add(d->health_timer, &tv);
    on_health_timer(-1, 0, api);
    LOG_INFO("http", "listening on %s", listen);
    *out = api;
    return 0;
}

void rd_api_free(rd_api *api)
{
    if (!api) return;
    evhttp_free(api->http);
    free(api);
}
