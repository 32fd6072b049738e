/*
 * workq.c: store worker threads (see workq.h). Completions travel back to
 * the loop thread through a mutex-protected list and one libevent event that
 * is activated from the worker (libevent is set up with
 * evthread_use_pthreads(), which makes event_active thread-safe).
 */
#include "workq.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"

struct rd_workq {
    rd_daemon *d;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rd_job *head, *tail;     /* queued for workers */
    rd_job *done_head, *done_tail; /* finished, for the loop thread */
    struct event *done_ev;
    int pending;
    int quit;
    int nworkers;
    pthread_t *threads;
};

static void push(rd_job **head, rd_job **tail, rd_job *job)
{
    job->next = NULL;
    if (*tail)
        (*tail)->next = job;
    else
        *head = job;
    *tail = job;
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    rd_workq *q = arg;
    pthread_mutex_lock(&q->mu);
    rd_job *list = q->done_head;
    q->done_head = q->done_tail = NULL;
    pthread_mutex_unlock(&q->mu);
    while (list) {
        rd_job *next = list->next;
        pthread_mutex_lock(&q->mu);
        q->pending--;
        pthread_mutex_unlock(&q->mu);
        list->done(q->d, list);
        list = next;
    }
}

static void *worker(void *arg)
{
    rd_workq *q = arg;
    rd_store *s = NULL;
    char connerr[512] = "";
    int64_t last_connerr_log = 0; /* mono ms; connect errors logged every 10 s */
    int connect_failures = 0;
    for (;;) {
        pthread_mutex_lock(&q->mu);
        while (!q->head && !q->quit) pthread_cond_wait(&q->cv, &q->mu);
        rd_job *job = q->head;
        if (!job) { /* quit and nothing left */
            pthread_mutex_unlock(&q->mu);
            break;
        }
        q->head = job->next;
        if (!q->head) q->tail = NULL;
        pthread_mutex_unlock(&q->mu);

        job->err[0] = '\0';
        if (!s) {
            int rc = rd_store_open(q->d->cfg, 0, &s, connerr, sizeof connerr);
            if (rc) {
                s = NULL;
                connect_failures++;
                int64_t now = rt_mono_ms();
                if (connect_failures == 1 || now - last_connerr_log >= 10000) {
                    LOG_ERROR("mysql", "%s (%d failed connect(s) in a row)", connerr,
                              connect_failures);
                    last_connerr_log = now;
                }
            } else {
                if (connect_failures)
                    LOG_NOTICE("mysql", "store worker connected again after %d failed "
                               "connect(s)", connect_failures);
                else
                    LOG_INFO("mysql", "store worker connected");
                connect_failures = 0;
            }
        }
        if (!s) {
            job->rc = RD_STORE_CONN;
            snprintf(job->err, sizeof job->err, "%s", connerr);
        } else {
            job->rc = job->run(s, job);
            if (job->rc == RD_STORE_CONN) {
                LOG_ERROR("mysql", "connection lost: %s", job->err);
                rd_store_close(s);
                s = NULL;
            }
        }
        atomic_store(&q->d->m.mysql_ok, s != NULL && job->rc != RD_STORE_CONN);
        if (job->rc && job->rc != RD_STORE_NOTFOUND && job->rc != RD_STORE_CONFLICT)
            atomic_fetch_add(&q->d->m.store_errors, 1);

        pthread_mutex_lock(&q->mu);
        push(&q->done_head, &q->done_tail, job);
        pthread_mutex_unlock(&q->mu);
        event_active(q->done_ev, EV_READ, 0);
    }
    rd_store_close(s);
    return NULL;
}

int rd_workq_new(rd_daemon *d, int nworkers, rd_workq **out, char *err, size_t errsz)
{
    rd_workq *q = calloc(1, sizeof *q);
    if (!q) goto oom;
    q->d = d;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    q->done_ev = event_new(d->base, -1, 0, on_done, q);
    q->threads = calloc((size_t)nworkers, sizeof *q->threads);
    if (!q->done_ev || !q->threads) goto oom;
    for (int i = 0; i < nworkers; i++) {
        if (pthread_create(&q->threads[i], NULL, worker, q) != 0) {
            snprintf(err, errsz, "pthread_create (store worker): failed");
            q->quit = 1;
            pthread_cond_broadcast(&q->cv);
            for (int j = 0; j < i; j++) pthread_join(q->threads[j], NULL);
            goto fail;
        }
        q->nworkers++;
    }
    *out = q;
    return 0;
oom:
    snprintf(err, errsz, "store worker pool: out of memory");
fail:
    if (q) {
        if (q->done_ev) event_free(q->done_ev);
        free(q->threads);
        pthread_mutex_destroy(&q->mu);
        pthread_cond_destroy(&q->cv);
        free(q);
    }
    return -1;
}

void rd_workq_submit(rd_workq *q, rd_job *job)
{
    pthread_mutex_lock(&q->mu);
    push(&q->head, &q->tail, job);
    q->pending++;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

void rd_workq_submit_urgent(rd_workq *q, rd_job *job)
{
    pthread_mutex_lock(&q->mu);
    job->next = q->head;
    q->head = job;
    if (!q->tail) q->tail = job;
    q->pending++;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

int rd_workq_pending(rd_workq *q)
{
    pthread_mutex_lock(&q->mu);
    int n = q->pending;
    pthread_mutex_unlock(&q->mu);
    return n;
}

void rd_workq_free(rd_workq *q)
{
    if (!q) return;
    pthread_mutex_lock(&q->mu);
    q->quit = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    for (int i = 0; i < q->nworkers; i++) pthread_join(q->threads[i], NULL);
    /* Completions that never reached the loop: run them now so that their
     * owners free them (the loop has stopped; done() must not start I/O). */
    on_done(-1, 0, q);
    event_free(q->done_ev);
    free(q->threads);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q);
}
