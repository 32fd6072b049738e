/*
 * store.c: retryd's only SQL. See store.h for the contract of each call.
 *
 * Statements are built with mysql_real_escape_string into a growing buffer
 * (sqlbuf) rather than prepared statements: the batched ingest INSERT has a
 * variable row count, and one code path for every statement keeps escaping
 * in one place (sqlbuf_str).
 */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct rd_store {
    MYSQL *db;
};

/* ---- growing SQL text buffer ------------------------------------------- */

typedef struct sqlbuf {
    char *p;
    size_t len, cap;
    int oom;
} sqlbuf;

static void sqlbuf_reserve(sqlbuf *b, size_t extra)
{
    if (b->oom || b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + extra + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static void sqlbuf_printf(sqlbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sqlbuf_printf(sqlbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    sqlbuf_reserve(b, (size_t)n);
    if (b->oom) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Appends a quoted, escaped string literal, or NULL when s is NULL. */
static void sqlbuf_strn(sqlbuf *b, MYSQL *db, const char *s, size_t n)
{
    if (!s) {
        sqlbuf_printf(b, "NULL");
        return;
    }
    sqlbuf_reserve(b, n * 2 + 3);
    if (b->oom) return;
    b->p[b->len++] = '\'';
    b->len += mysql_real_escape_string(db, b->p + b->len, s, (unsigned long)n);
    b->p[b->len++] = '\'';
    b->p[b->len] = '\0';
}

static void sqlbuf_str(sqlbuf *b, MYSQL *db, const char *s)
{
    sqlbuf_strn(b, db, s, s ? strlen(s) : 0);
}

static void sqlbuf_free(sqlbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- errors -------------------------------------------------------------- */

static int is_conn_error(unsigned e)
{
    /* CR_SERVER_GONE_ERROR 2006, CR_SERVER_LOST 2013, CR_CONN_HOST_ERROR 2003,
     * CR_CONNECTION_ERROR 2002, ER_CONNECTION_KILLED 1927 (MariaDB) */
    return e == 2006 || e == 2013 || e == 2003 || e == 2002 || e == 1927 || e == 4031;
}

static int fail(rd_store *s, const char *what, char *err, size_t errsz)
{
    unsigned e = mysql_errno(s->db);
    snprintf(err, errsz, "mysql %s: %s (errno %u)", what, mysql_error(s->db), e);
    return is_conn_error(e) ? RD_STORE_CONN : RD_STORE_ERR;
}

static int run(rd_store *s, const sqlbuf *b, const char *what, char *err, size_t errsz)
{
    if (b->oom) {
        snprintf(err, errsz, "mysql %s: out of memory building the statement", what);
        return RD_STORE_ERR;
    }
    if (mysql_real_query(s->db, b->p, (unsigned long)b->len) != 0) return fail(s, what, err, errsz);
    return RD_STORE_OK;
}

static int run_sql(rd_store *s, const char *sql, const char *what, char *err, size_t errsz)
{
    if (mysql_query(s->db, sql) != 0) return fail(s, what, err, errsz);
    return RD_STORE_OK;
}

static void rollback(rd_store *s)
{
    /* A failed rollback on a broken connection changes nothing: the server
     * discards the transaction when the session ends. */
    (void)mysql_rollback(s->db);
}

/* ---- connection ---------------------------------------------------------- */

int rd_store_open(const rd_config *c, int multi_statements, rd_store **out, char *err,
                  size_t errsz)
{
    *out = NULL;
    rd_store *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errsz, "mysql: out of memory");
        return RD_STORE_ERR;
    }
    s->db = mysql_init(NULL);
    if (!s->db) {
        free(s);
        snprintf(err, errsz, "mysql_init: out of memory");
        return RD_STORE_ERR;
    }
    unsigned timeout_s = 5;
    /* Read/write timeouts bound every statement, so a MySQL server that stops
     * answering cannot hang a worker (or shutdown) forever. */
    unsigned io_timeout_s = 30;
    my_bool reconnect = 0; /* reconnects are explicit (rd_store_ping) so a
                              transaction is never silently cut in two */
    mysql_options(s->db, MYSQL_OPT_CONNECT_TIMEOUT, &timeout_s);
    mysql_options(s->db, MYSQL_OPT_RECONNECT, &reconnect);
    mysql_options(s->db, MYSQL_OPT_READ_TIMEOUT, &io_timeout_s);
    mysql_options(s->db, MYSQL_OPT_WRITE_TIMEOUT, &io_timeout_s);
    mysql_options(s->db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    unsigned long flags = multi_statements ? CLIENT_MULTI_STATEMENTS : 0;
    if (!mysql_real_connect(s->db, c->mysql_socket ? NULL : c->mysql_host, c->mysql_user,
                            c->mysql_password, c->mysql_database,
                            (unsigned)c->mysql_port, c->mysql_socket, flags)) {
        snprintf(err, errsz, "mysql connect to %s%s%s/%s as %s: %s",
                 c->mysql_socket ? "unix:" : c->mysql_host, c->mysql_socket ? c->mysql_socket : ":",
                 c->mysql_socket ? "" : "", c->mysql_database, c->mysql_user,
                 mysql_error(s->db));
        mysql_close(s->db);
        free(s);
        return RD_STORE_CONN;
    }
    /* Autocommit on; multi-statement writes use explicit transactions.
     * READ COMMITTED keeps SKIP LOCKED claims from taking gap locks. */
    if (mysql_query(s->db, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED") != 0) {
        int rc = fail(s, "SET TRANSACTION ISOLATION LEVEL", err, errsz);
        mysql_close(s->db);
        free(s);
        return rc;
    }
    *out = s;
    return RD_STORE_OK;
}

void rd_store_close(rd_store *s)
{
    if (!s) return;
    mysql_close(s->db);
    free(s);
}

int rd_store_ping(rd_store *s, char *err, size_t errsz)
{
    if (mysql_ping(s->db) == 0) return RD_STORE_OK;
    return fail(s, "ping", err, errsz);
}

int rd_store_migrate(rd_store *s, const char *sql, char *err, size_t errsz)
{
    if (mysql_query(s->db, sql) != 0) return fail(s, "migrate", err, errsz);
    int status;
    do {
        MYSQL_RES *res = mysql_store_result(s->db);
        if (res) mysql_free_result(res);
        status = mysql_next_result(s->db);
        if (status > 0) return fail(s, "migrate", err, errsz);
    } while (status == 0);
    return RD_STORE_OK;
}

/* ---- ingest -------------------------------------------------------------- */

static void append_task_values(sqlbuf *b, MYSQL *db, const rd_ingest_row *r, int64_t now)
{
    const rt_task *t = r->task;
    sqlbuf_printf(b, "(");
    sqlbuf_str(b, db, t->group);
    sqlbuf_printf(b, ",");
    sqlbuf_str(b, db, t->scene);
    sqlbuf_printf(b, ",");
    sqlbuf_str(b, db, t->idempotency_key);
    sqlbuf_printf(b, ",'pending',0,%d,%d,%" PRId64 ",", r->max_attempts, t->priority,
                  r->next_fire_at);
    if (r->deadline > 0)
        sqlbuf_printf(b, "%" PRId64 ",", r->deadline);
    else
        sqlbuf_printf(b, "NULL,");
    sqlbuf_str(b, db, t->trace_id);
    sqlbuf_printf(b, ",");
    sqlbuf_str(b, db, r->payload);
    sqlbuf_printf(b, ",%" PRId64 ",%" PRId64 ")", now, now);
}

static const char INSERT_TASK_HEAD[] =
    "INSERT INTO retry_task (group_name, scene, idempotency_key, status, attempts, "
    "max_attempts, priority, next_fire_at, deadline, trace_id, payload, created_at, "
    "updated_at) VALUES ";
/* A duplicate key keeps the existing row untouched; LAST_INSERT_ID(id) makes
 * the existing id readable for rd_store_insert_one. */
static const char INSERT_TASK_TAIL[] = " ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id)";

int rd_store_ingest(rd_store *s, const rd_ingest_row *rows, size_t nrows,
                    const rd_poison_row *poison, size_t npoison, int64_t now_ms,
                    size_t *inserted, char *err, size_t errsz)
{
    *inserted = 0;
    int rc = run_sql(s, "START TRANSACTION", "START TRANSACTION", err, errsz);
    if (rc) return rc;
    sqlbuf b = {0};
    for (size_t i = 0; i < nrows; i++) {
        if (b.len == 0) sqlbuf_printf(&b, "%s", INSERT_TASK_HEAD);
        else sqlbuf_printf(&b, ",");
        append_task_values(&b, s->db, &rows[i], now_ms);
        if (i + 1 < nrows && b.len < RD_STORE_MAX_STATEMENT_BYTES) continue;
        sqlbuf_printf(&b, "%s", INSERT_TASK_TAIL);
        rc = run(s, &b, "INSERT retry_task (batch)", err, errsz);
        if (rc) goto out;
        /* With ON DUPLICATE KEY UPDATE (and CLIENT_FOUND_ROWS unset), a new
         * row counts 1 and an existing row left unchanged counts 0. */
        *inserted += (size_t)mysql_affected_rows(s->db);
        b.len = 0;
    }
    for (size_t i = 0; i < npoison; i++) {
        if (b.len == 0)
            sqlbuf_printf(&b, "INSERT INTO retry_poison (raw, reason, source, received_at) VALUES ");
        else
            sqlbuf_printf(&b, ",");
        sqlbuf_printf(&b, "(");
        sqlbuf_strn(&b, s->db, poison[i].raw ? poison[i].raw : "", poison[i].raw_len);
        sqlbuf_printf(&b, ",");
        sqlbuf_str(&b, s->db, poison[i].reason);
        sqlbuf_printf(&b, ",");
        sqlbuf_str(&b, s->db, poison[i].source);
        sqlbuf_printf(&b, ",%" PRId64 ")", now_ms);
        if (i + 1 < npoison && b.len < RD_STORE_MAX_STATEMENT_BYTES) continue;
        rc = run(s, &b, "INSERT retry_poison", err, errsz);
        if (rc) goto out;
        b.len = 0;
    }
    rc = run_sql(s, "COMMIT", "COMMIT", err, errsz);
out:
    if (rc) {
        *inserted = 0;
        rollback(s);
    }
    sqlbuf_free(&b);
    return rc;
}

int rd_store_insert_one(rd_store *s, const rd_ingest_row *row, int64_t now_ms, uint64_t *id,
                        int *duplicate, char *err, size_t errsz)
{
    sqlbuf b = {0};
    sqlbuf_printf(&b, "%s", INSERT_TASK_HEAD);
    append_task_values(&b, s->db, row, now_ms);
    sqlbuf_printf(&b, "%s", INSERT_TASK_TAIL);
    int rc = run(s, &b, "INSERT retry_task", err, errsz);
    sqlbuf_free(&b);
    if (rc) return rc;
    *duplicate = mysql_affected_rows(s->db) == 1 ? 0 : 1;
    *id = (uint64_t)mysql_insert_id(s->db);
    return RD_STORE_OK;
}

/* ---- claim / record / release ------------------------------------------- */

static int64_t col_i64(const char *v)
{
    return v ? strtoll(v, NULL, 10) : 0;
}

/* Appends " AND scene NOT IN (...)" for the scenes to leave out. */
static void append_skip(sqlbuf *b, MYSQL *db, char *const *skip, size_t nskip)
{
    if (nskip == 0) return;
    sqlbuf_printf(b, " AND scene NOT IN (");
    for (size_t i = 0; i < nskip; i++) {
        if (i) sqlbuf_printf(b, ",");
        sqlbuf_str(b, db, skip[i]);
    }
    sqlbuf_printf(b, ")");
}

int rd_store_claim(rd_store *s, const char *node, int limit, int64_t now_ms,
                   int64_t lease_until_ms, char *const *skip_scenes, size_t nskip,
                   rd_claimed **out, size_t *n, size_t *taken_over, char *err, size_t errsz)
{
    *out = NULL;
    *n = 0;
    *taken_over = 0;
    if (limit <= 0) return RD_STORE_OK;
    sqlbuf b = {0};
    MYSQL_RES *res = NULL;
    rd_claimed *claimed = NULL;
    size_t count = 0;
    int rc = run_sql(s, "START TRANSACTION", "START TRANSACTION", err, errsz);
    if (rc) return rc;

    /* Due pending tasks, then tasks whose lease expired (their node died).
     * The UNION keeps each branch on its own index. */
    sqlbuf_printf(&b,
                  "SELECT id, fence, attempts, max_attempts, last_delay_ms, deadline, "
                  "next_fire_at, payload, attempt_seq FROM retry_task "
                  "WHERE status = 'pending' AND next_fire_at <= %" PRId64,
                  now_ms);
    append_skip(&b, s->db, skip_scenes, nskip);
    sqlbuf_printf(&b, " ORDER BY priority DESC, next_fire_at LIMIT %d FOR UPDATE SKIP LOCKED",
                  limit);
    rc = run(s, &b, "SELECT due tasks FOR UPDATE SKIP LOCKED", err, errsz);
    if (rc) goto out;
    for (int pass = 0; pass < 2; pass++) {
        res = mysql_store_result(s->db);
        if (!res) {
            rc = fail(s, "claim: store result", err, errsz);
            goto out;
        }
        my_ulonglong rows = mysql_num_rows(res);
        if (rows > 0) {
            rd_claimed *grown = realloc(claimed, (count + rows) * sizeof *claimed);
            if (!grown) {
                snprintf(err, errsz, "claim: out of memory");
                rc = RD_STORE_ERR;
                goto out;
            }
            claimed = grown;
        }
        MYSQL_ROW row;
        while ((row = mysql_fetch_row(res)) != NULL) {
            unsigned long *lens = mysql_fetch_lengths(res);
            rd_claimed *c = &claimed[count];
            memset(c, 0, sizeof *c);
            c->id = strtoull(row[0], NULL, 10);
            c->fence = strtoull(row[1], NULL, 10) + 1;
            c->attempts = (int)col_i64(row[2]);
            c->max_attempts = (int)col_i64(row[3]);
            c->last_delay_ms = col_i64(row[4]);
            c->deadline = col_i64(row[5]);
            c->next_fire_at = col_i64(row[6]);
            c->payload = strndup(row[7], lens[7]);
            c->attempt_seq = (int)col_i64(row[8]);
            if (!c->payload) {
                snprintf(err, errsz, "claim: out of memory");
                rc = RD_STORE_ERR;
                goto out;
            }
            /* A takeover is another node's expired lease; re-claiming our own
             * (after a failed renewal) is not counted. */
            if (pass == 1 && (!row[9] || strcmp(row[9], node) != 0)) (*taken_over)++;
            /* The last holder may have sent attempt attempt_seq + 1 before it
             * died without recording it: skip that number, so no target
             * ever sees one (Idempotency-Key, X-Retry-Attempt) twice. */
            if (pass == 1) c->attempt_seq++;
            c->expired = pass == 1;
            count++;
        }
        mysql_free_result(res);
        res = NULL;
        if (pass == 0) {
            int left = limit - (int)count;
            if (left <= 0) break;
            b.len = 0;
            sqlbuf_printf(&b,
                          "SELECT id, fence, attempts, max_attempts, last_delay_ms, deadline, "
                          "next_fire_at, payload, attempt_seq, owner_node FROM retry_task "
                          "WHERE status = 'running' AND lease_until < %" PRId64,
                          now_ms);
            append_skip(&b, s->db, skip_scenes, nskip);
            sqlbuf_printf(&b, " ORDER BY lease_until LIMIT %d FOR UPDATE SKIP LOCKED", left);
            rc = run(s, &b, "SELECT expired leases FOR UPDATE SKIP LOCKED", err, errsz);
            if (rc) goto out;
        }
    }
    if (count > 0) {
        b.len = 0;
        sqlbuf_printf(&b, "UPDATE retry_task SET status = 'running', owner_node = ");
        sqlbuf_str(&b, s->db, node);
        sqlbuf_printf(&b, ", lease_until = %" PRId64 ", fence = fence + 1, updated_at = %" PRId64
                      " WHERE id IN (",
                      lease_until_ms, now_ms);
        for (size_t i = 0; i < count; i++)
            sqlbuf_printf(&b, "%s%" PRIu64, i ? "," : "", claimed[i].id);
        sqlbuf_printf(&b, ")");
        rc = run(s, &b, "UPDATE retry_task (claim)", err, errsz);
        if (rc) goto out;
        b.len = 0;
        for (size_t i = 0, n_exp = 0; i < count; i++) {
            if (!claimed[i].expired) continue;
            sqlbuf_printf(&b, "%s%" PRIu64, n_exp++ ? "," : "UPDATE retry_task SET attempt_seq = "
                                                            "attempt_seq + 1 WHERE id IN (",
                          claimed[i].id);
        }
        if (b.len) {
            sqlbuf_printf(&b, ")");
            rc = run(s, &b, "UPDATE retry_task (skip the lost attempt number)", err, errsz);
            if (rc) goto out;
        }
    }
    rc = run_sql(s, "COMMIT", "COMMIT claim", err, errsz);
out:
    if (res) mysql_free_result(res);
    sqlbuf_free(&b);
    if (rc) {
        rollback(s);
        rd_claimed_free(claimed, count);
        *taken_over = 0;
        return rc;
    }
    *out = claimed;
    *n = count;
    return RD_STORE_OK;
}

void rd_claimed_free(rd_claimed *c, size_t n)
{
    if (!c) return;
    for (size_t i = 0; i < n; i++) free(c[i].payload);
    free(c);
}

static int is_ended(const char *status)
{
    return strcmp(status, "pending") != 0;
}

int rd_store_record(rd_store *s, const rd_attempt_result *r, int64_t now_ms, char *err,
                    size_t errsz)
{
    sqlbuf b = {0};
    int rc = run_sql(s, "START TRANSACTION", "START TRANSACTION", err, errsz);
    if (rc) return rc;
    /* The task update goes first and is fenced: if another node took the
     * lease over, zero rows match and the attempt row is not written. */
    sqlbuf_printf(&b, "UPDATE retry_task SET status = ");
    sqlbuf_str(&b, s->db, r->new_status);
    if (!r->no_attempt)
        sqlbuf_printf(&b, ", attempts = %d, attempt_seq = %d", r->attempts, r->attempt);
    sqlbuf_printf(&b, ", last_delay_ms = %" PRId64 ", next_fire_at = %" PRId64,
                  r->last_delay_ms, r->next_fire_at);
    /* Without an attempt, last_status keeps the last answer actually seen. */
    if (!r->no_attempt && r->http_status > 0)
        sqlbuf_printf(&b, ", last_status = %d", r->http_status);
    else if (!r->no_attempt)
        sqlbuf_printf(&b, ", last_status = NULL");
    sqlbuf_printf(&b, ", last_error = ");
    if (r->error)
        sqlbuf_strn(&b, s->db, r->error, strnlen(r->error, 1024));
    else
        sqlbuf_printf(&b, "NULL");
    sqlbuf_printf(&b, ", owner_node = NULL, lease_until = NULL, updated_at = %" PRId64, now_ms);
    if (is_ended(r->new_status)) sqlbuf_printf(&b, ", ended_at = %" PRId64, now_ms);
    sqlbuf_printf(&b, " WHERE id = %" PRIu64 " AND fence = %" PRIu64 " AND status = 'running'",
                  r->task_id, r->fence);
    rc = run(s, &b, "UPDATE retry_task (record attempt)", err, errsz);
    if (rc) goto out;
    if (mysql_affected_rows(s->db) != 1) {
        snprintf(err, errsz,
                 "task %" PRIu64 ": fencing token %" PRIu64 " is no longer current; "
                 "attempt %d result discarded",
                 r->task_id, r->fence, r->attempt);
        rc = RD_STORE_CONFLICT;
        goto out;
    }
    if (r->no_attempt) goto commit;
    b.len = 0;
    sqlbuf_printf(&b, "INSERT INTO retry_attempt (task_id, attempt, node, fence, group_name, "
                      "scene, due_at, started_at, duration_ms, outcome, http_status, error) "
                      "VALUES (");
    sqlbuf_printf(&b, "%" PRIu64 ",%d,", r->task_id, r->attempt);
    sqlbuf_str(&b, s->db, r->node);
    sqlbuf_printf(&b, ",%" PRIu64 ",", r->fence);
    sqlbuf_str(&b, s->db, r->group);
    sqlbuf_printf(&b, ",");
    sqlbuf_str(&b, s->db, r->scene);
    sqlbuf_printf(&b, ",%" PRId64 ",%" PRId64 ",%d,", r->due_at, r->started_at, r->duration_ms);
    sqlbuf_str(&b, s->db, r->outcome);
    if (r->http_status > 0)
        sqlbuf_printf(&b, ",%d,", r->http_status);
    else
        sqlbuf_printf(&b, ",NULL,");
    if (r->error)
        sqlbuf_strn(&b, s->db, r->error, strnlen(r->error, 1024));
    else
        sqlbuf_printf(&b, "NULL");
    sqlbuf_printf(&b, ")");
    rc = run(s, &b, "INSERT retry_attempt", err, errsz);
    if (rc) goto out;
commit:
    rc = run_sql(s, "COMMIT", "COMMIT attempt", err, errsz);
out:
    if (rc) rollback(s);
    sqlbuf_free(&b);
    return rc;
}

int rd_store_renew(rd_store *s, const uint64_t *ids, const uint64_t *fences, size_t n,
                   int64_t lease_until_ms, size_t *renewed, char *err, size_t errsz)
{
    *renewed = 0;
    if (n == 0) return RD_STORE_OK;
    sqlbuf b = {0};
    sqlbuf_printf(&b, "UPDATE retry_task SET lease_until = %" PRId64
                      " WHERE status = 'running' AND (id, fence) IN (",
                  lease_until_ms);
    for (size_t i = 0; i < n; i++)
        sqlbuf_printf(&b, "%s(%" PRIu64 ",%" PRIu64 ")", i ? "," : "", ids[i], fences[i]);
    sqlbuf_printf(&b, ")");
    int rc = run(s, &b, "UPDATE retry_task (renew leases)", err, errsz);
    sqlbuf_free(&b);
    if (rc) return rc;
    *renewed = (size_t)mysql_affected_rows(s->db);
    return RD_STORE_OK;
}

int rd_store_release(rd_store *s, uint64_t id, uint64_t fence, int64_t now_ms, char *err,
                     size_t errsz)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "UPDATE retry_task SET status = 'pending', next_fire_at = %" PRId64
             ", owner_node = NULL, lease_until = NULL, updated_at = %" PRId64
             " WHERE id = %" PRIu64 " AND fence = %" PRIu64 " AND status = 'running'",
             now_ms, now_ms, id, fence);
    int rc = run_sql(s, sql, "UPDATE retry_task (release)", err, errsz);
    if (rc) return rc;
    if (mysql_affected_rows(s->db) != 1) {
        snprintf(err, errsz, "task %" PRIu64 ": fencing token %" PRIu64 " is no longer current",
                 id, fence);
        return RD_STORE_CONFLICT;
    }
    return RD_STORE_OK;
}

/* ---- read side ----------------------------------------------------------- */

/* Converts the current result set into a JSON array of objects. Columns whose
 * MySQL type is numeric become JSON integers; NULL becomes null; a column
 * named "payload" is parsed as JSON. */
static json_t *result_to_json(rd_store *s, const char *what, int *rc, char *err, size_t errsz)
{
    MYSQL_RES *res = mysql_store_result(s->db);
    if (!res) {
        *rc = fail(s, what, err, errsz);
        return NULL;
    }
    unsigned nf = mysql_num_fields(res);
    MYSQL_FIELD *fields = mysql_fetch_fields(res);
    json_t *arr = json_array();
    MYSQL_ROW row;
    while (arr && (row = mysql_fetch_row(res)) != NULL) {
        unsigned long *lens = mysql_fetch_lengths(res);
        json_t *o = json_object();
        for (unsigned i = 0; o && i < nf; i++) {
            json_t *v;
            if (!row[i]) {
                v = json_null();
            } else if (strcmp(fields[i].name, "payload") == 0) {
                v = json_loadb(row[i], lens[i], 0, NULL);
                if (!v) v = json_stringn(row[i], lens[i]);
            } else if (IS_NUM(fields[i].type) && fields[i].type != MYSQL_TYPE_DECIMAL &&
                       fields[i].type != MYSQL_TYPE_NEWDECIMAL &&
                       fields[i].type != MYSQL_TYPE_DOUBLE && fields[i].type != MYSQL_TYPE_FLOAT) {
                v = json_integer(strtoll(row[i], NULL, 10));
            } else if (IS_NUM(fields[i].type)) {
                v = json_real(strtod(row[i], NULL));
            } else {
                v = json_stringn_nocheck(row[i], lens[i]);
            }
            json_object_set_new(o, fields[i].name, v);
        }
        json_array_append_new(arr, o);
    }
    mysql_free_result(res);
    if (!arr) {
        snprintf(err, errsz, "%s: out of memory", what);
        *rc = RD_STORE_ERR;
    }
    return arr;
}

static const char TASK_COLUMNS[] =
    "id, group_name AS `group`, scene, idempotency_key, status, attempts, attempt_seq, "
    "max_attempts, "
    "priority, next_fire_at, deadline, last_status, last_error, trace_id, owner_node, "
    "lease_until, fence, created_at, updated_at, ended_at";

json_t *rd_store_task_json(rd_store *s, uint64_t id, int *rc, char *err, size_t errsz)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT %s, payload FROM retry_task WHERE id = %" PRIu64,
             TASK_COLUMNS, id);
    *rc = run_sql(s, sql, "SELECT retry_task", err, errsz);
    if (*rc) return NULL;
    json_t *arr = result_to_json(s, "SELECT retry_task", rc, err, errsz);
    if (!arr) return NULL;
    if (json_array_size(arr) == 0) {
        json_decref(arr);
        snprintf(err, errsz, "no task with id %" PRIu64, id);
        *rc = RD_STORE_NOTFOUND;
        return NULL;
    }
    json_t *t = json_incref(json_array_get(arr, 0));
    json_decref(arr);
    *rc = RD_STORE_OK;
    return t;
}

json_t *rd_store_list_tasks(rd_store *s, const rd_task_filter *f, int *rc, char *err,
                            size_t errsz)
{
    sqlbuf b = {0};
    sqlbuf_printf(&b, "SELECT %s FROM retry_task WHERE id > %" PRIu64, TASK_COLUMNS, f->cursor);
    if (f->status) {
        sqlbuf_printf(&b, " AND status = ");
        sqlbuf_str(&b, s->db, f->status);
    }
    if (f->group) {
        sqlbuf_printf(&b, " AND group_name = ");
        sqlbuf_str(&b, s->db, f->group);
    }
    if (f->scene) {
        sqlbuf_printf(&b, " AND scene = ");
        sqlbuf_str(&b, s->db, f->scene);
    }
    if (f->idempotency_key) {
        sqlbuf_printf(&b, " AND idempotency_key = ");
        sqlbuf_str(&b, s->db, f->idempotency_key);
    }
    sqlbuf_printf(&b, " ORDER BY id LIMIT %d", f->limit);
    *rc = run(s, &b, "SELECT retry_task (list)", err, errsz);
    sqlbuf_free(&b);
    if (*rc) return NULL;
    return result_to_json(s, "SELECT retry_task (list)", rc, err, errsz);
}

json_t *rd_store_attempts_json(rd_store *s, uint64_t id, int *rc, char *err, size_t errsz)
{
    json_t *task = rd_store_task_json(s, id, rc, err, errsz);
    if (!task) return NULL;
    json_decref(task);
    char sql[384];
    snprintf(sql, sizeof sql,
             "SELECT id, task_id, attempt, node, fence, due_at, started_at, duration_ms, "
             "outcome, http_status, error FROM retry_attempt WHERE task_id = %" PRIu64
             " ORDER BY attempt",
             id);
    *rc = run_sql(s, sql, "SELECT retry_attempt", err, errsz);
    if (*rc) return NULL;
    return result_to_json(s, "SELECT retry_attempt", rc, err, errsz);
}

json_t *rd_store_report_top(rd_store *s, int64_t since_ms, int limit, int *rc, char *err,
                            size_t errsz)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT group_name AS `group`, scene, COUNT(*) AS failed_attempts, "
             "COUNT(DISTINCT task_id) AS failed_tasks FROM retry_attempt "
             "WHERE started_at >= %" PRId64 " AND outcome <> 'succeeded' "
             "GROUP BY group_name, scene ORDER BY failed_attempts DESC, `group`, scene "
             "LIMIT %d",
             since_ms, limit);
    *rc = run_sql(s, sql, "SELECT report top", err, errsz);
    if (*rc) return NULL;
    json_t *top = result_to_json(s, "SELECT report top", rc, err, errsz);
    if (!top) return NULL;
    /* Task counts by status for each ranked scene: one small grouped query
     * per row keeps the ranking query on the attempt index alone. */
    size_t i;
    json_t *row;
    json_array_foreach(top, i, row)
    {
        sqlbuf b = {0};
        sqlbuf_printf(&b, "SELECT status, COUNT(*) FROM retry_task WHERE group_name = ");
        sqlbuf_str(&b, s->db, json_string_value(json_object_get(row, "group")));
        sqlbuf_printf(&b, " AND scene = ");
        sqlbuf_str(&b, s->db, json_string_value(json_object_get(row, "scene")));
        sqlbuf_printf(&b, " GROUP BY status");
        *rc = run(s, &b, "SELECT report top counts", err, errsz);
        sqlbuf_free(&b);
        if (*rc) {
            json_decref(top);
            return NULL;
        }
        MYSQL_RES *res = mysql_store_result(s->db);
        if (!res) {
            *rc = fail(s, "SELECT report top counts", err, errsz);
            json_decref(top);
            return NULL;
        }
        json_t *counts = json_object();
        MYSQL_ROW r;
        while ((r = mysql_fetch_row(res)) != NULL)
            json_object_set_new(counts, r[0], json_integer(strtoll(r[1], NULL, 10)));
        mysql_free_result(res);
        json_object_set_new(row, "tasks", counts);
    }
    *rc = RD_STORE_OK;
    return top;
}

