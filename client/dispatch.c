/*
 * client/dispatch.c: calls that are not plain HTTP (retry/dispatch.h).
 *
 * Two halves, sharing the client's scene → handler table:
 *  - retry_dispatch_call() runs a scene's handler under a policy with the
 *    call loop (call.c); when exhausted, the loop ships a task with target
 *    type dispatch (ship.c) naming this process's endpoint.
 *  - the endpoint: an evhttp server on a thread of its own, started by
 *    retry_dispatch_serve(), which retryd POSTs such tasks to; it checks the
 *    bearer token, reads the body, runs the handler and answers 200, 422
 *    or 503 (retryd judges that like any HTTP answer).
 *
 * Threads: the event base is built on the caller's thread, then only the
 * endpoint thread touches it until retry_dispatch_stop() has joined that
 * thread, so libevent needs no locking of its own (no evthread_use_*: a
 * library must not change libevent's global state). Stop wakes the loop
 * through a pipe. The handler table is guarded by a mutex; a handler is
 * copied out and called without holding it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "digest.h"
#include "internal.h"
#include "policy_int.h"

#define DISPATCH_PATH "/dispatch"
#define TOKEN_MAX 256
#define HOST_MAX 256
#define TIMEOUT_MAX_MS 600000
#define HANDLER_ERR_MAX 512

typedef struct handler {
    struct handler *next;
    char *scene;
    retry_dispatch_fn fn;
    void *ctx;
} handler;

typedef struct rc_dispatch {
    retry_client *client;
    pthread_mutex_t mu; /* handlers */
    handler *handlers;

    /* The endpoint. serve_mu orders serve/stop/getters; the loop thread only
     * reads token, which does not change while it runs. */
    pthread_mutex_t serve_mu;
    int running;
    pthread_t thread;
    struct event_base *base;
    struct evhttp *http;
    struct event *wake;
    int wake_fd[2];
    int port;
    char *url;
    char *token; /* NULL: allow_no_token */
    size_t token_len;
    int64_t task_timeout_ms;
} rc_dispatch;

/* ---- the handler table ---------------------------------------------------- */

