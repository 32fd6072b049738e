/*
 * dispatcher.h: executes claimed tasks. Flow position: scheduler -> DISPATCHER
 * -> store (attempt row + new task state) -> notify (callbacks, alerts).
 * Each claimed task becomes one HTTP request on the loop thread (httpc.h); its
 * answer is judged by decide.h and written through a store job, fenced by the
 * claim's token. Loop thread only.
 */
#ifndef RD_DISPATCHER_H
#define RD_DISPATCHER_H

#include <stddef.h>

#include "daemon.h"
#include "store.h"

rd_dispatcher *rd_dispatcher_new(rd_daemon *d);
/* Starts one attempt for a claimed task; takes c->payload (sets it NULL). */
void rd_dispatcher_start(rd_dispatcher *disp, rd_claimed *c);
/* Gives a claimed task back to 'pending' without an attempt (claims that
 * complete after shutdown began). Takes c->payload. */
void rd_dispatcher_release(rd_dispatcher *disp, rd_claimed *c);
/* Scenes at their [scene:NAME] max_inflight on this node: a heap array of
 * heap strings in *out (the caller frees both; NULL when none). */
size_t rd_dispatcher_saturated(rd_dispatcher *disp, char ***out);
/* Attempts in flight (started, result not yet written). */
int rd_dispatcher_inflight(const rd_dispatcher *disp);
/* Shutdown: aborts running transfers and releases their tasks to 'pending'
 * through store jobs (no attempt row is written for an aborted attempt). */
void rd_dispatcher_abort_all(rd_dispatcher *disp);
void rd_dispatcher_free(rd_dispatcher *disp);

#endif
