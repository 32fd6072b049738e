/*
 * client/error.c: names and sentences for retry_err (retry/error.h), and the
 * library version. Pure tables, no state.
 */
#include "retry/retry.h"

RETRY_API const char *retry_strerror(int err)
{
    switch (err) {
    case RETRY_OK:
        return "success";
    case RETRY_PENDING:
        return "the call continues asynchronously";
    case RETRY_ERR_EXHAUSTED:
        return "every local attempt failed";
    case RETRY_ERR_STOPPED:
        return "the call failed with a code the policy does not retry";
    case RETRY_ERR_INVALID_ARG:
        return "invalid argument, policy or configuration";
    case RETRY_ERR_NOMEM:
        return "out of memory";
    case RETRY_ERR_KAFKA:
        return "Kafka producer error";
    case RETRY_ERR_TIMEOUT:
        return "timed out";
    case RETRY_ERR_HTTP:
        return "libcurl could not be set up for the request";
    case RETRY_ERR_DEADLINE:
        return "the policy's deadline passed before the next attempt";
    case RETRY_ERR_INTERNAL:
        return "internal error in a dependency";
    case RETRY_ERR_QUEUE_FULL:
        return "the async queue is full";
    case RETRY_ERR_BUDGET:
        return "the client's retry budget is empty: the call was not retried";
    default:
        return "unknown error code";
    }
}

RETRY_API const char *retry_err_name(int err)
{
    switch (err) {
    case RETRY_OK:
        return "RETRY_OK";
    case RETRY_PENDING:
        return "RETRY_PENDING";
    case RETRY_ERR_EXHAUSTED:
        return "RETRY_ERR_EXHAUSTED";
    case RETRY_ERR_STOPPED:
        return "RETRY_ERR_STOPPED";
    case RETRY_ERR_INVALID_ARG:
        return "RETRY_ERR_INVALID_ARG";
    case RETRY_ERR_NOMEM:
        return "RETRY_ERR_NOMEM";
    case RETRY_ERR_KAFKA:
        return "RETRY_ERR_KAFKA";
    case RETRY_ERR_TIMEOUT:
        return "RETRY_ERR_TIMEOUT";
    case RETRY_ERR_HTTP:
        return "RETRY_ERR_HTTP";
    case RETRY_ERR_DEADLINE:
        return "RETRY_ERR_DEADLINE";
    case RETRY_ERR_INTERNAL:
        return "RETRY_ERR_INTERNAL";
    case RETRY_ERR_QUEUE_FULL:
        return "RETRY_ERR_QUEUE_FULL";
    case RETRY_ERR_BUDGET:
        return "RETRY_ERR_BUDGET";
    default:
        return "RETRY_ERR_UNKNOWN";
    }
}

RETRY_API const char *retry_version(void)
{
    return RETRY_VERSION_STR;
}