/* Runs a query whose first row's columns are integers (NULL -> 0). */
static int query_ints(rd_store *s, const char *sql, const char *what, int64_t *out, unsigned n,
                      char *err, size_t errsz)
{
    int rc = run_sql(s, sql, what, err, errsz);
    if (rc) return rc;
    MYSQL_RES *res = mysql_store_result(s->db);
    if (!res) return fail(s, what, err, errsz);
    MYSQL_ROW row = mysql_fetch_row(res);
    for (unsigned i = 0; i < n; i++)
        out[i] = row && i < mysql_num_fields(res) ? col_i64(row[i]) : 0;
    mysql_free_result(res);
    return RD_STORE_OK;
}

/* Nearest-rank percentile (p in 1..100) of the sorted time-to-success list
 * of n values: the value at rank ceil(p/100 * n). */
static json_t *percentile(rd_store *s, int64_t since_ms, int64_t n, int p, int *rc, char *err,
                          size_t errsz)
{
    if (n <= 0) return json_null();
    int64_t rank = (p * n + 99) / 100;
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT ended_at - created_at AS d FROM retry_task WHERE status = 'succeeded' "
             "AND created_at >= %" PRId64 " ORDER BY d LIMIT 1 OFFSET %" PRId64,
             since_ms, rank - 1);
    int64_t v = 0;
    *rc = query_ints(s, sql, "SELECT time to success", &v, 1, err, errsz);
    return *rc ? NULL : json_integer(v);
}

