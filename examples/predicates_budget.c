/*
 * predicates_budget.c: three guards on RETRY_CALL, runnable without any
 * server (no Kafka, an in-process "dependency" that is down).
 *  1. a predicate (should_retry) that retries only codes it knows are
 *     transient, and only for the first attempts;
 *  2. a time bound (max_elapsed_ms): no attempt starts after 300 ms;
 *  3. the retry budget: while the dependency is down, the client's token
 *     bucket (budget_tokens 20, a retry costs 5) allows 4 retries in all, so
 *     100 failing calls make 104 attempts instead of 300.
 *
 *   ./predicates_budget
 */
#include <stdio.h>

#include <retry/retry.h>

enum { E_TIMEOUT = 110, E_REFUSED = 111, E_BAD_INPUT = 22 };

static int calls;

/* The dependency: refuses every call (it is down). */
static int call_dependency(int code)
{
    calls++;
    return code;
}

/* Retry timeouts and refused connections, never bad input, and at most 3
 * attempts in all whatever the policy says. */
static int transient_only(void *ctx, int code, int attempt)
{
    (void)ctx;
    if (attempt >= 3) return 0;
    return code == E_TIMEOUT || code == E_REFUSED;
}

int main(void)
{
    char err[256];
    retry_client_conf conf = RETRY_CLIENT_CONF_DEFAULT;
    conf.group = "example";
    retry_client *client;
    if (retry_client_new(&conf, &client, err, sizeof err) != RETRY_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    retry_policy pol = RETRY_POLICY_DEFAULT;
    pol.max_attempts = 10;
    pol.delay_ms = 10;
    pol.should_retry = transient_only;
    int rc;
    retry_err outcome;

    calls = 0;
    RETRY_CALL_EX(rc, outcome, client, &pol, call_dependency(E_TIMEOUT));
    printf("1a. timeouts:      %d attempts, %s (the predicate stops at 3)\n", calls,
           retry_err_name(outcome));
    calls = 0;
    RETRY_CALL_EX(rc, outcome, client, &pol, call_dependency(E_BAD_INPUT));
    printf("1b. bad input:     %d attempt,  %s (not retried)\n", calls, retry_err_name(outcome));

    retry_policy timed = RETRY_POLICY_DEFAULT;
    timed.max_attempts = 100;
    timed.delay_ms = 100;
    timed.max_elapsed_ms = 300;
    calls = 0;
    RETRY_CALL_EX(rc, outcome, client, &timed, call_dependency(E_REFUSED));
    printf("2.  time bound:    %d attempts, %s (no attempt after 300 ms)\n", calls,
           retry_err_name(outcome));
    retry_client_destroy(client);

    conf.budget_tokens = 20;
    conf.budget_retry_cost = 5;
    if (retry_client_new(&conf, &client, err, sizeof err) != RETRY_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    retry_policy three = RETRY_POLICY_DEFAULT;
    three.max_attempts = 3;
    three.delay_ms = 0;
    calls = 0;
    int budget_ended = 0;
    for (int i = 0; i < 100; i++) {
        RETRY_CALL_EX(rc, outcome, client, &three, call_dependency(E_REFUSED));
        budget_ended += outcome == RETRY_ERR_BUDGET;
    }
    retry_stats st;
    retry_client_stats(client, &st);
    printf("3.  budget:        100 calls made %d attempts; %d ended by the budget "
           "(stats: budget_denied %llu)\n",
           calls, budget_ended, (unsigned long long)st.budget_denied);
    retry_client_destroy(client);
    (void)rc;
    return 0;
}
