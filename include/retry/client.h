/*
 * retry/client.h: the client handle of libretryclient.
 *
 * A retry_client holds what every wrapped call shares: the application's
 * group name, the Kafka producer that ships exhausted calls to retryd (when
 * brokers are configured), the log callback, counters, and the test hooks
 * for sleeping, reading the clock and seeding jitter.
 *
 * Not built yet (a later issue; do not rely on them): the async executor
 * (exec = async, RETRY_PENDING), the local spool that keeps tasks across a
 * broker outage, and scene policies / config files registered on the client.
 * Today a task whose delivery fails is counted in delivery_failed and
 * reported by retry_client_flush(), and is lost.
 *
 * Thread safety: after retry_client_new() returns, one client may be used by
 * any number of threads at once (RETRY_CALL, retry_http_call,
 * retry_client_flush, retry_client_stats). retry_client_destroy() must not
 * race with any other use of the same client.
 */
#ifndef RETRY_CLIENT_H
#define RETRY_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque client handle: retry_client_new() / retry_client_destroy(). */
typedef struct retry_client retry_client;

/** Log levels passed to log_cb; the syslog(3) numbers. */
#define RETRY_LOG_ERR 3
#define RETRY_LOG_WARNING 4
#define RETRY_LOG_NOTICE 5
#define RETRY_LOG_INFO 6
#define RETRY_LOG_DEBUG 7

/**
 * Client configuration. Initialise with RETRY_CLIENT_CONF_DEFAULT or
 * retry_client_conf_init() so that fields added later get their defaults.
 * Every string and array is copied by retry_client_new(); the struct may be
 * freed or reused afterwards. Defaults in brackets.
 */
typedef struct retry_client_conf {
    /** Required. The client application, [A-Za-z0-9._-]{1,64}, e.g.
     *  "order-service". First half of every Kafka message key. */
    const char *group;
    /** Kafka bootstrap servers, "host:port[,host:port...]". [NULL] NULL means
     *  no Kafka: exhausted calls are NOT shipped to retryd (send_queue is
     *  ignored), they only return their error. */
    const char *brokers;
    /** Topic the tasks are produced to. ["retry.tasks"] */
    const char *topic;
    /** How long retry_client_destroy() waits for queued tasks. [10000] */
    int flush_timeout_ms;
    /** Extra librdkafka producer properties, each "name=value" (e.g.
     *  "message.timeout.ms=5000"), applied after the library's own
     *  (bootstrap.servers, enable.idempotence=true, acks=all), so they can
     *  override them. [NULL, 0] */
    const char *const *kafka_props;
    size_t kafka_props_count;
    /** Log callback. [NULL = discard] The library never writes to stderr.
     *  @remark Called from the calling thread for per-attempt messages and
     *  from librdkafka's internal threads for Kafka messages: it must be
     *  thread-safe and must not call back into the client. */
    void (*log_cb)(void *opaque, int level, const char *msg);
    /** Passed to log_cb, sleep_fn and now_ms_fn. [NULL] */
    void *opaque;
    /** Test hook: sleeps ms milliseconds between attempts. [NULL = nanosleep]
     *  Called on the thread that runs the call, before every retry, also
     *  when the delay is 0, so a test sees every pause. */
    void (*sleep_fn)(void *opaque, int64_t ms);
    /** Test hook: wall clock in ms since the epoch, used for deadline_ms and
     *  created_at. [NULL = CLOCK_REALTIME] */
    int64_t (*now_ms_fn)(void *opaque);
    /** Seed for jitter. The n-th call of this client that needs a delay
     *  (0-based) uses a generator seeded from rng_seed and n, so a fixed seed
     *  gives a fixed sequence of delays in a single-threaded program.
     *  [0 = seed from the clock] */
    uint64_t rng_seed;
    /** Global switch. [1] 0 makes every wrapped call run exactly once, with
     *  no retries, no recover and no shipping. */
    int enabled;
} retry_client_conf;

