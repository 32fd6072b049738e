/*
 * test_http.c: unit tests of retry_http_call() and of shipping exhausted
 * calls to Kafka. The HTTP target is a tiny server on a loopback socket run
 * on a thread of this test (scripted statuses, requests recorded); Kafka is
 * librdkafka's in-process mock cluster, read back with a real consumer, and
 * the message is decoded with the wire-format codec (src/task.h).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "digest.h"
#include "retry/retry.h"
#include "task.h"

/* ---- tiny HTTP server ------------------------------------------------- */

#define MAX_STATUSES 8

typedef struct http_server {
    int fd;
    int port;
    pthread_t thread;
    atomic_int stop;
    int statuses[MAX_STATUSES]; /* answer n uses statuses[min(n, nstatuses-1)] */
    int nstatuses;
    const char *extra_header; /* e.g. "Retry-After: 2\r\n"; NULL = none */
    atomic_int requests;
    char last_request[4096]; /* written by the server thread, read after stop */
} http_server;

static void serve_one(http_server *s, int cfd)
{
    char buf[4096];
    size_t len = 0;
    char *end = NULL;
    long clen = 0;
    int n, status;
    char resp[512];

    while (len < sizeof buf - 1) {
        ssize_t r = recv(cfd, buf + len, sizeof buf - 1 - len, 0);
        if (r <= 0)
            return;
        len += (size_t)r;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (end != NULL) {
            const char *cl = strstr(buf, "\r\nContent-Length:"); /* as curl spells it */
            if (cl != NULL && cl < end)
                clen = strtol(cl + 17, NULL, 10);
            if ((size_t)(end + 4 - buf) + (size_t)clen <= len)
                break;
        }
    }
    n = atomic_fetch_add(&s->requests, 1);
    memcpy(s->last_request, buf, len + 1);
    status = s->statuses[n < s->nstatuses ? n : s->nstatuses - 1];
    snprintf(resp, sizeof resp,
             "HTTP/1.1 %d X\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n"
             "%sConnection: close\r\n\r\nbody%02d",
             status, s->extra_header != NULL ? s->extra_header : "", n % 100);
    (void)!send(cfd, resp, strlen(resp), MSG_NOSIGNAL);
}

static void *server_main(void *arg)
{
    http_server *s = arg;

    while (!atomic_load(&s->stop)) {
        struct pollfd pfd = {s->fd, POLLIN, 0};
        if (poll(&pfd, 1, 20) <= 0)
            continue;
        int cfd = accept(s->fd, NULL, NULL);
        if (cfd < 0)
            continue;
        serve_one(s, cfd);
        close(cfd);
    }
    return NULL;
}

static int listen_loopback(int *port)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;

    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static void server_start(http_server *s, const int *statuses, int n)
{
    memset(s, 0, sizeof *s);
    memcpy(s->statuses, statuses, (size_t)n * sizeof(int));
    s->nstatuses = n;
    s->fd = listen_loopback(&s->port);
    assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
}

static void server_stop(http_server *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    close(s->fd);
}

/* A loopback port nothing listens on: bound, then closed. */
static int closed_port(void)
{
    int port;
    int fd = listen_loopback(&port);
    close(fd);
    return port;
}

/* ---- client fixture ------------------------------------------------------ */

typedef struct fixture {
    int64_t delays[32];
    int ndelays;
    int64_t now_ms;
    retry_client *client;
} fixture;

static void rec_sleep(void *opaque, int64_t ms)
{
    fixture *f = opaque;
    if (f->ndelays < 32)
        f->delays[f->ndelays++] = ms;
    f->now_ms += ms;
}

static int64_t rec_now(void *opaque)
{
    return ((fixture *)opaque)->now_ms;
}

static void quiet_log(void *opaque, int level, const char *msg)
{
    (void)opaque;
    if (getenv("TEST_VERBOSE") != NULL)
        printf("log %d: %s\n", level, msg);
}

