/*
 * http-peer — a local HTTP server used by the integration tests and the demo
 * as the retry target, the callback receiver and the alert webhook.
 *
 * It sits outside the product: retryd (dispatcher, callbacks, alerts) and the
 * examples talk to it, and tests read back what it saw through GET /_stats.
 *
 *   http-peer --listen 127.0.0.1:PORT [--port-file F]
 *
 * PORT 0 picks a free port. On start it prints "listening=127.0.0.1:<port>"
 * and writes "<port>" to F (atomically). Paths:
 *
 *   /flaky/{N}[/...]   per Idempotency-Key value ("-" when absent): the first N
 *                      requests answer 503, later ones 200 {"ok":true}
 *   /status/{CODE}[/...]  always CODE
 *   /retry-after/{S}[/...]  per Idempotency-Key: the first request answers 503
 *                      with "Retry-After: S", later ones 200
 *   /errcode/{E}[/...]  200 with {"ok":false,"error":{"code":"E"}}: a service that
 *                      reports failure in the body
 *   /latin1/{CODE}[/...]  always CODE, with a body that is not UTF-8 (Latin-1
 *                      "d\xe9faillance ..."), as some legacy services answer
 *   /ok[/...]          200
 *   /slow/{MS}[/...]   200 after MS milliseconds (an event timer; never blocks)
 *   /callback[/...]    200; records the JSON body and X-Retry-Event (callbacks)
 *   /webhook[/...]     200; the same for alerts (alerts)
 *   GET  /_stats       everything recorded, as JSON (see stats_json())
 *   POST /_reset       forgets everything, including the /flaky counters
 *   anything else      404
 *
 * Every request except /_stats and /_reset is recorded, with the status it is
 * answered. Memory is bounded: at most PEER_MAX_RECORDS (200,000) requests,
 * callbacks and alerts are kept each, bodies are cut to PEER_MAX_BODY bytes, and
 * at most PEER_MAX_RECORDS distinct keys are counted; what is beyond is counted
 * in "dropped". SIGTERM or SIGINT ends it with exit status 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <jansson.h>

#define PEER_MAX_RECORDS 200000
#define PEER_MAX_BODY 4096
#define PEER_MAX_SLOW_MS 600000

/* All of the peer's state; one instance, owned by main(). */
struct peer {
    struct event_base *base;
    struct evhttp *http;
    json_t *requests;  /* array of request records */
    json_t *callbacks; /* array of {"event":..,"body":..} from /callback */
    json_t *alerts;    /* array of {"event":..,"body":..} from /webhook */
    json_t *by_key;    /* key -> number of recorded requests */
    json_t *flaky;     /* key -> number of /flaky requests seen */
    json_int_t dropped;
    struct slow_reply *slow; /* /slow requests waiting for their timer */
};

/* A /slow request waiting for its timer. */
struct slow_reply {
    struct evhttp_request *req;
    struct event *timer;
    struct peer *peer;
    struct slow_reply *prev, *next;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Returns a JSON string for bytes that may not be UTF-8: invalid input is
 * copied with every byte >= 0x80 replaced by '?'. */
static json_t *json_bytes(const char *s, size_t len)
{
    json_t *j = json_stringn(s, len);
    if (j)
        return j;
    char *copy = malloc(len + 1);
    if (!copy)
        return NULL;
    for (size_t i = 0; i < len; i++)
        copy[i] = (s[i] & 0x80) || s[i] == '\0' ? '?' : s[i];
    j = json_stringn(copy, len);
    free(copy);
    return j;
}

static json_t *json_header(struct evhttp_request *req, const char *name)
{
    const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), name);
    return v ? json_bytes(v, strlen(v)) : json_null();
}

static const char *method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    }
    return "OTHER";
}

static const char *reason_phrase(int code)
{
    switch (code) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 409: return "Conflict";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    }
    return "Status";
}

/* The request body as a string (a copy, NUL-terminated); *len gets its full
 * length. */
static char *body_copy(struct evhttp_request *req, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    *len = evbuffer_get_length(in);
    char *s = malloc(*len + 1);
    if (!s)
        return NULL;
    if (*len > 0 && evbuffer_copyout(in, s, *len) < 0) {
        free(s);
        return NULL;
    }
    s[*len] = '\0';
    return s;
}

static void append_bounded(struct peer *p, json_t *array, json_t *rec)
{
    if (!rec)
        return;
    if (json_array_size(array) >= PEER_MAX_RECORDS) {
        p->dropped++;
        json_decref(rec);
        return;
    }
    json_array_append_new(array, rec);
}