json_t *rd_store_report_summary(rd_store *s, int64_t since_ms, int *rc, char *err,
                                size_t errsz)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT status, COUNT(*) FROM retry_task WHERE created_at >= %" PRId64
             " GROUP BY status",
             since_ms);
    *rc = run_sql(s, sql, "SELECT summary counts", err, errsz);
    if (*rc) return NULL;
    MYSQL_RES *res = mysql_store_result(s->db);
    if (!res) {
        *rc = fail(s, "SELECT summary counts", err, errsz);
        return NULL;
    }
    json_t *tasks = json_object();
    int64_t succeeded = 0, ended = 0;
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res)) != NULL) {
        int64_t c = col_i64(row[1]);
        json_object_set_new(tasks, row[0], json_integer(c));
        if (strcmp(row[0], "succeeded") == 0) succeeded = c;
        if (strcmp(row[0], "succeeded") == 0 || strcmp(row[0], "exhausted") == 0 ||
            strcmp(row[0], "stopped") == 0)
            ended += c;
    }
    mysql_free_result(res);
    int64_t att[4];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*), SUM(outcome = 'succeeded'), SUM(outcome = 'failed'), "
             "SUM(outcome = 'stopped') FROM retry_attempt WHERE started_at >= %" PRId64,
             since_ms);
    *rc = query_ints(s, sql, "SELECT summary attempts", att, 4, err, errsz);
    json_t *p50 = *rc ? NULL : percentile(s, since_ms, succeeded, 50, rc, err, errsz);
    json_t *p99 = *rc ? NULL : percentile(s, since_ms, succeeded, 99, rc, err, errsz);
    if (*rc) {
        json_decref(tasks);
        json_decref(p50);
        json_decref(p99);
        return NULL;
    }
    json_t *o = json_pack("{s:I, s:o, s:I, s:o, s:{s:I, s:I, s:I, s:I}, s:{s:o, s:o}}", "since",
                          (json_int_t)since_ms, "tasks", tasks, "ended", (json_int_t)ended,
                          "success_rate",
                          ended ? json_real((double)succeeded / (double)ended) : json_null(),
                          "attempts", "total", (json_int_t)att[0], "succeeded",
                          (json_int_t)att[1], "failed", (json_int_t)att[2], "stopped",
                          (json_int_t)att[3], "time_to_success_ms", "p50", p50, "p99", p99);
    if (!o) {
        snprintf(err, errsz, "summary: out of memory");
        *rc = RD_STORE_ERR;
    }
    return o;
}

