/*
 * dispatcher.c: one HTTP attempt per claimed task (see dispatcher.h).
 *
 * Life of an attempt (all on the loop thread except the store job's run):
 *   start: decode the stored payload, resolve the policy (config.h), build
 *          the libcurl request with the Idempotency-Key / X-Retry-* headers;
 *   done:  judge the answer (decide.h), then a store job writes the attempt
 *          row and the task's new state fenced by the claim's token;
 *   after: notify (callback/alert) when the task ended; free.
 * A store write that fails is retried a few times while the lease lasts;
 * after that the task stays 'running' until its lease expires and another
 * claim (by any node) runs the same attempt number again: at-least-once.
 *
 * Leases: every lease_ms / 3 a store job extends the lease of every task this
 * node is still working on (transfer running or result not yet written), so
 * an attempt longer than lease_ms is not taken over while it runs. If this
 * node claims a task it is already working on (its renewal failed and the
 * lease expired), no second request is sent: the running attempt adopts the
 * new fencing token.
 */
#include "dispatcher.h"

#include <event2/event.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "breaker.h"
#include "decide.h"
#include "httpc.h"
#include "jsonptr.h"
#include "log.h"
#include "notify.h"
#include "scheduler.h"
#include "utf8.h"
#include "workq.h"

#define RECORD_RETRIES 5
#define RECORD_RETRY_DELAY_MS 1000
#define ERROR_BODY_BYTES 200
/* Most of a response body kept when the scene has a stop_on_body rule. */
#define RULE_BODY_BYTES (64 * 1024)

typedef struct attempt attempt;

struct rd_dispatcher {
    rd_daemon *d;
    attempt *all;            /* every attempt from start until finish */
    int inflight;            /* started, not yet recorded */
    rt_rng rng;
    struct event *renew_timer;
    int renew_busy;
    rd_breakers *breakers;   /* per-scene circuit breakers */
    struct scene_load *loads;/* attempts in flight per scene (for [scene] max_inflight) */
};

/* Attempts of one scene in flight on this node. A short list: a node runs
 * tens or hundreds of scenes. */
typedef struct scene_load {
    struct scene_load *next;
    char *scene;
    int inflight;
} scene_load;

static scene_load *load_get(rd_dispatcher *disp, const char *scene)
{
    scene_load *l = disp->loads;
    while (l && strcmp(l->scene, scene) != 0) l = l->next;
    if (l) return l;
    l = calloc(1, sizeof *l);
    if (!l || !(l->scene = strdup(scene))) {
        free(l);
        return NULL;
    }
    l->next = disp->loads;
    disp->loads = l;
    return l;
}

struct attempt {
    rd_job job;              /* first member: the store job */
    rd_dispatcher *disp;
    attempt *prev, *next;    /* in disp->all */
    int transfer_running;
    scene_load *load;        /* counted in this scene's load until finish() */
    rd_claimed c;
    rt_task task;
    int task_ok;             /* task decoded */
    rt_policy policy;
    CURL *easy;
    struct curl_slist *headers;
    char curl_err[CURL_ERROR_SIZE];
    char body_head[ERROR_BODY_BYTES + 1];
    size_t body_len;
    const rd_scene_conf *scene;  /* the task's [scene:NAME], or NULL */
    char *rule_body;             /* RULE_BODY_BYTES + 1, when the scene has a body rule */
    size_t rule_body_len;
    int64_t started_mono;
    rd_attempt_result r;
    char error[1024];
    int record_tries;
    int release_only;        /* shutdown: give the task back */
    struct event *retry_timer;
};

static void attempt_free(attempt *a)
{
    if (a->easy) curl_easy_cleanup(a->easy);
    curl_slist_free_all(a->headers);
    if (a->retry_timer) event_free(a->retry_timer);
    if (a->task_ok) rt_task_free(&a->task);
    free(a->c.payload);
    free(a->rule_body);
    free(a);
}

