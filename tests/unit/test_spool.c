/*
 * test_spool.c: unit tests of the client's local spool (client/spool.c,
 * client/spool_record.c): the record codec, and, against librdkafka's
 * in-process mock cluster read back by a real consumer, a broker outage
 * (tasks land in the spool), a restart (a new client on the same path
 * re-produces them exactly once and empties the spool), a torn tail after a
 * crash, a corrupt record in the middle (skipped, the later ones kept), a
 * full spool, permanent refusals (never spooled; moved to .rejected on
 * replay), and the configuration checks. No sleeps: every wait
 * is a bounded loop of retry_client_flush() or consumer polls.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "internal.h" /* the client's producer, for error injection */
#include "retry/retry.h"
#include "spool_record.h"
#include "task.h"

/* ---- the record codec ---------------------------------------------------- */

static void test_crc32c_and_record_codec(void **state)
{
    unsigned char rec[RC_SPOOL_REC_HDR_LEN + 64], hdr[RC_SPOOL_HEADER_LEN];
    const unsigned char *k, *v;
    uint32_t klen, vlen;
    size_t total, i;

    (void)state;
    /* The standard check value of CRC-32C. */
    assert_int_equal(rc_crc32c(0, "123456789", 9), 0xe3069283u);
    assert_int_equal(rc_crc32c(rc_crc32c(0, "1234", 4), "56789", 5), 0xe3069283u);

    rc_spool_header_encode(hdr);
    assert_true(rc_spool_header_ok(hdr, sizeof hdr));
    hdr[9] ^= 1;
    assert_false(rc_spool_header_ok(hdr, sizeof hdr));

    rc_spool_rec_header(rec, "g/key", 5, "{\"v\":1}", 7);
    memcpy(rec + RC_SPOOL_REC_HDR_LEN, "g/key{\"v\":1}", 12);
    assert_int_equal(rc_spool_rec_decode(rec, RC_SPOOL_REC_HDR_LEN + 12, &k, &klen, &v, &vlen,
                                         &total),
                     RC_REC_OK);
    assert_int_equal(total, RC_SPOOL_REC_HDR_LEN + 12);
    assert_int_equal(klen, 5);
    assert_memory_equal(k, "g/key", 5);
    assert_int_equal(vlen, 7);
    assert_memory_equal(v, "{\"v\":1}", 7);
    /* Every cut of the record is torn, never a record. */
    for (i = 0; i < RC_SPOOL_REC_HDR_LEN + 12; i++)
        assert_int_equal(rc_spool_rec_decode(rec, i, &k, &klen, &v, &vlen, &total),
                         RC_REC_TORN);
    /* Every flipped bit is caught. */
    for (i = 0; i < (RC_SPOOL_REC_HDR_LEN + 12) * 8; i++) {
        rec[i / 8] ^= (unsigned char)(1u << (i % 8));
        assert_int_not_equal(rc_spool_rec_decode(rec, RC_SPOOL_REC_HDR_LEN + 12, &k, &klen, &v,
                                                 &vlen, &total),
                             RC_REC_OK);
        rec[i / 8] ^= (unsigned char)(1u << (i % 8));
    }
    /* Bytes that are not a record's beginning are garbage, not a torn one. */
    assert_int_equal(rc_spool_rec_decode((const unsigned char *)"\0\0", 2, &k, &klen, &v, &vlen,
                                         &total),
                     RC_REC_BAD);
}

/* ---- fixtures ------------------------------------------------------------ */

typedef struct logbuf {
    pthread_mutex_t mu;
    char text[65536];
    size_t len;
} logbuf;

static void rec_log(void *opaque, int level, const char *msg)
{
    logbuf *l = opaque;
    int n;

    if (getenv("TEST_VERBOSE") != NULL)
        printf("log %d: %s\n", level, msg);
    pthread_mutex_lock(&l->mu);
    n = snprintf(l->text + l->len, sizeof l->text - l->len, "%d %s\n", level, msg);
    if (n > 0 && l->len + (size_t)n < sizeof l->text)
        l->len += (size_t)n;
    pthread_mutex_unlock(&l->mu);
}

static int logged(logbuf *l, const char *what)
{
    int found;

    pthread_mutex_lock(&l->mu);
    found = strstr(l->text, what) != NULL;
    pthread_mutex_unlock(&l->mu);
    return found;
}

