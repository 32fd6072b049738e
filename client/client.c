/*
 * client/client.c: the retry_client handle: configuration checks, logging,
 * the clock and sleep hooks, counters, and the Kafka producer that carries
 * exhausted calls to retryd (librdkafka, idempotent, acks=all).
 *
 * Delivery reports are served by rd_kafka_poll() after each produce and by
 * rd_kafka_flush() in retry_client_flush()/retry_client_destroy(), always on
 * the application's threads; librdkafka's log messages arrive on its own
 * threads and are forwarded to the application's log_cb.
 *
 * With a spool_path, a task whose delivery fails is handed to the spool
 * (spool.c) from the delivery report callback, and spooled tasks are
 * re-produced at creation, on each ship and on each flush.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "clock.h"
#include "internal.h"
#include "policy_int.h"
#include "spool.h"

void rc_log(const retry_client *c, int level, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    if (c == NULL || c->log_cb == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    c->log_cb(c->opaque, level, buf);
}

int64_t rc_now_ms(const retry_client *c)
{
    if (c != NULL && c->now_ms_fn != NULL)
        return c->now_ms_fn(c->opaque);
    return rt_now_ms();
}

void rc_sleep_ms(const retry_client *c, int64_t ms)
{
    struct timespec ts, rem;

    if (c != NULL && c->sleep_fn != NULL) {
        c->sleep_fn(c->opaque, ms);
        return;
    }
    if (ms <= 0)
        return;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &rem) != 0 && errno == EINTR)
        ts = rem;
}

static void set_err(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *errstr, size_t errstr_size, const char *fmt, ...)
{
    va_list ap;

    if (errstr == NULL || errstr_size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
}

static int valid_name(const char *s, size_t max)
{
    size_t n = 0;

    if (s == NULL)
        return 0;
    for (; s[n] != '\0'; n++) {
        char ch = s[n];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return 0;
    }
    return n >= 1 && n <= max;
}

RETRY_API void retry_client_conf_init(retry_client_conf *conf)
{
    static const retry_client_conf def = RETRY_CLIENT_CONF_DEFAULT;

    if (conf != NULL)
        *conf = def;
}

/* librdkafka callbacks. The producer's opaque is the client. */
static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    const retry_client *c = rd_kafka_opaque(rk);

    rc_log(c, level, "kafka: %s: %s", fac, buf);
}

static void kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    const retry_client *c = opaque;

    rc_log(c, RETRY_LOG_WARNING, "kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err),
           reason);
}

static void kafka_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    retry_client *c = opaque;

    (void)rk;
    if (m->_private != NULL && c->spool != NULL) {
        /* A spool replay (its msg_opaque is the record's id). */
        rc_spool_report(c->spool, m);
        return;
    }
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        atomic_fetch_add(&c->delivery_failed, 1);
        if (c->spool != NULL && !rc_kafka_err_permanent(m->err)) {
            char why[256], err[512];

            snprintf(why, sizeof why, "failed delivery to topic %s (%s)", c->topic,
                     rd_kafka_err2str(m->err));
            /* Logs either way; loudly when the task is NOT kept. */
            if (rc_spool_keep(c->spool, m->key, m->key_len, m->payload, m->len, why, err,
                              sizeof err) != RETRY_OK)
                atomic_fetch_add(&c->lost, 1);
            return;
        }
        atomic_fetch_add(&c->lost, 1);
        rc_log(c, RETRY_LOG_ERR, "task %.*s failed delivery to topic %s: %s (%s: lost)",
               (int)m->key_len, (const char *)m->key, c->topic, rd_kafka_err2str(m->err),
               c->spool == NULL ? "no spool" : "a permanent error, not spooled");
    } else {
        atomic_fetch_add(&c->delivered, 1);
        rc_log(c, RETRY_LOG_DEBUG, "task %.*s delivered to %s [%d] at offset %lld",
               (int)m->key_len, (const char *)m->key, c->topic, (int)m->partition,
               (long long)m->offset);
    }
}

