/*
 * retry/async.h: async calls. The first attempt runs on the caller's
 * thread; when it fails, retry_async_submit() returns RETRY_PENDING at once
 * and the rest of the call (judging, backoff, further attempts, shipping to
 * retryd, recover) runs on the client's worker threads. A completion
 * function is called exactly once with the final outcome.
 *
 *     static int send(void *ctx) { return post_order(ctx); }   // 0 = success
 *     static void done(void *arg, void *ctx, const retry_async_result *res)
 *     {
 *         if (res->outcome != RETRY_OK) log_failure(ctx, res->rc);
 *     }
 *     ...
 *     retry_err e = retry_async_submit(client, &policy, send, order, free_order,
 *                                      done, NULL);
 *     if (e != RETRY_OK && e != RETRY_PENDING)
 *         free_order(order);             // rejected: order is still ours
 *
 * Between attempts a call waits in a timer heap (CLOCK_MONOTONIC) shared by
 * the client's workers; no thread sleeps per call. The worker pool is sized
 * by retry_client_conf.async_workers and bounded by async_queue_max; its
 * threads start on the first retry_async_submit() of a client and stop in
 * retry_client_destroy(), which drains them (see retry_async_submit()).
 */
#ifndef RETRY_ASYNC_H
#define RETRY_ASYNC_H

#include "client.h"
#include "error.h"
#include "policy.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The final outcome of an async call, passed to its completion function.
 *  Valid only during that call. */
typedef struct retry_async_result {
    /** The call's value, as RETRY_CALL leaves it in rc: 0 on success, the
     *  policy's recover() value when recover ran, else the last failure
     *  code returned by fn. */
    int rc;
    /** The library's verdict: RETRY_OK, RETRY_ERR_EXHAUSTED (shipped or
     *  not, see shipped), RETRY_ERR_STOPPED, RETRY_ERR_DEADLINE,
     *  RETRY_ERR_BUDGET (the client's retry budget was empty),
     *  RETRY_ERR_KAFKA (exhausted, and the task could not be queued),
     *  RETRY_ERR_NOMEM / RETRY_ERR_INTERNAL (exhausted, task not built). */
    retry_err outcome;
    /** Attempts made (calls of fn), >= 1. */
    int attempts;
    /** 1 when the exhausted call was handed to the Kafka producer: retryd
     *  owns it now (delivery is confirmed by retry_client_flush()). */
    int shipped;
    /** 1 when the policy's recover ran; rc holds its value. */
    int recovered;
    /** 1 when retry_client_destroy() ended the call before its attempts
     *  ran out: outcome is then RETRY_ERR_EXHAUSTED (shipped when the
     *  policy can ship) and attempts < max_attempts. */
    int drained;
} retry_async_result;

/** One attempt: returns 0 on success, any other value is a failure code
 *  judged by the policy (retry/policy.h). */
typedef int (*retry_async_fn)(void *ctx);

/** Completion function: called exactly once per accepted call, with the
 *  call's ctx (still alive: ctx_free runs right after it returns). */
typedef void (*retry_async_done_fn)(void *done_arg, void *ctx, const retry_async_result *res);

/**
 * @brief Runs fn(ctx) under policy, asynchronously after the first failure.
 *
 * The first attempt runs on the calling thread, before this returns:
 *  - success: on_done runs on the calling thread (outcome RETRY_OK), then
 *    ctx_free, and RETRY_OK is returned;
 *  - failure: RETRY_PENDING is returned at once. The failure is judged, and
 *    the call retried after the policy's delays, on a worker thread; when
 *    it ends (success, exhausted, stopped, deadline, budget) it is shipped
 *    to retryd exactly when RETRY_CALL would ship it (exhausted or out of
 *    budget, with ship_as, a scene, send_queue and brokers), then recover
 *    runs (on failure), then
 *    on_done, then ctx_free, all on a worker thread.
 * So on_done runs exactly once for every accepted call (RETRY_OK or
 * RETRY_PENDING), possibly before retry_async_submit() returns.
 *
 * @param client borrowed, not NULL; must outlive the call (destroy drains).
 * @param policy copied (with its retry_on/stop_on lists, scene,
 *        callback_url and ship_as request, deeply); NULL = RETRY_POLICY_DEFAULT.
 *        recover_ctx, and any pointer field not named here, is borrowed
 *        until on_done has returned.
 * @param fn one attempt, not NULL. Runs on the calling thread first, then
 *        on worker threads, never two at once for one call.
 * @param ctx passed to fn, on_done and ctx_free; may be NULL. Ownership is
 *        taken when the call is accepted: ctx_free(ctx) is then called
 *        exactly once, after on_done.
 * @param ctx_free NULL = nothing to free.
 * @param on_done completion function, NULL = none.
 * @param done_arg passed to on_done; borrowed.
 * @return RETRY_OK: the first attempt succeeded; on_done and ctx_free have
 *         already run.
 *         RETRY_PENDING: the first attempt failed; the call goes on on the
 *         worker threads and on_done will run there.
 *         Any other value means the call was rejected: fn, on_done and
 *         ctx_free are never called and ctx still belongs to the caller:
 *         RETRY_ERR_INVALID_ARG (client or fn NULL, invalid policy, a
 *         policy that ships but cannot be shipped, or the client is being
 *         destroyed), RETRY_ERR_QUEUE_FULL (async_queue_max calls are
 *         already accepted and not completed), RETRY_ERR_NOMEM,
 *         RETRY_ERR_INTERNAL (no worker thread could be started, or the
 *         idempotency digest failed). The log callback says why.
 *
 * @remark Thread-safe: any number of threads may submit on one client, and
 *         on_done may itself submit. on_done, recover, fn, log_cb and
 *         now_ms_fn may run on the client's worker threads: they must be
 *         thread-safe, and on_done must not call retry_client_destroy().
 *         Delays are waited on the workers' timer, not through sleep_fn.
 * @remark retry_client_destroy() stops accepting calls, lets attempts that
 *         fall due within flush_timeout_ms run as usual, and ends every
 *         other pending call at once with RETRY_ERR_EXHAUSTED (drained = 1):
 *         it is shipped to retryd when its policy ships, recover runs, then
 *         on_done and ctx_free, on a worker thread. Its last failure is not
 *         judged again (should_retry is asked once per failure, on_failure
 *         fires once for it, then on_exhausted); a call cut before its first
 *         failure was judged has that failure judged once, with no attempts
 *         left (so a code the policy does not retry still ends
 *         RETRY_ERR_STOPPED, unshipped). Listeners' on_attempt fires when an
 *         attempt starts on a worker, not when it is scheduled. It waits for attempts
 *         in progress: a fn that never returns blocks it.
 */
RETRY_API retry_err retry_async_submit(retry_client *client, const retry_policy *policy,
                                       retry_async_fn fn, void *ctx, void (*ctx_free)(void *ctx),
                                       retry_async_done_fn on_done, void *done_arg);

/**
 * @brief The number of async calls of client accepted and not yet
 *        completed (the count async_queue_max bounds). A call stops
 *        counting when its outcome is known, just before its on_done runs.
 * @param client NULL gives 0.
 * @remark Thread-safe; the value may be stale as soon as it is returned.
 */
RETRY_API int retry_async_pending(const retry_client *client);

#ifdef __cplusplus
}
#endif

#endif