static void list_remove(rd_dispatcher *disp, attempt *a)
{
    if (a->prev)
        a->prev->next = a->next;
    else if (disp->all == a)
        disp->all = a->next;
    if (a->next) a->next->prev = a->prev;
    a->prev = a->next = NULL;
}

static void list_add(rd_dispatcher *disp, attempt *a)
{
    a->prev = NULL;
    a->next = disp->all;
    if (disp->all) disp->all->prev = a;
    disp->all = a;
}

/* ---- lease renewal ------------------------------------------------------- */

typedef struct renew_job {
    rd_job job;
    rd_dispatcher *disp;
    uint64_t *ids, *fences;
    size_t n, renewed;
} renew_job;

static int renew_run(rd_store *s, rd_job *job)
{
    renew_job *rj = (renew_job *)job;
    int64_t lease_until = rt_now_ms() + rj->disp->d->cfg->lease_ms;
    return rd_store_renew(s, rj->ids, rj->fences, rj->n, lease_until, &rj->renewed, job->err,
                          sizeof job->err);
}

static void renew_done(rd_daemon *d, rd_job *job)
{
    renew_job *rj = (renew_job *)job;
    rj->disp->renew_busy = 0;
    if (job->rc)
        LOG_ERROR("sched", "renewing %zu lease(s) failed: %s", rj->n, job->err);
    else
        LOG_DEBUG("sched", "renewed %zu of %zu lease(s)", rj->renewed, rj->n);
    free(rj->ids);
    free(rj->fences);
    free(rj);
}

static void on_renew_timer(evutil_socket_t fd, short what, void *arg)
{
    rd_dispatcher *disp = arg;
    if (disp->renew_busy || !disp->all) return;
    size_t n = 0;
    for (attempt *a = disp->all; a; a = a->next) n++;
    renew_job *rj = calloc(1, sizeof *rj);
    if (rj) {
        rj->ids = malloc(n * sizeof *rj->ids);
        rj->fences = malloc(n * sizeof *rj->fences);
    }
    if (!rj || !rj->ids || !rj->fences) {
        if (rj) {
            free(rj->ids);
            free(rj->fences);
            free(rj);
        }
        LOG_ERROR("sched", "lease renewal: out of memory");
        return;
    }
    for (attempt *a = disp->all; a; a = a->next) {
        rj->ids[rj->n] = a->c.id;
        rj->fences[rj->n] = a->c.fence;
        rj->n++;
    }
    rj->disp = disp;
    rj->job.run = renew_run;
    rj->job.done = renew_done;
    disp->renew_busy = 1;
    rd_workq_submit_urgent(disp->d->wq, &rj->job);
}

rd_dispatcher *rd_dispatcher_new(rd_daemon *d)
{
    rd_dispatcher *disp = calloc(1, sizeof *disp);
    if (!disp) return NULL;
    disp->d = d;
    rt_rng_seed(&disp->rng, (uint64_t)rt_mono_ns() ^ (uint64_t)rt_now_ms());
    disp->renew_timer = event_new(d->base, -1, EV_PERSIST, on_renew_timer, disp);
    disp->breakers = rd_breakers_new();
    if (!disp->renew_timer || !disp->breakers) {
        if (disp->renew_timer) event_free(disp->renew_timer);
        rd_breakers_free(disp->breakers);
        free(disp);
        return NULL;
    }
    int64_t every = d->cfg->lease_ms / 3;
    struct timeval tv = {(time_t)(every / 1000), (suseconds_t)((every % 1000) * 1000)};
    event_add(disp->renew_timer, &tv);
    return disp;
}

int rd_dispatcher_inflight(const rd_dispatcher *disp)
{
    return disp->inflight;
}

size_t rd_dispatcher_saturated(rd_dispatcher *disp, char ***out)
{
    *out = NULL;
    size_t n = 0;
    for (scene_load *l = disp->loads; l; l = l->next) {
        const rd_scene_conf *sc = rd_config_scene(disp->d->cfg, l->scene);
        if (!sc || sc->max_inflight <= 0 || l->inflight < sc->max_inflight) continue;
        char **grown = realloc(*out, (n + 1) * sizeof *grown);
        char *copy = grown ? strdup(l->scene) : NULL;
        if (grown) *out = grown;
        if (!copy) break; /* out of memory: claim without this exclusion */
        (*out)[n++] = copy;
    }
    return n;
}