static retry_err producer_new(retry_client *c, const retry_client_conf *conf, char *errstr,
                              size_t errstr_size)
{
    char kerr[512];
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    size_t i;

    if (kc == NULL) {
        set_err(errstr, errstr_size, "out of memory creating the Kafka configuration");
        return RETRY_ERR_NOMEM;
    }
    if (rd_kafka_conf_set(kc, "bootstrap.servers", c->brokers, kerr, sizeof kerr) ||
        rd_kafka_conf_set(kc, "enable.idempotence", "true", kerr, sizeof kerr) ||
        rd_kafka_conf_set(kc, "acks", "all", kerr, sizeof kerr)) {
        set_err(errstr, errstr_size, "Kafka configuration refused: %s", kerr);
        rd_kafka_conf_destroy(kc);
        return RETRY_ERR_KAFKA;
    }
    for (i = 0; i < conf->kafka_props_count; i++) {
        const char *prop = conf->kafka_props[i];
        const char *eq = prop != NULL ? strchr(prop, '=') : NULL;
        char name[256];

        if (eq == NULL || eq == prop || (size_t)(eq - prop) >= sizeof name) {
            set_err(errstr, errstr_size,
                    "kafka_props[%zu] \"%s\" is not of the form name=value", i,
                    prop != NULL ? prop : "(null)");
            rd_kafka_conf_destroy(kc);
            return RETRY_ERR_INVALID_ARG;
        }
        memcpy(name, prop, (size_t)(eq - prop));
        name[eq - prop] = '\0';
        if (rd_kafka_conf_set(kc, name, eq + 1, kerr, sizeof kerr) != RD_KAFKA_CONF_OK) {
            set_err(errstr, errstr_size, "kafka_props[%zu] \"%s\" refused by librdkafka: %s", i,
                    name, kerr);
            rd_kafka_conf_destroy(kc);
            return RETRY_ERR_INVALID_ARG;
        }
    }
    rd_kafka_conf_set_opaque(kc, c);
    rd_kafka_conf_set_log_cb(kc, kafka_log_cb);
    rd_kafka_conf_set_error_cb(kc, kafka_error_cb);
    rd_kafka_conf_set_dr_msg_cb(kc, kafka_dr_cb);
    c->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, kerr, sizeof kerr);
    if (c->rk == NULL) {
        /* On failure the conf object is still ours. */
        rd_kafka_conf_destroy(kc);
        set_err(errstr, errstr_size, "cannot create the Kafka producer: %s", kerr);
        return RETRY_ERR_KAFKA;
    }
    return RETRY_OK;
}

static void client_free(retry_client *c)
{
    if (c->rk != NULL)
        rd_kafka_destroy(c->rk);
    /* After the producer: no delivery report can reach the spool now. */
    rc_spool_close(c->spool);
    rc_pe_free(c);
    free(c->group);
    free(c->topic);
    free(c->brokers);
    free(c);
}

