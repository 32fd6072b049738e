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
 * Levels (retry/scene.h): the policy a call runs under is resolved field by
 * field when the call starts, highest first:
 *   1. the call-site policy (this struct);
 *   2. its scene (policy->scene): a [scene:NAME] section of the client's
 *      config file (and its RETRY_CLIENT_SCENE_* environment overrides), then
 *      the policy given to retry_scene_register();
 *   3. the client defaults: the config file's [defaults] section (and
 *      RETRY_CLIENT_DEFAULTS_*), then retry_client_conf.defaults;
 *   4. the built-in defaults (in brackets below).
 * A field is "unset" (and so inherited from the next level) when it holds
 * the value RETRY_POLICY_DEFAULT gives it: RETRY_UNSET (-1) for the numbers,
 * RETRY_JITTER_UNSET, NULL for pointers, NULL + 0 for a list. Assigning a
 * field sets it; to override an inherited list with an empty one, point it at
 * any array with a count of 0. deadline_ms, scene and ship_as are call-site
 * only (never inherited).
 *
 * Always start from RETRY_POLICY_DEFAULT or retry_policy_init(). A policy
 * made any other way (retry_policy p = {0}, memset, calloc, a static
 * without an initialiser) has 0 in its numeric fields, and 0 is not
 * RETRY_UNSET: every such field counts as SET and shadows the scene, the
 * config file, the environment and the client defaults (max_attempts 0 is
 * even invalid, so such a call is rejected with RETRY_ERR_INVALID_ARG).
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
    RETRY_JITTER_UNSET = -1,      /**< inherit (see the levels above) */
    RETRY_JITTER_NONE = 0,        /**< the computed delay */
    RETRY_JITTER_FULL = 1,        /**< uniform in [0, delay] */
    RETRY_JITTER_EQUAL = 2,       /**< delay/2 + uniform in [0, delay/2] */
    RETRY_JITTER_DECORRELATED = 3, /**< min(max, uniform in [delay_ms, prev*3]) */
    /** Polly's DecorrelatedJitterBackoffV2 (Polly.Contrib.WaitAndRetry):
     *  delay_ms is the mean first delay, later delays center on
     *  delay_ms * 2^(n-1) with a smooth spread; multiplier is ignored,
     *  max_delay_ms caps. Formula in src/backoff.h. Client-side only: it is
     *  not part of wire format v1. */
    RETRY_JITTER_DECORRELATED_V2 = 4
} retry_jitter;

/** "Not set at this level: inherit" for the numeric policy fields. */
#define RETRY_UNSET (-1)

struct retry_listener;

/**
 * Policy of one wrapped call. Initialise with RETRY_POLICY_DEFAULT or
 * retry_policy_init(). Everything is borrowed for the duration of the call
 * only. Defaults in brackets.
 *
 * Judging a failure code (any non-zero result of an attempt):
 *  1. a code listed in stop_on stops at once (no more attempts);
 *  2. else, when retry_on is non-empty, a code not listed there stops;
 *  3. else, when should_retry is set, its answer decides;
 *  4. else the code is retried (retry_http_call() has its own default
 *     classification for step 4; see retry/http.h).
 * A call that stops ends with RETRY_ERR_STOPPED; one that runs out of
 * attempts with RETRY_ERR_EXHAUSTED.
 */
