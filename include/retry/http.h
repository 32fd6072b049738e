/*
 * retry/http.h: retry an HTTP request locally, then hand it to retryd.
 *
 * retry_http_call() performs one request with libcurl under a retry policy.
 * When the local attempts are exhausted and the policy has send_queue, the
 * client has brokers and the policy names a scene, the request is produced to
 * Kafka as a retry task (wire format v1, target type "http") and retryd keeps
 * retrying it with its own, longer policy.
 *
 * The code the policy judges for each attempt:
 *  - 0 when the status is a success status (success_status, or any 2xx);
 *  - the HTTP status (e.g. 503) for any other answer;
 *  - -(CURLcode) when no answer arrived: e.g. -7 (CURLE_COULDNT_CONNECT),
 *    -6 (CURLE_COULDNT_RESOLVE_HOST), -28 (CURLE_OPERATION_TIMEDOUT),
 *    -52 (CURLE_GOT_NOTHING), -56 (CURLE_RECV_ERROR). See libcurl-errors(3).
 * Redirects are not followed (a 3xx is a plain non-success status).
 * With an empty retry_on and no should_retry, the default classification is
 * curl's --retry (plus --retry-connrefused): it retries -5, -6 (name not
 * resolved), -7 (connection refused), -28 (timeout), -16, -18, -52, -55, -56,
 * -92 (connection broke without an answer) and the statuses 408, 429, 500,
 * 502, 503, 504, and stops on every other status or transport error; stop_on,
 * retry_on and should_retry apply as described in retry/policy.h.
 *
 * A 429 or 503 answer with a Retry-After header (delay-seconds, or an
 * HTTP-date read with curl_getdate() against the client's now_ms_fn clock)
 * makes the next delay the server's wish when that is longer than the
 * backoff, capped by the policy's max_delay_ms, or by
 * RETRY_RETRY_AFTER_MAX_MS (5 minutes) when max_delay_ms is 0. When the wish
 * reaches past the call's deadline_ms / max_elapsed_ms (and the backoff
 * alone would not), the call does not sleep: it ends at once with
 * RETRY_ERR_EXHAUSTED and is shipped when the policy ships, so that retryd
 * waits the pause instead of the calling thread. An attempt's timeout is
 * timeout_ms, shortened to what is left when the policy has deadline_ms or
 * max_elapsed_ms.
 *
 * Only an exhausted call is shipped. A stopped call (e.g. 400) would fail
 * the same way on retryd, and a call past its deadline is expired: neither is
 * shipped.
 *
 * Every attempt carries "Idempotency-Key: <key>" (unless the request already
 * has that header) when a key is known: the request's idempotency_key, else
 * the default key, a SHA-256 over scene, method, url and body, when the
 * policy has a scene. retryd sends the same key, so a target can deduplicate
 * local and server attempts alike.
 */
#ifndef RETRY_HTTP_H
#define RETRY_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "error.h"
#include "policy.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Longest idempotency key (wire format v1), excluding the NUL. */
#define RETRY_IDEMPOTENCY_KEY_MAX 191

/** Longest pause a server's Retry-After can impose on a local retry, ms
 *  (5 minutes), when the policy's max_delay_ms is 0 (no cap of its own).
 *  A longer wish is cut to this. */
#define RETRY_RETRY_AFTER_MAX_MS 300000

/**
 * An HTTP request. Initialise with RETRY_HTTP_REQUEST_DEFAULT. Everything is
 * borrowed for the duration of the call (and copied into a shipped task).
 * Defaults in brackets.
 */
