/*
 * notify.c: callbacks and alerts (see notify.h for the contract).
 */
#include "notify.h"

#include <event2/event.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "httpc.h"
#include "log.h"

typedef struct delivery delivery;

struct rd_notify {
    rd_daemon *d;
    delivery *all;           /* every delivery not finished */
    int pending;
};

struct delivery {
    rd_notify *n;
    delivery *prev, *next;
    int is_alert;
    char *url;
    char *body;
    char event_header[64];
    uint64_t task_id;
    int tries;
    CURL *easy;
    struct curl_slist *headers;
    struct event *timer;
    char curl_err[CURL_ERROR_SIZE];
};

rd_notify *rd_notify_new(rd_daemon *d)
{
    rd_notify *n = calloc(1, sizeof *n);
    if (n) n->d = d;
    return n;
}

int rd_notify_pending(const rd_notify *n)
{
    return n->pending;
}

static const char *kind(const delivery *dl)
{
    return dl->is_alert ? "alert" : "callback";
}

static void delivery_free(delivery *dl)
{
    rd_notify *n = dl->n;
    if (dl->prev)
        dl->prev->next = dl->next;
    else
        n->all = dl->next;
    if (dl->next) dl->next->prev = dl->prev;
    n->pending--;
    if (dl->easy) {
        rd_httpc_abort(n->d->httpc, dl->easy);
        curl_easy_cleanup(dl->easy);
    }
    curl_slist_free_all(dl->headers);
    if (dl->timer) event_free(dl->timer);
    free(dl->url);
    free(dl->body);
    free(dl);
}

static void send_now(delivery *dl);

static void on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
    send_now(arg);
}

static size_t discard(char *p, size_t s, size_t nm, void *u)
{
    return s * nm;
}

static void on_sent(void *arg, CURL *easy, CURLcode result, long status)
{
    delivery *dl = arg;
    rd_daemon *d = dl->n->d;
    curl_easy_cleanup(easy);
    dl->easy = NULL;
    if (result == CURLE_OK && status >= 200 && status <= 299) {
        LOG_INFO("notify", "task %" PRIu64 ": %s %s delivered to %s", dl->task_id, kind(dl),
                 dl->event_header + 15, dl->url);
        atomic_fetch_add(dl->is_alert ? &d->m.alerts_sent : &d->m.callbacks_sent, 1);
        delivery_free(dl);
        return;
    }
    char why[CURL_ERROR_SIZE + 64];
    if (result != CURLE_OK)
        snprintf(why, sizeof why, "%s", dl->curl_err[0] ? dl->curl_err : curl_easy_strerror(result));
    else
        snprintf(why, sizeof why, "HTTP %ld", status);
    if (dl->tries >= RD_NOTIFY_TRIES || atomic_load(&d->stopping)) {
        LOG_ERROR("notify", "task %" PRIu64 ": %s to %s failed after %d tries, giving up: %s",
                  dl->task_id, kind(dl), dl->url, dl->tries, why);
        atomic_fetch_add(dl->is_alert ? &d->m.alerts_failed : &d->m.callbacks_failed, 1);
        delivery_free(dl);
        return;
    }
    long pause_ms = 1000L << (dl->tries - 1);
    LOG_WARN("notify", "task %" PRIu64 ": %s to %s failed (%s); try %d in %ld ms", dl->task_id,
             kind(dl), dl->url, why, dl->tries + 1, pause_ms);
    struct timeval tv = {pause_ms / 1000, (pause_ms % 1000) * 1000};
    evtimer_add(dl->timer, &tv);
}

static void send_now(delivery *dl)
{
    rd_daemon *d = dl->n->d;
    dl->tries++;
    dl->curl_err[0] = '\0';
    CURL *e = dl->easy = curl_easy_init();
    if (!e) {
        on_sent(dl, NULL, CURLE_OUT_OF_MEMORY, 0);
        return;
    }
    curl_easy_setopt(e, CURLOPT_URL, dl->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, dl->headers);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, dl->body);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)RD_NOTIFY_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, dl->curl_err);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (rd_httpc_start(d->httpc, e, on_sent, dl) != 0) {
        dl->easy = NULL;
        on_sent(dl, e, CURLE_FAILED_INIT, 0);
    }
}

