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
                              * delay (left in prev_delay_ms_), the caller does */

/* Judges the attempt whose code is in *st->rc_ without waiting: returns 1
 * when another attempt is due after *delay_ms (st->attempt_ not yet
 * advanced), 0 when the call is over (finished: shipped, recovered, *rc and
 * *outcome written). retry_call_next() is this plus the wait. (call.c) */
int rc_call_judge(retry_call_state *st, int64_t *delay_ms);

/* A server's wish for the next delay (Retry-After), ms; used once by the
 * next judgement, capped by max_delay_ms, when longer than the backoff. */
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

/* Hands one encoded task to the producer (client.c). When the producer
 * refuses it and the client has a spool, the task is spooled instead:
 * RETRY_OK once it is on disk, RETRY_ERR_KAFKA when the spool cannot keep
 * it. The message's msg_opaque is NULL: non-NULL ones are spool replays. */
retry_err rc_produce(retry_client *c, const char *key, const char *json, char *err,
                     size_t errsz);

/* Ends the client's async calls and stops its workers (async.c); called
 * first by retry_client_destroy(). Nothing when async was never used. */
void rc_async_drain(retry_client *c);

#define RC_MSG_KEY_MAX (RT_GROUP_MAX + 1 + RETRY_IDEMPOTENCY_KEY_MAX + 1)

#endif