RETRY_API retry_err retry_client_new(const retry_client_conf *conf, retry_client **out,
                                     char *errstr, size_t errstr_size)
{
    retry_client *c;
    retry_err err;

    set_err(errstr, errstr_size, "%s", "");
    if (out != NULL)
        *out = NULL;
    if (conf == NULL || out == NULL) {
        set_err(errstr, errstr_size, "conf and out must not be NULL");
        return RETRY_ERR_INVALID_ARG;
    }
    if (conf->group == NULL) {
        set_err(errstr, errstr_size,
                "group is required: set it to the application's name, [A-Za-z0-9._-]{1,64}");
        return RETRY_ERR_INVALID_ARG;
    }
    if (!valid_name(conf->group, RT_GROUP_MAX)) {
        set_err(errstr, errstr_size, "group \"%.80s\" is invalid: it must match [A-Za-z0-9._-]{1,64}",
                conf->group);
        return RETRY_ERR_INVALID_ARG;
    }
    if (!valid_name(conf->topic, 249)) {
        set_err(errstr, errstr_size,
                "topic \"%.80s\" is invalid: it must match [A-Za-z0-9._-]{1,249}",
                conf->topic != NULL ? conf->topic : "(null)");
        return RETRY_ERR_INVALID_ARG;
    }
    if (conf->brokers != NULL && conf->brokers[0] == '\0') {
        set_err(errstr, errstr_size, "brokers is empty: give host:port or NULL for no Kafka");
        return RETRY_ERR_INVALID_ARG;
    }
    if (conf->flush_timeout_ms < 0) {
        set_err(errstr, errstr_size, "flush_timeout_ms is %d: it must be >= 0",
                conf->flush_timeout_ms);
        return RETRY_ERR_INVALID_ARG;
    }
    if (conf->async_workers < 1 || conf->async_queue_max < 1) {
        set_err(errstr, errstr_size, "async_workers (%d) and async_queue_max (%d) must be >= 1",
                conf->async_workers, conf->async_queue_max);
        return RETRY_ERR_INVALID_ARG;
    }
    if (conf->spool_path != NULL && (conf->spool_path[0] == '\0' || conf->brokers == NULL)) {
        set_err(errstr, errstr_size, "spool_path %s: a spool needs a non-empty path and brokers",
                conf->spool_path[0] == '\0' ? "is empty" : "is set but brokers is NULL");
        return RETRY_ERR_INVALID_ARG;
    }
    if (conf->spool_path != NULL && conf->spool_max_bytes < RC_SPOOL_MIN_BYTES) {
        set_err(errstr, errstr_size, "spool_max_bytes is %llu: it must be >= %u",
                (unsigned long long)conf->spool_max_bytes, RC_SPOOL_MIN_BYTES);
        return RETRY_ERR_INVALID_ARG;
    }
    if (conf->kafka_props_count > 0 && conf->kafka_props == NULL) {
        set_err(errstr, errstr_size, "kafka_props is NULL but kafka_props_count is %zu",
                conf->kafka_props_count);
        return RETRY_ERR_INVALID_ARG;
    }

    c = calloc(1, sizeof *c);
    if (c == NULL) {
        set_err(errstr, errstr_size, "out of memory allocating the client");
        return RETRY_ERR_NOMEM;
    }
    c->group = strdup(conf->group);
    c->topic = strdup(conf->topic);
    c->brokers = conf->brokers != NULL ? strdup(conf->brokers) : NULL;
    if (c->group == NULL || c->topic == NULL || (conf->brokers != NULL && c->brokers == NULL)) {
        client_free(c);
        set_err(errstr, errstr_size, "out of memory copying the configuration");
        return RETRY_ERR_NOMEM;
    }
    c->flush_timeout_ms = conf->flush_timeout_ms;
    c->log_cb = conf->log_cb;
    c->opaque = conf->opaque;
    c->sleep_fn = conf->sleep_fn;
    c->now_ms_fn = conf->now_ms_fn;
    c->rng_seed = conf->rng_seed != 0 ? conf->rng_seed : (uint64_t)rt_mono_ns() ^ (uint64_t)rt_now_ms();
    c->enabled = conf->enabled;
    c->async_workers = conf->async_workers;
    c->async_queue_max = conf->async_queue_max;
    /* Config file, environment, defaults, listeners, budget (policy.c). */
    err = rc_pe_new(c, conf, errstr, errstr_size);
    if (err != RETRY_OK) {
        client_free(c);
        return err;
    }

    /* Thread-safe since libcurl 7.84; reference counted, undone in destroy. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        client_free(c);
        set_err(errstr, errstr_size, "curl_global_init failed");
        return RETRY_ERR_HTTP;
    }
    if (c->brokers != NULL) {
        err = producer_new(c, conf, errstr, errstr_size);
        if (err != RETRY_OK) {
            client_free(c);
            curl_global_cleanup();
            return err;
        }
    }
    if (conf->spool_path != NULL) {
        char serr[512];

        err = rc_spool_open(c, conf->spool_path, conf->spool_max_bytes, &c->spool, serr,
                            sizeof serr);
        if (err != RETRY_OK) {
            set_err(errstr, errstr_size, "%s", serr);
            client_free(c);
            curl_global_cleanup();
            return err;
        }
        /* Tasks left by an earlier run go out now; their delivery reports
         * are served by later ships and flushes. */
        rc_spool_replay(c->spool);
    }
    rc_log(c, RETRY_LOG_DEBUG, "client for group %s created (%s%s)", c->group,
           c->brokers != NULL ? "brokers " : "no Kafka: exhausted calls are not shipped",
           c->brokers != NULL ? c->brokers : "");
    *out = c;
    return RETRY_OK;
}

RETRY_API retry_err retry_client_flush(retry_client *c, int timeout_ms)
{
    rd_kafka_resp_err_t kerr;
    uint_fast64_t failed, seen;

    if (c == NULL)
        return RETRY_ERR_INVALID_ARG;
    if (c->rk == NULL)
        return RETRY_OK;
    rc_spool_replay(c->spool); /* once per flush; nothing when empty */
    kerr = rd_kafka_flush(c->rk, timeout_ms < 0 ? 0 : timeout_ms);
    if (kerr == RD_KAFKA_RESP_ERR__TIMED_OUT) {
        rc_log(c, RETRY_LOG_WARNING, "flush: %d task(s) still queued after %d ms",
               rd_kafka_outq_len(c->rk), timeout_ms);
        return RETRY_ERR_TIMEOUT;
    }
    if (c->spool != NULL)
        rc_spool_compact(c->spool);
    /* Only ever raised: two flushes at once must not move it back (and
     * report the same loss twice). */
    failed = atomic_load(&c->lost);
    seen = atomic_load(&c->failed_reported);
    while (seen < failed && !atomic_compare_exchange_weak(&c->failed_reported, &seen, failed))
        ;
    if (failed > seen)
        return RETRY_ERR_KAFKA;
    if (c->spool != NULL) {
        uint64_t bytes;
        size_t left = rc_spool_left(c->spool, &bytes);

        if (left > 0) {
            rc_log(c, RETRY_LOG_WARNING,
                   "flush: %zu task(s) still in the spool (%llu bytes), to be re-produced later",
                   left, (unsigned long long)bytes);
            return RETRY_ERR_TIMEOUT;
        }
    }
    return RETRY_OK;
}