#define RETRY_CLIENT_CONF_DEFAULT                                                      \
    {                                                                                  \
        NULL, NULL, "retry.tasks", 10000, NULL, 0, NULL, NULL, NULL, NULL, 0, 1        \
    }

/**
 * @brief Sets every field of *conf to its default (same as
 *        RETRY_CLIENT_CONF_DEFAULT). conf must not be NULL.
 * @remark Thread-safe.
 */
RETRY_API void retry_client_conf_init(retry_client_conf *conf);

/**
 * @brief Creates a client.
 * @param conf borrowed; everything in it is copied. Not NULL.
 * @param out receives the new client on success, NULL on failure. Not NULL.
 * @param errstr on failure, receives one sentence saying what was wrong (may
 *        be NULL when errstr_size is 0).
 * @param errstr_size size of errstr in bytes.
 * @return RETRY_OK; RETRY_ERR_INVALID_ARG (bad group, topic, kafka_props...);
 *         RETRY_ERR_NOMEM; RETRY_ERR_KAFKA (librdkafka refused the producer
 *         configuration); RETRY_ERR_HTTP (libcurl global init failed).
 * @remark Thread-safe. An unreachable broker does not make this fail: it
 *         shows up later as log messages and delivery failures.
 * @remark On failure no client exists and sleep_fn/now_ms_fn are never
 *         called; log_cb may already have received librdkafka's messages.
 */
RETRY_API retry_err retry_client_new(const retry_client_conf *conf, retry_client **out,
                                     char *errstr, size_t errstr_size);

/**
 * @brief Waits up to conf.flush_timeout_ms for queued tasks to be delivered,
 *        then frees the client. Tasks still undelivered are logged and lost.
 * @param client NULL does nothing. Must not be in use by another thread.
 */
RETRY_API void retry_client_destroy(retry_client *client);

/**
 * @brief Waits until every task produced so far has been delivered or has
 *        failed, for at most timeout_ms.
 * @param timeout_ms maximum wait; 0 only serves pending delivery reports.
 * @return RETRY_OK when nothing is left in the queue and no delivery failed
 *         since the previous retry_client_flush(); RETRY_ERR_TIMEOUT when
 *         tasks are still queued; RETRY_ERR_KAFKA when at least one task
 *         failed delivery since the previous flush (see delivery_failed);
 *         RETRY_ERR_INVALID_ARG for a NULL client. RETRY_OK at once when the
 *         client has no brokers.
 * @remark Thread-safe.
 */
RETRY_API retry_err retry_client_flush(retry_client *client, int timeout_ms);

/** Counters since retry_client_new(); filled by retry_client_stats(). */
typedef struct retry_stats {
    uint64_t calls;           /**< wrapped calls that ended (RETRY_CALL, http) */
    uint64_t attempts;        /**< local attempts of those calls (counted at their end) */
    uint64_t succeeded;       /**< calls that ended with success */
    uint64_t exhausted;       /**< calls that used up max_attempts */
    uint64_t stopped;         /**< calls stopped by a non-retryable code */
    uint64_t deadline;        /**< calls ended by deadline_ms */
    uint64_t shipped;         /**< tasks handed to the Kafka producer */
    uint64_t ship_failed;     /**< tasks that could not be handed to it */
    uint64_t delivered;       /**< tasks acknowledged by the brokers (acks=all) */
    uint64_t delivery_failed; /**< tasks the producer gave up on */
} retry_stats;

/**
 * @brief Copies the client's counters into *out.
 * @param client not NULL. @param out not NULL, caller-owned.
 * @remark Thread-safe; each counter is read atomically, the set as a whole is
 *         not a snapshot. delivered/delivery_failed advance when delivery
 *         reports are served (after each produce, and in retry_client_flush).
 */
RETRY_API void retry_client_stats(const retry_client *client, retry_stats *out);

#ifdef __cplusplus
}
#endif

#endif
