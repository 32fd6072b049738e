/*
 * scheduler.c: the scan timer (see scheduler.h). The database is the source of
 * truth for what is due; this module only decides when to ask and how much to
 * take so that max_inflight holds.
 */
#include "scheduler.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdlib.h>

#include "clock.h"
#include "dispatcher.h"
#include "log.h"
#include "workq.h"

#define WAKES_MAX 65536

static void heap_push(rd_scheduler *s, int64_t v);
static int64_t heap_min(const rd_scheduler *s);
static void heap_pop(rd_scheduler *s);

/* While MySQL is unreachable, claims back off from scan_interval_ms,
 * doubling up to this, so an outage is not hammered (nor logged) 5 times a
 * second. */
#define CLAIM_BACKOFF_MAX_MS 10000

struct rd_scheduler {
    rd_daemon *d;
    struct event *timer;
    struct event *poke;      /* activated from other threads */
    int64_t next_scan_at;    /* wall ms of the planned claim; 0 = none */
    /* Due times (wall ms) this node was told about and no claim has covered
     * yet: a min-heap. A claim covers those <= the "now" it used; the rest
     * set the next timer. Bounded: past WAKES_MAX the latest is dropped and
     * the scan finds that task instead. */
    int64_t *wakes;
    size_t nwakes;
    int busy;
    int stopped;
    int room_limited;        /* the last claim was cut short by max_inflight */
    int failures;            /* consecutive failed claims */
    int64_t backoff_ms;      /* next delay while failing */
};

typedef struct claim_job {
    rd_job job;
    rd_scheduler *s;
    int limit;
    int64_t now;             /* the claim's notion of now: what it covers */
    char **skip;             /* saturated scenes, left out of the claim */
    size_t nskip;
    rd_claimed *claimed;
    size_t n;
    size_t taken_over;
} claim_job;

static void schedule(rd_scheduler *s, int64_t in_ms)
{
    if (in_ms < 0) in_ms = 0;
    event_base_update_cache_time(s->d->base);
    struct timeval tv = {(time_t)(in_ms / 1000), (suseconds_t)((in_ms % 1000) * 1000)};
    s->next_scan_at = rt_now_ms() + in_ms;
    evtimer_add(s->timer, &tv);
}

static int claim_run(rd_store *st, rd_job *job)
{
    claim_job *cj = (claim_job *)job;
    const rd_config *cfg = cj->s->d->cfg;
    int64_t now = cj->now = rt_now_ms();
    return rd_store_claim(st, cfg->node_id, cj->limit, now, now + cfg->lease_ms, cj->skip,
                          cj->nskip, &cj->claimed, &cj->n, &cj->taken_over, job->err,
                          sizeof job->err);
}