typedef struct retry_policy {
    /** Local attempts including the first, >= 1, or RETRY_UNSET. [3] */
    int max_attempts;
    /** Delay after the first failed attempt, ms, >= 0, or RETRY_UNSET. [0] */
    int64_t delay_ms;
    /** >= 1: exponential backoff, delay n = delay_ms * multiplier^(n-1);
     *  otherwise (0, or < 1) a fixed delay_ms; RETRY_UNSET (-1.0) inherits.
     *  [0] */
    double multiplier;
    /** Cap on any delay (also on a server's Retry-After), ms; 0 = no cap;
     *  RETRY_UNSET. [0] */
    int64_t max_delay_ms;
    /** RETRY_JITTER_UNSET inherits. [RETRY_JITTER_NONE] */
    retry_jitter jitter;
    /** When retry_on_count > 0, only these codes are retried. [NULL, 0] */
    const int *retry_on;
    size_t retry_on_count;
    /** These codes stop at once. [NULL, 0] */
    const int *stop_on;
    size_t stop_on_count;
    /** Call-site only (never inherited). Absolute deadline, ms since the
     *  epoch; 0 = none. [0] The first
     *  attempt always runs; a retry whose delay would end at or after the
     *  deadline is not made, and the call ends with RETRY_ERR_DEADLINE (not
     *  shipped: retryd would find it expired). Shipped tasks carry it as
     *  policy.deadline. */
    int64_t deadline_ms;
    /** Called exactly once, on the calling thread, when the call is
     *  exhausted, stopped or hits its deadline (after shipping), with the
     *  last failure code; its return value becomes the call's result. Never
     *  called on success or when nothing was attempted. NULL inherits
     *  (recover and recover_ctx travel together). [NULL] */
    int (*recover)(void *ctx, int last_code);
    void *recover_ctx;
    /** Ship an exhausted call to retryd over Kafka: 1, 0 or RETRY_UNSET.
     *  [1] Needs brokers on the
     *  client, a scene, and something to ship: retry_http_call() ships its
     *  request; RETRY_CALL ships ship_as when set, else nothing. */
    int send_queue;
    /** Kind of call, [A-Za-z0-9._:-]{1,128}, e.g. "payment.notify". Required
     *  when the call may be shipped; part of the default idempotency key.
     *  Names the scene whose policy fills the unset fields. Call-site only.
     *  [NULL] */
    const char *scene;
    /** When set, the shipped task asks retryd to POST the outcome there
     *  (events succeeded, exhausted, stopped). NULL inherits. [NULL] */
    const char *callback_url;
    /** For RETRY_CALL: the HTTP request retryd should make instead of the
     *  local call once it is exhausted. Ignored by retry_http_call(), which
     *  ships its own request. Call-site only. [NULL] */
    const struct retry_http_request *ship_as;
    /** Most time a call may take from the start of its first attempt, ms;
     *  0 = no limit; RETRY_UNSET. [0] Like deadline_ms (the earlier of the
     *  two applies): a retry whose delay would end at or after start +
     *  max_elapsed_ms is not made (RETRY_ERR_DEADLINE), and retry_http_call()
     *  shortens each attempt's timeout to what is left. Unlike deadline_ms it
     *  is not shipped (retryd's own policy decides there). */
    int64_t max_elapsed_ms;
    /** User predicate, step 3 of the judgement above: called on the thread
     *  making the attempt with should_retry_ctx, the failure code and the
     *  1-based number of the attempt that failed; non-zero = retry (still
     *  bounded by max_attempts, deadlines and the budget), 0 = stop. Must
     *  not call back into the client. NULL inherits (with its ctx). [NULL] */
    int (*should_retry)(void *ctx, int code, int attempt);
    void *should_retry_ctx;
    /** Hooks for this call (retry/scene.h), run after the client's
     *  listeners; borrowed for the call. NULL inherits. [NULL] */
    const struct retry_listener *listener;
} retry_policy;

#define RETRY_POLICY_DEFAULT                                                           \
    {                                                                                  \
        RETRY_UNSET, RETRY_UNSET, -1.0, RETRY_UNSET, RETRY_JITTER_UNSET, NULL, 0, NULL, \
            0, 0, NULL, NULL, RETRY_UNSET, NULL, NULL, NULL, RETRY_UNSET, NULL, NULL,  \
            NULL                                                                       \
    }

/**
 * @brief Sets every field of *policy to "unset" (same as
 *        RETRY_POLICY_DEFAULT): a call under it runs with its scene's, the
 *        client's or the built-in values. policy must not be NULL.
 *        Thread-safe.
 */
RETRY_API void retry_policy_init(retry_policy *policy);

#ifdef __cplusplus
}
#endif

#endif
