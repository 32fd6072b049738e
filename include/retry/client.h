/*
 * retry/client.h: the client handle of libretryclient.
 *
 * A retry_client holds what every wrapped call shares: the application's
 * group name, the Kafka producer that ships exhausted calls to retryd (when
 * brokers are configured), the log callback, counters, and the test hooks
 * for sleeping, reading the clock and seeding jitter.
 *
 * Async calls (retry/async.h) run on a pool of worker threads the client
 * starts on first use (async_workers, async_queue_max). Scene policies, client defaults, the config
 * file, listeners and the retry budget are in retry/scene.h and below. A task whose delivery to Kafka fails is kept in the local
 * spool (spool_path) and re-produced later; without a spool it is counted in
 * delivery_failed, reported by retry_client_flush(), and lost.
 *
 * Thread safety: after retry_client_new() returns, one client may be used by
 * any number of threads at once (RETRY_CALL, retry_http_call,
 * retry_async_submit, retry_client_flush, retry_client_stats).
 * retry_client_destroy() must not race with any other use of the same
 * client, and must not be called from a callback of that client.
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

struct retry_policy;
struct retry_listener;

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
    /** Worker threads that run async calls after their first attempt
     *  (retry/async.h), >= 1; started on the client's first
     *  retry_async_submit(). [2] */
    int async_workers;
    /** Most async calls accepted and not yet completed, >= 1; beyond it
     *  retry_async_submit() returns RETRY_ERR_QUEUE_FULL. [10000] */
    int async_queue_max;
    /** Local spool file, e.g. "/var/lib/myapp/retry.spool". [NULL = no
     *  spool: a task whose delivery fails is counted in delivery_failed,
     *  reported by retry_client_flush() and lost.] With a path, such a task
     *  is appended to this file and fsync'd, and re-produced later (at
     *  retry_client_new(), on every ship and every retry_client_flush()),
     *  also by the next process that opens the same path; see
     *  docs/client.md "When Kafka is down: the spool". The file (0600) and
     *  "<path>.tmp" (used while compacting) are created in an existing
     *  directory. One client per file: it is locked with flock(), and a
     *  second client on the same path fails with RETRY_ERR_INVALID_ARG.
     *  Requires brokers. Copied. */
    const char *spool_path;
    /** Size cap of the spool file in bytes, header included, >= 4096.
     *  [67108864 = 64 MiB] A task that does not fit is NOT kept: logged at
     *  RETRY_LOG_ERR ("spool full (N bytes): task <key> NOT kept") and
     *  counted in spool_dropped. */
    uint64_t spool_max_bytes;
    /** Client config file (INI, read with inih like retryd's), e.g.
     *  "/etc/myapp/retry.ini". [NULL = none] Keys before any section (or in
     *  [client]): enabled, budget_tokens, budget_retry_cost,
     *  budget_success_refill; [defaults] and [scene:NAME] take the policy
     *  keys max_attempts, delay_ms, multiplier, max_delay_ms, jitter,
     *  retry_on, stop_on, max_elapsed_ms, send_queue, callback_url (see
     *  docs/client.md "Config file"). Its values win over this struct's;
     *  RETRY_CLIENT_<KEY>, RETRY_CLIENT_DEFAULTS_<KEY> and
     *  RETRY_CLIENT_SCENE_<NAME>_<KEY> environment variables win over the
     *  file (NAME upper-cased, other characters than [A-Z0-9] as '_'); the
     *  variable RETRY_CLIENT_CONFIG_PATH names the file when this is NULL.
     *  A bad file, key or value makes retry_client_new() fail with
     *  RETRY_ERR_INVALID_ARG and "path:line: ..." or the variable's name in
     *  errstr. Read once, by retry_client_new(). Copied. */
    const char *config_path;
    /** Client defaults: level 3 of retry/policy.h, below the file's
     *  [defaults]. Copied (with its lists and callback_url; functions and
     *  their ctx pointers are borrowed for the client's lifetime); must not
     *  set deadline_ms, scene or ship_as. [NULL = built-in defaults] */
    const struct retry_policy *defaults;
    /** Listeners called for every call of this client (retry/scene.h),
     *  after the built-in log output and before a policy's own listener.
     *  The array is copied; each listener's functions and ctx are borrowed
     *  for the client's lifetime. [NULL, 0] */
    const struct retry_listener *listeners;
    size_t listener_count;
    /** Retry budget (after the AWS SDKs' retry quota and gRPC's
     *  retryThrottling): a token bucket shared by all calls of the client,
     *  holding at most budget_tokens and starting full. Every retry takes
     *  budget_retry_cost tokens; a retry that finds fewer is not made and
     *  the call ends with RETRY_ERR_BUDGET. Every call that succeeds puts
     *  budget_success_refill tokens back (up to budget_tokens). So in the
     *  long run at most refill/cost retries are made per successful call
     *  (1/5: 20 % with the defaults), and an outage drains the bucket after
     *  budget_tokens/cost retries instead of multiplying the load.
     *  [budget_tokens 0 = no budget] */
    int64_t budget_tokens;
    /** Tokens one retry costs, >= 1. [5] */
    int64_t budget_retry_cost;
    /** Tokens a successful call returns, >= 0. [1] */
    int64_t budget_success_refill;
} retry_client_conf;