static retry_client *make_client(fixture *f, const char *brokers)
{
    retry_client_conf conf = RETRY_CLIENT_CONF_DEFAULT;
    char errstr[256];
    retry_client *c = NULL;

    memset(f, 0, sizeof *f);
    f->now_ms = 1700000000000LL;
    conf.group = "order-service";
    conf.brokers = brokers;
    conf.sleep_fn = rec_sleep;
    conf.now_ms_fn = rec_now;
    conf.log_cb = quiet_log;
    conf.opaque = f;
    conf.rng_seed = 1;
    conf.flush_timeout_ms = 10000;
    assert_int_equal(retry_client_new(&conf, &c, errstr, sizeof errstr), RETRY_OK);
    f->client = c;
    return c;
}

static void url_for(char *buf, size_t n, int port, const char *path)
{
    snprintf(buf, n, "http://127.0.0.1:%d%s", port, path);
}

/* ---- HTTP behaviour --------------------------------------------------- */

static void test_http_503_exhausted_without_kafka(void **state)
{
    static const int st[] = {503};
    http_server s;
    fixture f;
    char url[128];
    retry_http_request req = RETRY_HTTP_REQUEST_DEFAULT;
    retry_http_response resp = RETRY_HTTP_RESPONSE_DEFAULT;
    retry_policy p = RETRY_POLICY_DEFAULT;
    retry_stats stats;

    (void)state;
    server_start(&s, st, 1);
    make_client(&f, NULL);
    url_for(url, sizeof url, s.port, "/notify");
    req.url = url;
    req.body = "{\"order\":1}";
    p.delay_ms = 50;
    p.multiplier = 2.0;
    p.scene = "payment.notify";
    assert_int_equal(retry_http_call(f.client, &p, &req, &resp), RETRY_ERR_EXHAUSTED);
    server_stop(&s);
    assert_int_equal(atomic_load(&s.requests), 3);
    assert_int_equal(resp.attempts, 3);
    assert_int_equal(resp.status, 503);
    assert_int_equal(resp.shipped, 0);
    assert_string_equal(resp.body, "body02");
    assert_int_equal(f.ndelays, 2);
    assert_int_equal(f.delays[0], 50);
    assert_int_equal(f.delays[1], 100);
    /* POST with a body, Idempotency-Key = digest of scene, method, url, body. */
    {
        char digest[RT_DIGEST_HEX_LEN + 1], hdr[128];
        assert_int_equal(rt_idempotency_digest("payment.notify", "POST", url, req.body,
                                               strlen(req.body), digest),
                         0);
        assert_string_equal(resp.idempotency_key, digest);
        snprintf(hdr, sizeof hdr, "Idempotency-Key: %s\r\n", digest);
        assert_non_null(strstr(s.last_request, hdr));
        assert_true(strncmp(s.last_request, "POST /notify ", 13) == 0);
        assert_non_null(strstr(s.last_request, "{\"order\":1}"));
    }
    retry_client_stats(f.client, &stats);
    assert_int_equal(stats.attempts, 3);
    assert_int_equal(stats.exhausted, 1);
    assert_int_equal(stats.shipped, 0);
    retry_http_response_free(&resp);
    retry_client_destroy(f.client);
}

static void test_http_retry_then_success(void **state)
{
    static const int st[] = {503, 429, 200};
    http_server s;
    fixture f;
    char url[128];
    static const char *const hdrs[] = {"X-Test: yes", "Content-Type: application/json"};
    retry_http_request req = RETRY_HTTP_REQUEST_DEFAULT;
    retry_http_response resp = RETRY_HTTP_RESPONSE_DEFAULT;
    retry_policy p = RETRY_POLICY_DEFAULT;

    (void)state;
    server_start(&s, st, 3);
    make_client(&f, NULL);
    url_for(url, sizeof url, s.port, "/x");
    req.url = url;
    req.method = "PUT";
    req.headers = hdrs;
    req.header_count = 2;
    req.body = "abc";
    req.idempotency_key = "my-key-1";
    p.max_attempts = 5;
    assert_int_equal(retry_http_call(f.client, &p, &req, &resp), RETRY_OK);
    server_stop(&s);
    assert_int_equal(resp.attempts, 3);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "body02");
    assert_string_equal(resp.idempotency_key, "my-key-1");
    assert_true(strncmp(s.last_request, "PUT /x ", 7) == 0);
    assert_non_null(strstr(s.last_request, "X-Test: yes\r\n"));
    assert_non_null(strstr(s.last_request, "Idempotency-Key: my-key-1\r\n"));
    retry_http_response_free(&resp);
    retry_client_destroy(f.client);
}