int rd_store_purge(rd_store *s, int64_t succeeded_before_ms, int64_t attempts_before_ms,
                   int batch, size_t *tasks, size_t *attempts, char *err, size_t errsz)
{
    *tasks = *attempts = 0;
    char sql[512];
    sqlbuf b = {0};
    int rc = RD_STORE_OK;
    if (succeeded_before_ms > 0) {
        snprintf(sql, sizeof sql,
                 "SELECT id FROM retry_task WHERE status = 'succeeded' AND ended_at < %" PRId64
                 " ORDER BY ended_at LIMIT %d",
                 succeeded_before_ms, batch);
        rc = run_sql(s, sql, "SELECT purgeable tasks", err, errsz);
        if (rc) return rc;
        MYSQL_RES *res = mysql_store_result(s->db);
        if (!res) return fail(s, "SELECT purgeable tasks", err, errsz);
        MYSQL_ROW row;
        size_t n = 0;
        while ((row = mysql_fetch_row(res)) != NULL)
            sqlbuf_printf(&b, "%s%s", n++ ? "," : "", row[0]);
        mysql_free_result(res);
        if (n > 0) {
            rc = run_sql(s, "START TRANSACTION", "START TRANSACTION", err, errsz);
            if (rc) goto out;
            sqlbuf q = {0};
            sqlbuf_printf(&q, "DELETE FROM retry_attempt WHERE task_id IN (%s)", b.p);
            rc = run(s, &q, "DELETE retry_attempt (purge)", err, errsz);
            if (rc == RD_STORE_OK) {
                *attempts += (size_t)mysql_affected_rows(s->db);
                q.len = 0;
                /* status is checked again: a replay since the SELECT keeps it. */
                sqlbuf_printf(&q, "DELETE FROM retry_task WHERE status = 'succeeded' AND id IN (%s)",
                              b.p);
                rc = run(s, &q, "DELETE retry_task (purge)", err, errsz);
                if (rc == RD_STORE_OK) *tasks = (size_t)mysql_affected_rows(s->db);
            }
            sqlbuf_free(&q);
            if (rc == RD_STORE_OK) rc = run_sql(s, "COMMIT", "COMMIT purge", err, errsz);
            if (rc) {
                rollback(s);
                *tasks = *attempts = 0;
                goto out;
            }
        }
    }
    if (attempts_before_ms > 0) {
        snprintf(sql, sizeof sql,
                 "DELETE FROM retry_attempt WHERE started_at < %" PRId64 " LIMIT %d",
                 attempts_before_ms, batch);
        rc = run_sql(s, sql, "DELETE old retry_attempt rows", err, errsz);
        if (rc == RD_STORE_OK) *attempts += (size_t)mysql_affected_rows(s->db);
    }
out:
    sqlbuf_free(&b);
    return rc;
}