static void log_init(logbuf *l)
{
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->mu, NULL);
}

static void no_sleep(void *opaque, int64_t ms)
{
    (void)opaque;
    (void)ms;
}

typedef struct kafka_env {
    rd_kafka_t *mrk; /* throwaway handle owning the mock cluster */
    rd_kafka_mock_cluster_t *mc;
    const char *bootstraps;
    char dir[64];
    char path[128];
} kafka_env;

static void kafka_quiet(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

static void env_start(kafka_env *k)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    rd_kafka_conf_set_log_cb(conf, kafka_quiet);
    k->mrk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    assert_non_null(k->mrk);
    k->mc = rd_kafka_mock_cluster_new(k->mrk, 1);
    assert_non_null(k->mc);
    assert_int_equal(rd_kafka_mock_topic_create(k->mc, "retry.tasks", 1, 1), 0);
    k->bootstraps = rd_kafka_mock_cluster_bootstraps(k->mc);
    snprintf(k->dir, sizeof k->dir, "/tmp/retry-spool-XXXXXX");
    assert_non_null(mkdtemp(k->dir));
    snprintf(k->path, sizeof k->path, "%s/retry.spool", k->dir);
}

static void env_stop(kafka_env *k)
{
    char tmp[160];

    rd_kafka_mock_cluster_destroy(k->mc);
    rd_kafka_destroy(k->mrk);
    snprintf(tmp, sizeof tmp, "%s.tmp", k->path);
    unlink(tmp);
    snprintf(tmp, sizeof tmp, "%s.rejected", k->path);
    unlink(tmp);
    unlink(k->path);
    assert_int_equal(rmdir(k->dir), 0); /* nothing else was left behind */
}

static retry_client *spool_client(kafka_env *k, logbuf *l, const char *timeout_prop,
                                  uint64_t max_bytes)
{
    retry_client_conf conf = RETRY_CLIENT_CONF_DEFAULT;
    const char *props[1];
    char errstr[512];
    retry_client *c = NULL;

    props[0] = timeout_prop;
    conf.group = "order-service";
    conf.brokers = k->bootstraps;
    conf.kafka_props = props;
    conf.kafka_props_count = 1;
    conf.log_cb = rec_log;
    conf.opaque = l;
    conf.sleep_fn = no_sleep;
    conf.flush_timeout_ms = 0;
    conf.spool_path = k->path;
    if (max_bytes != 0)
        conf.spool_max_bytes = max_bytes;
    if (retry_client_new(&conf, &c, errstr, sizeof errstr) != RETRY_OK)
        fail_msg("retry_client_new: %s", errstr);
    return c;
}

static int fails(void)
{
    return 1;
}

/* One exhausted call shipping a task whose idempotency key is key. */
static retry_err ship(retry_client *c, const char *key, const char *body)
{
    retry_http_request req = RETRY_HTTP_REQUEST_DEFAULT;
    retry_policy p = RETRY_POLICY_DEFAULT;
    retry_err how = RETRY_OK;
    int rc = 0;

    req.url = "http://127.0.0.1:9/orders";
    req.body = body;
    req.idempotency_key = key;
    p.scene = "order.pay";
    p.ship_as = &req;
    /* Every field the call depends on is set here, so that the test does
     * not depend on which level supplies the defaults. */
    p.max_attempts = 1;
    p.delay_ms = 0;
    p.multiplier = 0;
    p.max_delay_ms = 0;
    p.jitter = RETRY_JITTER_NONE;
    p.send_queue = 1;
    RETRY_CALL_EX(rc, how, c, &p, fails());
    assert_int_equal(rc, 1);
    return how;
}

static uint64_t file_size(const char *path)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

/* Flushes until the spool has taken n tasks (kept or dropped). */
static void wait_spooled(retry_client *c, uint64_t n, int *saw_kafka_err)
{
    retry_stats st;
    int i;

    for (i = 0; i < 100; i++) {
        retry_err e = retry_client_flush(c, 200);
        if (e == RETRY_ERR_KAFKA && saw_kafka_err != NULL)
            *saw_kafka_err = 1;
        retry_client_stats(c, &st);
        if (st.spooled + st.spool_dropped >= n)
            return;
    }
    fail_msg("the spool took %llu task(s), expected %llu",
             (unsigned long long)(st.spooled + st.spool_dropped), (unsigned long long)n);
}

