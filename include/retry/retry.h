/*
 * retry/retry.h: libretryclient, the client half of retryd. Include this.
 *
 * An application wraps a remote call in RETRY_CALL (retry/call.h) or sends an
 * HTTP request with retry_http_call() (retry/http.h). The library retries it
 * in-process under a retry_policy (retry/policy.h), and when the local
 * attempts are exhausted ships the call as a retry task over Kafka to retryd,
 * which keeps retrying. The client handle (retry/client.h) holds the
 * producer, the log callback and counters; every function reports errors as
 * a retry_err (retry/error.h).
 *
 * Built today: synchronous calls, backoff with jitter, retry_on/stop_on,
 * deadline, recover, shipping over Kafka, the HTTP helper, async calls
 * (retry/async.h: retry_async_submit, RETRY_PENDING, worker threads),
 * calls that are not HTTP (retry/dispatch.h: a handler per scene, run
 * locally and, through the client's dispatch endpoint, by retryd).
 * Not built yet (later issues): the
 * local spool that survives broker outages, scene policies and config files.
 *
 * Link with `pkg-config --cflags --libs retryclient`. See docs/client.md.
 */
#ifndef RETRY_RETRY_H
#define RETRY_RETRY_H

#include "export.h"
#include "error.h"
#include "client.h"
#include "policy.h"
#include "call.h"
#include "http.h"
#include "scene.h"
#include "async.h"
#include "dispatch.h"

#endif