static void test_http_404_stops(void **state)
{
    static const int st[] = {404};
    http_server s;
    fixture f;
    char url[128];
    retry_http_request req = RETRY_HTTP_REQUEST_DEFAULT;
    retry_http_response resp = RETRY_HTTP_RESPONSE_DEFAULT;
    retry_policy p = RETRY_POLICY_DEFAULT;
    retry_stats stats;

    (void)state;
    server_start(&s, st, 1);
    make_client(&f, NULL);
    url_for(url, sizeof url, s.port, "/");
    req.url = url;
    p.max_attempts = 5;
    assert_int_equal(retry_http_call(f.client, &p, &req, &resp), RETRY_ERR_STOPPED);
    server_stop(&s);
    assert_int_equal(atomic_load(&s.requests), 1);
    assert_int_equal(resp.status, 404);
    assert_true(strncmp(s.last_request, "GET / ", 6) == 0);
    /* No scene, no key: no Idempotency-Key header. */
    assert_null(strstr(s.last_request, "Idempotency-Key"));
    retry_client_stats(f.client, &stats);
    assert_int_equal(stats.stopped, 1);
    retry_http_response_free(&resp);
    retry_client_destroy(f.client);
}

static void test_http_success_status_and_retry_on(void **state)
{
    static const int st[] = {200};
    static const int ok[] = {202};
    static const int retry_on[] = {200};
    http_server s;
    fixture f;
    char url[128];
    retry_http_request req = RETRY_HTTP_REQUEST_DEFAULT;
    retry_policy p = RETRY_POLICY_DEFAULT;

    (void)state;
    server_start(&s, st, 1);
    make_client(&f, NULL);
    url_for(url, sizeof url, s.port, "/");
    req.url = url;
    req.success_status = ok;
    req.success_status_count = 1;
    /* 200 is not a success here and not retryable by default: stop. */
    assert_int_equal(retry_http_call(f.client, &p, &req, NULL), RETRY_ERR_STOPPED);
    assert_int_equal(atomic_load(&s.requests), 1);
    /* retry_on overrides the default classification. */
    p.retry_on = retry_on;
    p.retry_on_count = 1;
    assert_int_equal(retry_http_call(f.client, &p, &req, NULL), RETRY_ERR_EXHAUSTED);
    server_stop(&s);
    assert_int_equal(atomic_load(&s.requests), 4);
    retry_client_destroy(f.client);
}

static void test_http_connection_refused(void **state)
{
    fixture f;
    char url[128];
    retry_http_request req = RETRY_HTTP_REQUEST_DEFAULT;
    retry_http_response resp = RETRY_HTTP_RESPONSE_DEFAULT;
    retry_policy p = RETRY_POLICY_DEFAULT;

    (void)state;
    make_client(&f, NULL);
    url_for(url, sizeof url, closed_port(), "/");
    req.url = url;
    p.max_attempts = 2;
    assert_int_equal(retry_http_call(f.client, &p, &req, &resp), RETRY_ERR_EXHAUSTED);
    assert_int_equal(resp.attempts, 2);
    assert_int_equal(resp.status, 0);
    assert_int_equal(resp.curl_code, 7); /* CURLE_COULDNT_CONNECT */
    retry_http_response_free(&resp);
    retry_client_destroy(f.client);
}

static int retry_everything(void *ctx, int code, int attempt)
{
    (void)ctx;
    (void)code;
    (void)attempt;
    return 1;
}

static int recover_minus(void *ctx, int last_code)
{
    int *seen = ctx;
    *seen = last_code;
    return 4242;
}