static void wait_flushed(retry_client *c)
{
    retry_err e = RETRY_ERR_TIMEOUT;
    int i;

    for (i = 0; i < 60 && e != RETRY_OK; i++)
        e = retry_client_flush(c, 500);
    assert_int_equal(e, RETRY_OK);
}

/* Reads retry.tasks [0] to its end; stores up to max idempotency keys of the
 * tasks found and returns how many messages there were. */
static int consume_all(const kafka_env *k, char keys[][64], int max)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *parts;
    rd_kafka_t *rk;
    int i, n = 0, eof = 0;

    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", k->bootstraps, errstr,
                                       sizeof errstr),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", "test-reader", errstr, sizeof errstr),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
                                       sizeof errstr),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr,
                                       sizeof errstr),
                     RD_KAFKA_CONF_OK);
    rd_kafka_conf_set_log_cb(conf, kafka_quiet);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    assert_non_null(rk);
    rd_kafka_poll_set_consumer(rk);
    parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, "retry.tasks", 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);
    for (i = 0; i < 60 && !eof; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eof = 1;
        } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            char err[256];
            rt_task t;

            rt_task_init(&t);
            assert_int_equal(rt_task_decode(m->payload, m->len, &t, err, sizeof err), 0);
            assert_string_equal(t.group, "order-service");
            if (n < max)
                snprintf(keys[n], 64, "%s", t.idempotency_key);
            n++;
            rt_task_free(&t);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    assert_true(eof);
    return n;
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* ---- outage, restart, replay exactly once --------------------------------- */

#define N_TASKS 5

static void test_outage_spooled_then_replayed_after_restart(void **state)
{
    kafka_env k;
    logbuf l;
    retry_client *c;
    retry_stats st;
    char key[32], got[N_TASKS + 2][64];
    int i;

    (void)state;
    env_start(&k);
    log_init(&l);
    c = spool_client(&k, &l, "message.timeout.ms=300", 0);
    assert_int_equal(file_size(k.path), RC_SPOOL_HEADER_LEN); /* created with its header */
    rd_kafka_mock_broker_set_down(k.mc, 1);
    for (i = 0; i < N_TASKS; i++) {
        snprintf(key, sizeof key, "order-%d", i);
        assert_int_equal(ship(c, key, "{\"amount\":10}"), RETRY_ERR_EXHAUSTED);
    }
    wait_spooled(c, N_TASKS, NULL);
    retry_client_stats(c, &st);
    assert_int_equal(st.shipped, N_TASKS);
    assert_int_equal(st.delivery_failed, N_TASKS);
    assert_int_equal(st.spooled, N_TASKS);
    assert_int_equal(st.spool_dropped, 0);
    assert_int_equal(st.spool_records, N_TASKS);
    assert_true(st.spool_bytes > RC_SPOOL_HEADER_LEN);
    assert_int_equal(file_size(k.path), st.spool_bytes);
    assert_true(logged(&l, "kept in spool"));
    /* Nothing was lost, but the tasks are not in Kafka yet. */
    assert_int_equal(retry_client_flush(c, 0), RETRY_ERR_TIMEOUT);
    retry_client_destroy(c);
    assert_true(file_size(k.path) > RC_SPOOL_HEADER_LEN);

    /* A new process: same spool, broker back. */
    rd_kafka_mock_broker_set_up(k.mc, 1);
    log_init(&l);
    c = spool_client(&k, &l, "message.timeout.ms=10000", 0);
    assert_true(logged(&l, "holds 5 task(s)"));
    wait_flushed(c);
    retry_client_stats(c, &st);
    assert_int_equal(st.spool_replayed, N_TASKS);
    assert_int_equal(st.spool_records, 0);
    assert_int_equal(st.spool_bytes, RC_SPOOL_HEADER_LEN);
    assert_int_equal(file_size(k.path), RC_SPOOL_HEADER_LEN);
    retry_client_destroy(c);

    /* A third client finds nothing to send again. */
    log_init(&l);
    c = spool_client(&k, &l, "message.timeout.ms=10000", 0);
    assert_int_equal(retry_client_flush(c, 1000), RETRY_OK);
    retry_client_stats(c, &st);
    assert_int_equal(st.spool_replayed, 0);
    retry_client_destroy(c);

    assert_int_equal(consume_all(&k, got, N_TASKS + 2), N_TASKS);
    qsort(got, N_TASKS, sizeof got[0], cmp_key);
    for (i = 0; i < N_TASKS; i++) {
        snprintf(key, sizeof key, "order-%d", i);
        assert_string_equal(got[i], key);
    }
    env_stop(&k);
}

