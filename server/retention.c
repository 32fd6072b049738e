/*
 * retention.c: periodic purge of old history (see retention.h).
 */
#include "retention.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdlib.h>

#include "clock.h"
#include "log.h"
#include "workq.h"

struct rd_retention {
    rd_daemon *d;
    struct event *timer;
    int busy;
    int stopped;
};

typedef struct purge_job {
    rd_job job;
    rd_retention *r;
    size_t tasks, attempts;
} purge_job;

static void schedule(rd_retention *r, int64_t in_ms)
{
    struct timeval tv = {(time_t)(in_ms / 1000), (suseconds_t)((in_ms % 1000) * 1000)};
    evtimer_add(r->timer, &tv);
}

static int purge_run(rd_store *s, rd_job *job)
{
    purge_job *pj = (purge_job *)job;
    const rd_config *c = pj->r->d->cfg;
    int64_t now = rt_now_ms();
    int64_t succeeded_before =
        c->retention_succeeded_max_age_ms ? now - c->retention_succeeded_max_age_ms : 0;
    int64_t attempts_before =
        c->retention_attempt_max_age_ms ? now - c->retention_attempt_max_age_ms : 0;
    return rd_store_purge(s, succeeded_before, attempts_before, c->retention_batch_size,
                          &pj->tasks, &pj->attempts, job->err, sizeof job->err);
}

static void purge_done(rd_daemon *d, rd_job *job)
{
    purge_job *pj = (purge_job *)job;
    rd_retention *r = pj->r;
    r->busy = 0;
    int again = 0;
    if (job->rc != RD_STORE_OK) {
        LOG_ERROR("mysql", "retention purge failed: %s", job->err);
    } else {
        atomic_fetch_add(&d->m.purged_tasks, pj->tasks);
        atomic_fetch_add(&d->m.purged_attempts, pj->attempts);
        if (pj->tasks || pj->attempts)
            LOG_INFO("mysql", "retention: purged %zu succeeded task(s) and %zu attempt row(s)",
                     pj->tasks, pj->attempts);
        /* A full batch means more is waiting: continue after a short pause
         * that leaves the store workers to the hot path in between. */
        again = (int)pj->tasks >= d->cfg->retention_batch_size ||
                (int)pj->attempts >= d->cfg->retention_batch_size;
    }
    free(pj);
    if (!r->stopped) schedule(r, again ? 100 : d->cfg->retention_interval_ms);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    rd_retention *r = arg;
    if (r->busy || r->stopped) return;
    purge_job *pj = calloc(1, sizeof *pj);
    if (!pj) {
        schedule(r, r->d->cfg->retention_interval_ms);
        return;
    }
    pj->r = r;
    pj->job.run = purge_run;
    pj->job.done = purge_done;
    r->busy = 1;
    rd_workq_submit(r->d->wq, &pj->job);
}

rd_retention *rd_retention_new(rd_daemon *d)
{
    if (!d->cfg->retention_succeeded_max_age_ms && !d->cfg->retention_attempt_max_age_ms)
        return NULL;
    rd_retention *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->d = d;
    r->timer = evtimer_new(d->base, on_timer, r);
    if (!r->timer) {
        free(r);
        return NULL;
    }
    schedule(r, d->cfg->retention_interval_ms);
    return r;
}

void rd_retention_stop(rd_retention *r)
{
    if (!r) return;
    r->stopped = 1;
    evtimer_del(r->timer);
}

void rd_retention_free(rd_retention *r)
{
    if (!r) return;
    event_free(r->timer);
    free(r);
}