static void test_http_recover_value_returned(void **state)
{
    fixture f;
    char url[128];
    retry_http_request req = RETRY_HTTP_REQUEST_DEFAULT;
    retry_policy p = RETRY_POLICY_DEFAULT;
    int seen = 0;

    (void)state;
    make_client(&f, NULL);
    url_for(url, sizeof url, closed_port(), "/");
    req.url = url;
    p.recover = recover_minus;
    p.recover_ctx = &seen;
    assert_int_equal(retry_http_call(f.client, &p, &req, NULL), 4242);
    assert_int_equal(seen, -7);
    retry_client_destroy(f.client);
}

static void test_http_invalid_request(void **state)
{
    fixture f;
    retry_http_request req = RETRY_HTTP_REQUEST_DEFAULT;

    (void)state;
    make_client(&f, NULL);
    req.url = "ftp://example.invalid/";
    assert_int_equal(retry_http_call(f.client, NULL, &req, NULL), RETRY_ERR_INVALID_ARG);
    req.url = "http://127.0.0.1:1/";
    req.method = "TRACE";
    assert_int_equal(retry_http_call(f.client, NULL, &req, NULL), RETRY_ERR_INVALID_ARG);
    assert_int_equal(retry_http_call(NULL, NULL, &req, NULL), RETRY_ERR_INVALID_ARG);
    retry_client_destroy(f.client);
}

/* Default classification, as curl's --retry: 502 is retried, 501 is not. */
static void test_http_classification_like_curl(void **state)
{
    static const int st501[] = {501};
    static const int st502[] = {502, 504, 200};
    http_server s;
    fixture f;
    char url[128];
    retry_http_request req = RETRY_HTTP_REQUEST_DEFAULT;
    retry_policy p = RETRY_POLICY_DEFAULT;

    (void)state;
    make_client(&f, NULL);
    p.max_attempts = 4;
    server_start(&s, st501, 1);
    url_for(url, sizeof url, s.port, "/");
    req.url = url;
    assert_int_equal(retry_http_call(f.client, &p, &req, NULL), RETRY_ERR_STOPPED);
    server_stop(&s);
    assert_int_equal(atomic_load(&s.requests), 1);
    server_start(&s, st502, 3);
    url_for(url, sizeof url, s.port, "/");
    assert_int_equal(retry_http_call(f.client, &p, &req, NULL), RETRY_OK);
    server_stop(&s);
    assert_int_equal(atomic_load(&s.requests), 3);
    /* A user predicate replaces the default classification. */
    server_start(&s, st501, 1);
    url_for(url, sizeof url, s.port, "/");
    p.should_retry = retry_everything;
    assert_int_equal(retry_http_call(f.client, &p, &req, NULL), RETRY_ERR_EXHAUSTED);
    server_stop(&s);
    assert_int_equal(atomic_load(&s.requests), 4);
    retry_client_destroy(f.client);
}

/* Retry-After on 429/503, in seconds or as an HTTP date (measured against
 * the client's clock), capped by max_delay_ms; used when longer than the
 * backoff; ignored on other statuses. */
