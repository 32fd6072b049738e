/*
 * decide.h: what one attempt's answer means for its task. Pure: no I/O, the
 * clock and random source are arguments, so unit tests pin every branch.
 * Flow position: the dispatcher calls it when a transfer ends, then writes the
 * decision through the store.
 *
 * Rules, in order (DESIGN.md, "Task life cycle"):
 *   0. a response whose body matched the scene's stop_on_body rule ->
 *      "stopped", whatever its status (services that answer 200 with an
 *      error code);
 *   1. an HTTP response whose status is in target.success_status (any 2xx when
 *      that list is empty) -> outcome "succeeded", task "succeeded";
 *   2. a response whose status is in policy.stop_on_status -> "stopped";
 *   3. otherwise the attempt "failed": the task is "exhausted" when this was
 *      attempt max_attempts, or when the next fire time would pass the
 *      deadline; else it goes back to "pending" after the backoff delay
 *      (backoff.h) from `now`. A 429 or 503 answer carrying Retry-After
 *      (RFC 9110 section 10.2.3) is not tried again before that time: the
 *      delay is max(backoff, min(Retry-After, max_delay_ms when > 0)).
 */
#ifndef RD_DECIDE_H
#define RD_DECIDE_H

#include <stdint.h>

#include "backoff.h"
#include "task.h"

typedef struct rd_decision {
    const char *outcome;     /* succeeded | failed | stopped (attempt row) */
    const char *status;      /* succeeded | pending | exhausted | stopped (task) */
    int64_t delay_ms;        /* pending only */
    int64_t next_fire_at;    /* pending only; else now */
} rd_decision;

/* What the target answered. */
typedef struct rd_answer {
    int responded;           /* 1: an HTTP response arrived; 0: transport error */
    long http_status;        /* ignored unless responded */
    int64_t retry_after_ms;  /* Retry-After of the answer in ms; < 0 = none */
    int body_stop;           /* the body matched the scene's stop_on_body rule */
} rd_answer;

/* `policy` must be resolved (every field set but maybe the deadline).
 * `attempt` is the task's attempt count including this one (1-based).
 * `prev_delay_ms` is the delay chosen after the previous attempt (0 for the
 * first). */
void rd_decide(const rt_policy *policy, const rt_http_target *target, const rd_answer *answer,
               int attempt, int64_t now_ms, int64_t prev_delay_ms, rt_rng *rng,
               rd_decision *out);

/* Builds the backoff parameters from a resolved policy. */
void rd_policy_backoff(const rt_policy *policy, rt_backoff *out);

#endif
