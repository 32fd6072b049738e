/*
 * retry/dispatch.h: retry calls that are not plain HTTP requests.
 *
 * The application registers a handler per scene: a function that takes the
 * call's arguments as JSON text. retry_dispatch_call() runs the handler
 * locally under a retry policy (RETRY_CALL semantics); when the local
 * attempts are exhausted it ships a retry task whose target has type
 * "dispatch" (docs/wire-format.md) and names this process's dispatch
 * endpoint. retryd then keeps retrying by POSTing the task to that endpoint,
 * a small HTTP server (libevent's evhttp) that retry_dispatch_serve() runs
 * on its own thread, and which calls the scene's handler again:
 *
 *     static int reserve(void *ctx, const char *args, size_t len,
 *                        char *errbuf, size_t errsz) { ... return 0; }
 *
 *     retry_dispatch_register(client, "stock.reserve", reserve, NULL);
 *     retry_dispatch_conf dc = RETRY_DISPATCH_CONF_DEFAULT;
 *     dc.token = getenv("RETRY_DISPATCH_TOKEN");  // also in retryd's [dispatch] token
 *     retry_dispatch_serve(client, &dc, errstr, sizeof errstr);
 *     int rc = retry_dispatch_call(client, &policy, "stock.reserve",
 *                                  "{\"sku\":\"A-17\",\"qty\":3}", NULL);
 *
 * The endpoint answers POST /dispatch with the body retryd sends,
 * {"task_id":N,"group":"...","scene":"...","idempotency_key":"...",
 * "attempt":N,"args":<args>}:
 *   200 {"status":"done"}              the handler returned 0;
 *   422 {"error":"stop",...}          it returned RETRY_DISPATCH_STOP;
 *   503 {"error":"retry",...}         it returned anything else;
 *   401 wrong or missing bearer token; 404 unknown scene or path;
 *   405 not a POST; 400 a body that is not that JSON object; 413 too large.
 * retryd judges the answer like any HTTP target (success_status, the
 * policy's stop_on_status, backoff). Tasks shipped by retry_dispatch_call()
 * carry policy.stop_on_status [400, 422], so RETRY_DISPATCH_STOP (and a body
 * the endpoint cannot read) ends the task as stopped.
 *
 * Security: the endpoint runs application code on request. Bind it to
 * loopback or a private interface (listen), always set a token (the same
 * value as retryd's [dispatch] token; it is compared in constant time), and
 * put a TLS-terminating reverse proxy in front when retryd runs on another
 * host (advertise_url then names the proxy). See docs/client.md, "Calls
 * that are not HTTP: dispatch".
 *
 * Handlers must be idempotent: retryd delivers at least once, and the same
 * call may run locally and then at the endpoint.
 */