static void test_http_retry_after(void **state)
{
    static const int st429[] = {429, 200};
    static const int st500[] = {500, 200};
    http_server s;
    fixture f;
    char url[128];
    retry_http_request req = RETRY_HTTP_REQUEST_DEFAULT;
    retry_policy p = RETRY_POLICY_DEFAULT;

    (void)state;
    make_client(&f, NULL);
    req.url = url;
    p.delay_ms = 100;

    server_start(&s, st429, 2);
    s.extra_header = "Retry-After: 3\r\n";
    url_for(url, sizeof url, s.port, "/");
    assert_int_equal(retry_http_call(f.client, &p, &req, NULL), RETRY_OK);
    server_stop(&s);
    assert_int_equal(f.ndelays, 1);
    assert_int_equal(f.delays[0], 3000);

    /* Capped by max_delay_ms. */
    f.ndelays = 0;
    p.max_delay_ms = 1500;
    server_start(&s, st429, 2);
    s.extra_header = "Retry-After: 3\r\n";
    url_for(url, sizeof url, s.port, "/");
    assert_int_equal(retry_http_call(f.client, &p, &req, NULL), RETRY_OK);
    server_stop(&s);
    assert_int_equal(f.delays[0], 1500);

    /* An HTTP date: 1700000000 s is Tue, 14 Nov 2023 22:13:20 GMT; the
     * fixture's clock says 1700000000000 ms, so 7 s later is 7000 ms. */
    f.ndelays = 0;
    f.now_ms = 1700000000000LL;
    p.max_delay_ms = 0;
    server_start(&s, st429, 2);
    s.extra_header = "Retry-After: Tue, 14 Nov 2023 22:13:27 GMT\r\n";
    url_for(url, sizeof url, s.port, "/");
    assert_int_equal(retry_http_call(f.client, &p, &req, NULL), RETRY_OK);
    server_stop(&s);
    assert_int_equal(f.delays[0], 7000);

    /* A date in the past, or a shorter pause than the backoff: the backoff. */
    f.ndelays = 0;
    server_start(&s, st429, 2);
    s.extra_header = "Retry-After: Tue, 14 Nov 2023 22:00:00 GMT\r\n";
    url_for(url, sizeof url, s.port, "/");
    assert_int_equal(retry_http_call(f.client, &p, &req, NULL), RETRY_OK);
    server_stop(&s);
    assert_int_equal(f.delays[0], 100);

    /* Not on a 500. */
    f.ndelays = 0;
    server_start(&s, st500, 2);
    s.extra_header = "Retry-After: 3\r\n";
    url_for(url, sizeof url, s.port, "/");
    assert_int_equal(retry_http_call(f.client, &p, &req, NULL), RETRY_OK);
    server_stop(&s);
    assert_int_equal(f.delays[0], 100);
    retry_client_destroy(f.client);
}

/* A Retry-After without a max_delay_ms is capped at RETRY_RETRY_AFTER_MAX_MS
 * (no sleeping for years); one reaching past the call's max_elapsed_ms ends
 * the call as exhausted at once, without sleeping. */
static void test_http_retry_after_bounded(void **state)
{
    static const int st503[] = {503, 200};
    http_server s;
    fixture f;
    char url[128];
    retry_http_request req = RETRY_HTTP_REQUEST_DEFAULT;
    retry_http_response resp = RETRY_HTTP_RESPONSE_DEFAULT;
    retry_policy p = RETRY_POLICY_DEFAULT;

    (void)state;
    make_client(&f, NULL);
    req.url = url;
    p.delay_ms = 100;
    p.max_delay_ms = 0;

    server_start(&s, st503, 2);
    s.extra_header = "Retry-After: 99999999\r\n"; /* about three years */
    url_for(url, sizeof url, s.port, "/");
    assert_int_equal(retry_http_call(f.client, &p, &req, NULL), RETRY_OK);
    server_stop(&s);
    assert_int_equal(f.ndelays, 1);
    assert_int_equal(f.delays[0], RETRY_RETRY_AFTER_MAX_MS);

    /* An HTTP date a year ahead: capped the same way. */
    f.ndelays = 0;
    f.now_ms = 1700000000000LL;
    server_start(&s, st503, 2);
    s.extra_header = "Retry-After: Thu, 14 Nov 2024 22:13:20 GMT\r\n";
    url_for(url, sizeof url, s.port, "/");
    assert_int_equal(retry_http_call(f.client, &p, &req, NULL), RETRY_OK);
    server_stop(&s);
    assert_int_equal(f.ndelays, 1);
    assert_int_equal(f.delays[0], RETRY_RETRY_AFTER_MAX_MS);

    /* The wish (1 h) is past max_elapsed_ms (1 min), the backoff is not:
     * exhausted after one attempt, nothing slept. */
    f.ndelays = 0;
    p.max_elapsed_ms = 60000;
    server_start(&s, st503, 2);
    s.extra_header = "Retry-After: 3600\r\n";
    url_for(url, sizeof url, s.port, "/");
    assert_int_equal(retry_http_call(f.client, &p, &req, &resp), RETRY_ERR_EXHAUSTED);
    server_stop(&s);
    assert_int_equal(f.ndelays, 0);
    assert_int_equal(resp.attempts, 1);
    assert_int_equal(resp.status, 503);
    retry_http_response_free(&resp);
    assert_int_equal(atomic_load(&s.requests), 1);
    retry_client_destroy(f.client);
}