static rc_dispatch *dispatch_get(retry_client *c)
{
    rc_dispatch *d = atomic_load_explicit(&c->dispatch, memory_order_acquire);
    if (d != NULL)
        return d;
    d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->client = c;
    d->wake_fd[0] = d->wake_fd[1] = -1;
    if (pthread_mutex_init(&d->mu, NULL) != 0) {
        free(d);
        return NULL;
    }
    if (pthread_mutex_init(&d->serve_mu, NULL) != 0) {
        pthread_mutex_destroy(&d->mu);
        free(d);
        return NULL;
    }
    rc_dispatch *expected = NULL;
    if (!atomic_compare_exchange_strong_explicit(&c->dispatch, &expected, d, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        /* Another thread made it first. */
        pthread_mutex_destroy(&d->mu);
        pthread_mutex_destroy(&d->serve_mu);
        free(d);
        return expected;
    }
    return d;
}

/* Copies the handler of scene into *fn, *ctx; 0, or -1 when none. */
static int handler_find(rc_dispatch *d, const char *scene, retry_dispatch_fn *fn, void **ctx)
{
    int rc = -1;
    if (d == NULL)
        return -1;
    pthread_mutex_lock(&d->mu);
    for (handler *h = d->handlers; h != NULL; h = h->next)
        if (strcmp(h->scene, scene) == 0) {
            *fn = h->fn;
            *ctx = h->ctx;
            rc = 0;
            break;
        }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

RETRY_API retry_err retry_dispatch_register(retry_client *client, const char *scene,
                                            retry_dispatch_fn fn, void *ctx)
{
    if (client == NULL || fn == NULL || scene == NULL || !rc_valid_scene(scene)) {
        rc_log(client, RETRY_LOG_ERR,
               "retry_dispatch_register: needs a client, a handler and a scene matching "
               "[A-Za-z0-9._:-]{1,128}");
        return RETRY_ERR_INVALID_ARG;
    }
    rc_dispatch *d = dispatch_get(client);
    if (d == NULL)
        return RETRY_ERR_NOMEM;
    retry_err e = RETRY_OK;
    pthread_mutex_lock(&d->mu);
    handler *h = d->handlers;
    while (h != NULL && strcmp(h->scene, scene) != 0)
        h = h->next;
    if (h == NULL) {
        h = calloc(1, sizeof *h);
        if (h != NULL && (h->scene = strdup(scene)) == NULL) {
            free(h);
            h = NULL;
        }
        if (h != NULL) {
            h->next = d->handlers;
            d->handlers = h;
        }
    }
    if (h != NULL) {
        h->fn = fn;
        h->ctx = ctx;
    } else {
        e = RETRY_ERR_NOMEM;
    }
    pthread_mutex_unlock(&d->mu);
    return e;
}

/* ---- the endpoint --------------------------------------------------------- */

/* Compares a presented token with the expected one in time that depends only
 * on the expected token's length, not on where the first difference is. */
static int token_equal(const char *given, size_t given_len, const char *want, size_t want_len)
{
    volatile unsigned char diff = (unsigned char)(given_len != want_len);
    for (size_t i = 0; i < want_len; i++) {
        unsigned char g = given_len > 0 ? (unsigned char)given[i % given_len] : 0;
        diff |= (unsigned char)(g ^ (unsigned char)want[i]);
    }
    return diff == 0;
}

static void reply(struct evhttp_request *req, int status, const char *reason, json_t *body)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    struct evbuffer *buf = evbuffer_new();
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(body);
    evhttp_add_header(out, "Content-Type", "application/json");
    if (buf != NULL && text != NULL) {
        evbuffer_add(buf, text, strlen(text));
        evbuffer_add(buf, "\n", 1);
    }
    evhttp_send_reply(req, status, reason, buf);
    if (buf != NULL)
        evbuffer_free(buf);
    free(text);
}

static void reply_error(struct evhttp_request *req, int status, const char *reason,
                        const char *error, const char *detail)
{
    reply(req, status, reason, json_pack("{s:s,s:s}", "error", error, "detail", detail));
}

/* 1 when the request carries the right bearer token (or none is needed). */
static int authorized(const rc_dispatch *d, struct evhttp_request *req)
{
    if (d->token == NULL)
        return 1;
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return 0;
    const char *t = h + 7;
    while (*t == ' ')
        t++;
    size_t n = strlen(t);
    while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t'))
        n--;
    return token_equal(t, n, d->token, d->token_len);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    rc_dispatch *d = arg;
    retry_client *c = d->client;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *task_id = evhttp_find_header(in, "X-Retry-Task-Id");
    const char *attempt = evhttp_find_header(in, "X-Retry-Attempt");
    const char *key = evhttp_find_header(in, "Idempotency-Key");

    if (path == NULL || strcmp(path, DISPATCH_PATH) != 0) {
        reply_error(req, 404, "Not Found", "not found", "the dispatch endpoint is POST /dispatch");
        return;
    }
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
        reply_error(req, 405, "Method Not Allowed", "method not allowed", "use POST");
        return;
    }
    /* The token is checked before the body is read or parsed. */
    if (!authorized(d, req)) {
        rc_log(c, RETRY_LOG_WARNING, "dispatch: refused a request without the right token "
                                     "(401)");
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Bearer realm=\"retry-dispatch\"");
        reply_error(req, 401, "Unauthorized", "unauthorized",
                    "missing or wrong \"Authorization: Bearer <token>\"");
        return;
    }
    struct evbuffer *body = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(body);
    const char *bytes = len > 0 ? (const char *)evbuffer_pullup(body, -1) : "";
    json_error_t jerr;
    json_t *doc = bytes != NULL ? json_loadb(bytes, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    json_t *scene = json_object_get(doc, "scene");
    json_t *args = json_object_get(doc, "args");
    if (!json_is_object(doc) || !json_is_string(scene)) {
        json_decref(doc);
        rc_log(c, RETRY_LOG_WARNING, "dispatch: refused a body that is not a dispatch object "
                                     "(400)");
        reply_error(req, 400, "Bad Request", "bad request",
                    "the body must be a JSON object with a string \"scene\" and \"args\"");
        return;
    }
    retry_dispatch_fn fn;
    void *ctx;
    if (handler_find(d, json_string_value(scene), &fn, &ctx) != 0) {
        char detail[200];
        snprintf(detail, sizeof detail, "no handler for scene %.128s", json_string_value(scene));
        rc_log(c, RETRY_LOG_WARNING, "dispatch: %s (404)", detail);
        json_decref(doc);
        reply_error(req, 404, "Not Found", "unknown scene", detail);
        return;
    }
    json_t *null_args = NULL;
    if (args == NULL)
        args = null_args = json_null();
    char *text = rt_json_dumps_exact(args);
    if (text == NULL) {
        json_decref(doc);
        reply_error(req, 503, "Service Unavailable", "retry", "out of memory");
        return;
    }
    char err[HANDLER_ERR_MAX] = "";
    int rc = fn(ctx, text, strlen(text), err, sizeof err);
    err[sizeof err - 1] = '\0';
    rc_log(c, RETRY_LOG_DEBUG,
           "dispatch: scene %s task %.32s attempt %.16s key %.191s: handler returned %d%s%s",
           json_string_value(scene), task_id ? task_id : "-", attempt ? attempt : "-",
           key ? key : "-", rc, err[0] ? ": " : "", err);
    if (rc == 0)
        reply(req, 200, "OK", json_pack("{s:s}", "status", "done"));
    else if (rc == RETRY_DISPATCH_STOP)
        reply_error(req, 422, "Unprocessable Entity", "stop",
                    err[0] ? err : "the handler said not to retry");
    else
        reply_error(req, 503, "Service Unavailable", "retry",
                    err[0] ? err : "the handler failed; retry later");
    free(text);
    json_decref(null_args);
    json_decref(doc);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static void *loop_main(void *arg)
{
    rc_dispatch *d = arg;
    event_base_dispatch(d->base);
    return NULL;
}

/* Frees the endpoint's parts (not running, or its thread joined). */
static void endpoint_free(rc_dispatch *d)
{
    if (d->wake != NULL)
        event_free(d->wake);
    if (d->http != NULL)
        evhttp_free(d->http);
    if (d->base != NULL)
        event_base_free(d->base);
    for (int i = 0; i < 2; i++)
        if (d->wake_fd[i] >= 0)
            close(d->wake_fd[i]);
    if (d->token != NULL) {
        memset(d->token, 0, d->token_len);
        free(d->token);
    }
    free(d->url);
    d->wake = NULL;
    d->http = NULL;
    d->base = NULL;
    d->wake_fd[0] = d->wake_fd[1] = -1;
    d->token = NULL;
    d->token_len = 0;
    d->url = NULL;
    d->port = 0;
}

/* Splits "host:port" or "[v6]:port". 0, or -1 when malformed. */
static int parse_listen(const char *s, char host[HOST_MAX], int *port)
{
    const char *colon;
    size_t hl;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || end[1] != ':')
            return -1;
        hl = (size_t)(end - s - 1);
        s++;
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= HOST_MAX)
        return -1;
    memcpy(host, s, hl);
    host[hl] = '\0';
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || p < 0 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

