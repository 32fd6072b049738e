/*
 * notify.h: callbacks and alerts when a task ends. Flow position: dispatcher
 * -> store -> NOTIFY. Both are `POST` with the DESIGN.md body
 * {"event","id","group","scene","idempotency_key","attempts","last_status",
 *  "last_error","trace_id"} and header `X-Retry-Event: <event>`:
 *   - the callback goes to the task's callback.url when its `on` list has the
 *     event;
 *   - an alert goes to [alerts] webhook_url for "exhausted" and "stopped".
 * Delivery is tried up to RD_NOTIFY_TRIES times with 1 s, 2 s, 4 s pauses
 * (any 2xx is delivered); a delivery that still fails is logged at error
 * level with the task id and counted (callbacks_failed / alerts_failed).
 * Not durable: a retryd restart forgets undelivered notifications (logged).
 * Loop thread only.
 */
#ifndef RD_NOTIFY_H
#define RD_NOTIFY_H

#include <stdint.h>

#include "daemon.h"
#include "task.h"

#define RD_NOTIFY_TRIES 4
#define RD_NOTIFY_TIMEOUT_MS 5000

typedef struct rd_task_end {
    uint64_t id;
    const rt_task *task;
    const char *event;       /* succeeded | exhausted | stopped */
    int attempts;
    int last_status;         /* 0 = none */
    const char *last_error;  /* NULL = none */
} rd_task_end;

typedef struct rd_notify rd_notify;

rd_notify *rd_notify_new(rd_daemon *d);
/* Builds the body now (everything is copied) and starts the deliveries. */
void rd_notify_task_ended(rd_notify *n, const rd_task_end *e);
/* Alerts (webhook) that a scene's circuit breaker opened on this node:
 * {"event":"circuit_open","scene","node","failure_ratio","until"} with
 * X-Retry-Event: circuit_open. */
void rd_notify_circuit_open(rd_notify *n, const char *scene, double failure_ratio,
                            int64_t until_ms);
/* Deliveries not finished yet (sending or waiting to retry). */
int rd_notify_pending(const rd_notify *n);
/* Shutdown: gives up on deliveries still running or waiting, logging each,
 * and frees. */
void rd_notify_free(rd_notify *n);

#endif