/* max_elapsed_ms shortens an attempt's timeout: a server that never
 * answers costs at most what is left of the call. */
static void test_http_attempt_timeout_capped_by_deadline(void **state)
{
    fixture f;
    char url[128];
    int port;
    int fd = listen_loopback(&port); /* accepts into the backlog, never answers */
    retry_http_request req = RETRY_HTTP_REQUEST_DEFAULT;
    retry_http_response resp = RETRY_HTTP_RESPONSE_DEFAULT;
    retry_policy p = RETRY_POLICY_DEFAULT;

    (void)state;
    make_client(&f, NULL);
    url_for(url, sizeof url, port, "/");
    req.url = url;
    req.timeout_ms = 60000;
    p.max_attempts = 1;
    p.max_elapsed_ms = 200;
    assert_int_equal(retry_http_call(f.client, &p, &req, &resp), RETRY_ERR_EXHAUSTED);
    assert_int_equal(resp.curl_code, 28); /* CURLE_OPERATION_TIMEDOUT, not after 60 s */
    retry_http_response_free(&resp);
    close(fd);
    retry_client_destroy(f.client);
}

/* ---- shipping through the mock Kafka cluster ------------------------- */

typedef struct kafka_env {
    rd_kafka_t *mrk; /* throwaway handle owning the mock cluster */
    rd_kafka_mock_cluster_t *mc;
    const char *bootstraps;
} kafka_env;

static void kafka_quiet(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

static void kafka_start(kafka_env *k)
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
}

static void kafka_stop(kafka_env *k)
{
    rd_kafka_mock_cluster_destroy(k->mc);
    rd_kafka_destroy(k->mrk);
}

/* Reads the first message of retry.tasks [0]; returns its key and value. */
static void consume_first(const kafka_env *k, char *key, size_t keysz, char **value,
                          size_t *value_len)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *parts;
    rd_kafka_t *rk;
    int i;

    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", k->bootstraps, errstr,
                                       sizeof errstr),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", "test-reader", errstr, sizeof errstr),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
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
    *value = NULL;
    for (i = 0; i < 30 && *value == NULL; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(key, keysz, "%.*s", (int)m->key_len, (const char *)m->key);
            *value = malloc(m->len + 1);
            memcpy(*value, m->payload, m->len);
            (*value)[m->len] = '\0';
            *value_len = m->len;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    assert_non_null(*value);
}