/* Adds one to counter[key]; new keys beyond the cap are not added. Returns the
 * value before the increment. */
static json_int_t count_key(struct peer *p, json_t *counter, const char *key)
{
    json_t *v = json_object_get(counter, key);
    json_int_t before = v ? json_integer_value(v) : 0;
    if (v)
        json_integer_set(v, before + 1);
    else if (json_object_size(counter) < PEER_MAX_RECORDS)
        json_object_set_new(counter, key, json_integer(1));
    else
        p->dropped++;
    return before;
}

static void send_json(struct evhttp_request *req, int code, json_t *body)
{
    struct evbuffer *out = evbuffer_new();
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (out && text)
        evbuffer_add(out, text, strlen(text));
    free(text);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json");
    evhttp_send_reply(req, code, reason_phrase(code), out);
    if (out)
        evbuffer_free(out);
}

static void send_status(struct evhttp_request *req, int code)
{
    json_t *body = json_pack("{s:b,s:i}", "ok", code >= 200 && code < 300, "status", code);
    send_json(req, code, body);
    json_decref(body);
}

static json_t *stats_json(struct peer *p)
{
    return json_pack("{s:O,s:O,s:O,s:O,s:I}", "requests", p->requests, "by_key", p->by_key,
                     "callbacks", p->callbacks, "alerts", p->alerts, "dropped",
                     p->dropped);
}

static void reset(struct peer *p)
{
    json_array_clear(p->requests);
    json_array_clear(p->callbacks);
    json_array_clear(p->alerts);
    json_object_clear(p->by_key);
    json_object_clear(p->flaky);
    p->dropped = 0;
}

/* If path is "/<prefix>" or "/<prefix>/...", returns what follows the prefix
 * (the empty string or "/..."), else NULL. */
static const char *match_prefix(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    if (path[0] != '/' || strncmp(path + 1, prefix, n) != 0)
        return NULL;
    const char *rest = path + 1 + n;
    return (*rest == '\0' || *rest == '/') ? rest : NULL;
}

/* Parses the number in "/{N}[/...]"; -1 when missing or malformed. */
static long path_number(const char *rest, long max)
{
    if (rest == NULL || rest[0] != '/' || rest[1] < '0' || rest[1] > '9')
        return -1;
    char *end = NULL;
    errno = 0;
    long v = strtol(rest + 1, &end, 10);
    if (errno != 0 || (*end != '\0' && *end != '/') || v > max)
        return -1;
    return v;
}

static void slow_fire(evutil_socket_t fd, short what, void *arg)
{
    struct slow_reply *s = arg;
    send_status(s->req, 200);
    if (s->prev)
        s->prev->next = s->next;
    else
        s->peer->slow = s->next;
    if (s->next)
        s->next->prev = s->prev;
    event_free(s->timer);
    free(s);
}

