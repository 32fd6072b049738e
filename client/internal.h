/*
 * client/internal.h: what the modules of libretryclient share and the
 * application never sees: the client struct, logging, the clock and sleep
 * hooks, and the shipping path (task building and producing).
 *
 * Flow: RETRY_CALL / retry_http_call (call.c, http.c) run local attempts;
 * when a call is exhausted, ship.c builds a wire-format-v1 task (src/task.h)
 * and client.c's producer hands it to Kafka, where retryd ingests it.
 */
#ifndef RC_INTERNAL_H
#define RC_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "retry/retry.h"
#include "task.h"

struct retry_client {
    char *group;
    char *topic;
    char *brokers; /* NULL: no Kafka, nothing is shipped */
    int flush_timeout_ms;
    void (*log_cb)(void *opaque, int level, const char *msg);
    void *opaque;
    void (*sleep_fn)(void *opaque, int64_t ms);
    int64_t (*now_ms_fn)(void *opaque);
    uint64_t rng_seed;
    int enabled;
    rd_kafka_t *rk; /* NULL when brokers is NULL */
    /* Scenes, client defaults, listeners, retry budget (policy.c, conf.c,
     * policy_int.h); set by retry_client_new(). */
    struct rc_pe *pe;
    int async_workers, async_queue_max;
    struct rc_async *_Atomic async; /* async.c's pool, created on first use */

    atomic_uint_fast64_t call_seq; /* per-call RNG stream */
    atomic_uint_fast64_t attempts, succeeded, exhausted, stopped, deadline;
    atomic_uint_fast64_t shipped, ship_failed, delivered, delivery_failed;
    atomic_uint_fast64_t failed_reported; /* lost seen by flush */
    /* Tasks lost for good: failed delivery with no spool, or the spool
     * could not keep them. retry_client_flush() reports new ones. */
    atomic_uint_fast64_t lost;
    struct rc_spool *spool; /* spool.h; NULL without spool_path */
    /* dispatch.c: scene handlers and the endpoint; created on first use. */
    struct rc_dispatch *_Atomic dispatch;
};

/* Formats and passes one message to the client's log_cb; nothing when the
 * client or its log_cb is NULL. Thread-safe. */