int rd_store_task_action(rd_store *s, uint64_t id, const char *action, int64_t now_ms,
                         char *err, size_t errsz)
{
    const char *set, *where;
    if (strcmp(action, "replay") == 0) {
        set = "status = 'pending', attempts = 0, last_delay_ms = 0, ended_at = NULL";
        where = "status IN ('succeeded','exhausted','stopped','cancelled','paused')";
    } else if (strcmp(action, "pause") == 0) {
        set = "status = 'paused'";
        where = "status = 'pending'";
    } else if (strcmp(action, "resume") == 0) {
        set = "status = 'pending'";
        where = "status = 'paused'";
    } else if (strcmp(action, "cancel") == 0) {
        set = "status = 'cancelled'";
        where = "status IN ('pending','paused')";
    } else {
        snprintf(err, errsz, "unknown action '%s'", action);
        return RD_STORE_ERR;
    }
    char sql[512];
    snprintf(sql, sizeof sql,
             "UPDATE retry_task SET %s, next_fire_at = %" PRId64 ", updated_at = %" PRId64
             "%s WHERE id = %" PRIu64 " AND %s",
             set, now_ms, now_ms, strcmp(action, "cancel") == 0 ? ", ended_at = updated_at" : "",
             id, where);
    int rc = run_sql(s, sql, "UPDATE retry_task (action)", err, errsz);
    if (rc) return rc;
    if (mysql_affected_rows(s->db) == 1) return RD_STORE_OK;
    int trc;
    json_t *t = rd_store_task_json(s, id, &trc, err, errsz);
    if (!t) return trc;
    snprintf(err, errsz, "task %" PRIu64 " is '%s'; %s does not apply", id,
             json_string_value(json_object_get(t, "status")), action);
    json_decref(t);
    return RD_STORE_CONFLICT;
}

