/*
 * retry/scene.h: scene policies registered on the client, and listeners
 * (hooks called around every attempt).
 *
 * A scene is a kind of call, e.g. "payment.notify". Calls name it in
 * retry_policy.scene; the scene's policy fills every field the call site
 * left unset (retry/policy.h lists the levels). Scenes come from
 * retry_scene_register() and from [scene:NAME] sections of the client's
 * config file (retry_client_conf.config_path), whose keys win over the
 * registered policy's:
 *
 *     retry_policy p = RETRY_POLICY_DEFAULT;
 *     p.max_attempts = 5;
 *     p.delay_ms = 200;
 *     p.multiplier = 2.0;
 *     retry_scene_register(client, "payment.notify", &p);
 *     ...
 *     retry_policy call = RETRY_POLICY_DEFAULT;
 *     call.scene = "payment.notify";          // 5 attempts, 200 ms, x2
 *     RETRY_CALL(rc, client, &call, notify(order));
 *
 * Listeners see every attempt of a client's calls (retry_client_conf
 * .listeners) or of one call (retry_policy.listener). The client's log
 * output (log_cb) is itself a built-in listener that runs first.
 */
#ifndef RETRY_SCENE_H
#define RETRY_SCENE_H

#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "error.h"
#include "policy.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What a listener is told. Valid only during the listener call; strings
 *  are borrowed. */
typedef struct retry_event {
    /** The call's scene, "-" when it has none. */
    const char *scene;
    /** 1-based number of the attempt about to run / that just ended. */
    int attempt;
    /** The call's effective max_attempts (1 when the client is disabled). */
    int max_attempts;
    /** on_failure / on_exhausted: the failure code; 0 otherwise. */
    int code;
    /** on_failure: one sentence describing code (e.g. "HTTP status 503");
     *  "" in the other hooks. */
    const char *what;
    /** on_failure: the chosen delay before the next attempt, ms, or -1 when
     *  this failure ends the call (on_exhausted follows); -1 otherwise. */
    int64_t delay_ms;
    /** on_success: RETRY_OK; on_failure when delay_ms is -1 and on_exhausted:
     *  how the call ends (RETRY_ERR_EXHAUSTED, RETRY_ERR_STOPPED,
     *  RETRY_ERR_DEADLINE, RETRY_ERR_BUDGET); RETRY_OK otherwise. */
    retry_err outcome;
    /** Time since the first attempt started, ms (client clock). */
    int64_t elapsed_ms;
} retry_event;

/**
 * Hooks; any may be NULL. They run on the thread making the call (a worker
 * thread for async calls), synchronously, in this order for one attempt:
 * on_attempt, then on_success or on_failure, then, when the call ends
 * without success, on_exhausted (before shipping and recover). They must be
 * thread-safe when the client is shared and must not call back into the
 * client. A failing call ends exactly one way: on_success or on_exhausted
 * runs exactly once per call that made an attempt.
 */
typedef struct retry_listener {
    /** Before each attempt. */
    void (*on_attempt)(void *ctx, const retry_event *ev);
    /** After each failed attempt, with the chosen delay (or -1, see
     *  retry_event.delay_ms). */
    void (*on_failure)(void *ctx, const retry_event *ev);
    /** When an attempt succeeded. */
    void (*on_success)(void *ctx, const retry_event *ev);
    /** When the call ends without success: exhausted, stopped, deadline or
     *  budget (see retry_event.outcome). */
    void (*on_exhausted)(void *ctx, const retry_event *ev);
    /** Passed to every hook. */
    void *ctx;
} retry_listener;

/**
 * @brief Registers (or replaces) the policy of scene name on client.
 * @param client not NULL.
 * @param name [A-Za-z0-9._:-]{1,128}; copied.
 * @param policy copied, with its retry_on / stop_on lists and callback_url;
 *        recover_ctx, should_retry_ctx, listener and the functions are
 *        borrowed for the client's lifetime. deadline_ms, scene and ship_as
 *        must be unset (they are call-site only). Fields left unset fall
 *        through to the client defaults. Keys of a [scene:NAME] section of
 *        the config file, and RETRY_CLIENT_SCENE_<NAME>_<KEY> variables read
 *        by retry_client_new(), win over this policy.
 * @return RETRY_OK; RETRY_ERR_INVALID_ARG (NULL argument, bad name, invalid
 *         policy: the log callback says why); RETRY_ERR_NOMEM.
 * @remark Thread-safe, also against calls running on the same client: a
 *         call uses the scene table as it was when the call started.
 *         Replaced policies are kept until retry_client_destroy().
 */
RETRY_API retry_err retry_scene_register(retry_client *client, const char *name,
                                         const retry_policy *policy);

/**
 * @brief Resolves the policy a call would run under (call site > scene >
 *        client defaults > built-in), e.g. to check a config file.
 * @param client may be NULL (built-in defaults only).
 * @param policy the call-site policy, NULL = all unset.
 * @param out caller-owned, receives a policy with every field set. Its
 *        pointers (lists, callback_url) are borrowed from policy or from the
 *        client and stay valid until retry_client_destroy().
 * @return RETRY_OK, or RETRY_ERR_INVALID_ARG when out is NULL or the result
 *         is invalid (out is still filled).
 * @remark Thread-safe.
 */
RETRY_API retry_err retry_policy_resolve(const retry_client *client, const retry_policy *policy,
                                         retry_policy *out);

#ifdef __cplusplus
}
#endif

#endif
