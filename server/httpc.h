/*
 * httpc.h: outgoing HTTP on the loop thread: libcurl's multi-socket interface
 * driven by the libevent loop (curl's "multi-event" pattern). Used by the
 * dispatcher (attempts) and by notify (callbacks, alerts). Loop thread only.
 */
#ifndef RD_HTTPC_H
#define RD_HTTPC_H

#include <curl/curl.h>

struct event_base;
typedef struct rd_httpc rd_httpc;

/* Called on the loop thread when a transfer ends. `result` is curl's code
 * (CURLE_OK when an HTTP response arrived, whatever its status); `status`
 * the HTTP status or 0. The callback owns `easy` again (remove is done). */
typedef void (*rd_httpc_done_fn)(void *arg, CURL *easy, CURLcode result, long status);

rd_httpc *rd_httpc_new(struct event_base *base);
/* Starts a transfer prepared by the caller. Must not set CURLOPT_PRIVATE.
 * Returns 0, or -1 (the callback is then never called). */
int rd_httpc_start(rd_httpc *h, CURL *easy, rd_httpc_done_fn done, void *arg);
/* Aborts a running transfer without calling its callback. */
void rd_httpc_abort(rd_httpc *h, CURL *easy);
/* Number of running transfers. */
int rd_httpc_running(const rd_httpc *h);
/* Frees; transfers still running are aborted without callbacks. */
void rd_httpc_free(rd_httpc *h);

#endif