/* ---- node registry ------------------------------------------------------- */

int rd_store_node_heartbeat(rd_store *s, const rd_node_row *n, int64_t now_ms, char *err,
                            size_t errsz)
{
    /* Two autocommit statements: create the row if it is missing, then
     * refresh it unless this very process has already marked it 'stopped'
     * (see store.h). */
    sqlbuf b = {0};
    sqlbuf_printf(&b, "INSERT INTO retry_node (node_id, status, started_at, "
                      "heartbeat_at, version, http_listen, host, pid) VALUES (");
    sqlbuf_str(&b, s->db, n->node_id);
    sqlbuf_printf(&b, ",'up',%" PRId64 ",%" PRId64 ",", n->started_at, now_ms);
    sqlbuf_str(&b, s->db, n->version);
    sqlbuf_printf(&b, ",");
    sqlbuf_str(&b, s->db, n->http_listen);
    sqlbuf_printf(&b, ",");
    sqlbuf_str(&b, s->db, n->host);
    sqlbuf_printf(&b, ",%ld) ON DUPLICATE KEY UPDATE node_id = node_id", n->pid);
    int rc = run(s, &b, "INSERT retry_node (register)", err, errsz);
    if (rc || mysql_affected_rows(s->db) == 1) goto out;
    b.len = 0;
    sqlbuf_printf(&b, "UPDATE retry_node SET status = 'up', started_at = %" PRId64
                      ", heartbeat_at = %" PRId64 ", version = ",
                  n->started_at, now_ms);
    sqlbuf_str(&b, s->db, n->version);
    sqlbuf_printf(&b, ", http_listen = ");
    sqlbuf_str(&b, s->db, n->http_listen);
    sqlbuf_printf(&b, ", host = ");
    sqlbuf_str(&b, s->db, n->host);
    sqlbuf_printf(&b, ", pid = %ld WHERE node_id = ", n->pid);
    sqlbuf_str(&b, s->db, n->node_id);
    sqlbuf_printf(&b, " AND NOT (status = 'stopped' AND started_at = %" PRId64 ")",
                  n->started_at);
    rc = run(s, &b, "UPDATE retry_node (heartbeat)", err, errsz);
out:
    sqlbuf_free(&b);
    return rc;
}