static rd_breaker_conf breaker_conf(const rd_config *c)
{
    rd_breaker_conf bc = {c->breaker_failure_ratio, c->breaker_window, c->breaker_min_attempts,
                          c->breaker_cooldown_ms};
    return bc;
}

/* ---- recording ----------------------------------------------------------- */

static int record_run(rd_store *s, rd_job *job)
{
    attempt *a = (attempt *)job;
    if (a->release_only)
        return rd_store_release(s, a->c.id, a->c.fence, rt_now_ms(), job->err, sizeof job->err);
    return rd_store_record(s, &a->r, rt_now_ms(), job->err, sizeof job->err);
}

static void record_done(rd_daemon *d, rd_job *job);

static void record_retry(evutil_socket_t fd, short what, void *arg)
{
    attempt *a = arg;
    rd_workq_submit(a->disp->d->wq, &a->job);
}

static void finish(attempt *a)
{
    if (a->load) {
        a->load->inflight--;
        /* A scene that was saturated has room again: claim its waiting tasks. */
        if (a->scene && a->scene->max_inflight > 0 &&
            a->load->inflight == a->scene->max_inflight - 1)
            rd_scheduler_wake_at(a->disp->d->sched, rt_now_ms());
    }
    list_remove(a->disp, a);
    a->disp->inflight--;
    atomic_fetch_sub(&a->disp->d->m.inflight, 1);
    rd_dispatcher *disp = a->disp;
    attempt_free(a);
    rd_scheduler_attempt_done(disp->d->sched);
}

static void record_done(rd_daemon *d, rd_job *job)
{
    attempt *a = (attempt *)job;
    uint64_t id = a->c.id;
    if (job->rc == RD_STORE_CONFLICT) {
        atomic_fetch_add(&d->m.fence_conflicts, 1);
        LOG_WARN("sched", "task %" PRIu64 ": %s", id, job->err);
        finish(a);
        return;
    }
    if (job->rc != RD_STORE_OK) {
        if (++a->record_tries < RECORD_RETRIES && !atomic_load(&d->stopping)) {
            LOG_ERROR("mysql", "task %" PRIu64 ": writing attempt %d failed (try %d of %d): %s",
                      id, a->r.attempt, a->record_tries, RECORD_RETRIES, job->err);
            if (!a->retry_timer) a->retry_timer = evtimer_new(d->base, record_retry, a);
            struct timeval tv = {RECORD_RETRY_DELAY_MS / 1000, 0};
            if (a->retry_timer && evtimer_add(a->retry_timer, &tv) == 0) return;
        }
        LOG_ERROR("mysql",
                  "task %" PRIu64 ": %s of attempt %d not written (%s); the task stays "
                  "'running' until its lease expires, then it is claimed and attempted again",
                  id, a->release_only ? "release" : "result", a->r.attempt, job->err);
        finish(a);
        return;
    }
    if (a->release_only) {
        LOG_INFO("sched", "task %" PRIu64 ": released to pending (shutdown)", id);
        finish(a);
        return;
    }
    const char *st = a->r.new_status;
    if (strcmp(st, "pending") == 0 && a->r.no_attempt) {
        rd_scheduler_wake_at(d->sched, a->r.next_fire_at);
        LOG_DEBUG("sched", "task %" PRIu64 " deferred: %s", id, a->r.error);
    } else if (strcmp(st, "pending") == 0) {
        rd_scheduler_wake_at(d->sched, a->r.next_fire_at);
        LOG_INFO("sched", "task %" PRIu64 " attempt %d %s (%s); next in %" PRId64 " ms", id,
                 a->r.attempt, a->r.outcome, a->r.error ? a->r.error : "no error",
                 a->r.last_delay_ms);
    } else {
        LOG_INFO("sched", "task %" PRIu64 " attempt %d %s; task %s", id, a->r.attempt,
                 a->r.outcome, st);
        if (strcmp(st, "succeeded") == 0) atomic_fetch_add(&d->m.tasks_succeeded, 1);
        if (strcmp(st, "exhausted") == 0) atomic_fetch_add(&d->m.tasks_exhausted, 1);
        if (strcmp(st, "stopped") == 0) atomic_fetch_add(&d->m.tasks_stopped, 1);
        if (a->task_ok) {
            rd_task_end e = {.id = id,
                             .task = &a->task,
                             .event = st,
                             .attempts = a->r.attempts,
                             .last_status = a->r.http_status,
                             .last_error = a->r.error};
            rd_notify_task_ended(d->notify, &e);
        }
    }
    finish(a);
}

