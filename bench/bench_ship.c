/*
 * bench_ship.c: tasks/s shipped to Kafka by libretryclient against a raw
 * rd_kafka_produce of the same messages, both into one in-process librdkafka
 * mock cluster (a real Kafka protocol peer on loopback) with the library's
 * producer settings (enable.idempotence=true, acks=all).
 *  - library: N RETRY_CALLs whose expression fails, max_attempts 1, with a
 *    ship_as request: each builds the task (digest key, JSON encode,
 *    validation) and produces it; then retry_client_flush;
 *  - raw: the same N keys and values, pre-encoded, with rd_kafka_producev;
 *    then rd_kafka_flush.
 * The raw run produces exactly the bytes the library produced (read back
 * from the topic first).
 * usage: bench_ship [N] (default 100,000)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <retry/retry.h>

#define PARTITIONS 32

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int always_fails(void)
{
    return 503;
}

static void quiet(void *o, int level, const char *msg)
{
    (void)o;
    (void)level;
    (void)msg;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    if (n <= 0) n = 100000;
    char err[512];

    /* The cluster lives on a throwaway handle. */
    rd_kafka_conf_t *mconf = rd_kafka_conf_new();
    rd_kafka_conf_set(mconf, "log_level", "3", err, sizeof err);
    rd_kafka_t *mrk = rd_kafka_new(RD_KAFKA_PRODUCER, mconf, err, sizeof err);
    if (!mrk) {
        fprintf(stderr, "rd_kafka_new: %s\n", err);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(mrk, 1);
    /* 32 partitions: the mock cluster keeps at most 5 MiB per partition and
     * deletes older messages, and the raw run reads the library's back. */
    if (!mc || rd_kafka_mock_topic_create(mc, "retry.tasks", PARTITIONS, 1) ||
        rd_kafka_mock_topic_create(mc, "raw.tasks", PARTITIONS, 1)) {
        fprintf(stderr, "mock cluster failed\n");
        return 1;
    }
    const char *bootstrap = rd_kafka_mock_cluster_bootstraps(mc);

    /* Library path. */
    retry_client_conf conf = RETRY_CLIENT_CONF_DEFAULT;
    conf.group = "bench";
    conf.brokers = bootstrap;
    conf.log_cb = quiet;
    conf.flush_timeout_ms = 60000;
    retry_client *c;
    if (retry_client_new(&conf, &c, err, sizeof err) != RETRY_OK) {
        fprintf(stderr, "retry_client_new: %s\n", err);
        return 1;
    }
    char url[64], body[64], key[32];
    retry_http_request req = RETRY_HTTP_REQUEST_DEFAULT;
    req.method = "POST";
    req.url = url;
    req.body = body;
    req.idempotency_key = key;
    retry_policy pol = RETRY_POLICY_DEFAULT;
    pol.max_attempts = 1;
    pol.scene = "bench.ship";
    pol.ship_as = &req;
    int rc = 0;
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        snprintf(url, sizeof url, "http://127.0.0.1:9/notify/%ld", i);
        snprintf(body, sizeof body, "{\"order\":%ld}", i);
        req.body_len = strlen(body);
        snprintf(key, sizeof key, "ship-%08ld", i);
        RETRY_CALL(rc, c, &pol, always_fails());
    }
    retry_err fe = retry_client_flush(c, 60000);
    double lib_s = (double)(now_ns() - t0) / 1e9;
    retry_stats st;
    retry_client_stats(c, &st);
    if (fe != RETRY_OK || (long)st.delivered != n) {
        fprintf(stderr, "library: flush %s, delivered %llu of %ld\n", retry_strerror(fe),
                (unsigned long long)st.delivered, n);
        return 1;
    }
    retry_client_destroy(c);

    /* The same messages, raw: read them back to get the exact bytes. */
    rd_kafka_conf_t *cc = rd_kafka_conf_new();
    rd_kafka_conf_set(cc, "bootstrap.servers", bootstrap, err, sizeof err);
    rd_kafka_conf_set(cc, "group.id", "bench-read", err, sizeof err);
    rd_kafka_conf_set(cc, "auto.offset.reset", "earliest", err, sizeof err);
    rd_kafka_t *cons = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof err);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(PARTITIONS);
    for (int p = 0; p < PARTITIONS; p++)
        rd_kafka_topic_partition_list_add(parts, "retry.tasks", p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(cons, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    char **keys = calloc((size_t)n, sizeof *keys), **vals = calloc((size_t)n, sizeof *vals);
    size_t *klen = calloc((size_t)n, sizeof *klen), *vlen = calloc((size_t)n, sizeof *vlen);
    long got = 0;
    int64_t deadline = now_ns() + 60 * (int64_t)1000000000;
    while (got < n && now_ns() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, 500);
        if (!m) continue;
        if (!m->err) {
            keys[got] = malloc(m->key_len);
            vals[got] = malloc(m->len);
            memcpy(keys[got], m->key, m->key_len);
            memcpy(vals[got], m->payload, m->len);
            klen[got] = m->key_len;
            vlen[got] = m->len;
            got++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(cons);
    rd_kafka_destroy(cons);
    if (got != n) {
        fprintf(stderr, "read back %ld of %ld messages\n", got, n);
        return 1;
    }

    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    rd_kafka_conf_set(pc, "bootstrap.servers", bootstrap, err, sizeof err);
    rd_kafka_conf_set(pc, "enable.idempotence", "true", err, sizeof err);
    rd_kafka_conf_set(pc, "acks", "all", err, sizeof err);
    rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof err);
    size_t bytes = 0;
    t0 = now_ns();
    for (long i = 0; i < n; i++) {
        rd_kafka_resp_err_t e;
        while ((e = rd_kafka_producev(prod, RD_KAFKA_V_TOPIC("raw.tasks"),
                                      RD_KAFKA_V_KEY(keys[i], klen[i]),
                                      RD_KAFKA_V_VALUE(vals[i], vlen[i]),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(prod, 10);
        if (e) {
            fprintf(stderr, "producev: %s\n", rd_kafka_err2str(e));
            return 1;
        }
        rd_kafka_poll(prod, 0);
        bytes += vlen[i];
    }
    rd_kafka_flush(prod, 60000);
    double raw_s = (double)(now_ns() - t0) / 1e9;
    rd_kafka_destroy(prod);

    printf("tasks:                          %ld (avg value %zu bytes), %d partitions, mock cluster\n",
           n, bytes / (size_t)n, PARTITIONS);
    printf("libretryclient ship + flush:    %.2f s = %.0f tasks/s\n", lib_s, (double)n / lib_s);
    printf("raw rd_kafka_producev + flush:  %.2f s = %.0f messages/s\n", raw_s, (double)n / raw_s);
    printf("ratio library / raw:            %.2f\n", raw_s / lib_s);
    for (long i = 0; i < n; i++) {
        free(keys[i]);
        free(vals[i]);
    }
    free(keys);
    free(vals);
    free(klen);
    free(vlen);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(mrk);
    return 0;
}