/* ---- a crash in the middle of an append ---------------------------------- */

static void test_torn_tail_ignored(void **state)
{
    kafka_env k;
    logbuf l;
    retry_client *c;
    retry_stats st;
    char got[4][64];
    uint64_t size;

    (void)state;
    env_start(&k);
    log_init(&l);
    c = spool_client(&k, &l, "message.timeout.ms=300", 0);
    rd_kafka_mock_broker_set_down(k.mc, 1);
    ship(c, "order-a", "{}");
    wait_spooled(c, 1, NULL);
    ship(c, "order-b", "{}");
    wait_spooled(c, 2, NULL);
    retry_client_destroy(c);
    /* Cut the second record short, as a crash during its write would. */
    size = file_size(k.path);
    assert_int_equal(truncate(k.path, (off_t)(size - 7)), 0);

    rd_kafka_mock_broker_set_up(k.mc, 1);
    log_init(&l);
    c = spool_client(&k, &l, "message.timeout.ms=10000", 0);
    assert_true(logged(&l, "torn record at offset"));
    assert_true(logged(&l, "1 record(s) kept"));
    wait_flushed(c);
    retry_client_stats(c, &st);
    assert_int_equal(st.spool_replayed, 1);
    assert_int_equal(file_size(k.path), RC_SPOOL_HEADER_LEN);
    retry_client_destroy(c);
    assert_int_equal(consume_all(&k, got, 4), 1);
    assert_string_equal(got[0], "order-a");
    env_stop(&k);
}

/* ---- a full spool is loud -------------------------------------------------- */

static char *big_body(size_t n)
{
    char *b = malloc(n + 1);

    assert_non_null(b);
    memset(b, 'x', n);
    b[n] = '\0';
    return b;
}

/* Delivery fails later (broker down): the second task does not fit. */
static void test_spool_full_after_delivery_failure(void **state)
{
    kafka_env k;
    logbuf l;
    retry_client *c;
    retry_stats st;
    char *body = big_body(2500);
    int saw_kafka = 0;

    (void)state;
    env_start(&k);
    log_init(&l);
    c = spool_client(&k, &l, "message.timeout.ms=300", 4096);
    rd_kafka_mock_broker_set_down(k.mc, 1);
    assert_int_equal(ship(c, "order-1", body), RETRY_ERR_EXHAUSTED);
    assert_int_equal(ship(c, "order-2", body), RETRY_ERR_EXHAUSTED);
    wait_spooled(c, 2, &saw_kafka);
    assert_true(saw_kafka); /* flush reported the loss */
    retry_client_stats(c, &st);
    assert_int_equal(st.spooled, 1);
    assert_int_equal(st.spool_dropped, 1);
    assert_int_equal(st.spool_records, 1);
    assert_true(logged(&l, "spool full ("));
    assert_true(logged(&l, "NOT kept"));
    retry_client_destroy(c);
    free(body);
    env_stop(&k);
}

/* The producer refuses a task at once with a transient error (here a fatal
 * producer error, which a restart clears): it goes to the spool within the
 * call, and a full spool is the call's error, counted as lost and reported
 * by retry_client_flush(). */
