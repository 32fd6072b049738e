/*
 * retry/error.h: the one error enum of libretryclient.
 *
 * The numbers are part of the ABI and never change; new codes are only ever
 * appended. RETRY_OK is 0, every error is a positive number.
 */
#ifndef RETRY_ERROR_H
#define RETRY_ERROR_H

#include "export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum retry_err {
    /** Success. */
    RETRY_OK = 0,
    /** retry_async_submit(): the first attempt failed and the call
     *  continues on the client's worker threads (retry/async.h). */
    RETRY_PENDING = 1,
    /** Every local attempt failed with a retryable code (max_attempts). When
     *  the call was shipped to Kafka, retryd now owns it. */
    RETRY_ERR_EXHAUSTED = 2,
    /** A failure the policy does not retry (stop_on, or not in retry_on, or a
     *  non-retryable HTTP status). */
    RETRY_ERR_STOPPED = 3,
    /** An argument, a policy or a configuration value is invalid; nothing
     *  was attempted. The log callback or errstr says which. */
    RETRY_ERR_INVALID_ARG = 4,
    /** Memory allocation failed. */
    RETRY_ERR_NOMEM = 5,
    /** librdkafka failed: the producer could not be created, a task could
     *  not be queued, or queued tasks failed delivery. */
    RETRY_ERR_KAFKA = 6,
    /** A wait ran out of time (e.g. retry_client_flush). */
    RETRY_ERR_TIMEOUT = 7,
    /** libcurl could not be set up for a request (not a failed request:
     *  those are judged by the policy). */
    RETRY_ERR_HTTP = 8,
    /** The policy's deadline_ms would pass before the next attempt. */
    RETRY_ERR_DEADLINE = 9,
    /** A dependency failed in a way that should not happen (e.g. libcrypto
     *  could not compute a digest). */
    RETRY_ERR_INTERNAL = 10,
    /** retry_async_submit(): async_queue_max async calls are already
     *  pending; the call was not accepted (nothing ran, ctx is still the
     *  caller's). */
    RETRY_ERR_QUEUE_FULL = 11,
    /** The client's retry budget (retry_client_conf.budget_tokens) had no
     *  tokens left for a retry: the call failed fast after its last attempt
     *  instead of retrying. Shipped like an exhausted call when the policy
     *  ships; recover runs. */
    RETRY_ERR_BUDGET = 12
} retry_err;

/**
 * @brief One English sentence describing an error code.
 * @param err any int; unknown values give "unknown error code".
 * @return a static string (never NULL, never freed by the caller).
 * @remark Thread-safe.
 */
RETRY_API const char *retry_strerror(int err);

/**
 * @brief The enumerator's name, e.g. "RETRY_ERR_EXHAUSTED".
 * @param err any int; unknown values give "RETRY_ERR_UNKNOWN".
 * @return a static string (never NULL).
 * @remark Thread-safe.
 */
RETRY_API const char *retry_err_name(int err);

/**
 * @brief The library's version string, e.g. "0.1.0" (RETRY_VERSION_STR of
 *        the library actually loaded, which may differ from the header's).
 * @return a static string. Thread-safe.
 */
RETRY_API const char *retry_version(void);

#ifdef __cplusplus
}
#endif

#endif