static void submit_record(attempt *a)
{
    a->job.run = record_run;
    a->job.done = record_done;
    rd_workq_submit(a->disp->d->wq, &a->job);
}

/* ---- transfer ------------------------------------------------------------ */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    attempt *a = userdata;
    size_t n = size * nmemb;
    if (a->body_len < ERROR_BODY_BYTES) {
        size_t take = ERROR_BODY_BYTES - a->body_len;
        if (take > n) take = n;
        memcpy(a->body_head + a->body_len, ptr, take);
        a->body_len += take;
        a->body_head[a->body_len] = '\0';
    }
    if (a->rule_body && a->rule_body_len < RULE_BODY_BYTES) {
        size_t take = RULE_BODY_BYTES - a->rule_body_len;
        if (take > n) take = n;
        memcpy(a->rule_body + a->rule_body_len, ptr, take);
        a->rule_body_len += take;
    }
    return n;
}

/* The scene's stop_on_body rule: does the value at the pointer equal one of
 * the configured values? A body that is not JSON, or too long to have been
 * kept whole, does not match. */
static int body_matches_stop_rule(const attempt *a)
{
    const rd_scene_conf *sc = a->scene;
    if (!sc || !sc->stop_on_body_pointer || !a->rule_body || a->rule_body_len >= RULE_BODY_BYTES)
        return 0;
    json_t *doc = json_loadb(a->rule_body, a->rule_body_len, 0, NULL);
    if (!doc) return 0;
    int match = 0;
    char text[256];
    json_t *v = rt_jsonptr_get(doc, sc->stop_on_body_pointer);
    if (v && rt_json_scalar_text(v, text, sizeof text) == 0)
        for (size_t i = 0; i < sc->nstop_on_body_values && !match; i++)
            match = strcmp(text, sc->stop_on_body_values[i]) == 0;
    json_decref(doc);
    return match;
}