static void handle(struct evhttp_request *req, void *arg)
{
    struct peer *p = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (path == NULL || path[0] == '\0')
        path = "/";

    if (strcmp(path, "/_stats") == 0) {
        json_t *st = stats_json(p);
        send_json(req, 200, st);
        json_decref(st);
        return;
    }
    if (strcmp(path, "/_reset") == 0) {
        if (cmd != EVHTTP_REQ_POST) {
            send_status(req, 405);
            return;
        }
        reset(p);
        send_status(req, 200);
        return;
    }

    const char *key = evhttp_find_header(evhttp_request_get_input_headers(req),
                                         "Idempotency-Key");
    if (key == NULL || key[0] == '\0')
        key = "-";
    json_t *key_json = json_bytes(key, strlen(key));
    const char *key_utf8 = key_json ? json_string_value(key_json) : "-";

    int status = 404;
    int latin1 = 0;
    char errcode[65] = "";
    long retry_after_s = -1;
    long slow_ms = -1;
    json_t *note_list = NULL; /* callbacks or alerts */
    const char *rest;
    if ((rest = match_prefix(path, "flaky")) != NULL) {
        long n = path_number(rest, INT_MAX);
        if (n < 0) {
            status = 400;
        } else {
            json_int_t seen = count_key(p, p->flaky, key_utf8);
            status = seen < n ? 503 : 200;
        }
    } else if ((rest = match_prefix(path, "status")) != NULL) {
        long code = path_number(rest, 599);
        status = code >= 100 ? (int)code : 400;
    } else if ((rest = match_prefix(path, "retry-after")) != NULL) {
        retry_after_s = path_number(rest, 86400);
        if (retry_after_s < 0) {
            status = 400;
        } else {
            json_int_t seen = count_key(p, p->flaky, key_utf8);
            status = seen < 1 ? 503 : 200;
            if (status == 200) retry_after_s = -1;
        }
    } else if ((rest = match_prefix(path, "errcode")) != NULL) {
        /* rest is "/E[/...]" */
        const char *e = rest[0] == '/' ? rest + 1 : rest;
        size_t elen = strcspn(e, "/");
        if (elen == 0 || elen > 64) {
            status = 400;
        } else {
            status = 200;
            snprintf(errcode, sizeof errcode, "%.*s", (int)elen, e);
        }
    } else if ((rest = match_prefix(path, "latin1")) != NULL) {
        long code = path_number(rest, 599);
        status = code >= 100 ? (int)code : 400;
        latin1 = status != 400;
    } else if (match_prefix(path, "ok") != NULL) {
        status = 200;
    } else if ((rest = match_prefix(path, "slow")) != NULL) {
        slow_ms = path_number(rest, PEER_MAX_SLOW_MS);
        status = slow_ms < 0 ? 400 : 200;
    } else if (match_prefix(path, "callback") != NULL) {
        status = 200;
        note_list = p->callbacks;
    } else if (match_prefix(path, "webhook") != NULL) {
        status = 200;
        note_list = p->alerts;
    }

    size_t body_len = 0;
    char *body = body_copy(req, &body_len);
    json_t *rec = json_pack("{s:s,s:s,s:O,s:o,s:o,s:o,s:o,s:i,s:o,s:I}", "path", path,
                            "method", method_name(cmd), "key", key_json, "attempt",
                            json_header(req, "X-Retry-Attempt"), "task_id",
                            json_header(req, "X-Retry-Task-Id"), "trace_id",
                            json_header(req, "X-Retry-Trace-Id"), "event",
                            json_header(req, "X-Retry-Event"), "status", status, "body",
                            body ? json_bytes(body, body_len < PEER_MAX_BODY
                                                        ? body_len
                                                        : PEER_MAX_BODY)
                                 : json_null(),
                            "time_ms", (json_int_t)now_ms());
    append_bounded(p, p->requests, rec);
    count_key(p, p->by_key, key_utf8);
    if (note_list) {
        json_error_t jerr;
        json_t *parsed = body ? json_loadb(body, body_len, 0, &jerr) : NULL;
        if (!parsed)
            parsed = body ? json_bytes(body, body_len < PEER_MAX_BODY ? body_len
                                                                      : PEER_MAX_BODY)
                          : json_null();
        append_bounded(p, note_list,
                       json_pack("{s:o,s:o}", "event", json_header(req, "X-Retry-Event"),
                                 "body", parsed));
    }
    free(body);
    json_decref(key_json);

    if (slow_ms >= 0) {
        struct slow_reply *s = calloc(1, sizeof *s);
        if (s) {
            s->req = req;
            s->timer = evtimer_new(p->base, slow_fire, s);
        }
        if (!s || !s->timer) {
            free(s);
            send_status(req, 500);
            return;
        }
        struct timeval tv = {.tv_sec = slow_ms / 1000, .tv_usec = (slow_ms % 1000) * 1000};
        evtimer_add(s->timer, &tv);
        s->peer = p;
        s->next = p->slow;
        if (p->slow)
            p->slow->prev = s;
        p->slow = s;
        return;
    }
    if (retry_after_s >= 0 && status == 503) {
        char v[32];
        snprintf(v, sizeof v, "%ld", retry_after_s);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", v);
    }
    if (errcode[0]) {
        json_t *eb = json_pack("{s:b,s:{s:s}}", "ok", 0, "error", "code", errcode);
        send_json(req, 200, eb);
        json_decref(eb);
        return;
    }
    if (latin1) {
        static const char text[] = "d\xe9" "faillance du service: r\xe9" "essayez plus tard";
        struct evbuffer *out = evbuffer_new();
        if (out) evbuffer_add(out, text, sizeof text - 1);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "text/plain; charset=iso-8859-1");
        evhttp_send_reply(req, status, "Latin-1", out);
        if (out) evbuffer_free(out);
        return;
    }
    send_status(req, status);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct peer *p = arg;
    fprintf(stderr, "http-peer: signal %d, exiting\n", (int)sig);
    event_base_loopbreak(p->base);
}

