/*
 * workq.h: the store worker pool. The loop thread posts jobs; each worker
 * owns one MySQL connection (store.h), runs a job's `run` on it, then hands
 * the job back to the loop thread, where `done` runs. This is how the loop
 * thread gets database work done without ever blocking on MySQL.
 *
 * A worker whose connection broke (RD_STORE_CONN) drops it and reconnects
 * before its next job; a job that finds no connection gets rc RD_STORE_CONN
 * and the connect error in err without `run` being called.
 */
#ifndef RD_WORKQ_H
#define RD_WORKQ_H

#include "daemon.h"
#include "store.h"

typedef struct rd_job rd_job;
struct rd_job {
    /* Worker thread. Returns an rd_store_rc, writing a sentence to job->err. */
    int (*run)(rd_store *s, rd_job *job);
    /* Loop thread, after run (or after the connection failed). Owns the job. */
    void (*done)(rd_daemon *d, rd_job *job);
    int rc;
    char err[512];
    rd_job *next;
};

/* Starts `nworkers` threads. Connections open lazily, on the first job. */
int rd_workq_new(rd_daemon *d, int nworkers, rd_workq **out, char *err, size_t errsz);
/* Queues a job (loop thread or any thread). After rd_workq_drain starts,
 * jobs still run: shutdown needs its release jobs to. */
void rd_workq_submit(rd_workq *q, rd_job *job);
/* Queues a job ahead of everything queued: for work whose lateness has a
 * cost (lease renewals: a late one lets another node take a live task). */
void rd_workq_submit_urgent(rd_workq *q, rd_job *job);
/* Number of jobs queued or running. */
int rd_workq_pending(rd_workq *q);
/* Lets the workers finish every queued job, then joins them and frees. */
void rd_workq_free(rd_workq *q);

#endif