#define RETRY_CLIENT_CONF_DEFAULT                                                      \
    {                                                                                  \
        NULL, NULL, "retry.tasks", 10000, NULL, 0, NULL, NULL, NULL, NULL, 0, 1, 2, 10000, \
            NULL, 67108864u, NULL, NULL, NULL, 0, 0, 5, 1                              \
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
 * @return RETRY_OK; RETRY_ERR_INVALID_ARG (bad group, topic, kafka_props...;
 *         spool_path without brokers, a spool file that cannot be opened,
 *         locked (in use by another client) or is not a spool, or
 *         spool_max_bytes < 4096); RETRY_ERR_NOMEM; RETRY_ERR_KAFKA
 *         (librdkafka refused the producer configuration); RETRY_ERR_HTTP
 *         (libcurl global init failed).
 * @remark Thread-safe. An unreachable broker does not make this fail: it
 *         shows up later as log messages and delivery failures.
 * @remark With spool_path, the spool is opened and locked here, a torn or
 *         corrupt tail (a crash in the middle of an append) is logged at
 *         RETRY_LOG_WARNING and cut off, a corrupt record followed by valid
 *         ones is skipped (logged at RETRY_LOG_ERR, counted in
 *         spool_skipped_bytes; the records after it are kept), and the tasks
 *         it holds are handed to the producer at once (without waiting for
 *         their delivery).
 * @remark On failure no client exists and sleep_fn/now_ms_fn are never
 *         called; log_cb may already have received librdkafka's messages.
 */
RETRY_API retry_err retry_client_new(const retry_client_conf *conf, retry_client **out,
                                     char *errstr, size_t errstr_size);

/**
 * @brief Waits up to conf.flush_timeout_ms for queued tasks to be delivered
 *        (re-producing spooled ones first, like retry_client_flush()), then
 *        frees the client. Without a spool, tasks still undelivered are
 *        logged and lost; with one, they are purged from the producer and
 *        kept in the spool for the next client on the same spool_path (a
 *        task purged while in flight may have reached Kafka and is then
 *        sent twice: at-least-once).
 *        Before that it drains the async calls (retry/async.h): no new
 *        ones are accepted, attempts falling due within flush_timeout_ms
 *        run, every other pending call ends at once as RETRY_ERR_EXHAUSTED
 *        (shipped when its policy ships), and each one's on_done and
 *        ctx_free run exactly once, on a worker thread, before this returns.
 * @param client NULL does nothing. Must not be in use by another thread,
 *        nor called from one of the client's callbacks.
 */
RETRY_API void retry_client_destroy(retry_client *client);

/**
 * @brief Re-produces the spooled tasks (once per flush) and waits until
 *        every task produced so far has been delivered or has failed, for at
 *        most timeout_ms; then removes acknowledged tasks from the spool.
 * @param timeout_ms maximum wait; 0 only serves pending delivery reports.
 * @return RETRY_OK when nothing is left in the queue or in the spool and no
 *         task was lost since the previous retry_client_flush();
 *         RETRY_ERR_TIMEOUT when tasks are still queued, or still in the
 *         spool (kept safely, to be re-produced by a later flush: the log
 *         says how many); RETRY_ERR_KAFKA when at least one task was lost
 *         since the previous flush: it failed delivery or was refused by
 *         the producer and there is no spool, Kafka refused it for good
 *         (e.g. larger than message.max.bytes: never spooled), or the spool
 *         could not keep it (spool_dropped);
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
    uint64_t shipped;         /**< tasks handed to the Kafka producer (or, when it
                                   refused them at once, kept in the spool) */
    uint64_t ship_failed;     /**< tasks that could not be handed to it */
    uint64_t delivered;       /**< tasks acknowledged by the brokers (acks=all) */
    uint64_t delivery_failed; /**< tasks the producer gave up on (kept in the spool or lost) */
    uint64_t spooled;        /**< tasks written to the spool (fsync'd) */
    uint64_t spool_replayed; /**< spooled tasks re-produced and acknowledged */
    uint64_t spool_dropped;  /**< tasks the spool could NOT keep (full, I/O error): lost */
    uint64_t spool_bytes;    /**< current size of the spool file, header included */
    uint64_t spool_records;  /**< tasks in the spool not yet acknowledged */
    uint64_t budget_denied;  /**< calls ended by an empty retry budget (RETRY_ERR_BUDGET) */
    uint64_t spool_rejected; /**< spooled tasks Kafka refused for good on replay (e.g. larger
                                  than message.max.bytes), moved to <spool_path>.rejected */
    uint64_t spool_skipped_bytes; /**< bytes of corrupt records skipped in the middle of the
                                       spool when it was opened (those tasks are lost) */
} retry_stats;

/**
 * @brief Copies the client's counters into *out.
 * @param client not NULL. @param out not NULL, caller-owned.
 * @remark Thread-safe; each counter is read atomically, the set as a whole is
 *         not a snapshot. delivered/delivery_failed and the spool counters
 *         advance when delivery reports are served (after each produce, and
 *         in retry_client_flush). delivered counts first deliveries only;
 *         a spooled task's later delivery counts in spool_replayed.
 */
RETRY_API void retry_client_stats(const retry_client *client, retry_stats *out);

#ifdef __cplusplus
}
#endif

#endif
