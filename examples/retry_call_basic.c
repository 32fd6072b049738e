/*
 * retry_call_basic.c: the smallest use of libretryclient. RETRY_CALL wraps a
 * function that fails twice and then succeeds; the policy allows 5 attempts
 * with exponential backoff (100 ms, 200 ms, ...). No Kafka: brokers is NULL,
 * so an exhausted call would only return its error.
 *
 *   $ ./retry_call_basic
 *   scene demo.flaky: attempt 1/5 failed (local call failed with code 503): retrying in 100 ms
 *   scene demo.flaky: attempt 2/5 failed (local call failed with code 503): retrying in 200 ms
 *   scene demo.flaky: attempt 3/5 succeeded
 *   rc=0 outcome=RETRY_OK calls_to_flaky=3
 */
#include <stdio.h>

#include <retry/retry.h>

/* Stands in for a remote call: 0 is success, anything else an error code. */
static int flaky_remote_call(int *calls)
{
    return ++*calls <= 2 ? 503 : 0;
}

static void print_log(void *opaque, int level, const char *msg)
{
    (void)opaque;
    if (level <= RETRY_LOG_INFO)
        printf("%s\n", msg);
}

int main(void)
{
    retry_client_conf conf = RETRY_CLIENT_CONF_DEFAULT;
    retry_policy policy = RETRY_POLICY_DEFAULT;
    retry_client *client = NULL;
    char errstr[256];
    retry_err outcome;
    int rc, calls = 0;

    conf.group = "example-app";
    conf.log_cb = print_log;
    if (retry_client_new(&conf, &client, errstr, sizeof errstr) != RETRY_OK) {
        fprintf(stderr, "retry_client_new: %s\n", errstr);
        return 1;
    }

    policy.max_attempts = 5;
    policy.delay_ms = 100;
    policy.multiplier = 2.0;
    policy.scene = "demo.flaky";

    RETRY_CALL_EX(rc, outcome, client, &policy, flaky_remote_call(&calls));

    printf("rc=%d outcome=%s calls_to_flaky=%d\n", rc, retry_err_name(outcome), calls);
    retry_client_destroy(client);
    return rc == 0 ? 0 : 1;
}