static void claim_done(rd_daemon *d, rd_job *job)
{
    claim_job *cj = (claim_job *)job;
    rd_scheduler *s = cj->s;
    s->busy = 0;
    int64_t next_ms = d->cfg->scan_interval_ms;
    if (job->rc != RD_STORE_OK) {
        s->failures++;
        s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : d->cfg->scan_interval_ms;
        if (s->backoff_ms > CLAIM_BACKOFF_MAX_MS) s->backoff_ms = CLAIM_BACKOFF_MAX_MS;
        if (s->backoff_ms < d->cfg->scan_interval_ms) s->backoff_ms = d->cfg->scan_interval_ms;
        next_ms = s->backoff_ms;
        /* The first failure and then one in ten: enough to see it lasts. */
        if (s->failures == 1 || s->failures % 10 == 0)
            LOG_ERROR("sched", "claim failed (%d in a row; next try in %" PRId64 " ms): %s",
                      s->failures, next_ms, job->err);
    } else {
        if (s->failures)
            LOG_NOTICE("sched", "claims work again after %d failure(s)", s->failures);
        s->failures = 0;
        s->backoff_ms = 0;
        if (cj->taken_over) {
            atomic_fetch_add(&d->m.lease_takeovers, cj->taken_over);
            LOG_WARN("sched", "took over %zu task(s) whose lease had expired", cj->taken_over);
        }
        if (cj->n) LOG_DEBUG("sched", "claimed %zu due task(s)", cj->n);
        /* Tasks claimed after shutdown began are released at once, not
         * started: the drain must not wait on new requests. */
        for (size_t i = 0; i < cj->n; i++) {
            if (atomic_load(&d->stopping))
                rd_dispatcher_release(d->disp, &cj->claimed[i]);
            else
                rd_dispatcher_start(d->disp, &cj->claimed[i]);
        }
    }
    int ok = job->rc == RD_STORE_OK;
    int full = ok && (int)cj->n == cj->limit;
    /* A full claim whose size was set by the free slots: more may be due. */
    s->room_limited = full && cj->limit < d->cfg->batch_size;
    int64_t covered = ok ? cj->now : 0;
    rd_claimed_free(cj->claimed, cj->n);
    for (size_t i = 0; i < cj->nskip; i++) free(cj->skip[i]);
    free(cj->skip);
    free(cj);
    /* Wake-ups this claim covered are done; the earliest left (maybe one
     * that arrived during the claim) sets the timer if it beats the scan. */
    while (s->nwakes && heap_min(s) <= covered) heap_pop(s);
    if (!s->stopped) {
        int64_t in_ms = full ? 0 : next_ms;
        if (s->nwakes && heap_min(s) - rt_now_ms() < in_ms) in_ms = heap_min(s) - rt_now_ms();
        schedule(s, in_ms);
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    rd_scheduler *s = arg;
    rd_daemon *d = s->d;
    s->next_scan_at = 0;
    if (s->stopped || s->busy) return;
    int room = d->cfg->max_inflight - rd_dispatcher_inflight(d->disp);
    int limit = room < d->cfg->batch_size ? room : d->cfg->batch_size;
    if (limit <= 0) {
        s->room_limited = 1; /* rd_scheduler_attempt_done claims when room returns */
        schedule(s, d->cfg->scan_interval_ms);
        return;
    }
    claim_job *cj = calloc(1, sizeof *cj);
    if (!cj) {
        LOG_ERROR("sched", "claim: out of memory");
        schedule(s, d->cfg->scan_interval_ms);
        return;
    }
    cj->s = s;
    cj->limit = limit;
    cj->nskip = rd_dispatcher_saturated(d->disp, &cj->skip);
    cj->job.run = claim_run;
    cj->job.done = claim_done;
    s->busy = 1;
    rd_workq_submit(d->wq, &cj->job);
}

static void heap_push(rd_scheduler *s, int64_t v)
{
    if (s->nwakes == WAKES_MAX) return; /* the scan is the safety net */
    if (!s->wakes) {
        s->wakes = malloc(WAKES_MAX * sizeof *s->wakes);
        if (!s->wakes) return;
    }
    size_t i = s->nwakes++;
    while (i > 0 && s->wakes[(i - 1) / 2] > v) {
        s->wakes[i] = s->wakes[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->wakes[i] = v;
}

static int64_t heap_min(const rd_scheduler *s)
{
    return s->nwakes ? s->wakes[0] : 0;
}

static void heap_pop(rd_scheduler *s)
{
    int64_t last = s->wakes[--s->nwakes];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->nwakes) break;
        if (c + 1 < s->nwakes && s->wakes[c + 1] < s->wakes[c]) c++;
        if (s->wakes[c] >= last) break;
        s->wakes[i] = s->wakes[c];
        i = c;
    }
    if (s->nwakes) s->wakes[i] = last;
}

void rd_scheduler_wake_at(rd_scheduler *s, int64_t due_ms)
{
    if (s->stopped) return;
    heap_push(s, due_ms);
    if (s->busy) return; /* claim_done sets the timer from the heap */
    if (s->next_scan_at && due_ms >= s->next_scan_at) return; /* the planned claim is earlier */
    /* +1 ms: libevent measures from its cached loop time, which can lag a
     * little; firing early would find the task not yet due. */
    schedule(s, due_ms - rt_now_ms() + 1);
}

void rd_scheduler_attempt_done(rd_scheduler *s)
{
    if (!s || !s->room_limited || s->busy || s->stopped) return;
    const rd_config *c = s->d->cfg;
    int cap = c->max_inflight < c->batch_size ? c->max_inflight : c->batch_size;
    int want = cap / 4 > 1 ? cap / 4 : 1;
    int room = c->max_inflight - rd_dispatcher_inflight(s->d->disp);
    if (room < want) return;
    s->room_limited = 0;
    schedule(s, 0);
}

static void on_poke(evutil_socket_t fd, short what, void *arg)
{
    rd_scheduler_wake_at(arg, rt_now_ms());
}

void rd_scheduler_poke(rd_scheduler *s)
{
    event_active(s->poke, EV_READ, 0);
}

rd_scheduler *rd_scheduler_new(rd_daemon *d)
{
    rd_scheduler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->d = d;
    s->timer = evtimer_new(d->base, on_timer, s);
    s->poke = event_new(d->base, -1, 0, on_poke, s);
    if (!s->timer || !s->poke) {
        if (s->timer) event_free(s->timer);
        if (s->poke) event_free(s->poke);
        free(s);
        return NULL;
    }
    schedule(s, 0);
    return s;
}

void rd_scheduler_stop(rd_scheduler *s)
{
    s->stopped = 1;
    evtimer_del(s->timer);
}

int rd_scheduler_busy(const rd_scheduler *s)
{
    return s->busy;
}

void rd_scheduler_free(rd_scheduler *s)
{
    if (!s) return;
    event_free(s->timer);
    event_free(s->poke);
    free(s->wakes);
    free(s);
}