static void test_spool_full_is_the_calls_error(void **state)
{
    kafka_env k;
    logbuf l;
    retry_client *c;
    retry_stats st;
    char *small = big_body(1500), *large = big_body(5000);
    char expect[128];

    (void)state;
    env_start(&k);
    log_init(&l);
    c = spool_client(&k, &l, "message.timeout.ms=10000", 4096);
    assert_int_equal(rd_kafka_test_fatal_error(c->rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                               "injected by test_spool"),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(ship(c, "order-1", small), RETRY_ERR_EXHAUSTED);
    retry_client_stats(c, &st);
    assert_int_equal(st.spooled, 1);
    assert_true(logged(&l, "could not be queued"));
    assert_int_equal(retry_client_flush(c, 0), RETRY_ERR_TIMEOUT); /* kept, nothing lost */
    assert_int_equal(ship(c, "order-2", large), RETRY_ERR_KAFKA);
    retry_client_stats(c, &st);
    assert_int_equal(st.spooled, 1);
    assert_int_equal(st.spool_dropped, 1);
    snprintf(expect, sizeof expect, "spool full (%llu bytes): task order-service/order-2 NOT kept",
             (unsigned long long)st.spool_bytes);
    assert_true(logged(&l, expect));
    /* The loss is reported once. */
    assert_int_equal(retry_client_flush(c, 0), RETRY_ERR_KAFKA);
    assert_int_equal(retry_client_flush(c, 0), RETRY_ERR_TIMEOUT);
    retry_client_destroy(c);
    free(small);
    free(large);
    env_stop(&k);
}

/* A task the producer refuses for good (larger than message.max.bytes) is
 * not spooled, where it would stay forever: the call fails with
 * RETRY_ERR_KAFKA, the loss is reported by the next flush, and the flush
 * after that is clean. */
static void test_permanent_refusal_not_spooled(void **state)
{
    kafka_env k;
    logbuf l;
    retry_client *c;
    retry_stats st;
    char *large = big_body(1500);

    (void)state;
    env_start(&k);
    log_init(&l);
    c = spool_client(&k, &l, "message.max.bytes=1000", 0);
    assert_int_equal(ship(c, "order-big", large), RETRY_ERR_KAFKA);
    retry_client_stats(c, &st);
    assert_int_equal(st.spooled, 0);
    assert_int_equal(st.spool_records, 0);
    assert_int_equal(st.ship_failed, 1);
    assert_true(logged(&l, "a permanent error: not spooled"));
    assert_int_equal(retry_client_flush(c, 1000), RETRY_ERR_KAFKA);
    assert_int_equal(retry_client_flush(c, 1000), RETRY_OK);
    assert_int_equal(file_size(k.path), RC_SPOOL_HEADER_LEN);
    retry_client_destroy(c);
    free(large);
    env_stop(&k);
}

/* A spooled task that Kafka refuses for good when it is replayed (here:
 * the next process has a smaller message.max.bytes) is moved to
 * <spool_path>.rejected, so that the spool empties and flush returns OK. */
static void test_replay_moves_permanent_refusal_to_rejected(void **state)
{
    kafka_env k;
    logbuf l;
    retry_client *c;
    retry_stats st;
    char *large = big_body(1500), rejected[160];
    uint64_t rec_len;
    unsigned char hdr[RC_SPOOL_HEADER_LEN];
    int fd;

    (void)state;
    env_start(&k);
    log_init(&l);
    c = spool_client(&k, &l, "message.timeout.ms=300", 0);
    rd_kafka_mock_broker_set_down(k.mc, 1);
    ship(c, "order-big", large);
    wait_spooled(c, 1, NULL);
    retry_client_destroy(c);
    rec_len = file_size(k.path) - RC_SPOOL_HEADER_LEN;

    rd_kafka_mock_broker_set_up(k.mc, 1);
    log_init(&l);
    c = spool_client(&k, &l, "message.max.bytes=1000", 0);
    wait_flushed(c); /* the spool no longer holds it */
    retry_client_stats(c, &st);
    assert_int_equal(st.spool_rejected, 1);
    assert_int_equal(st.spool_replayed, 0);
    assert_int_equal(st.spool_records, 0);
    assert_int_equal(file_size(k.path), RC_SPOOL_HEADER_LEN);
    assert_true(logged(&l, "refused by Kafka for good"));
    assert_true(logged(&l, ".rejected (spool_rejected)"));
    retry_client_destroy(c);
    /* The rejected file is a spool-format file holding the record. */
    snprintf(rejected, sizeof rejected, "%s.rejected", k.path);
    assert_int_equal(file_size(rejected), RC_SPOOL_HEADER_LEN + rec_len);
    fd = open(rejected, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, hdr, sizeof hdr), (ssize_t)sizeof hdr);
    close(fd);
    assert_true(rc_spool_header_ok(hdr, sizeof hdr));
    free(large);
    env_stop(&k);
}

/* ---- a corrupt record in the middle ---------------------------------------- */

/* Four fsync'd records; one byte of the second one's value goes bad. The
 * other three are replayed; the bad one is skipped (and counted), never the
 * records after it. */