typedef struct retry_http_request {
    /** "GET", "POST", "PUT", "PATCH" or "DELETE". [NULL = "POST" when body is
     *  set, else "GET"] */
    const char *method;
    /** Required, http:// or https://. */
    const char *url;
    /** Header lines, each "Name: value". [NULL, 0] */
    const char *const *headers;
    size_t header_count;
    /** Request body. [NULL = none] To be shipped it must be UTF-8 text
     *  without NUL bytes (it travels as a JSON string). */
    const char *body;
    /** Body length in bytes; 0 with a non-NULL body means strlen(body). [0] */
    size_t body_len;
    /** Whole-request timeout of one attempt, ms, > 0 (shortened to the time
     *  left before the policy's deadline / max_elapsed_ms). [10000] */
    int64_t timeout_ms;
    /** Statuses that count as success. [NULL, 0 = any 2xx] */
    const int *success_status;
    size_t success_status_count;
    /** Idempotency key, 1..191 bytes, unique within the client's group.
     *  [NULL = SHA-256 hex over scene, method, url and body] */
    const char *idempotency_key;
} retry_http_request;

#define RETRY_HTTP_REQUEST_DEFAULT                                                     \
    {                                                                                  \
        NULL, NULL, NULL, 0, NULL, 0, 10000, NULL, 0, NULL                             \
    }

/**
 * What happened to a request. Initialise with RETRY_HTTP_RESPONSE_DEFAULT,
 * release with retry_http_response_free(). Caller-owned.
 */
typedef struct retry_http_response {
    /** In: keep at most this many bytes of the last answer's body; 0 keeps
     *  none. [65536] */
    size_t max_body_bytes;
    /** Out: HTTP status of the last answer, 0 when none arrived. */
    int status;
    /** Out: the last transport error as a positive CURLcode, 0 = none. */
    int curl_code;
    /** Out: the last answer's body, NUL-terminated, malloc'd (NULL when
     *  empty or not kept); body_len excludes the NUL. Freed by
     *  retry_http_response_free(). */
    char *body;
    size_t body_len;
    /** Out: 1 when the body was cut at max_body_bytes. */
    int body_truncated;
    /** Out: local attempts made. */
    int attempts;
    /** Out: 1 when the call was exhausted and its task was handed to the
     *  Kafka producer (delivery is confirmed by retry_client_flush()). */
    int shipped;
    /** Out: the idempotency key used ("" when none was needed). */
    char idempotency_key[RETRY_IDEMPOTENCY_KEY_MAX + 1];
} retry_http_response;

#define RETRY_HTTP_RESPONSE_DEFAULT                                                    \
    {                                                                                  \
        65536, 0, 0, NULL, 0, 0, 0, 0, { 0 }                                           \
    }

/**
 * @brief Performs req under policy: local attempts with backoff, then (when
 *        exhausted) ships it to retryd. Blocks the calling thread.
 * @param client borrowed, not NULL.
 * @param policy borrowed, NULL = RETRY_POLICY_DEFAULT. ship_as is ignored.
 * @param req borrowed, not NULL.
 * @param resp caller-owned, may be NULL; previous body is freed first, so a
 *        response may be reused across calls.
 * @return RETRY_OK when an attempt got a success status;
 *         RETRY_ERR_EXHAUSTED when every attempt failed (resp->shipped says
 *         whether retryd took it over); RETRY_ERR_STOPPED for a non-retryable
 *         answer; RETRY_ERR_DEADLINE; RETRY_ERR_BUDGET (the client's retry
 *         budget was empty; shipped like an exhausted call, see
 *         resp->shipped); RETRY_ERR_INVALID_ARG (nothing was
 *         sent; e.g. a bad URL or method, or a missing scene when shipping is
 *         possible); RETRY_ERR_KAFKA when exhausted and the task could not be
 *         queued; RETRY_ERR_NOMEM; RETRY_ERR_HTTP (libcurl setup failed).
 *         When the policy has recover and the call failed after attempting,
 *         recover's return value is returned instead.
 * @remark Thread-safe: any number of threads may call it on one client. Each
 *         call uses its own libcurl easy handle.
 */
RETRY_API int retry_http_call(retry_client *client, const retry_policy *policy,
                              const retry_http_request *req, retry_http_response *resp);

/**
 * @brief Frees resp->body and resets the out fields (max_body_bytes kept).
 * @param resp NULL does nothing.
 */
RETRY_API void retry_http_response_free(retry_http_response *resp);

#ifdef __cplusplus
}
#endif

#endif
