/*
 * scheduler.h: the scan timer. Every [scheduler] scan_interval_ms it claims
 * due tasks through a store job (store.h rd_store_claim: SKIP LOCKED, lease,
 * fence) and hands them to the dispatcher, never claiming more than
 * max_inflight minus what is in flight. A full batch triggers the next scan at
 * once. Flow position: store -> SCHEDULER -> dispatcher. Loop thread only.
 */
#ifndef RD_SCHEDULER_H
#define RD_SCHEDULER_H

#include "daemon.h"

typedef struct rd_scheduler rd_scheduler;

rd_scheduler *rd_scheduler_new(rd_daemon *d);
/* Stops claiming (shutdown). A claim already running completes and its
 * tasks are dispatched or released. */
void rd_scheduler_stop(rd_scheduler *s);
/* 1 while a claim job is running. */
int rd_scheduler_busy(const rd_scheduler *s);
void rd_scheduler_free(rd_scheduler *s);

#endif