static void on_transfer_done(void *arg, CURL *easy, CURLcode result, long status)
{
    attempt *a = arg;
    rd_dispatcher *disp = a->disp;
    rd_daemon *d = disp->d;
    a->transfer_running = 0;
    int responded = result == CURLE_OK && status > 0;
    int64_t now = rt_now_ms();
    a->r.duration_ms = (int)(rt_mono_ms() - a->started_mono);
    rd_answer ans = {responded, status, -1, responded && body_matches_stop_rule(a)};
    curl_off_t retry_after_s = 0;
    /* curl parses both forms of Retry-After (delay-seconds and HTTP-date). */
    if (responded && curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &retry_after_s) == CURLE_OK &&
        retry_after_s > 0)
        ans.retry_after_ms = (int64_t)retry_after_s * 1000;
    rd_decision dec;
    rd_decide(&a->policy, &a->task.target, &ans, a->r.attempts, now, a->c.last_delay_ms,
              &disp->rng, &dec);
    a->r.outcome = dec.outcome;
    a->r.new_status = dec.status;
    a->r.next_fire_at = dec.next_fire_at;
    a->r.last_delay_ms = dec.delay_ms;
    a->r.http_status = responded ? (int)status : 0;
    /* The error text goes to utf8mb4 columns and JSON bodies: whatever the
     * target sent must be made valid UTF-8 first, or the write would fail. */
    char raw[sizeof a->error];
    if (!responded) {
        snprintf(raw, sizeof raw, "%s: %s", curl_easy_strerror(result),
                 a->curl_err[0] ? a->curl_err : "no detail");
        rt_utf8_sanitize(raw, strlen(raw), a->error, sizeof a->error);
        a->r.error = a->error;
    } else if (strcmp(dec.outcome, "succeeded") != 0) {
        /* Keep the head of the answer: it usually says why. */
        int n = ans.body_stop ? snprintf(raw, sizeof raw, "HTTP %ld, body %s matched "
                                                           "stop_on_body_values: ",
                                         status, a->scene->stop_on_body_pointer)
                              : snprintf(raw, sizeof raw, "HTTP %ld: ", status);
        if (n < 0 || (size_t)n >= sizeof raw) n = 0;
        size_t room = sizeof raw - (size_t)n - 1;
        size_t take = a->body_len < room ? a->body_len : room;
        memcpy(raw + n, a->body_head, take);
        rt_utf8_sanitize(raw, (size_t)n + take, a->error, sizeof a->error);
        a->r.error = a->error;
    }
    rd_breaker_conf bc = breaker_conf(d->cfg);
    int64_t open_until;
    double ratio;
    if (rd_breaker_record(disp->breakers, &bc, a->task.scene, strcmp(dec.outcome, "failed") == 0,
                          now, &open_until, &ratio)) {
        atomic_fetch_add(&d->m.breaker_opened, 1);
        LOG_WARN("sched", "circuit breaker for scene %s opened: %.0f%% of its recent attempts "
                 "failed; no attempts for %" PRId64 " ms", a->task.scene, ratio * 100,
                 d->cfg->breaker_cooldown_ms);
        rd_notify_circuit_open(d->notify, a->task.scene, ratio, open_until);
    }
    atomic_store(&d->m.breakers_open, rd_breakers_open(disp->breakers, now));
    if (strcmp(dec.outcome, "succeeded") == 0) atomic_fetch_add(&d->m.attempts_succeeded, 1);
    else if (strcmp(dec.outcome, "stopped") == 0) atomic_fetch_add(&d->m.attempts_stopped, 1);
    else atomic_fetch_add(&d->m.attempts_failed, 1);
    submit_record(a);
}

/* The fixed request body of a dispatch target (docs/wire-format.md):
 * {"task_id","group","scene","idempotency_key","attempt","args"}. args is
 * spliced in as the stored text, so the endpoint receives exactly what the
 * client shipped. malloc'd; NULL when out of memory. */
static char *dispatch_body(const attempt *a, size_t *len)
{
    json_t *o = json_pack("{s:I,s:s,s:s,s:s,s:i}", "task_id", (json_int_t)a->c.id, "group",
                          a->task.group, "scene", a->task.scene, "idempotency_key",
                          a->task.idempotency_key, "attempt", a->r.attempt);
    char *head = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!head) return NULL;
    const char *args = a->task.target.args ? a->task.target.args : "null";
    size_t hl = strlen(head) - 1; /* without the closing brace */
    size_t n = hl + strlen(",\"args\":") + strlen(args) + 1;
    char *body = malloc(n + 1);
    if (body) {
        snprintf(body, n + 1, "%.*s,\"args\":%s}", (int)hl, head, args);
        *len = n;
    }
    free(head);
    return body;
}