static void deliver(rd_notify *n, const char *url, const char *body, const char *event,
                    uint64_t task_id, int is_alert)
{
    delivery *dl = calloc(1, sizeof *dl);
    if (!dl) goto oom;
    dl->n = n;
    dl->is_alert = is_alert;
    dl->task_id = task_id;
    dl->url = strdup(url);
    dl->body = strdup(body);
    snprintf(dl->event_header, sizeof dl->event_header, "X-Retry-Event: %s", event);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (h) dl->headers = curl_slist_append(h, dl->event_header);
    if (!dl->headers) curl_slist_free_all(h);
    dl->timer = evtimer_new(n->d->base, on_retry_timer, dl);
    if (!dl->url || !dl->body || !dl->headers || !dl->timer) {
        curl_slist_free_all(dl->headers);
        if (dl->timer) event_free(dl->timer);
        free(dl->url);
        free(dl->body);
        free(dl);
        goto oom;
    }
    dl->next = n->all;
    if (n->all) n->all->prev = dl;
    n->all = dl;
    n->pending++;
    send_now(dl);
    return;
oom:
    LOG_ERROR("notify", "task %" PRIu64 ": %s to %s not sent: out of memory", task_id,
              is_alert ? "alert" : "callback", url);
}

static unsigned event_bit(const char *event)
{
    if (strcmp(event, "succeeded") == 0) return RT_EVENT_SUCCEEDED;
    if (strcmp(event, "exhausted") == 0) return RT_EVENT_EXHAUSTED;
    if (strcmp(event, "stopped") == 0) return RT_EVENT_STOPPED;
    return 0;
}

void rd_notify_task_ended(rd_notify *n, const rd_task_end *e)
{
    const rt_task *t = e->task;
    unsigned bit = event_bit(e->event);
    int want_callback = t->callback_url && (t->callback_on & bit);
    int want_alert = bit != RT_EVENT_SUCCEEDED && n->d->cfg->alerts_webhook_url;
    if (!want_callback && !want_alert) return;

    json_t *o = json_pack("{s:s, s:I, s:s, s:s, s:s, s:i}", "event", e->event, "id",
                          (json_int_t)e->id, "group", t->group, "scene", t->scene,
                          "idempotency_key", t->idempotency_key, "attempts", e->attempts);
    char *body = NULL;
    if (o) {
        json_object_set_new(o, "last_status",
                            e->last_status > 0 ? json_integer(e->last_status) : json_null());
        json_object_set_new(o, "last_error",
                            e->last_error ? json_string(e->last_error) : json_null());
        json_object_set_new(o, "trace_id", t->trace_id ? json_string(t->trace_id) : json_null());
        body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
    }
    if (!body) {
        LOG_ERROR("notify", "task %" PRIu64 ": %s notification not built: out of memory", e->id,
                  e->event);
        return;
    }
    if (want_callback) deliver(n, t->callback_url, body, e->event, e->id, 0);
    if (want_alert) deliver(n, n->d->cfg->alerts_webhook_url, body, e->event, e->id, 1);
    free(body);
}

void rd_notify_circuit_open(rd_notify *n, const char *scene, double failure_ratio,
                            int64_t until_ms)
{
    const char *url = n->d->cfg->alerts_webhook_url;
    if (!url) return;
    json_t *o = json_pack("{s:s, s:s, s:s, s:f, s:I}", "event", "circuit_open", "scene", scene,
                          "node", n->d->cfg->node_id, "failure_ratio", failure_ratio, "until",
                          (json_int_t)until_ms);
    char *body = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!body) {
        LOG_ERROR("notify", "circuit_open alert for scene %s not built: out of memory", scene);
        return;
    }
    deliver(n, url, body, "circuit_open", 0, 1);
    free(body);
}

void rd_notify_free(rd_notify *n)
{
    if (!n) return;
    while (n->all) {
        LOG_ERROR("notify", "task %" PRIu64 ": %s to %s abandoned at shutdown after %d tries",
                  n->all->task_id, kind(n->all), n->all->url, n->all->tries);
        delivery_free(n->all);
    }
    free(n);
}
