/*
 * retry/policy.h: the retry policy of one wrapped call.
 *
 * A policy says how many local attempts a call gets, how long to wait
 * between them, which failure codes are worth retrying, what to do when the
 * attempts run out (recover function, ship the call to retryd) and until
 * when retrying makes sense at all (deadline). It is plain data: the caller
 * owns it, the library only reads it during the call, and one const policy
 * may be shared by any number of threads.
 *
 * Not built yet (a later issue): exec = async, and scene policies registered
 * on the client (precedence call site > scene > client defaults). Today the
 * call-site policy is the whole policy.
 */
#ifndef RETRY_POLICY_H
#define RETRY_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"

#ifdef __cplusplus
extern "C" {
#endif

struct retry_http_request;

/** Jitter applied to each delay (AWS Architecture Blog, "Exponential Backoff
 *  And Jitter"). The numbers match the wire format's names. */
typedef enum retry_jitter {
    RETRY_JITTER_NONE = 0,        /**< the computed delay */
    RETRY_JITTER_FULL = 1,        /**< uniform in [0, delay] */
    RETRY_JITTER_EQUAL = 2,       /**< delay/2 + uniform in [0, delay/2] */
    RETRY_JITTER_DECORRELATED = 3 /**< min(max, uniform in [delay_ms, prev*3]) */
} retry_jitter;

/**
 * Policy of one wrapped call. Initialise with RETRY_POLICY_DEFAULT or
 * retry_policy_init(). Everything is borrowed for the duration of the call
 * only. Defaults in brackets.
 *
 * Judging a failure code (any non-zero result of an attempt):
 *  1. a code listed in stop_on stops at once (no more attempts);
 *  2. else, when retry_on is non-empty, a code not listed there stops;
 *  3. else the code is retried (retry_http_call() has its own default
 *     classification for step 3; see retry/http.h).
 * A call that stops ends with RETRY_ERR_STOPPED; one that runs out of
 * attempts with RETRY_ERR_EXHAUSTED.
 */
typedef struct retry_policy {
    /** Local attempts including the first, >= 1. [3] */
    int max_attempts;
    /** Delay after the first failed attempt, ms, >= 0. [0] */
    int64_t delay_ms;
    /** >= 1: exponential backoff, delay n = delay_ms * multiplier^(n-1);
     *  otherwise (0, or < 1) a fixed delay_ms. [0] */
    double multiplier;
    /** Cap on any delay, ms; 0 = no cap. [0] */
    int64_t max_delay_ms;
    /** [RETRY_JITTER_NONE] */
    retry_jitter jitter;
    /** When retry_on_count > 0, only these codes are retried. [NULL, 0] */
    const int *retry_on;
    size_t retry_on_count;
    /** These codes stop at once. [NULL, 0] */
    const int *stop_on;
    size_t stop_on_count;
    /** Absolute deadline, ms since the epoch; 0 = none. [0] The first
     *  attempt always runs; a retry whose delay would end at or after the
     *  deadline is not made, and the call ends with RETRY_ERR_DEADLINE (not
     *  shipped: retryd would find it expired). Shipped tasks carry it as
     *  policy.deadline. */
    int64_t deadline_ms;
    /** Called exactly once, on the calling thread, when the call is
     *  exhausted, stopped or hits its deadline (after shipping), with the
     *  last failure code; its return value becomes the call's result. Never
     *  called on success or when nothing was attempted. [NULL] */
    int (*recover)(void *ctx, int last_code);
    void *recover_ctx;
    /** Ship an exhausted call to retryd over Kafka. [1] Needs brokers on the
     *  client, a scene, and something to ship: retry_http_call() ships its
     *  request; RETRY_CALL ships ship_as when set, else nothing. */
    int send_queue;
    /** Kind of call, [A-Za-z0-9._:-]{1,128}, e.g. "payment.notify". Required
     *  when the call may be shipped; part of the default idempotency key. */
    const char *scene;
    /** When set, the shipped task asks retryd to POST the outcome there
     *  (events succeeded, exhausted, stopped). [NULL] */
    const char *callback_url;
    /** For RETRY_CALL: the HTTP request retryd should make instead of the
     *  local call once it is exhausted. Ignored by retry_http_call(), which
     *  ships its own request. [NULL] */
    const struct retry_http_request *ship_as;
} retry_policy;

#define RETRY_POLICY_DEFAULT                                                           \
    {                                                                                  \
        3, 0, 0.0, 0, RETRY_JITTER_NONE, NULL, 0, NULL, 0, 0, NULL, NULL, 1, NULL,     \
            NULL, NULL                                                                 \
    }

/**
 * @brief Sets every field of *policy to its default (same as
 *        RETRY_POLICY_DEFAULT). policy must not be NULL. Thread-safe.
 */
RETRY_API void retry_policy_init(retry_policy *policy);

#ifdef __cplusplus
}
#endif

#endif