static void test_ship_http_exhausted(void **state)
{
    static const int st[] = {503};
    static const int ok[] = {200, 204};
    static const char *const hdrs[] = {"Content-Type: application/json"};
    kafka_env k;
    http_server s;
    fixture f;
    char url[128], key[256], digest[RT_DIGEST_HEX_LEN + 1], expect_key[256], err[256];
    char *value = NULL;
    size_t value_len = 0;
    retry_http_request req = RETRY_HTTP_REQUEST_DEFAULT;
    retry_http_response resp = RETRY_HTTP_RESPONSE_DEFAULT;
    retry_policy p = RETRY_POLICY_DEFAULT;
    retry_stats stats;
    rt_task t;

    (void)state;
    kafka_start(&k);
    server_start(&s, st, 1);
    make_client(&f, k.bootstraps);
    url_for(url, sizeof url, s.port, "/pay");
    req.url = url;
    req.headers = hdrs;
    req.header_count = 1;
    req.body = "{\"order\":42}";
    req.timeout_ms = 3000;
    req.success_status = ok;
    req.success_status_count = 2;
    p.scene = "payment.notify";
    p.callback_url = "http://127.0.0.1:9/cb";
    p.delay_ms = 10;

    assert_int_equal(retry_http_call(f.client, &p, &req, &resp), RETRY_ERR_EXHAUSTED);
    server_stop(&s);
    assert_int_equal(resp.shipped, 1);
    assert_int_equal(retry_client_flush(f.client, 10000), RETRY_OK);
    retry_client_stats(f.client, &stats);
    assert_int_equal(stats.shipped, 1);
    assert_int_equal(stats.delivered, 1);
    assert_int_equal(stats.delivery_failed, 0);

    consume_first(&k, key, sizeof key, &value, &value_len);
    assert_int_equal(rt_idempotency_digest("payment.notify", "POST", url, req.body,
                                           strlen(req.body), digest),
                     0);
    snprintf(expect_key, sizeof expect_key, "order-service/%s", digest);
    assert_string_equal(key, expect_key);
    assert_string_equal(resp.idempotency_key, digest);

    rt_task_init(&t);
    assert_int_equal(rt_task_decode(value, value_len, &t, err, sizeof err), 0);
    assert_int_equal(t.v, 1);
    assert_string_equal(t.group, "order-service");
    assert_string_equal(t.scene, "payment.notify");
    assert_string_equal(t.idempotency_key, digest);
    assert_string_equal(t.target.method, "POST");
    assert_string_equal(t.target.url, url);
    assert_string_equal(t.target.body, "{\"order\":42}");
    assert_int_equal(t.target.timeout_ms, 3000);
    assert_int_equal(t.target.nsuccess_status, 2);
    assert_int_equal(t.target.success_status[1], 204);
    assert_int_equal(t.target.nheaders, 1);
    assert_string_equal(t.target.headers[0].name, "Content-Type");
    assert_string_equal(t.target.headers[0].value, "application/json");
    assert_int_equal(t.has_error, 1);
    assert_int_equal(t.error_code, 503);
    assert_non_null(strstr(t.error_message, "503"));
    assert_int_equal(t.local_attempts, 3);
    assert_int_equal(t.created_at, 1700000000000LL);
    assert_string_equal(t.callback_url, "http://127.0.0.1:9/cb");
    rt_task_free(&t);
    free(value);
    retry_http_response_free(&resp);
    retry_client_destroy(f.client);
    kafka_stop(&k);
}

static int pay_fails(int *calls)
{
    (*calls)++;
    return 17;
}

static void test_ship_retry_call_ship_as(void **state)
{
    kafka_env k;
    fixture f;
    char key[256], err[256];
    char *value = NULL;
    size_t value_len = 0;
    retry_http_request req = RETRY_HTTP_REQUEST_DEFAULT;
    retry_policy p = RETRY_POLICY_DEFAULT;
    retry_err how = RETRY_OK;
    rt_task t;
    int rc = 0, calls = 0;

    (void)state;
    kafka_start(&k);
    make_client(&f, k.bootstraps);
    req.url = "http://127.0.0.1:9/orders/42/pay";
    req.method = "POST";
    req.body = "amount=10";
    req.idempotency_key = "order-42";
    p.scene = "payment.pay";
    p.ship_as = &req;
    p.max_attempts = 2;
    p.deadline_ms = 1800000000000LL;
    RETRY_CALL_EX(rc, how, f.client, &p, pay_fails(&calls));
    assert_int_equal(calls, 2);
    assert_int_equal(rc, 17);
    assert_int_equal(how, RETRY_ERR_EXHAUSTED);
    assert_int_equal(retry_client_flush(f.client, 10000), RETRY_OK);

    consume_first(&k, key, sizeof key, &value, &value_len);
    assert_string_equal(key, "order-service/order-42");
    rt_task_init(&t);
    assert_int_equal(rt_task_decode(value, value_len, &t, err, sizeof err), 0);
    assert_string_equal(t.scene, "payment.pay");
    assert_string_equal(t.idempotency_key, "order-42");
    assert_string_equal(t.target.url, "http://127.0.0.1:9/orders/42/pay");
    assert_string_equal(t.target.body, "amount=10");
    assert_int_equal(t.error_code, 17);
    assert_int_equal(t.local_attempts, 2);
    assert_true(t.policy.set & RT_POL_DEADLINE);
    assert_int_equal(t.policy.deadline, 1800000000000LL);
    assert_null(t.callback_url);
    rt_task_free(&t);
    free(value);
    retry_client_destroy(f.client);
    kafka_stop(&k);
}