static int build_request(attempt *a, char *err, size_t errsz)
{
    const rt_http_target *t = &a->task.target;
    CURL *e = a->easy = curl_easy_init();
    if (!e) {
        snprintf(err, errsz, "curl_easy_init failed");
        return -1;
    }
    struct curl_slist *h = NULL;
    for (size_t i = 0; i < t->nheaders; i++) {
        char *hl = NULL;
        size_t len = strlen(t->headers[i].name) + strlen(t->headers[i].value) + 3;
        hl = malloc(len);
        if (!hl) goto oom;
        snprintf(hl, len, "%s: %s", t->headers[i].name, t->headers[i].value);
        struct curl_slist *nh = curl_slist_append(h, hl);
        free(hl);
        if (!nh) goto oom;
        h = nh;
    }
    const char *extra[4];
    char idem[RT_IDEMPOTENCY_KEY_MAX + 32], tid[64], att[48], trace[192];
    snprintf(idem, sizeof idem, "Idempotency-Key: %s", a->task.idempotency_key);
    snprintf(tid, sizeof tid, "X-Retry-Task-Id: %" PRIu64, a->c.id);
    snprintf(att, sizeof att, "X-Retry-Attempt: %d", a->r.attempt);
    extra[0] = idem;
    extra[1] = tid;
    extra[2] = att;
    extra[3] = NULL;
    if (a->task.trace_id) {
        snprintf(trace, sizeof trace, "X-Retry-Trace-Id: %s", a->task.trace_id);
        extra[3] = trace;
    }
    for (int i = 0; i < 4; i++) {
        if (!extra[i]) continue;
        struct curl_slist *nh = curl_slist_append(h, extra[i]);
        if (!nh) goto oom;
        h = nh;
    }
    if (t->type == RT_TARGET_DISPATCH) {
        /* A dispatch is a POST of a fixed JSON shape to the client's
         * endpoint, with [dispatch] token as a bearer token when set. */
        const char *tok = a->disp->d->cfg->dispatch_token;
        char *auth = NULL;
        if (tok) {
            size_t n = strlen("Authorization: Bearer ") + strlen(tok) + 1;
            if (!(auth = malloc(n))) goto oom;
            snprintf(auth, n, "Authorization: Bearer %s", tok);
        }
        struct curl_slist *nh = curl_slist_append(h, "Content-Type: application/json");
        if (nh) h = nh;
        if (nh && auth) {
            nh = curl_slist_append(h, auth);
            if (nh) h = nh;
        }
        if (auth) {
            memset(auth, 0, strlen(auth));
            free(auth);
        }
        if (!nh) goto oom;
    }
    /* No "Expect: 100-continue" round trip for bodies. */
    struct curl_slist *nh = curl_slist_append(h, "Expect:");
    if (!nh) goto oom;
    h = nh;
    a->headers = h;

    curl_easy_setopt(e, CURLOPT_URL, t->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, a->headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)t->timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, a->curl_err);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "retryd/" RETRYD_VERSION);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (t->type == RT_TARGET_DISPATCH) {
        size_t len = 0;
        char *body = dispatch_body(a, &len);
        if (!body) {
            snprintf(err, errsz, "out of memory building the dispatch body");
            return -1; /* a->headers and a->easy are freed with the attempt */
        }
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)len);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body); /* curl keeps a copy */
        free(body);
    } else if (strcmp(t->method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        if (strcmp(t->method, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, t->method);
        if (t->body || strcmp(t->method, "DELETE") != 0) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)(t->body ? strlen(t->body) : 0));
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body ? t->body : "");
        }
    }
    return 0;
oom:
    curl_slist_free_all(h);
    snprintf(err, errsz, "out of memory building the request");
    return -1;
}

static attempt *find(rd_dispatcher *disp, uint64_t id)
{
    for (attempt *a = disp->all; a; a = a->next)
        if (a->c.id == id) return a;
    return NULL;
}

/* Lateness of a fire: how long after its due time an attempt started. */
static void record_lateness(rd_metrics *m, int64_t late_ms)
{
    if (late_ms < 0) late_ms = 0;
    size_t i = 0;
    while (i < RD_LATENESS_BUCKETS && late_ms > RD_LATENESS_BOUNDS_MS[i]) i++;
    atomic_fetch_add(&m->lateness_bucket[i], 1);
    atomic_fetch_add(&m->lateness_sum_ms, (uint64_t)late_ms);
    atomic_fetch_add(&m->lateness_count, 1);
}

/* Ends a claim without sending a request (deadline passed, scene saturated,
 * breaker open): the task goes to `status` with next_fire_at, keeping its
 * attempt counts and last_status; a->error says why. */
