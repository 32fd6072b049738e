/*
 * retry/call.h: RETRY_CALL, the one-line wrap of a call that may fail.
 *
 *     int rc;
 *     RETRY_CALL(rc, client, &policy, send_payment(&order));
 *     if (rc != 0) ...   // 0, recover's value, or the last failure code
 *
 * The wrapped expression must yield an int (or something converting to it):
 * 0 means success, anything else is a failure code judged by the policy
 * (retry/policy.h). The expression is evaluated once per attempt, on the
 * calling thread; between attempts the thread sleeps (through the client's
 * sleep_fn when set). Each attempt is reported to the client's log_cb.
 *
 * The macro is strict C11 (no statement expressions): it expands to a for
 * statement over a retry_call_state declared inside the for, so it is one
 * statement, needs a trailing semicolon, works as the body of if/else, and
 * any number of RETRY_CALLs may appear in one scope. Do not jump into or out
 * of the wrapped expression with longjmp.
 *
 * Value left in rc:
 *  - 0 when an attempt succeeded;
 *  - the policy's recover(recover_ctx, last_code) result when the call was
 *    exhausted, stopped or hit its deadline and recover is set;
 *  - else the last failure code returned by the expression;
 *  - RETRY_ERR_INVALID_ARG when the policy is invalid: the expression is
 *    then never evaluated (the log callback says why);
 *  - RETRY_ERR_NOMEM or RETRY_ERR_INTERNAL when the policy ships and the
 *    task cannot be built when the call starts (out of memory, or the
 *    idempotency digest failed): this check runs before the first attempt,
 *    so here too the expression is never evaluated.
 * Because rc is in the caller's code space, use RETRY_CALL_EX to also get
 * the library's verdict as a retry_err:
 *
 *     int rc; retry_err how;
 *     RETRY_CALL_EX(rc, how, client, &policy, send_payment(&order));
 *     // how: RETRY_OK, RETRY_ERR_EXHAUSTED (shipped or not, see stats),
 *     //      RETRY_ERR_STOPPED, RETRY_ERR_DEADLINE, RETRY_ERR_BUDGET (the
 *     //      client's retry budget was empty), RETRY_ERR_INVALID_ARG,
 *     //      RETRY_ERR_KAFKA (exhausted, and the task could not be queued),
 *     //      RETRY_ERR_NOMEM / RETRY_ERR_INTERNAL (exhausted, task not built)
 *
 * client may be NULL: the call then retries with nanosleep, logs nothing and
 * never ships. policy may be NULL: all fields unset (the scene-less client
 * defaults, see retry/policy.h). Both are borrowed
 * for the duration of the statement.
 */
#ifndef RETRY_CALL_H
#define RETRY_CALL_H

#include <stdint.h>

#include "client.h"
#include "error.h"
#include "policy.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * State of one RETRY_CALL, on the caller's stack. Its members are private to
 * the library (their names end in '_'); it is public only so that the macro
 * can allocate it without malloc.
 */
typedef struct retry_call_state {
    retry_client *client_;
    const retry_policy *policy_;
    const struct retry_http_request *ship_;
    int (*classify_)(int code);
    int *rc_;
    retry_err *outcome_;
    int phase_;
    unsigned flags_;
    int attempt_;
    int max_attempts_;
    int last_code_;
    int64_t prev_delay_ms_;
    int64_t first_failure_ms_;
    uint64_t rng_;
    int64_t start_ms_;
    int64_t deadline_ms_;
    int64_t hint_delay_ms_;
    double v2_prev_;
    retry_policy eff_;
    void *reserved_[4];
} retry_call_state;

/**
 * @brief Starts a wrapped call (used by the macros; not meant to be called
 *        directly).
 * @param st caller-owned, uninitialised state; filled here.
 * @param client borrowed, may be NULL. @param policy borrowed, NULL = default.
 * @param rc the caller's int receiving the result; borrowed, not NULL.
 * @param outcome receives the retry_err verdict at the end; may be NULL.
 * @return st.
 */
RETRY_API retry_call_state *retry_call_begin(retry_call_state *st, retry_client *client,
                                             const retry_policy *policy, int *rc,
                                             retry_err *outcome);

/**
 * @brief Decides whether to make (another) attempt (used by the macros).
 *        The first call returns 1 unless the policy is invalid. Later calls
 *        read the attempt's code from *rc: on success, stop, exhaustion or
 *        deadline they finish the call (ship, recover, write *rc and
 *        *outcome) and return 0; otherwise they sleep the backoff delay and
 *        return 1.
 * @return 1 = evaluate the expression now, 0 = the call is over.
 */
RETRY_API int retry_call_next(retry_call_state *st);

#define RETRY_CALL_CAT2_(a, b) a##b
#define RETRY_CALL_CAT_(a, b) RETRY_CALL_CAT2_(a, b)
#define RETRY_CALL_ID_(name) RETRY_CALL_CAT_(name, __LINE__)

#define RETRY_CALL_IMPL_(rc, outp, client, policy, expr)                              \
    for (retry_call_state RETRY_CALL_ID_(retry_call_st_),                              \
         *RETRY_CALL_ID_(retry_call_sp_) =                                             \
             retry_call_begin(&RETRY_CALL_ID_(retry_call_st_), (client), (policy),     \
                              &(rc), (outp));                                          \
         retry_call_next(RETRY_CALL_ID_(retry_call_sp_));)                            \
    (rc) = (expr)

/**
 * RETRY_CALL(rc, client, policy, expr): evaluates expr (an int, 0 = success)
 * under policy, storing the result in the int lvalue rc. See the top of this
 * file for the value left in rc.
 */
#define RETRY_CALL(rc, client, policy, expr) RETRY_CALL_IMPL_(rc, NULL, client, policy, expr)

/**
 * RETRY_CALL_EX(rc, outcome, client, policy, expr): like RETRY_CALL, and also
 * stores the library's verdict in the retry_err lvalue outcome.
 */
#define RETRY_CALL_EX(rc, outcome, client, policy, expr)                              \
    RETRY_CALL_IMPL_(rc, &(outcome), client, policy, expr)

#ifdef __cplusplus
}
#endif

#endif
