/*
 * scheduler.h: the scan timer. Every [scheduler] scan_interval_ms it claims
 * due tasks through a store job (store.h rd_store_claim: SKIP LOCKED, lease,
 * fence) and hands them to the dispatcher, never claiming more than
 * max_inflight minus what is in flight. A full batch triggers the next scan at
 * once. Flow position: store -> SCHEDULER -> dispatcher. Loop thread only,
 * except rd_scheduler_poke.
 *
 * Precise firing: the scan interval is only the safety net. When this node
 * learns that a task falls due before the next planned scan (an attempt
 * ended with a short backoff, or a new task was stored), the claim is moved
 * to that time, so the task fires on time rather than up to
 * scan_interval_ms late. The task itself stays in MySQL (nothing is held in
 * memory), so any node may still claim it and nothing is lost on a crash.
 */
#ifndef RD_SCHEDULER_H
#define RD_SCHEDULER_H

#include "daemon.h"

typedef struct rd_scheduler rd_scheduler;

rd_scheduler *rd_scheduler_new(rd_daemon *d);
/* Claims no later than due_ms (wall clock, ms since the epoch). */
void rd_scheduler_wake_at(rd_scheduler *s, int64_t due_ms);
/* An attempt ended on this node (dispatcher). When the last claim was cut
 * short by max_inflight, due tasks may be waiting for room: claim again once
 * a quarter of the slots are free, instead of waiting for the scan. */
void rd_scheduler_attempt_done(rd_scheduler *s);
/* Claims as soon as possible. Thread-safe (the ingest thread calls it after
 * storing new tasks). */
void rd_scheduler_poke(rd_scheduler *s);
/* Stops claiming (shutdown). A claim already running completes and its
 * tasks are dispatched or released. */
void rd_scheduler_stop(rd_scheduler *s);
/* 1 while a claim job is running. */
int rd_scheduler_busy(const rd_scheduler *s);
void rd_scheduler_free(rd_scheduler *s);

#endif
