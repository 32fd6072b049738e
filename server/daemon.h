/*
 * daemon.h: retryd's state, in one struct that is easy to find, and the
 * threading model.
 *
 * Threads:
 *   - the loop thread runs the libevent loop: HTTP API (evhttp), the
 *     dispatcher's transfers (libcurl multi), callbacks and alerts, timers
 *     and signals. It never calls MySQL.
 *   - store workers (workq.h) each own one MySQL connection and run jobs
 *     posted by the loop; a job's completion runs back on the loop thread.
 *   - the ingest thread (ingest.h) consumes Kafka and writes with its own
 *     MySQL connection.
 * Counters shared between threads are C11 atomics in rd_metrics.
 */
#ifndef RD_DAEMON_H
#define RD_DAEMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "config.h"

struct event_base;
struct event;
typedef struct rd_workq rd_workq;
typedef struct rd_httpc rd_httpc;
typedef struct rd_ingest rd_ingest;
typedef struct rd_dispatcher rd_dispatcher;
typedef struct rd_api rd_api;
typedef struct rd_scheduler rd_scheduler;
typedef struct rd_notify rd_notify;
typedef struct rd_node rd_node;
typedef struct rd_retention rd_retention;

#define RD_LATENESS_BUCKETS 12
/* Upper bounds (ms) of the lateness histogram buckets, ascending. */
extern const int64_t RD_LATENESS_BOUNDS_MS[RD_LATENESS_BUCKETS];

typedef struct rd_metrics {
    atomic_uint_fast64_t tasks_ingested;     /* new tasks stored */
    atomic_uint_fast64_t tasks_duplicate;    /* deliveries of a known key */
    atomic_uint_fast64_t poison;             /* rejected messages kept */
    atomic_uint_fast64_t attempts_succeeded;
    atomic_uint_fast64_t attempts_failed;
    atomic_uint_fast64_t attempts_stopped;
    atomic_uint_fast64_t tasks_succeeded;
    atomic_uint_fast64_t tasks_exhausted;
    atomic_uint_fast64_t tasks_stopped;
    atomic_uint_fast64_t lease_takeovers;
    atomic_uint_fast64_t fence_conflicts;
    atomic_uint_fast64_t callbacks_sent;
    atomic_uint_fast64_t callbacks_failed;
    atomic_uint_fast64_t alerts_sent;
    atomic_uint_fast64_t alerts_failed;
    atomic_uint_fast64_t store_errors;
    atomic_uint_fast64_t breaker_opened;     /* circuit breakers that opened */
    atomic_uint_fast64_t breaker_deferred;   /* attempts deferred by an open breaker */
    atomic_int breakers_open;                /* scenes open or half-open now */
    atomic_uint_fast64_t purged_tasks;       /* retention */
    atomic_uint_fast64_t purged_attempts;
    atomic_int_fast64_t inflight;
    /* Fire lateness: attempt start minus the task's next_fire_at, in ms,
     * as a histogram (bucket i counts values <= RD_LATENESS_BOUNDS_MS[i]; the
     * last bucket is +Inf). */
    atomic_uint_fast64_t lateness_bucket[RD_LATENESS_BUCKETS + 1];
    atomic_uint_fast64_t lateness_sum_ms;
    atomic_uint_fast64_t lateness_count;
    atomic_int mysql_ok;                     /* last store contact succeeded */
    atomic_int kafka_ok;                     /* consumer sees the brokers */
} rd_metrics;

typedef struct rd_daemon {
    /* The running config. Replaced as a whole on SIGHUP (by the loop thread);
     * other threads read the pointer atomically. Replaced configs stay
     * allocated until exit (attempts in flight may point into them). */
    rd_config *_Atomic cfg;
    const char *config_path;  /* for reloads; NULL = none */
    rd_config **reloaded;     /* configs loaded by SIGHUP, freed at exit */
    size_t nreloaded;
    struct event *sig_hup;
    struct event_base *base;
    rd_workq *wq;
    rd_httpc *httpc;
    rd_ingest *ingest;
    rd_scheduler *sched;
    rd_dispatcher *disp;
    rd_notify *notify;
    rd_retention *retention;
    rd_api *api;
    rd_node *node;                           /* node registry (node.h) */
    struct event *sig_term;
    struct event *sig_int;
    struct event *health_timer;
    struct event *shutdown_timer;
    struct event *watchdog_timer;           /* systemd WATCHDOG=1 pings */
    int64_t shutdown_deadline_mono_ms;
    int health_busy;
    atomic_int stopping;                     /* set once, on SIGTERM/SIGINT */
    rd_metrics m;
} rd_daemon;

/* How long a graceful shutdown waits for in-flight attempts (ms) before it
 * aborts them and releases their tasks to 'pending'. */
#define RD_DRAIN_TIMEOUT_MS 10000

/* Applies the schema (sql/schema.sql, found in $RETRYD_SQL_DIR, the install
 * prefix, or the source tree) and returns 0, or -1 with a sentence in err. */
int rd_migrate(const rd_config *cfg, char *err, size_t errsz);

/* Runs retryd until SIGTERM/SIGINT; SIGHUP reloads `config_path` (see
 * rd_config_reload). Returns the process exit code. `cfg` is borrowed. */
int rd_daemon_run(rd_config *cfg, const char *config_path);

#endif