RETRY_API void retry_client_destroy(retry_client *c)
{
    if (c == NULL)
        return;
    /* First the dispatch endpoint, so that no handler runs during the rest;
     * then draining async calls may ship tasks, flushed below. */
    rc_dispatch_free(c);
    rc_async_drain(c);
    if (c->rk != NULL) {
        int left, i;

        if (c->flush_timeout_ms > 0)
            rc_spool_replay(c->spool);
        rd_kafka_flush(c->rk, c->flush_timeout_ms);
        left = rd_kafka_outq_len(c->rk);
        if (left > 0 && c->spool != NULL) {
            /* Fail what is left now, so that the delivery reports hand
             * every such task to the spool before the producer goes. */
            rd_kafka_purge(c->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            for (i = 0; i < 200 && rd_kafka_outq_len(c->rk) > 0; i++)
                rd_kafka_poll(c->rk, 10);
            rc_log(c, RETRY_LOG_NOTICE,
                   "%d task(s) still undelivered after %d ms: kept in the spool", left,
                   c->flush_timeout_ms);
        } else if (left > 0) {
            rc_log(c, RETRY_LOG_ERR,
                   "%d task(s) still undelivered after %d ms are lost (no spool_path)", left,
                   c->flush_timeout_ms);
        }
    }
    client_free(c);
    curl_global_cleanup();
}

RETRY_API void retry_client_stats(const retry_client *c, retry_stats *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof *out);
    if (c == NULL)
        return;
    /* The counters are only ever read here; casting away const for C11's
     * atomic_load, whose first argument is not const-qualified in C11. */
    retry_client *m = (retry_client *)c;
    out->attempts = atomic_load(&m->attempts);
    out->succeeded = atomic_load(&m->succeeded);
    out->exhausted = atomic_load(&m->exhausted);
    out->stopped = atomic_load(&m->stopped);
    out->deadline = atomic_load(&m->deadline);
    out->shipped = atomic_load(&m->shipped);
    out->ship_failed = atomic_load(&m->ship_failed);
    out->delivered = atomic_load(&m->delivered);
    out->delivery_failed = atomic_load(&m->delivery_failed);
    rc_spool_stats(m->spool, out);
    out->budget_denied = rc_budget_denied(m);
    out->calls = out->succeeded + out->exhausted + out->stopped + out->deadline +
                 out->budget_denied;
}

int rc_kafka_err_permanent(rd_kafka_resp_err_t err)
{
    /* Errors about the message itself. Anything else (queue full, brokers
     * down, timeouts, unknown topic or partition while metadata is missing,
     * a fatal producer error that a restart clears, and errors this list
     * does not know) is transient: a kept task can still be rejected later,
     * a dropped one is gone. */
    switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__BAD_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
        return 1;
    default:
        return 0;
    }
}

retry_err rc_produce(retry_client *c, const char *key, const char *json, char *err, size_t errsz)
{
    rd_kafka_resp_err_t kerr;
    int tries;

    for (tries = 0;; tries++) {
        kerr = rd_kafka_producev(c->rk, RD_KAFKA_V_TOPIC(c->topic),
                                 RD_KAFKA_V_KEY(key, strlen(key)),
                                 RD_KAFKA_V_VALUE((void *)json, strlen(json)),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (kerr != RD_KAFKA_RESP_ERR__QUEUE_FULL || tries >= 50)
            break;
        /* The local queue is full: serve delivery reports to make room. */
        rd_kafka_poll(c->rk, 100);
    }
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        int permanent = rc_kafka_err_permanent(kerr);
        retry_err e;

        if (c->spool != NULL && !permanent) {
            char why[256];

            snprintf(why, sizeof why, "could not be queued for topic %s (%s)", c->topic,
                     rd_kafka_err2str(kerr));
            e = rc_spool_keep(c->spool, key, strlen(key), json, strlen(json), why, err, errsz);
            if (e != RETRY_OK)
                atomic_fetch_add(&c->lost, 1); /* spool full or I/O error */
            return e;
        }
        /* A permanent error is not spooled: the task could never leave it. */
        snprintf(err, errsz, "cannot queue task %s for topic %s: %s%s", key, c->topic,
                 rd_kafka_err2str(kerr),
                 c->spool != NULL ? " (a permanent error: not spooled, lost)" : "");
        atomic_fetch_add(&c->lost, 1);
        return RETRY_ERR_KAFKA;
    }
    rd_kafka_poll(c->rk, 0);
    /* The producer took a task, so the spool's may go too (a record in
     * flight is not sent twice: only pending ones are). */
    rc_spool_replay(c->spool);
    return RETRY_OK;
}