static void test_corrupt_middle_record_skipped(void **state)
{
    kafka_env k;
    logbuf l;
    retry_client *c;
    retry_stats st;
    char key[32], bad_key[64], got[8][64];
    unsigned char rh[RC_SPOOL_REC_HDR_LEN], flip;
    uint64_t off = RC_SPOOL_HEADER_LEN, bad_off = 0, bad_len = 0;
    uint32_t klen, vlen;
    int i, fd, n;

    (void)state;
    env_start(&k);
    log_init(&l);
    c = spool_client(&k, &l, "message.timeout.ms=300", 0);
    rd_kafka_mock_broker_set_down(k.mc, 1);
    for (i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "order-%d", i);
        ship(c, key, "{\"amount\":10}");
    }
    wait_spooled(c, 4, NULL);
    retry_client_destroy(c);

    /* Find the second record, note its key, flip a byte of its value. */
    fd = open(k.path, O_RDWR);
    assert_true(fd >= 0);
    for (i = 0; i < 2; i++) {
        assert_int_equal(pread(fd, rh, sizeof rh, (off_t)off), (ssize_t)sizeof rh);
        assert_int_equal(rc_spool_rec_lengths(rh, sizeof rh, &klen, &vlen), RC_REC_OK);
        if (i == 1) {
            bad_off = off;
            bad_len = RC_SPOOL_REC_HDR_LEN + klen + vlen;
            assert_true(klen < sizeof bad_key);
            assert_int_equal(pread(fd, bad_key, klen, (off_t)(off + RC_SPOOL_REC_HDR_LEN)),
                             (ssize_t)klen);
            bad_key[klen] = '\0';
        }
        off += RC_SPOOL_REC_HDR_LEN + klen + vlen;
    }
    assert_int_equal(pread(fd, &flip, 1, (off_t)(bad_off + bad_len - 2)), 1);
    flip ^= 0x20;
    assert_int_equal(pwrite(fd, &flip, 1, (off_t)(bad_off + bad_len - 2)), 1);
    close(fd);

    rd_kafka_mock_broker_set_up(k.mc, 1);
    log_init(&l);
    c = spool_client(&k, &l, "message.timeout.ms=10000", 0);
    assert_true(logged(&l, "corrupt record at offset"));
    assert_true(logged(&l, "the records after it are kept"));
    retry_client_stats(c, &st);
    assert_int_equal(st.spool_skipped_bytes, bad_len);
    assert_int_equal(st.spool_records, 3);
    wait_flushed(c);
    retry_client_stats(c, &st);
    assert_int_equal(st.spool_replayed, 3);
    assert_int_equal(file_size(k.path), RC_SPOOL_HEADER_LEN);
    retry_client_destroy(c);
    n = consume_all(&k, got, 8);
    assert_int_equal(n, 3);
    /* The message key is "<group>/<idempotency key>". */
    assert_memory_equal(bad_key, "order-service/", 14);
    for (i = 0; i < n; i++)
        assert_string_not_equal(got[i], bad_key + 14);
    env_stop(&k);
}

/* ---- concurrent flushes report each loss once ------------------------------ */

enum { FLUSHERS = 4, FLUSHES = 3000, LOSSES = 300 };

typedef struct flush_race {
    retry_client *c;
    atomic_int reports; /* RETRY_ERR_KAFKA returns */
    atomic_int done;
    atomic_int went_back; /* failed_reported seen moving backwards */
} flush_race;

static void *race_flusher(void *arg)
{
    flush_race *r = arg;
    int i;

    for (i = 0; i < FLUSHES; i++)
        if (retry_client_flush(r->c, 0) == RETRY_ERR_KAFKA)
            atomic_fetch_add(&r->reports, 1);
    return NULL;
}

static void *race_loser(void *arg)
{
    flush_race *r = arg;
    int i;

    for (i = 0; i < LOSSES; i++) {
        atomic_fetch_add(&r->c->lost, 1); /* as a failed delivery would */
        sched_yield();
    }
    return NULL;
}

static void *race_watcher(void *arg)
{
    flush_race *r = arg;
    uint_fast64_t last = 0;

    while (!atomic_load(&r->done)) {
        uint_fast64_t now = atomic_load(&r->c->failed_reported);
        if (now < last)
            atomic_store(&r->went_back, 1);
        last = now;
    }
    return NULL;
}

