/*
 * async_notify.c: send HTTP notifications without blocking the caller, with
 * retry_async_submit(). Each notification makes its first attempt on the
 * calling thread; when that fails, submit returns RETRY_PENDING at once and
 * the client's worker threads retry it (200 ms, 400 ms, 800 ms). When the
 * attempts run out the request is shipped over Kafka (with --brokers) and
 * retryd takes over. retry_client_destroy() drains what is still pending.
 *
 * usage: async_notify URL [COUNT [BROKERS]]
 *
 *   $ ./async_notify http://127.0.0.1:9/notify 2
 *   order 1: submit -> RETRY_PENDING
 *   order 2: submit -> RETRY_PENDING
 *   (the main thread is free here)
 *   order 1: done on a worker: RETRY_ERR_EXHAUSTED after 4 attempt(s), last code -7, shipped=0
 *   order 2: done on a worker: RETRY_ERR_EXHAUSTED after 4 attempt(s), last code -7, shipped=0
 *   2 notification(s) completed
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <retry/retry.h>

/* The ctx of one notification: owned by the library once submitted. */
typedef struct notification {
    retry_client *client;
    int order;
    char body[64];
    retry_http_request req;
} notification;

static atomic_int completed;

static void print_log(void *opaque, int level, const char *msg)
{
    (void)opaque;
    if (level <= RETRY_LOG_WARNING)
        fprintf(stderr, "async_notify: %s\n", msg);
}

/* One attempt: a single HTTP request (no local retries, nothing shipped:
 * the async policy does both). Returns 0, the HTTP status, or -CURLcode. */
static int notify_once(void *ctx)
{
    notification *n = ctx;
    retry_policy once = RETRY_POLICY_DEFAULT;
    retry_http_response resp = RETRY_HTTP_RESPONSE_DEFAULT;
    int r, code;

    once.max_attempts = 1;
    once.send_queue = 0;
    resp.max_body_bytes = 0;
    r = retry_http_call(n->client, &once, &n->req, &resp);
    code = r == RETRY_OK ? 0 : resp.status != 0 ? resp.status : -resp.curl_code;
    if (code == 0 && r != RETRY_OK)
        code = r; /* nothing was sent (e.g. an invalid URL) */
    retry_http_response_free(&resp);
    return code;
}

/* Runs once per notification: on this thread when the first attempt
 * succeeded, else on a worker thread. */
static void notify_done(void *arg, void *ctx, const retry_async_result *res)
{
    notification *n = ctx;

    (void)arg;
    printf("order %d: done%s: %s after %d attempt(s), last code %d, shipped=%d%s\n", n->order,
           res->attempts > 1 || res->outcome != RETRY_OK ? " on a worker" : "",
           retry_err_name(res->outcome), res->attempts, res->rc, res->shipped,
           res->drained ? " (ended by retry_client_destroy)" : "");
    atomic_fetch_add(&completed, 1);
}

int main(int argc, char **argv)
{
    retry_client_conf conf = RETRY_CLIENT_CONF_DEFAULT;
    retry_policy policy = RETRY_POLICY_DEFAULT;
    retry_client *client = NULL;
    char errstr[256];
    int count = argc > 2 ? atoi(argv[2]) : 1;
    int i;

    if (argc < 2 || count < 1) {
        fprintf(stderr, "usage: async_notify URL [COUNT [BROKERS]]\n");
        return 2;
    }
    conf.group = "example-app";
    conf.brokers = argc > 3 ? argv[3] : NULL;
    conf.log_cb = print_log;
    conf.async_workers = 2;
    if (retry_client_new(&conf, &client, errstr, sizeof errstr) != RETRY_OK) {
        fprintf(stderr, "retry_client_new: %s\n", errstr);
        return 1;
    }

    policy.max_attempts = 4;
    policy.delay_ms = 200;
    policy.multiplier = 2.0;
    policy.scene = "merchant.notify";

    for (i = 1; i <= count; i++) {
        notification *n = calloc(1, sizeof *n);
        retry_err e;

        if (n == NULL)
            break;
        n->client = client;
        n->order = i;
        snprintf(n->body, sizeof n->body, "{\"order\":%d,\"status\":\"paid\"}", i);
        n->req = (retry_http_request)RETRY_HTTP_REQUEST_DEFAULT;
        n->req.url = argv[1];
        n->req.body = n->body;
        n->req.timeout_ms = 2000;
        /* What retryd should send once the local attempts are exhausted;
         * copied by submit. */
        policy.ship_as = &n->req;

        e = retry_async_submit(client, &policy, notify_once, n, free, notify_done, NULL);
        printf("order %d: submit -> %s\n", i, retry_err_name(e));
        if (e != RETRY_OK && e != RETRY_PENDING) {
            /* Rejected: nothing ran and n is still ours. */
            fprintf(stderr, "order %d: %s\n", i, retry_strerror(e));
            free(n);
        }
    }
    printf("(the main thread is free here)\n");
    fflush(stdout);

    /* Waits for the pending notifications (up to flush_timeout_ms for their
     * next attempts; the rest are ended and shipped), then frees the
     * client. */
    retry_client_destroy(client);
    printf("%d notification(s) completed\n", atomic_load(&completed));
    return 0;
}