static int is_wildcard(const char *host)
{
    return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 || strcmp(host, "*") == 0;
}

static int url_ok(const char *u)
{
    size_t skip = strncmp(u, "http://", 7) == 0 ? 7 : strncmp(u, "https://", 8) == 0 ? 8 : 0;
    if (skip == 0 || u[skip] == '\0' || u[skip] == '/' || strlen(u) > RT_URL_MAX)
        return 0;
    for (const unsigned char *p = (const unsigned char *)u; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

#define FAIL(code, ...)                                                                \
    do {                                                                               \
        if (errstr != NULL && errstr_size > 0)                                         \
            snprintf(errstr, errstr_size, __VA_ARGS__);                                \
        e = (code);                                                                    \
        goto out;                                                                      \
    } while (0)

RETRY_API void retry_dispatch_conf_init(retry_dispatch_conf *conf)
{
    retry_dispatch_conf def = RETRY_DISPATCH_CONF_DEFAULT;
    if (conf != NULL)
        *conf = def;
}

RETRY_API retry_err retry_dispatch_serve(retry_client *client, const retry_dispatch_conf *conf,
                                         char *errstr, size_t errstr_size)
{
    retry_err e = RETRY_OK;
    char host[HOST_MAX];
    int port;
    int locked = 0;
    rc_dispatch *d = NULL;

    if (errstr != NULL && errstr_size > 0)
        errstr[0] = '\0';
    if (client == NULL || conf == NULL)
        FAIL(RETRY_ERR_INVALID_ARG, "client and conf must not be NULL");
    const char *listen = conf->listen != NULL ? conf->listen : "127.0.0.1:0";
    if (parse_listen(listen, host, &port) != 0)
        FAIL(RETRY_ERR_INVALID_ARG, "listen \"%.100s\" must be host:port or [ipv6]:port", listen);
    if (conf->token == NULL && !conf->allow_no_token)
        FAIL(RETRY_ERR_INVALID_ARG, "token is required (or set allow_no_token = 1 knowingly): "
                                    "without it anyone who reaches %s can run the handlers",
             listen);
    if (conf->token != NULL) {
        size_t n = strlen(conf->token);
        int bad = n < 1 || n > TOKEN_MAX;
        for (size_t i = 0; i < n && !bad; i++)
            bad = (unsigned char)conf->token[i] <= 0x20 || conf->token[i] == 0x7f;
        if (bad)
            FAIL(RETRY_ERR_INVALID_ARG, "token must be 1..%d bytes without spaces or control "
                                        "characters", TOKEN_MAX);
    }
    if (conf->advertise_url != NULL && !url_ok(conf->advertise_url))
        FAIL(RETRY_ERR_INVALID_ARG, "advertise_url must be an http:// or https:// URL of at most "
                                    "%d bytes without spaces", RT_URL_MAX);
    if (conf->advertise_url == NULL && is_wildcard(host))
        FAIL(RETRY_ERR_INVALID_ARG, "listen host %s is a wildcard: set advertise_url to the "
                                    "address retryd should use", host);
    if (conf->task_timeout_ms < 1 || conf->task_timeout_ms > TIMEOUT_MAX_MS)
        FAIL(RETRY_ERR_INVALID_ARG, "task_timeout_ms must be in 1..%d", TIMEOUT_MAX_MS);
    if (conf->max_body_bytes < 1024)
        FAIL(RETRY_ERR_INVALID_ARG, "max_body_bytes must be >= 1024");
    if ((d = dispatch_get(client)) == NULL)
        FAIL(RETRY_ERR_NOMEM, "out of memory");

    pthread_mutex_lock(&d->serve_mu);
    locked = 1;
    if (d->running)
        FAIL(RETRY_ERR_INVALID_ARG, "the dispatch endpoint already runs (port %d)", d->port);
    if (conf->token != NULL) {
        d->token = strdup(conf->token);
        if (d->token == NULL)
            FAIL(RETRY_ERR_NOMEM, "out of memory");
        d->token_len = strlen(d->token);
    }
    d->task_timeout_ms = conf->task_timeout_ms;
    if ((d->base = event_base_new()) == NULL || (d->http = evhttp_new(d->base)) == NULL)
        FAIL(RETRY_ERR_INTERNAL, "libevent: cannot create the event base or the HTTP server");
    evhttp_set_max_body_size(d->http, (ev_ssize_t)conf->max_body_bytes);
    evhttp_set_max_headers_size(d->http, 16384);
    evhttp_set_timeout(d->http, 60);
    evhttp_set_gencb(d->http, on_request, d);
    struct evhttp_bound_socket *bound = evhttp_bind_socket_with_handle(d->http, host,
                                                                       (ev_uint16_t)port);
    if (bound == NULL)
        FAIL(RETRY_ERR_INVALID_ARG, "cannot listen on %s: %s", listen, strerror(errno));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &sl) != 0)
        FAIL(RETRY_ERR_INTERNAL, "getsockname: %s", strerror(errno));
    d->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                       : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (conf->advertise_url != NULL) {
        d->url = strdup(conf->advertise_url);
    } else {
        size_t n = strlen(host) + 64;
        d->url = malloc(n);
        if (d->url != NULL)
            snprintf(d->url, n, strchr(host, ':') ? "http://[%s]:%d%s" : "http://%s:%d%s", host,
                     d->port, DISPATCH_PATH);
    }
    if (d->url == NULL)
        FAIL(RETRY_ERR_NOMEM, "out of memory");
    if (pipe(d->wake_fd) != 0)
        FAIL(RETRY_ERR_INTERNAL, "pipe: %s", strerror(errno));
    for (int i = 0; i < 2; i++)
        fcntl(d->wake_fd[i], F_SETFD, FD_CLOEXEC);
    d->wake = event_new(d->base, d->wake_fd[0], EV_READ, on_wake, d->base);
    if (d->wake == NULL || event_add(d->wake, NULL) != 0)
        FAIL(RETRY_ERR_INTERNAL, "libevent: cannot watch the wake-up pipe");
    if (pthread_create(&d->thread, NULL, loop_main, d) != 0)
        FAIL(RETRY_ERR_INTERNAL, "cannot start the endpoint thread");
    d->running = 1;
    rc_log(client, RETRY_LOG_NOTICE, "dispatch endpoint listening on %s (port %d), advertised "
                                     "as %s%s", listen, d->port, d->url,
           d->token == NULL ? "; WITHOUT a token" : "");
out:
    if (e != RETRY_OK && d != NULL && locked && !d->running)
        endpoint_free(d);
    if (locked)
        pthread_mutex_unlock(&d->serve_mu);
    if (e != RETRY_OK)
        rc_log(client, RETRY_LOG_ERR, "retry_dispatch_serve: %s",
               errstr != NULL && errstr_size > 0 ? errstr : retry_err_name(e));
    return e;
}