static void test_concurrent_flushes_report_each_loss_once(void **state)
{
    kafka_env k;
    logbuf l;
    flush_race r;
    pthread_t th[FLUSHERS + 2];
    int i;

    (void)state;
    env_start(&k);
    log_init(&l);
    memset(&r, 0, sizeof r);
    r.c = spool_client(&k, &l, "message.timeout.ms=1000", 0);
    assert_int_equal(pthread_create(&th[0], NULL, race_watcher, &r), 0);
    assert_int_equal(pthread_create(&th[1], NULL, race_loser, &r), 0);
    for (i = 0; i < FLUSHERS; i++)
        assert_int_equal(pthread_create(&th[2 + i], NULL, race_flusher, &r), 0);
    for (i = 1; i < FLUSHERS + 2; i++)
        pthread_join(th[i], NULL);
    atomic_store(&r.done, 1);
    pthread_join(th[0], NULL);
    if (retry_client_flush(r.c, 0) == RETRY_ERR_KAFKA)
        atomic_fetch_add(&r.reports, 1);
    /* Every loss is reported, and no loss twice: the reported mark never
     * moves back, so a report always covers a new loss. */
    assert_false(atomic_load(&r.went_back));
    assert_true(atomic_load(&r.reports) >= 1);
    assert_true(atomic_load(&r.reports) <= LOSSES);
    assert_int_equal(atomic_load(&r.c->failed_reported), LOSSES);
    retry_client_destroy(r.c);
    env_stop(&k);
}

/* ---- configuration --------------------------------------------------------- */

static void test_spool_conf_checks(void **state)
{
    kafka_env k;
    logbuf l;
    retry_client_conf conf = RETRY_CLIENT_CONF_DEFAULT;
    retry_client *c, *c2 = NULL;
    char errstr[512];
    int fd;

    (void)state;
    env_start(&k);
    log_init(&l);
    conf.group = "order-service";
    conf.spool_path = k.path;
    assert_int_equal(conf.spool_max_bytes, 64u * 1024 * 1024);
    /* A spool needs brokers. */
    assert_int_equal(retry_client_new(&conf, &c2, errstr, sizeof errstr), RETRY_ERR_INVALID_ARG);
    assert_non_null(strstr(errstr, "brokers"));
    conf.brokers = k.bootstraps;
    conf.spool_max_bytes = 100;
    assert_int_equal(retry_client_new(&conf, &c2, errstr, sizeof errstr), RETRY_ERR_INVALID_ARG);
    assert_non_null(strstr(errstr, "spool_max_bytes"));
    /* One client per spool file. */
    c = spool_client(&k, &l, "message.timeout.ms=1000", 0);
    conf.spool_max_bytes = 1u << 20;
    assert_int_equal(retry_client_new(&conf, &c2, errstr, sizeof errstr), RETRY_ERR_INVALID_ARG);
    assert_null(c2);
    assert_non_null(strstr(errstr, "in use by another client"));
    retry_client_destroy(c);
    /* A file that is not a spool is never overwritten. */
    fd = open(k.path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not a spool at all, really", 26), 26);
    close(fd);
    assert_int_equal(retry_client_new(&conf, &c2, errstr, sizeof errstr), RETRY_ERR_INVALID_ARG);
    assert_non_null(strstr(errstr, "not a retry spool"));
    assert_int_equal(file_size(k.path), 26);
    /* A directory that does not exist. */
    conf.spool_path = "/nonexistent-dir/retry.spool";
    assert_int_equal(retry_client_new(&conf, &c2, errstr, sizeof errstr), RETRY_ERR_INVALID_ARG);
    assert_non_null(strstr(errstr, "cannot open spool_path"));
    env_stop(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_and_record_codec),
        cmocka_unit_test(test_outage_spooled_then_replayed_after_restart),
        cmocka_unit_test(test_torn_tail_ignored),
        cmocka_unit_test(test_spool_full_after_delivery_failure),
        cmocka_unit_test(test_spool_full_is_the_calls_error),
        cmocka_unit_test(test_permanent_refusal_not_spooled),
        cmocka_unit_test(test_replay_moves_permanent_refusal_to_rejected),
        cmocka_unit_test(test_corrupt_middle_record_skipped),
        cmocka_unit_test(test_concurrent_flushes_report_each_loss_once),
        cmocka_unit_test(test_spool_conf_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
