/*
 * node.c: the node registry (see node.h). One timer on the loop thread posts
 * a heartbeat store job every RD_NODE_HEARTBEAT_MS, never more than one at a
 * time; the job upserts this node's retry_node row. The exit path queues one
 * last job that marks the row 'stopped'.
 *
 * A late heartbeat cannot undo the 'stopped' mark: the heartbeat's UPDATE
 * skips a row that is 'stopped' with this process's started_at (store.c,
 * rd_store_node_heartbeat), so the order in which two store workers run the
 * last heartbeat and the stop does not matter.
 */
#include "node.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "store.h"
#include "workq.h"

struct rd_node {
    rd_daemon *d;
    struct event *timer;
    int busy;               /* a heartbeat job is queued or running */
    int failing;            /* the last heartbeat failed (log transitions only) */
    int stopping;           /* rd_node_stop ran: no more heartbeats */
    char host[256];
    rd_node_row row;        /* constant after start: workers read it */
};

typedef struct node_job {
    rd_job job;
    rd_node *n;
} node_job;

static int heartbeat_run(rd_store *s, rd_job *job)
{
    node_job *nj = (node_job *)job;
    return rd_store_node_heartbeat(s, &nj->n->row, rt_now_ms(), job->err, sizeof job->err);
}

static void heartbeat_done(rd_daemon *d, rd_job *job)
{
    node_job *nj = (node_job *)job;
    rd_node *n = nj->n;
    n->busy = 0;
    if (job->rc != RD_STORE_OK) {
        if (!n->failing)
            LOG_ERROR("mysql", "node %s: heartbeat failed (retried every %d ms): %s",
                      n->row.node_id, RD_NODE_HEARTBEAT_MS, job->err);
        n->failing = 1;
    } else if (n->failing) {
        LOG_NOTICE("mysql", "node %s: heartbeat written again", n->row.node_id);
        n->failing = 0;
    }
    free(nj);
}

static void on_heartbeat_timer(evutil_socket_t fd, short what, void *arg)
{
    rd_node *n = arg;
    if (n->busy || n->stopping) return;
    node_job *nj = calloc(1, sizeof *nj);
    if (!nj) {
        LOG_ERROR("main", "node heartbeat: out of memory");
        return;
    }
    nj->n = n;
    nj->job.run = heartbeat_run;
    nj->job.done = heartbeat_done;
    n->busy = 1;
    rd_workq_submit(n->d->wq, &nj->job);
}

int rd_node_start(rd_daemon *d, rd_node **out, char *err, size_t errsz)
{
    rd_node *n = calloc(1, sizeof *n);
    if (!n) {
        snprintf(err, errsz, "node registry: out of memory");
        return -1;
    }
    n->d = d;
    if (gethostname(n->host, sizeof n->host) != 0) snprintf(n->host, sizeof n->host, "unknown");
    n->host[sizeof n->host - 1] = '\0';
    n->row = (rd_node_row){.node_id = d->cfg->node_id,
                           .host = n->host,
                           .pid = (long)getpid(),
                           .version = RETRYD_VERSION,
                           .http_listen = d->cfg->http_listen,
                           .started_at = rt_now_ms()};
    n->timer = event_new(d->base, -1, EV_PERSIST, on_heartbeat_timer, n);
    struct timeval tv = {RD_NODE_HEARTBEAT_MS / 1000, (RD_NODE_HEARTBEAT_MS % 1000) * 1000};
    if (!n->timer || event_add(n->timer, &tv) != 0) {
        if (n->timer) event_free(n->timer);
        free(n);
        snprintf(err, errsz, "node registry: cannot start the heartbeat timer");
        return -1;
    }
    on_heartbeat_timer(-1, 0, n); /* register now, not one interval later */
    *out = n;
    return 0;
}

static int stop_run(rd_store *s, rd_job *job)
{
    node_job *nj = (node_job *)job;
    return rd_store_node_stopped(s, &nj->n->row, rt_now_ms(), job->err, sizeof job->err);
}

static void stop_done(rd_daemon *d, rd_job *job)
{
    node_job *nj = (node_job *)job;
    if (job->rc == RD_STORE_OK)
        LOG_INFO("main", "node %s marked stopped in retry_node", nj->n->row.node_id);
    else
        LOG_ERROR("mysql", "node %s: marking it stopped failed (it turns stale instead): %s",
                  nj->n->row.node_id, job->err);
    free(nj);
}

void rd_node_stop(rd_node *n)
{
    if (!n || n->stopping) return;
    n->stopping = 1;
    event_del(n->timer);
    node_job *nj = calloc(1, sizeof *nj);
    if (!nj) {
        LOG_ERROR("main", "node %s: out of memory; not marked stopped", n->row.node_id);
        return;
    }
    nj->n = n;
    nj->job.run = stop_run;
    nj->job.done = stop_done;
    rd_workq_submit(n->d->wq, &nj->job);
}

void rd_node_free(rd_node *n)
{
    if (!n) return;
    event_free(n->timer);
    free(n);
}
