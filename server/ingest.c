/*
 * ingest.c: Kafka -> MySQL (see ingest.h).
 */
#include "ingest.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "scheduler.h"

struct rd_ingest {
    rd_daemon *d;
    rd_kafka_t *rk;
    rd_store *store;
    pthread_t thread;
    atomic_int quit;
};

int rd_ingest_prepare(const rd_config *cfg, const char *buf, size_t len, int64_t now_ms,
                      rt_task *task, char **payload, rd_ingest_row *row, char *err,
                      size_t errsz)
{
    *payload = NULL;
    if (rt_task_decode(buf, len, task, err, errsz) != 0) return -1;
    /* Store the canonical form: what retryd validated is what it runs. */
    *payload = rt_task_encode(task, err, errsz);
    if (!*payload) {
        rt_task_free(task);
        return -1;
    }
    rt_policy pol;
    rd_config_resolve_policy(cfg, task->scene, &task->policy, &pol);
    memset(row, 0, sizeof *row);
    row->task = task;
    row->payload = *payload;
    row->max_attempts = pol.max_attempts;
    row->next_fire_at = now_ms; /* the client already waited; first server attempt now */
    row->deadline = (pol.set & RT_POL_DEADLINE) ? pol.deadline : 0;
    return 0;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    rd_log(level <= 3 ? RD_LOG_ERR : level == 4 ? RD_LOG_WARNING : RD_LOG_DEBUG, "kafka",
           "librdkafka %s: %s", fac, buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    rd_ingest *ing = opaque;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT)
        atomic_store(&ing->d->m.kafka_ok, 0);
    LOG_WARN("kafka", "%s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static int set(rd_kafka_conf_t *conf, const char *k, const char *v, char *err, size_t errsz)
{
    char e[256];
    if (rd_kafka_conf_set(conf, k, v, e, sizeof e) != RD_KAFKA_CONF_OK) {
        snprintf(err, errsz, "kafka property %s=%s: %s", k, v, e);
        return -1;
    }
    return 0;
}

/* One transaction on the ingest connection, (re)connecting first. */
static int store_rows(rd_ingest *ing, const rd_ingest_row *rows, size_t nrows,
                      const rd_poison_row *poison, size_t npoison, int64_t now, size_t *inserted,
                      char *err, size_t errsz)
{
    *inserted = 0;
    if (!ing->store && rd_store_open(ing->d->cfg, 0, &ing->store, err, errsz) != RD_STORE_OK) {
        ing->store = NULL;
        return RD_STORE_CONN;
    }
    int rc = rd_store_ingest(ing->store, rows, nrows, poison, npoison, now, inserted, err, errsz);
    if (rc == RD_STORE_CONN) {
        rd_store_close(ing->store);
        ing->store = NULL;
    }
    return rc;
}

typedef struct batch {
    rd_kafka_message_t *msgs[RD_INGEST_BATCH];
    size_t n;
} batch;

/* Writes one batch; returns RD_STORE_OK after COMMIT, with offsets stored. */
static int write_batch(rd_ingest *ing, batch *b, char *err, size_t errsz)
{
    rd_daemon *d = ing->d;
    rt_task tasks[RD_INGEST_BATCH];
    char *payloads[RD_INGEST_BATCH];
    rd_ingest_row rows[RD_INGEST_BATCH];
    rd_poison_row poison[RD_INGEST_BATCH];
    char reasons[RD_INGEST_BATCH][512];
    char sources[RD_INGEST_BATCH][300];
    size_t nrows = 0, npoison = 0;
    int64_t now = rt_now_ms();

    for (size_t i = 0; i < b->n; i++) {
        rd_kafka_message_t *m = b->msgs[i];
        if (rd_ingest_prepare(d->cfg, m->payload, m->len, now, &tasks[nrows], &payloads[nrows],
                              &rows[nrows], reasons[npoison], sizeof reasons[npoison]) == 0) {
            rows[nrows].task = &tasks[nrows];
            nrows++;
            continue;
        }
        snprintf(sources[npoison], sizeof sources[npoison], "kafka:%s/%" PRId32 "/%" PRId64,
                 rd_kafka_topic_name(m->rkt), m->partition, m->offset);
        LOG_WARN("kafka", "poison message at %s: %s", sources[npoison], reasons[npoison]);
        poison[npoison].raw = m->payload ? m->payload : "";
        poison[npoison].raw_len = m->payload ? m->len : 0;
        poison[npoison].reason = reasons[npoison];
        poison[npoison].source = sources[npoison];
        npoison++;
    }
    /* Within one batch, a key may repeat (duplicate delivery); a multi-row
     * INSERT handles that: the second row hits the first as a duplicate. */
    size_t inserted = 0;
    int rc = store_rows(ing, rows, nrows, poison, npoison, now, &inserted, err, errsz);
    if (rc == RD_STORE_ERR) {
        /* Not the connection: something in the batch is refused by MySQL
         * every time. Write row by row so that one bad row cannot stop the
         * consumer: a task MySQL refuses becomes a poison row with MySQL's
         * reason, and the rest go in. */
        LOG_WARN("kafka", "batch refused (%s); writing its %zu row(s) one by one", err,
                 nrows + npoison);
        inserted = 0;
        rc = RD_STORE_OK;
        for (size_t i = 0; i < nrows && rc != RD_STORE_CONN; i++) {
            size_t one = 0;
            char rowerr[512];
            rc = store_rows(ing, &rows[i], 1, NULL, 0, now, &one, rowerr, sizeof rowerr);
            inserted += one;
            if (rc != RD_STORE_ERR) continue;
            char reason[700];
            snprintf(reason, sizeof reason, "task refused by MySQL: %s", rowerr);
            rd_poison_row p = {rows[i].payload, strlen(rows[i].payload), reason,
                               "kafka:batch-fallback"};
            rc = store_rows(ing, NULL, 0, &p, 1, now, &one, rowerr, sizeof rowerr);
            if (rc == RD_STORE_OK) atomic_fetch_add(&d->m.poison, 1);
            if (rc == RD_STORE_ERR)
                LOG_ERROR("kafka", "task %s/%s refused by MySQL (%s) and its poison row too "
                          "(%s); it is skipped: only this log line keeps it",
                          rows[i].task->group, rows[i].task->idempotency_key, reason, rowerr);
            if (rc == RD_STORE_ERR) rc = RD_STORE_OK;
        }
        for (size_t i = 0; i < npoison && rc != RD_STORE_CONN; i++) {
            size_t one = 0;
            char rowerr[512];
            rc = store_rows(ing, NULL, 0, &poison[i], 1, now, &one, rowerr, sizeof rowerr);
            if (rc == RD_STORE_ERR) {
                LOG_ERROR("kafka", "poison message at %s could not be kept (%s); reason was: %s",
                          poison[i].source, rowerr, poison[i].reason);
                rc = RD_STORE_OK;
            } else if (rc == RD_STORE_OK) {
                atomic_fetch_add(&d->m.poison, 1);
            }
        }
        npoison = 0; /* counted above */
        if (rc == RD_STORE_CONN) snprintf(err, errsz, "connection lost during row-by-row write");
    }
    for (size_t i = 0; i < nrows; i++) {
        rt_task_free(&tasks[i]);
        free(payloads[i]);
    }
    if (rc != RD_STORE_OK) return rc;

    atomic_fetch_add(&d->m.tasks_ingested, inserted);
    if (inserted && d->sched) rd_scheduler_poke(d->sched); /* new tasks are due now */
    atomic_fetch_add(&d->m.tasks_duplicate, nrows - inserted);
    atomic_fetch_add(&d->m.poison, npoison);
    if (nrows || npoison)
        LOG_DEBUG("kafka", "batch of %zu committed: %zu new, %zu duplicate, %zu poison", b->n,
                  inserted, nrows - inserted, npoison);

    /* Offsets after COMMIT: the next offset to read, per partition. */
    rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new((int)b->n);
    for (size_t i = 0; i < b->n; i++) {
        rd_kafka_message_t *m = b->msgs[i];
        rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(
            offs, rd_kafka_topic_name(m->rkt), m->partition);
        if (!p) p = rd_kafka_topic_partition_list_add(offs, rd_kafka_topic_name(m->rkt), m->partition);
        if (m->offset + 1 > p->offset) p->offset = m->offset + 1;
    }
    rd_kafka_resp_err_t ke = rd_kafka_offsets_store(ing->rk, offs);
    if (ke && ke != RD_KAFKA_RESP_ERR__STATE)
        LOG_WARN("kafka", "offsets_store: %s (messages will be redelivered and deduplicated)",
                 rd_kafka_err2str(ke));
    rd_kafka_topic_partition_list_destroy(offs);
    return RD_STORE_OK;
}

static void set_paused(rd_ingest *ing, int pause)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(ing->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || !parts) return;
    if (parts->cnt > 0) {
        if (pause)
            rd_kafka_pause_partitions(ing->rk, parts);
        else
            rd_kafka_resume_partitions(ing->rk, parts);
    }
    rd_kafka_topic_partition_list_destroy(parts);
}

/* A message that arrives while ingest is paused comes from a partition
 * assigned after the pause (a rebalance): rewind that partition to the
 * message and pause it too, so the message is read again later, not lost. */
static void hold_back(rd_ingest *ing, const rd_kafka_message_t *m)
{
    rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_t *p =
        rd_kafka_topic_partition_list_add(one, rd_kafka_topic_name(m->rkt), m->partition);
    p->offset = m->offset;
    rd_kafka_pause_partitions(ing->rk, one);
    rd_kafka_error_t *e = rd_kafka_seek_partitions(ing->rk, one, 5000);
    if (e) {
        LOG_ERROR("kafka", "seek back to %s/%" PRId32 "/%" PRId64 " failed: %s; the message "
                  "is redelivered after a restart or rebalance (its offset was not stored)",
                  rd_kafka_topic_name(m->rkt), m->partition, m->offset, rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    rd_kafka_topic_partition_list_destroy(one);
}

static void *ingest_main(void *arg)
{
    rd_ingest *ing = arg;
    rd_daemon *d = ing->d;
    batch b = {.n = 0};
    char err[1024];
    int64_t backoff_ms = 100;

    while (!atomic_load(&ing->quit)) {
        /* Fill a batch: block up to 100 ms for the first message, then take
         * what arrives within the linger time. */
        int64_t first = 0;
        while (b.n < RD_INGEST_BATCH && !atomic_load(&ing->quit)) {
            int wait = b.n == 0 ? 100 : (int)(RD_INGEST_LINGER_MS - (rt_mono_ms() - first));
            if (b.n > 0 && wait <= 0) break;
            rd_kafka_message_t *m = rd_kafka_consumer_poll(ing->rk, wait);
            if (!m) break; /* nothing more within the wait */
            if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    LOG_WARN("kafka", "consumer: %s", rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                continue;
            }
            atomic_store(&d->m.kafka_ok, 1);
            if (b.n == 0) first = rt_mono_ms();
            b.msgs[b.n++] = m;
        }
        if (b.n == 0) continue;

        int rc;
        int paused = 0;
        while ((rc = write_batch(ing, &b, err, sizeof err)) != RD_STORE_OK) {
            atomic_store(&d->m.mysql_ok, 0);
            atomic_fetch_add(&d->m.store_errors, 1);
            LOG_ERROR("kafka",
                      "batch of %zu message(s) not stored, offsets not committed; retrying "
                      "in %" PRId64 " ms: %s",
                      b.n, backoff_ms, err);
            if (!paused) {
                set_paused(ing, 1);
                paused = 1;
            }
            if (atomic_load(&ing->quit)) break;
            /* Keep serving the consumer (group heartbeats, rebalances) while
             * waiting; paused partitions deliver nothing. */
            int64_t until = rt_mono_ms() + backoff_ms;
            while (rt_mono_ms() < until && !atomic_load(&ing->quit)) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(ing->rk, 50);
                if (m && !m->err) hold_back(ing, m);
                if (m) rd_kafka_message_destroy(m);
            }
            backoff_ms = backoff_ms * 2 > 10000 ? 10000 : backoff_ms * 2;
        }
        if (rc == RD_STORE_OK) {
            atomic_store(&d->m.mysql_ok, 1);
            backoff_ms = 100;
            if (paused) {
                LOG_NOTICE("kafka", "MySQL is back; resuming consumption");
                set_paused(ing, 0);
            }
        }
        for (size_t i = 0; i < b.n; i++) rd_kafka_message_destroy(b.msgs[i]);
        b.n = 0;
    }
    return NULL;
}

int rd_ingest_start(rd_daemon *d, rd_ingest **out, char *err, size_t errsz)
{
    const rd_config *cfg = d->cfg;
    if (!cfg->kafka_brokers) {
        snprintf(err, errsz, "[kafka] brokers is not set (or RETRYD_KAFKA_BROKERS)");
        return -1;
    }
    rd_ingest *ing = calloc(1, sizeof *ing);
    if (!ing) {
        snprintf(err, errsz, "ingest: out of memory");
        return -1;
    }
    ing->d = d;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char e[512];
    if (set(conf, "bootstrap.servers", cfg->kafka_brokers, err, errsz) ||
        set(conf, "group.id", cfg->kafka_group_id, err, errsz) ||
        set(conf, "enable.auto.offset.store", "false", err, errsz) ||
        set(conf, "enable.auto.commit", "true", err, errsz) ||
        set(conf, "auto.offset.reset", "earliest", err, errsz) ||
        set(conf, "client.id", cfg->node_id, err, errsz))
        goto fail_conf;
    for (size_t i = 0; i < cfg->nkafka_props; i++)
        if (set(conf, cfg->kafka_props[i].key, cfg->kafka_props[i].value, err, errsz))
            goto fail_conf;
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_opaque(conf, ing);
    ing->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
    if (!ing->rk) {
        snprintf(err, errsz, "rd_kafka_new (consumer): %s", e);
        goto fail_conf;
    }
    rd_kafka_poll_set_consumer(ing->rk);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, cfg->kafka_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t ke = rd_kafka_subscribe(ing->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (ke) {
        snprintf(err, errsz, "subscribe to %s: %s", cfg->kafka_topic, rd_kafka_err2str(ke));
        rd_kafka_destroy(ing->rk);
        free(ing);
        return -1;
    }
    if (pthread_create(&ing->thread, NULL, ingest_main, ing) != 0) {
        snprintf(err, errsz, "pthread_create (ingest): failed");
        rd_kafka_consumer_close(ing->rk);
        rd_kafka_destroy(ing->rk);
        free(ing);
        return -1;
    }
    LOG_INFO("kafka", "consuming %s from %s as group %s", cfg->kafka_topic, cfg->kafka_brokers,
             cfg->kafka_group_id);
    *out = ing;
    return 0;
fail_conf:
    rd_kafka_conf_destroy(conf);
    free(ing);
    return -1;
}

void rd_ingest_request_stop(rd_ingest *ing)
{
    if (ing) atomic_store(&ing->quit, 1);
}

void rd_ingest_stop(rd_ingest *ing)
{
    if (!ing) return;
    atomic_store(&ing->quit, 1);
    pthread_join(ing->thread, NULL);
    /* Commits the stored offsets and leaves the group. */
    rd_kafka_resp_err_t ke = rd_kafka_consumer_close(ing->rk);
    if (ke) LOG_WARN("kafka", "consumer close: %s", rd_kafka_err2str(ke));
    rd_kafka_destroy(ing->rk);
    rd_store_close(ing->store);
    free(ing);
    LOG_INFO("kafka", "consumer closed");
}
