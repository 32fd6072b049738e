/*
 * store.h: everything retryd says to MySQL. Flow position: ingest -> STORE ->
 * scheduler/dispatcher -> STORE; the HTTP API reads through it too. Nothing
 * else in retryd talks SQL.
 *
 * One rd_store is one MySQL connection. It is not thread-safe: each thread
 * that needs the database owns its own rd_store (the ingest thread, and each
 * worker of the store pool in workq.h). Every call blocks, so none of them
 * may run on the libevent loop thread.
 *
 * Return convention: RD_STORE_OK (0), or a negative rd_store_rc with one
 * sentence in the caller's err buffer naming the failed statement and
 * MySQL's error text.
 */
#ifndef RD_STORE_H
#define RD_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "task.h"

typedef enum rd_store_rc {
    RD_STORE_OK = 0,
    RD_STORE_ERR = -1,       /* a statement failed; the connection is fine */
    RD_STORE_CONN = -2,      /* the connection is gone (reconnect and retry) */
    RD_STORE_NOTFOUND = -3,  /* no such row */
    RD_STORE_CONFLICT = -4   /* fencing token no longer ours, or bad state */
} rd_store_rc;

typedef struct rd_store rd_store;

/* Connects with [mysql] settings. multi_statements: allow several
 * statements per query (only --migrate needs it). */
int rd_store_open(const rd_config *c, int multi_statements, rd_store **out, char *err,
                  size_t errsz);
void rd_store_close(rd_store *s);
/* Checks the connection, reconnecting once if it was lost. */
int rd_store_ping(rd_store *s, char *err, size_t errsz);

/* Runs the schema (a text of ';'-terminated statements). Idempotent when the
 * statements are. */
int rd_store_migrate(rd_store *s, const char *sql, char *err, size_t errsz);

/* One task to insert. payload is the canonical wire-format JSON. */
typedef struct rd_ingest_row {
    const rt_task *task;
    const char *payload;
    int max_attempts;      /* resolved policy */
    int64_t next_fire_at;  /* ms */
    int64_t deadline;      /* ms, 0 = none */
} rd_ingest_row;

typedef struct rd_poison_row {
    const char *raw;
    size_t raw_len;
    const char *reason;
    const char *source;
} rd_poison_row;

/* Inserts tasks (a duplicate (group_name, idempotency_key) is left as it is:
 * no second task, progress kept) and poison rows in ONE transaction, split
 * into statements of at most RD_STORE_MAX_STATEMENT_BYTES so that a batch of
 * large messages stays under max_allowed_packet (MariaDB default 16 MiB).
 * *inserted = number of new tasks. On error nothing is written. */
#define RD_STORE_MAX_STATEMENT_BYTES (4u << 20)
int rd_store_ingest(rd_store *s, const rd_ingest_row *rows, size_t nrows,
                    const rd_poison_row *poison, size_t npoison, int64_t now_ms,
                    size_t *inserted, char *err, size_t errsz);

/* Inserts one task; *id is the task's id (new or existing), *duplicate 1 when
 * the key existed. */
int rd_store_insert_one(rd_store *s, const rd_ingest_row *row, int64_t now_ms, uint64_t *id,
                        int *duplicate, char *err, size_t errsz);

/* A task claimed by this node: owned until lease_until, fenced by `fence`. */
typedef struct rd_claimed {
    uint64_t id;
    uint64_t fence;
    int attempts;          /* server attempts made since the last replay */
    int attempt_seq;       /* server attempts ever made (numbers retry_attempt rows) */
    int max_attempts;
    int64_t last_delay_ms;
    int64_t deadline;      /* 0 = none */
    int64_t next_fire_at;
    char *payload;         /* heap */
    int expired;           /* taken from an expired lease: attempt_seq was
                              advanced past the number its holder may have sent */
} rd_claimed;

/* Claims up to `limit` due tasks: status 'pending' with next_fire_at <= now,
 * or 'running' with an expired lease (its node died). Highest priority
 * first, then oldest due. Uses SELECT ... FOR UPDATE SKIP LOCKED so nodes
 * never claim the same row; each claimed row gets owner_node = node,
 * lease_until, fence + 1, status 'running'. *out is a heap array (free with
 * rd_claimed_free); *n may be 0. *taken_over counts expired leases of other
 * nodes taken over.
 * Tasks of the nskip scenes in skip_scenes (saturated on this node) are not
 * claimed. */
int rd_store_claim(rd_store *s, const char *node, int limit, int64_t now_ms,
                   int64_t lease_until_ms, char *const *skip_scenes, size_t nskip,
                   rd_claimed **out, size_t *n, size_t *taken_over, char *err, size_t errsz);
void rd_claimed_free(rd_claimed *c, size_t n);

/* The result of one attempt, written with the task's new state in one
 * transaction, only if the task still carries our fencing token. */
typedef struct rd_attempt_result {
    uint64_t task_id;
    uint64_t fence;
    int attempt;             /* attempt number: attempt_seq + 1 (X-Retry-Attempt) */
    int attempts;            /* the task's new `attempts` (since the last replay) */
    int no_attempt;          /* 1: no attempt was made (deadline passed before firing,
                                or the scene's breaker deferred it); attempts,
                                attempt_seq and last_status unchanged, no row */
    const char *node;
    const char *group;
    const char *scene;
    int64_t due_at;          /* ms: the next_fire_at the claim saw */
    int64_t started_at;      /* ms */
    int duration_ms;
    const char *outcome;     /* succeeded | failed | stopped */
    int http_status;         /* 0 = no response */
    const char *error;       /* NULL = none */
    const char *new_status;  /* pending | succeeded | exhausted | stopped */
    int64_t next_fire_at;    /* for pending */
    int64_t last_delay_ms;
} rd_attempt_result;