void rc_log(const retry_client *c, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

int64_t rc_now_ms(const retry_client *c);
void rc_sleep_ms(const retry_client *c, int64_t ms);

/* The engine behind RETRY_CALL, also used by retry_http_call: ship is the
 * request to ship on exhaustion (NULL: nothing), classify the default
 * judgement when retry_on is empty (NULL: retry every code). */
retry_call_state *rc_call_begin(retry_call_state *st, retry_client *client,
                                const retry_policy *policy, int *rc, retry_err *outcome,
                                const retry_http_request *ship, int (*classify)(int code));

/* Bits of retry_call_state.flags_ that callers may read after the call. */
#define RC_FL_DISABLED 0x1u  /* client->enabled == 0: run once */
#define RC_FL_SHIP 0x2u      /* exhaustion ships the request */
#define RC_FL_SHIPPED 0x4u   /* the task was handed to the producer */
#define RC_FL_RECOVERED 0x8u /* recover ran; *rc holds its value */
#define RC_FL_ASYNC 0x10u    /* async.c: retry_call_next() does not wait the
                              * delay (left in prev_delay_ms_) nor start the
                              * next attempt: the caller does, then calls
                              * rc_call_attempt() right before it */

/* Starts the next attempt of a call: counts it and fires on_attempt. */
void rc_call_attempt(retry_call_state *st);

/* Ends a running call whose last failure was judged retryable (a retry is
 * pending) as RETRY_ERR_EXHAUSTED at once: ships (when the policy ships),
 * recovers, counts, writes *rc and *outcome; the failure is not judged or
 * reported again. Used by async.c's drain. (call.c) */
void rc_call_finish_exhausted(retry_call_state *st);

/* Judges the attempt whose code is in *st->rc_ without waiting: returns 1
 * when another attempt is due after *delay_ms (st->attempt_ not yet
 * advanced), 0 when the call is over (finished: shipped, recovered, *rc and
 * *outcome written). retry_call_next() is this plus the wait. (call.c) */
int rc_call_judge(retry_call_state *st, int64_t *delay_ms);

/* A server's wish for the next delay (Retry-After), ms; used once by the
 * next judgement, capped by max_delay_ms (RETRY_RETRY_AFTER_MAX_MS when 0),
 * when longer than the backoff. When only the wish reaches past the call's
 * deadline, the call ends exhausted (shipped when it ships). */
void rc_call_hint_delay(retry_call_state *st, int64_t ms);

/* The call's effective deadline (earlier of deadline_ms and the start plus
 * max_elapsed_ms), ms since the epoch; 0 = none. */
int64_t rc_call_deadline(const retry_call_state *st);

/* retry_http_call's default judgement (1 = retry) and the sentence for a
 * code in the HTTP code space (status or -CURLcode). */
int rc_http_classify(int code);
void rc_http_describe(int code, char *buf, size_t size);

/* Checks a request for the HTTP helper and for shipping. */
retry_err rc_http_request_check(const retry_http_request *req, char *err, size_t errsz);

/* The request's method, defaulted ("POST" with a body, else "GET"). */
const char *rc_http_method(const retry_http_request *req);
size_t rc_http_body_len(const retry_http_request *req);

/* The idempotency key of req under scene: req->idempotency_key, else the
 * SHA-256 digest (scene required). Writes "" and returns RETRY_OK when
 * neither exists; RETRY_ERR_INVALID_ARG for a bad key. */
retry_err rc_idempotency_key(const char *scene, const retry_http_request *req,
                             char out[RETRY_IDEMPOTENCY_KEY_MAX + 1], char *err,
                             size_t errsz);

/* Builds and encodes the task for req (ship.c). Returns the JSON (malloc'd)
 * in *json and the message key in key (group/idempotency_key), or an error
 * with a sentence in err. With dry_run the placeholders for the error fields
 * are used: this validates everything before the first attempt. */
retry_err rc_task_json(const retry_client *c, const retry_policy *p,
                       const retry_http_request *req, int error_code, const char *error_message,
                       int local_attempts, int64_t created_at, char **json, char *key,
                       size_t keysz, char *err, size_t errsz);

/* What a dispatch call ships when exhausted (dispatch.c, ship.c): a task
 * with target type dispatch to the client's advertised endpoint. */
typedef struct rc_dispatch_ship {
    const char *url;             /* the endpoint's advertise URL */
    const char *args;            /* JSON text, NULL = null */
    const char *idempotency_key; /* resolved, 1..191 bytes */
    int64_t timeout_ms;          /* target.timeout_ms */
} rc_dispatch_ship;

/* rc_task_json for a dispatch call (ship.c). */
retry_err rc_dispatch_task_json(const retry_client *c, const retry_policy *p,
                                const rc_dispatch_ship *d, int error_code,
                                const char *error_message, int local_attempts,
                                int64_t created_at, char **json, char *key, size_t keysz,
                                char *err, size_t errsz);

/* rc_call_begin for a dispatch call: exhaustion ships d (borrowed for the
 * whole call) instead of an HTTP request. (call.c) */
retry_call_state *rc_call_begin_dispatch(retry_call_state *st, retry_client *client,
                                         const retry_policy *policy, int *rc,
                                         retry_err *outcome, const rc_dispatch_ship *d,
                                         int (*classify)(int code));

/* Stops the dispatch endpoint and frees the handlers (dispatch.c); called
 * first by retry_client_destroy(). Nothing when dispatch was never used. */
void rc_dispatch_free(retry_client *c);

/* Hands one encoded task to the producer (client.c). When the producer
 * refuses it with a transient error and the client has a spool, the task is
 * spooled instead: RETRY_OK once it is on disk. RETRY_ERR_KAFKA (and the
 * task counted in lost) when it is refused for good (rc_kafka_err_permanent),
 * refused with no spool, or the spool cannot keep it. The message's
 * msg_opaque is NULL: non-NULL ones are spool replays. */
retry_err rc_produce(retry_client *c, const char *key, const char *json, char *err,
                     size_t errsz);

/* 1 when a produce or delivery error can never succeed for this message,
 * whatever the brokers' state (e.g. larger than message.max.bytes): such a
 * task is not spooled, and a spooled one is moved to <spool>.rejected.
 * Every other error counts as transient. (client.c) */
int rc_kafka_err_permanent(rd_kafka_resp_err_t err);

/* Ends the client's async calls and stops its workers (async.c); called
 * first by retry_client_destroy(). Nothing when async was never used. */
void rc_async_drain(retry_client *c);

#define RC_MSG_KEY_MAX (RT_GROUP_MAX + 1 + RETRY_IDEMPOTENCY_KEY_MAX + 1)

#endif