static void test_ship_needs_scene(void **state)
{
    static const int st[] = {503};
    http_server s;
    fixture f;
    char url[128];
    retry_http_request req = RETRY_HTTP_REQUEST_DEFAULT;
    retry_policy p = RETRY_POLICY_DEFAULT;

    (void)state;
    server_start(&s, st, 1);
    /* An unreachable broker: the call is rejected before any attempt. */
    make_client(&f, "127.0.0.1:1");
    url_for(url, sizeof url, s.port, "/");
    req.url = url;
    assert_int_equal(retry_http_call(f.client, &p, &req, NULL), RETRY_ERR_INVALID_ARG);
    assert_int_equal(atomic_load(&s.requests), 0);
    /* send_queue = 0 needs no scene. */
    p.send_queue = 0;
    p.max_attempts = 1;
    assert_int_equal(retry_http_call(f.client, &p, &req, NULL), RETRY_ERR_EXHAUSTED);
    server_stop(&s);
    assert_int_equal(atomic_load(&s.requests), 1);
    retry_client_destroy(f.client);
}

static void test_delivery_failure_reported_by_flush(void **state)
{
    kafka_env k;
    retry_client_conf conf = RETRY_CLIENT_CONF_DEFAULT;
    static const char *const props[] = {"message.timeout.ms=300"};
    retry_http_request req = RETRY_HTTP_REQUEST_DEFAULT;
    retry_policy p = RETRY_POLICY_DEFAULT;
    retry_client *c = NULL;
    retry_stats stats;
    fixture f;
    char errstr[256];
    int rc, i;
    retry_err e = RETRY_OK;

    (void)state;
    kafka_start(&k);
    memset(&f, 0, sizeof f);
    conf.group = "order-service";
    conf.brokers = k.bootstraps;
    conf.topic = "retry.tasks";
    conf.kafka_props = props;
    conf.kafka_props_count = 1;
    conf.sleep_fn = rec_sleep;
    conf.log_cb = quiet_log;
    conf.opaque = &f;
    conf.flush_timeout_ms = 0;
    assert_int_equal(retry_client_new(&conf, &c, errstr, sizeof errstr), RETRY_OK);
    rd_kafka_mock_broker_set_down(k.mc, 1);
    req.url = "http://127.0.0.1:9/";
    p.scene = "s";
    p.ship_as = &req;
    p.max_attempts = 1;
    RETRY_CALL(rc, c, &p, 1);
    assert_int_equal(rc, 1);
    for (i = 0; i < 20; i++) {
        e = retry_client_flush(c, 500);
        if (e != RETRY_ERR_TIMEOUT)
            break;
    }
    assert_int_equal(e, RETRY_ERR_KAFKA);
    retry_client_stats(c, &stats);
    assert_int_equal(stats.shipped, 1);
    assert_int_equal(stats.delivery_failed, 1);
    /* Reported once. */
    assert_int_equal(retry_client_flush(c, 0), RETRY_OK);
    retry_client_destroy(c);
    kafka_stop(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_503_exhausted_without_kafka),
        cmocka_unit_test(test_http_retry_then_success),
        cmocka_unit_test(test_http_404_stops),
        cmocka_unit_test(test_http_success_status_and_retry_on),
        cmocka_unit_test(test_http_connection_refused),
        cmocka_unit_test(test_http_recover_value_returned),
        cmocka_unit_test(test_http_invalid_request),
        cmocka_unit_test(test_http_classification_like_curl),
        cmocka_unit_test(test_http_retry_after),
        cmocka_unit_test(test_http_retry_after_bounded),
        cmocka_unit_test(test_http_attempt_timeout_capped_by_deadline),
        cmocka_unit_test(test_ship_http_exhausted),
        cmocka_unit_test(test_ship_retry_call_ship_as),
        cmocka_unit_test(test_ship_needs_scene),
        cmocka_unit_test(test_delivery_failure_reported_by_flush),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
