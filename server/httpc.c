/*
 * httpc.c: libcurl multi-socket on libevent (see httpc.h). curl tells us which
 * sockets to watch (socket callback) and when to call it back (timer
 * callback); libevent tells curl when those happen (curl_multi_socket_action).
 */
#include "httpc.h"

#include <event2/event.h>
#include <stdlib.h>

#include "log.h"

struct rd_httpc {
    CURLM *multi;
    struct event_base *base;
    struct event *timer;
    int running;
};

typedef struct xfer {
    rd_httpc_done_fn done;
    void *arg;
} xfer;

typedef struct sockctx {
    struct event *ev;
    rd_httpc *h;
} sockctx;

static void check_done(rd_httpc *h)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        xfer *x = NULL;
        long status = 0;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        curl_multi_remove_handle(h->multi, easy);
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        h->running--;
        if (x) {
            rd_httpc_done_fn done = x->done;
            void *arg = x->arg;
            free(x);
            done(arg, easy, result, status);
        }
    }
}

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    rd_httpc *h = arg;
    int action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int still;
    curl_multi_socket_action(h->multi, fd, action, &still);
    check_done(h);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    rd_httpc *h = arg;
    int still;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &still);
    check_done(h);
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    rd_httpc *h = userp;
    sockctx *ctx = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (ctx) {
            event_free(ctx->ev);
            free(ctx);
            curl_multi_assign(h->multi, s, NULL);
        }
        return 0;
    }
    short kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) |
                         ((what & CURL_POLL_OUT) ? EV_WRITE : 0) | EV_PERSIST);
    if (!ctx) {
        ctx = calloc(1, sizeof *ctx);
        if (!ctx) return -1;
        ctx->h = h;
        curl_multi_assign(h->multi, s, ctx);
    } else {
        event_free(ctx->ev);
    }
    ctx->ev = event_new(h->base, s, kind, on_socket_event, h);
    if (!ctx->ev) return -1;
    event_add(ctx->ev, NULL);
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    rd_httpc *h = userp;
    if (timeout_ms < 0) {
        evtimer_del(h->timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(h->timer, &tv);
    return 0;
}

rd_httpc *rd_httpc_new(struct event_base *base)
{
    rd_httpc *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->base = base;
    h->multi = curl_multi_init();
    h->timer = evtimer_new(base, on_timer, h);
    if (!h->multi || !h->timer) {
        rd_httpc_free(h);
        return NULL;
    }
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    return h;
}

int rd_httpc_start(rd_httpc *h, CURL *easy, rd_httpc_done_fn done, void *arg)
{
    xfer *x = malloc(sizeof *x);
    if (!x) return -1;
    x->done = done;
    x->arg = arg;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)x);
    CURLMcode mc = curl_multi_add_handle(h->multi, easy);
    if (mc != CURLM_OK) {
        LOG_ERROR("http", "curl_multi_add_handle: %s", curl_multi_strerror(mc));
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        free(x);
        return -1;
    }
    h->running++;
    return 0;
}

void rd_httpc_abort(rd_httpc *h, CURL *easy)
{
    xfer *x = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    if (!x) return;
    curl_multi_remove_handle(h->multi, easy);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
    free(x);
    h->running--;
}

int rd_httpc_running(const rd_httpc *h)
{
    return h->running;
}

void rd_httpc_free(rd_httpc *h)
{
    if (!h) return;
    if (h->multi) curl_multi_cleanup(h->multi);
    if (h->timer) event_free(h->timer);
    free(h);
}