int rd_store_node_stopped(rd_store *s, const rd_node_row *n, int64_t now_ms, char *err,
                          size_t errsz)
{
    sqlbuf b = {0};
    sqlbuf_printf(&b, "UPDATE retry_node SET status = 'stopped', heartbeat_at = %" PRId64
                      " WHERE node_id = ",
                  now_ms);
    sqlbuf_str(&b, s->db, n->node_id);
    sqlbuf_printf(&b, " AND started_at = %" PRId64, n->started_at);
    int rc = run(s, &b, "UPDATE retry_node (stopped)", err, errsz);
    sqlbuf_free(&b);
    return rc;
}

json_t *rd_store_nodes_json(rd_store *s, int64_t now_ms, int64_t heartbeat_ms,
                            int64_t stale_after_ms, int *rc, char *err, size_t errsz)
{
    /* Leases per node from the running tasks alone (index ix_task_lease). */
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT n.node_id AS id, n.status, n.started_at, n.heartbeat_at, "
             "%" PRId64 " - n.heartbeat_at AS heartbeat_age_ms, "
             "n.heartbeat_at < %" PRId64 " AS stale, n.version, n.http_listen, n.host, n.pid, "
             "COALESCE(l.leases, 0) AS leases FROM retry_node n LEFT JOIN "
             "(SELECT owner_node, COUNT(*) AS leases FROM retry_task WHERE status = 'running' "
             "GROUP BY owner_node) l ON l.owner_node = n.node_id ORDER BY n.node_id",
             now_ms, now_ms - stale_after_ms);
    *rc = run_sql(s, sql, "SELECT retry_node", err, errsz);
    if (*rc) return NULL;
    json_t *nodes = result_to_json(s, "SELECT retry_node", rc, err, errsz);
    if (!nodes) return NULL;
    size_t i;
    json_t *row;
    json_array_foreach(nodes, i, row)
    {
        json_object_set_new(row, "stale",
                            json_boolean(json_integer_value(json_object_get(row, "stale"))));
    }
    json_t *o = json_pack("{s:I, s:I, s:I, s:o}", "now", (json_int_t)now_ms,
                          "heartbeat_interval_ms", (json_int_t)heartbeat_ms, "stale_after_ms",
                          (json_int_t)stale_after_ms, "nodes", nodes);
    if (!o) {
        snprintf(err, errsz, "nodes: out of memory");
        *rc = RD_STORE_ERR;
        return NULL;
    }
    *rc = RD_STORE_OK;
    return o;
}