static void end_without_attempt(attempt *a, const char *status, int64_t next_fire_at)
{
    a->r.no_attempt = 1;
    a->r.attempt = a->c.attempt_seq;
    a->r.attempts = a->c.attempts;
    a->r.outcome = "failed";
    a->r.new_status = status;
    a->r.error = a->error;
    a->r.next_fire_at = next_fire_at;
    a->r.last_delay_ms = a->c.last_delay_ms;
    submit_record(a);
}

/* A new attempt for a claimed task, counted in flight and listed (so that
 * its lease is renewed) until finish(). Takes c->payload. NULL when out of
 * memory: the task then stays claimed until its lease expires (logged). */
static attempt *attempt_new(rd_dispatcher *disp, rd_claimed *c)
{
    attempt *a = calloc(1, sizeof *a);
    if (!a) {
        LOG_ERROR("sched", "task %" PRIu64 ": out of memory; it is retried after its lease",
                  c->id);
        return NULL;
    }
    a->disp = disp;
    a->c = *c;
    c->payload = NULL;
    disp->inflight++;
    atomic_fetch_add(&disp->d->m.inflight, 1);
    list_add(disp, a);
    return a;
}

void rd_dispatcher_release(rd_dispatcher *disp, rd_claimed *c)
{
    attempt *a = attempt_new(disp, c);
    if (!a) return;
    a->release_only = 1;
    submit_record(a);
}