RETRY_API int retry_dispatch_port(retry_client *client)
{
    rc_dispatch *d = client != NULL ? atomic_load(&client->dispatch) : NULL;
    int port = 0;
    if (d == NULL)
        return 0;
    pthread_mutex_lock(&d->serve_mu);
    if (d->running)
        port = d->port;
    pthread_mutex_unlock(&d->serve_mu);
    return port;
}

RETRY_API retry_err retry_dispatch_url(retry_client *client, char *buf, size_t size)
{
    rc_dispatch *d = client != NULL ? atomic_load(&client->dispatch) : NULL;
    retry_err e = RETRY_ERR_INVALID_ARG;
    if (buf == NULL || size == 0)
        return RETRY_ERR_INVALID_ARG;
    buf[0] = '\0';
    if (d == NULL)
        return e;
    pthread_mutex_lock(&d->serve_mu);
    if (d->running && strlen(d->url) < size) {
        memcpy(buf, d->url, strlen(d->url) + 1);
        e = RETRY_OK;
    }
    pthread_mutex_unlock(&d->serve_mu);
    return e;
}

static void endpoint_stop(rc_dispatch *d)
{
    pthread_mutex_lock(&d->serve_mu);
    if (d->running && pthread_equal(pthread_self(), d->thread)) {
        pthread_mutex_unlock(&d->serve_mu);
        rc_log(d->client, RETRY_LOG_ERR, "retry_dispatch_stop called from a handler: ignored");
        return;
    }
    if (d->running) {
        ssize_t w;
        do
            w = write(d->wake_fd[1], "x", 1);
        while (w < 0 && errno == EINTR);
        pthread_join(d->thread, NULL);
        d->running = 0;
        endpoint_free(d);
        rc_log(d->client, RETRY_LOG_NOTICE, "dispatch endpoint stopped");
    }
    pthread_mutex_unlock(&d->serve_mu);
}