/* Returns RD_STORE_CONFLICT (and writes nothing) when the fence moved on. */
int rd_store_record(rd_store *s, const rd_attempt_result *r, int64_t now_ms, char *err,
                    size_t errsz);

/* Extends the leases of tasks this node is still working on: lease_until =
 * lease_until_ms where id and fence match. *renewed = rows changed (a task
 * whose fence moved on is not renewed). */
int rd_store_renew(rd_store *s, const uint64_t *ids, const uint64_t *fences, size_t n,
                   int64_t lease_until_ms, size_t *renewed, char *err, size_t errsz);

/* Gives a claimed task back: status 'pending', due now, lease cleared. */
int rd_store_release(rd_store *s, uint64_t id, uint64_t fence, int64_t now_ms, char *err,
                     size_t errsz);

/* Read side for the HTTP API. Each returns a new jansson reference or NULL
 * with the rc in *rc. */
json_t *rd_store_task_json(rd_store *s, uint64_t id, int *rc, char *err, size_t errsz);

typedef struct rd_task_filter {
    const char *status;
    const char *group;
    const char *scene;
    const char *idempotency_key;
    int limit;          /* 1..1000 */
    uint64_t cursor;    /* tasks with id > cursor */
} rd_task_filter;
json_t *rd_store_list_tasks(rd_store *s, const rd_task_filter *f, int *rc, char *err,
                            size_t errsz);
json_t *rd_store_attempts_json(rd_store *s, uint64_t id, int *rc, char *err, size_t errsz);
/* Scenes (with group) ranked by failed attempts (outcome <> 'succeeded')
 * started at or after since_ms, with their task counts by status. */
json_t *rd_store_report_top(rd_store *s, int64_t since_ms, int limit, int *rc, char *err,
                            size_t errsz);

/* Tasks created at or after since_ms: {"tasks": {status: count}, "ended",
 * "success_rate" (succeeded / ended, null when none ended), "attempts":
 * {"total", "succeeded", "failed", "stopped"} (attempts started since),
 * "time_to_success_ms": {"p50", "p99"} (ended_at - created_at of succeeded
 * tasks, nearest-rank percentiles, null when none)}. */
json_t *rd_store_report_summary(rd_store *s, int64_t since_ms, int *rc, char *err,
                                size_t errsz);

/* Retention, one small batch: deletes up to `batch` succeeded tasks that
 * ended before succeeded_before_ms (with their attempt rows, in one
 * transaction), then up to `batch` attempt rows started before
 * attempts_before_ms. A cutoff of 0 skips that part. *tasks and *attempts
 * count the rows deleted (attempts includes those of the deleted tasks). */
int rd_store_purge(rd_store *s, int64_t succeeded_before_ms, int64_t attempts_before_ms,
                   int batch, size_t *tasks, size_t *attempts, char *err, size_t errsz);

/* Operator actions: "replay" (ended or paused -> pending, attempts reset),
 * "pause" (pending -> paused), "resume" (paused -> pending), "cancel"
 * (pending/paused -> cancelled). RD_STORE_CONFLICT when the task is in a
 * state the action does not apply to. */
int rd_store_task_action(rd_store *s, uint64_t id, const char *action, int64_t now_ms,
                         char *err, size_t errsz);

/* ---- node registry (node.h) ---------------------------------------------- */

/* One retryd process, as written to retry_node. started_at identifies the
 * process: a restart under the same node id writes a new one. */
typedef struct rd_node_row {
    const char *node_id;
    const char *host;
    long pid;
    const char *version;
    const char *http_listen;
    int64_t started_at;      /* ms */
} rd_node_row;

/* Creates or refreshes the node's row: status 'up', heartbeat_at = now_ms.
 * A row that this same process (node_id and started_at) already marked
 * 'stopped' is left alone, so a heartbeat that runs after the stop mark
 * cannot revive it. */
int rd_store_node_heartbeat(rd_store *s, const rd_node_row *n, int64_t now_ms, char *err,
                            size_t errsz);
/* Marks the node's row 'stopped' (graceful exit), if it still belongs to this
 * process (same started_at). */
int rd_store_node_stopped(rd_store *s, const rd_node_row *n, int64_t now_ms, char *err,
                          size_t errsz);
/* {"now", "heartbeat_interval_ms", "stale_after_ms", "nodes": [{"id", "status",
 * "started_at", "heartbeat_at", "heartbeat_age_ms", "stale", "version",
 * "http_listen", "host", "pid", "leases"}]} in node id order. stale is true when
 * heartbeat_at is older than stale_after_ms; leases counts the node's
 * 'running' tasks (retry_task.owner_node), expired or not. */
json_t *rd_store_nodes_json(rd_store *s, int64_t now_ms, int64_t heartbeat_ms,
                            int64_t stale_after_ms, int *rc, char *err, size_t errsz);

#endif