#ifndef RETRY_DISPATCH_H
#define RETRY_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "error.h"
#include "export.h"
#include "policy.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A handler's "do not retry" answer: the local call stops
 *  (RETRY_ERR_STOPPED, unless the policy's lists say otherwise) and the
 *  endpoint answers 422. Any other non-zero value means "retry" (503). */
#define RETRY_DISPATCH_STOP (-422)

/**
 * A scene's handler.
 * @param ctx the pointer given to retry_dispatch_register().
 * @param args_json the call's arguments: JSON text (any JSON value; "null"
 *        when none), NUL-terminated, borrowed for the duration of the call.
 * @param len strlen(args_json).
 * @param errbuf where the handler may write one sentence saying why it
 *        failed (sent back in the 422/503 answer, so retryd records it as the
 *        attempt's error); starts as "". Never NULL.
 * @param errsz size of errbuf (> 0).
 * @return 0 = done; RETRY_DISPATCH_STOP = failed for good; anything else =
 *         failed, worth retrying. For local attempts the value is also the
 *         code the policy judges (stop_on, retry_on, should_retry).
 * @remark Runs on the thread that called retry_dispatch_call() for local
 *         attempts, and on the endpoint's thread for retryd's attempts (one
 *         at a time there: a slow handler delays the next request). It must
 *         be thread-safe when both happen, and must not call
 *         retry_dispatch_stop() or retry_client_destroy().
 */
typedef int (*retry_dispatch_fn)(void *ctx, const char *args_json, size_t len, char *errbuf,
                                 size_t errsz);

/**
 * @brief Registers (or replaces) the handler of scene.
 * @param client not NULL.
 * @param scene [A-Za-z0-9._:-]{1,128}; copied.
 * @param handler not NULL; called as described at retry_dispatch_fn.
 * @param ctx borrowed: passed to handler, must stay valid until the scene is
 *        registered again, or the client is destroyed.
 * @return RETRY_OK; RETRY_ERR_INVALID_ARG (bad scene, NULL handler or
 *         client); RETRY_ERR_NOMEM.
 * @remark Thread-safe; may be called while the endpoint runs (a request
 *         already running finishes with the previous handler).
 */
RETRY_API retry_err retry_dispatch_register(retry_client *client, const char *scene,
                                            retry_dispatch_fn handler, void *ctx);

/**
 * Endpoint configuration. Initialise with RETRY_DISPATCH_CONF_DEFAULT or
 * retry_dispatch_conf_init(). Strings are copied by retry_dispatch_serve().
 * Defaults in brackets.
 */
typedef struct retry_dispatch_conf {
    /** Address to listen on, "host:port" or "[ipv6]:port"; port 0 takes a
     *  free port (see retry_dispatch_port()). ["127.0.0.1:0"] */
    const char *listen;
    /** Shared secret: requests must carry "Authorization: Bearer <token>",
     *  and retryd sends its [dispatch] token so. Required (1..256 bytes,
     *  no spaces or control characters) unless allow_no_token. [NULL] */
    const char *token;
    /** 1 accepts a NULL token: any process that reaches the port can then
     *  run the handlers. Only for tests or a socket no one else can reach.
     *  [0] */
    int allow_no_token;
    /** The URL put into shipped tasks, http:// or https://, e.g. the
     *  address of a reverse proxy. [NULL = "http://<listen host>:<bound
     *  port>/dispatch"; required when the listen host is a wildcard such as
     *  0.0.0.0 or ::] The endpoint itself serves the path /dispatch. */
    const char *advertise_url;
    /** target.timeout_ms of shipped tasks: how long retryd waits for the
     *  handler, 1..600000. [10000] */
    int64_t task_timeout_ms;
    /** Largest request body accepted (413 beyond), >= 1024. [2097152] */
    size_t max_body_bytes;
} retry_dispatch_conf;

#define RETRY_DISPATCH_CONF_DEFAULT                                                    \
    {                                                                                  \
        "127.0.0.1:0", NULL, 0, NULL, 10000, 2097152u                                  \
    }

/**
 * @brief Sets every field of *conf to its default (same as
 *        RETRY_DISPATCH_CONF_DEFAULT). conf must not be NULL. Thread-safe.
 */
RETRY_API void retry_dispatch_conf_init(retry_dispatch_conf *conf);

/**
 * @brief Starts the dispatch endpoint: binds conf->listen and serves it on a
 *        thread of its own until retry_dispatch_stop() or
 *        retry_client_destroy().
 * @param client not NULL. @param conf borrowed; copied. Not NULL.
 * @param errstr on failure, one sentence saying why (may be NULL when
 *        errstr_size is 0).
 * @return RETRY_OK; RETRY_ERR_INVALID_ARG (bad listen, missing or bad
 *         token, bad advertise_url or limits, the endpoint already runs, the
 *         address cannot be bound); RETRY_ERR_NOMEM; RETRY_ERR_INTERNAL
 *         (libevent or the thread could not be set up).
 * @remark Thread-safe with respect to the other retry_dispatch_*
 *         functions. The client's log_cb receives one line per refused
 *         request (never the token).
 */
RETRY_API retry_err retry_dispatch_serve(retry_client *client, const retry_dispatch_conf *conf,
                                         char *errstr, size_t errstr_size);

/**
 * @brief The TCP port the endpoint is bound to (the chosen one when listen
 *        asked for port 0).
 * @return the port, or 0 when the endpoint does not run. Thread-safe.
 */
RETRY_API int retry_dispatch_port(retry_client *client);

/**
 * @brief Copies the URL shipped tasks carry (advertise_url, or the one
 *        derived from the bound address) into buf.
 * @return RETRY_OK; RETRY_ERR_INVALID_ARG when the endpoint does not run or
 *         buf is too small (then buf holds ""). Thread-safe.
 */
RETRY_API retry_err retry_dispatch_url(retry_client *client, char *buf, size_t size);

/**
 * @brief Stops the endpoint: closes the socket and waits for a handler
 *        that is running to return. Nothing when it does not run; it may be
 *        started again afterwards. retry_client_destroy() calls it.
 * @remark Thread-safe; must not be called from a handler.
 */
RETRY_API void retry_dispatch_stop(retry_client *client);

/**
 * @brief Runs scene's handler with args_json under policy (local attempts,
 *        backoff, jitter, lists, deadline, budget, recover, exactly as
 *        RETRY_CALL), then, when exhausted and shipping is possible
 *        (send_queue, brokers on the client), ships a task with target type
 *        dispatch to this client's endpoint.
 * @param client not NULL. @param policy borrowed, NULL = defaults; its
 *        scene must be NULL or equal to scene, its ship_as is ignored.
 * @param scene a registered scene; becomes the task's scene (and picks the
 *        scene policy). Borrowed.
 * @param args_json JSON text (any value) passed to the handler and carried
 *        in the task as target.args; NULL = "null". Borrowed.
 * @param idempotency_key 1..191 bytes, unique within the client's group;
 *        NULL = a SHA-256 hex digest over scene and args_json. Borrowed.
 * @return 0 (RETRY_OK) when an attempt returned 0; RETRY_ERR_EXHAUSTED
 *         (shipped or not: see retry_client_stats' shipped);
 *         RETRY_ERR_STOPPED; RETRY_ERR_DEADLINE; RETRY_ERR_BUDGET;
 *         RETRY_ERR_KAFKA (exhausted, the task could not be queued);
 *         RETRY_ERR_INVALID_ARG before any attempt (unknown scene, args_json
 *         not JSON, a bad key, or a shipping call while the endpoint does not
 *         run); RETRY_ERR_NOMEM. When the policy has recover and the call
 *         failed after attempting, recover's value is returned instead.
 * @remark Thread-safe. The handler runs on the calling thread.
 */
RETRY_API int retry_dispatch_call(retry_client *client, const retry_policy *policy,
                                  const char *scene, const char *args_json,
                                  const char *idempotency_key);

#ifdef __cplusplus
}
#endif

#endif