static int write_port_file(const char *path, int port)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return -1;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    int bad = fprintf(f, "%d\n", port) < 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        remove(tmp);
        return -1;
    }
    return 0;
}

static void usage(FILE *out)
{
    fputs("usage: http-peer --listen HOST:PORT [--port-file FILE]\n"
          "A test HTTP peer: /flaky/N, /status/CODE, /retry-after/S, /errcode/E, /latin1/CODE, /ok, /slow/MS, /callback,\n"
          "/webhook, GET /_stats, POST /_reset. PORT 0 picks a free port.\n",
          out);
}

int main(int argc, char **argv)
{
    const char *listen = NULL;
    const char *port_file = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            listen = argv[++i];
        } else if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc) {
            port_file = argv[++i];
        } else {
            fprintf(stderr, "http-peer: unknown or incomplete option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!listen) {
        usage(stderr);
        return 2;
    }
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen) {
        fprintf(stderr, "http-peer: --listen wants HOST:PORT\n");
        return 2;
    }
    char host[256];
    size_t hlen = (size_t)(colon - listen);
    if (hlen >= sizeof host) {
        fprintf(stderr, "http-peer: host too long\n");
        return 2;
    }
    memcpy(host, listen, hlen);
    host[hlen] = '\0';
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535) {
        fprintf(stderr, "http-peer: bad port '%s'\n", colon + 1);
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);
    int rc = 1;
    struct peer p = {0};
    struct event *sigterm = NULL, *sigint = NULL;
    p.requests = json_array();
    p.callbacks = json_array();
    p.alerts = json_array();
    p.by_key = json_object();
    p.flaky = json_object();
    p.base = event_base_new();
    p.http = p.base ? evhttp_new(p.base) : NULL;
    if (!p.requests || !p.callbacks || !p.alerts || !p.by_key || !p.flaky || !p.http) {
        fprintf(stderr, "http-peer: out of memory\n");
        goto out;
    }
    evhttp_set_allowed_methods(p.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                           EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                           EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS);
    evhttp_set_max_body_size(p.http, 16 * 1024 * 1024);
    evhttp_set_timeout(p.http, 60);
    evhttp_set_gencb(p.http, handle, &p);

    struct evhttp_bound_socket *bound =
        evhttp_bind_socket_with_handle(p.http, host, (ev_uint16_t)port);
    if (!bound) {
        fprintf(stderr, "http-peer: cannot listen on %s\n", listen);
        goto out;
    }
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;
    if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &sslen) != 0) {
        fprintf(stderr, "http-peer: getsockname: %s\n", strerror(errno));
        goto out;
    }
    int actual = ss.ss_family == AF_INET6
                     ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                     : ntohs(((struct sockaddr_in *)&ss)->sin_port);

    sigterm = evsignal_new(p.base, SIGTERM, on_signal, &p);
    sigint = evsignal_new(p.base, SIGINT, on_signal, &p);
    if (!sigterm || !sigint || evsignal_add(sigterm, NULL) != 0 ||
        evsignal_add(sigint, NULL) != 0) {
        fprintf(stderr, "http-peer: cannot install signal handlers\n");
        goto out;
    }
    if (port_file && write_port_file(port_file, actual) != 0) {
        fprintf(stderr, "http-peer: cannot write %s: %s\n", port_file, strerror(errno));
        goto out;
    }
    printf("listening=%s:%d\n", host, actual);
    fflush(stdout);
    fprintf(stderr, "http-peer: listening on %s:%d (records capped at %d)\n", host, actual,
            PEER_MAX_RECORDS);

    if (event_base_dispatch(p.base) < 0) {
        fprintf(stderr, "http-peer: event loop failed\n");
        goto out;
    }
    rc = 0;

out:
    /* Requests still waiting on /slow are freed by evhttp_free() with their
     * connections; only our timers are ours to free. */
    while (p.slow) {
        struct slow_reply *s = p.slow;
        p.slow = s->next;
        event_free(s->timer);
        free(s);
    }
    if (sigterm)
        event_free(sigterm);
    if (sigint)
        event_free(sigint);
    if (p.http)
        evhttp_free(p.http);
    if (p.base)
        event_base_free(p.base);
    json_decref(p.requests);
    json_decref(p.callbacks);
    json_decref(p.alerts);
    json_decref(p.by_key);
    json_decref(p.flaky);
    return rc;
}