void rd_dispatcher_start(rd_dispatcher *disp, rd_claimed *c)
{
    rd_daemon *d = disp->d;
    attempt *running = find(disp, c->id);
    if (running && !running->transfer_running) {
        /* Its result is being written with the old token (a worker reads it
         * now, so it cannot change): that write will conflict, and the task
         * is attempted again once this new claim's lease expires. */
        LOG_WARN("sched", "task %" PRIu64 ": re-claimed while attempt %d's result is being "
                 "written; it runs again after the lease", c->id, running->r.attempt);
        return;
    }
    if (running) {
        /* Our own lease expired (renewal failed) and this node claimed the
         * task again: keep the one request in flight, with the new token. */
        LOG_WARN("sched", "task %" PRIu64 ": re-claimed while attempt %d runs here; the "
                 "running attempt adopts fence %" PRIu64,
                 c->id, running->r.attempt, c->fence);
        running->c.fence = c->fence;
        running->r.fence = c->fence;
        return;
    }
    attempt *a = attempt_new(disp, c);
    if (!a) return;
    a->r.task_id = a->c.id;
    a->r.fence = a->c.fence;
    a->r.attempt = a->c.attempt_seq + 1;
    a->r.attempts = a->c.attempts + 1;
    a->r.node = d->cfg->node_id;
    a->r.due_at = a->c.next_fire_at;
    a->r.started_at = rt_now_ms();
    a->started_mono = rt_mono_ms();
    record_lateness(&d->m, a->r.started_at - a->c.next_fire_at);

    char err[512];
    if (rt_task_decode(a->c.payload, strlen(a->c.payload), &a->task, err, sizeof err) != 0) {
        /* Only possible if someone edited the row by hand: stop the task with
         * the reason rather than retrying it forever. */
        LOG_ERROR("sched", "task %" PRIu64 ": stored payload does not decode: %s", a->c.id, err);
        snprintf(a->error, sizeof a->error, "stored payload does not decode: %s", err);
        a->r.group = "-";
        a->r.scene = "-";
        a->r.outcome = "stopped";
        a->r.new_status = "stopped";
        a->r.error = a->error;
        a->r.next_fire_at = a->r.started_at;
        submit_record(a);
        return;
    }
    a->task_ok = 1;
    a->r.group = a->task.group;
    a->r.scene = a->task.scene;
    rd_config_resolve_policy(d->cfg, a->task.scene, &a->task.policy, &a->policy);
    a->scene = rd_config_scene(d->cfg, a->task.scene);
    if (a->scene && a->scene->stop_on_body_pointer) {
        a->rule_body = malloc(RULE_BODY_BYTES + 1);
        if (!a->rule_body)
            LOG_WARN("sched", "task %" PRIu64 ": out of memory for the body rule; the answer "
                     "is judged by its status only", a->c.id);
    }
    /* The task row carries the max_attempts resolved at ingest; the config
     * may have changed since, but a task keeps the promise it was given. */
    a->policy.max_attempts = a->c.max_attempts;
    if (a->c.deadline > 0) {
        a->policy.deadline = a->c.deadline;
        a->policy.set |= RT_POL_DEADLINE;
        if (a->r.started_at > a->c.deadline) {
            /* DESIGN.md: past its deadline a task is exhausted; do not fire. */
            snprintf(a->error, sizeof a->error,
                     "deadline %" PRId64 " passed before attempt %d could start", a->c.deadline,
                     a->r.attempt);
            end_without_attempt(a, "exhausted", a->r.started_at);
            return;
        }
    }

    scene_load *load = load_get(disp, a->task.scene);
    if (load && a->scene && a->scene->max_inflight > 0 && load->inflight >= a->scene->max_inflight) {
        /* The claim took more of this scene than it has room for: give the
         * task back, still due. Claims leave the scene out while it is
         * saturated, and finish() wakes the scheduler when room returns. */
        snprintf(a->error, sizeof a->error, "scene %s has %d attempt(s) in flight (max_inflight)",
                 a->task.scene, load->inflight);
        end_without_attempt(a, "pending", a->r.started_at);
        return;
    }
    rd_breaker_conf bc = breaker_conf(d->cfg);
    int64_t retry_at;
    if (!rd_breaker_allow(disp->breakers, &bc, a->task.scene, a->r.started_at, &retry_at)) {
        /* The scene's breaker is open: push the task back past the
         * cool-down, spread over a tenth of it so the reopened scene is not
         * hit by every deferred task at once. */
        int64_t spread = d->cfg->breaker_cooldown_ms / 10;
        int64_t next = retry_at + (spread > 0 ? rt_rng_range(&disp->rng, 0, spread) : 0);
        snprintf(a->error, sizeof a->error,
                 "circuit breaker open for scene %s; deferred to %" PRId64, a->task.scene, next);
        atomic_fetch_add(&d->m.breaker_deferred, 1);
        end_without_attempt(a, "pending", next);
        return;
    }
    if (build_request(a, err, sizeof err) != 0 ||
        rd_httpc_start(d->httpc, a->easy, on_transfer_done, a) != 0) {
        LOG_ERROR("sched", "task %" PRIu64 ": cannot start the request (%s); releasing it",
                  a->c.id, err);
        /* Report it to the breaker, so that a half-open probe is not left
         * outstanding forever. */
        int64_t ou;
        double rt;
        if (rd_breaker_record(disp->breakers, &bc, a->task.scene, 1, rt_now_ms(), &ou, &rt))
            rd_notify_circuit_open(d->notify, a->task.scene, rt, ou);
        a->release_only = 1;
        submit_record(a);
        return;
    }
    a->transfer_running = 1;
    a->load = load;
    if (load) load->inflight++;
    LOG_DEBUG("sched", "task %" PRIu64 " attempt %d: %s %s", a->c.id, a->r.attempt,
              a->task.target.method, a->task.target.url);
}

void rd_dispatcher_abort_all(rd_dispatcher *disp)
{
    for (attempt *a = disp->all; a; a = a->next) {
        if (!a->transfer_running) continue;
        a->transfer_running = 0;
        rd_httpc_abort(disp->d->httpc, a->easy);
        LOG_NOTICE("sched", "task %" PRIu64 ": attempt %d aborted by shutdown; releasing",
                   a->c.id, a->r.attempt);
        a->release_only = 1;
        submit_record(a);
    }
}

void rd_dispatcher_free(rd_dispatcher *disp)
{
    if (!disp) return;
    event_free(disp->renew_timer);
    rd_breakers_free(disp->breakers);
    while (disp->loads) {
        scene_load *l = disp->loads;
        disp->loads = l->next;
        free(l->scene);
        free(l);
    }
    free(disp);
}