RETRY_API void retry_dispatch_stop(retry_client *client)
{
    rc_dispatch *d = client != NULL ? atomic_load(&client->dispatch) : NULL;
    if (d != NULL)
        endpoint_stop(d);
}

void rc_dispatch_free(retry_client *c)
{
    rc_dispatch *d = atomic_load(&c->dispatch);
    if (d == NULL)
        return;
    endpoint_stop(d);
    while (d->handlers != NULL) {
        handler *h = d->handlers;
        d->handlers = h->next;
        free(h->scene);
        free(h);
    }
    pthread_mutex_destroy(&d->mu);
    pthread_mutex_destroy(&d->serve_mu);
    free(d);
    atomic_store(&c->dispatch, NULL);
}

/* ---- the call --------------------------------------------------------------- */

/* The default judgement of a handler's code: RETRY_DISPATCH_STOP stops. */
static int dispatch_classify(int code)
{
    return code != RETRY_DISPATCH_STOP;
}

RETRY_API int retry_dispatch_call(retry_client *client, const retry_policy *policy,
                                  const char *scene, const char *args_json,
                                  const char *idempotency_key)
{
    retry_dispatch_fn fn;
    void *ctx;
    char idem[RETRY_IDEMPOTENCY_KEY_MAX + 1];
    char url[RT_URL_MAX + 1];
    retry_policy p;

    if (client == NULL || scene == NULL) {
        rc_log(client, RETRY_LOG_ERR, "retry_dispatch_call: client and scene are required");
        return RETRY_ERR_INVALID_ARG;
    }
    rc_dispatch *d = atomic_load(&client->dispatch);
    if (handler_find(d, scene, &fn, &ctx) != 0) {
        rc_log(client, RETRY_LOG_ERR, "retry_dispatch_call: no handler registered for scene "
                                      "%.128s", scene);
        return RETRY_ERR_INVALID_ARG;
    }
    if (policy != NULL && policy->scene != NULL && strcmp(policy->scene, scene) != 0) {
        rc_log(client, RETRY_LOG_ERR, "retry_dispatch_call: policy scene %.128s differs from "
                                      "scene %.128s", policy->scene, scene);
        return RETRY_ERR_INVALID_ARG;
    }
    if (policy != NULL)
        p = *policy;
    else
        retry_policy_init(&p);
    p.scene = scene;
    p.ship_as = NULL;

    /* args in canonical form: the same text for local attempts, the task
     * and (after retryd's round trip) the endpoint. */
    json_error_t jerr;
    json_t *doc = json_loads(args_json != NULL ? args_json : "null",
                             JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        rc_log(client, RETRY_LOG_ERR, "retry_dispatch_call: args_json is not JSON: %s at "
                                      "line %d column %d", jerr.text, jerr.line, jerr.column);
        return RETRY_ERR_INVALID_ARG;
    }
    char *args = rt_json_dumps_exact(doc);
    json_decref(doc);
    if (args == NULL)
        return RETRY_ERR_NOMEM;
    size_t len = strlen(args);

    if (idempotency_key != NULL) {
        size_t n = strlen(idempotency_key);
        if (n < 1 || n > RETRY_IDEMPOTENCY_KEY_MAX) {
            rc_log(client, RETRY_LOG_ERR, "retry_dispatch_call: idempotency_key must be 1..%d "
                                          "bytes", RETRY_IDEMPOTENCY_KEY_MAX);
            free(args);
            return RETRY_ERR_INVALID_ARG;
        }
        memcpy(idem, idempotency_key, n + 1);
    } else if (rt_idempotency_digest(scene, "DISPATCH", "dispatch:", args, len, idem) != 0) {
        rc_log(client, RETRY_LOG_ERR, "retry_dispatch_call: cannot compute the idempotency "
                                      "digest (libcrypto failed)");
        free(args);
        return RETRY_ERR_INTERNAL;
    }
    rc_dispatch_ship ship = {NULL, args, idem, 10000};
    if (d != NULL) {
        pthread_mutex_lock(&d->serve_mu);
        if (d->running && strlen(d->url) < sizeof url) {
            memcpy(url, d->url, strlen(d->url) + 1);
            ship.url = url;
            ship.timeout_ms = d->task_timeout_ms;
        }
        pthread_mutex_unlock(&d->serve_mu);
    }

    retry_call_state st;
    int code = 0;
    retry_err outcome = RETRY_OK;
    char err[HANDLER_ERR_MAX];
    rc_call_begin_dispatch(&st, client, &p, &code, &outcome, &ship, dispatch_classify);
    while (retry_call_next(&st)) {
        err[0] = '\0';
        code = fn(ctx, args, len, err, sizeof err);
        err[sizeof err - 1] = '\0';
        if (code != 0)
            rc_log(client, RETRY_LOG_DEBUG, "dispatch %s attempt %d: handler returned %d%s%s",
                   scene, st.attempt_, code, err[0] ? ": " : "", err);
    }
    free(args);
    if (st.flags_ & RC_FL_RECOVERED)
        return code;
    return (int)outcome;
}
