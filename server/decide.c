/*
 * decide.c: the outcome of an attempt (see decide.h for the rules).
 */
#include "decide.h"

#include <string.h>

static int in_list(const int *list, size_t n, long v)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == v) return 1;
    return 0;
}

void rd_policy_backoff(const rt_policy *p, rt_backoff *b)
{
    memset(b, 0, sizeof *b);
    b->kind = p->backoff;
    b->jitter = p->jitter;
    b->initial_delay_ms = p->initial_delay_ms;
    b->multiplier = p->multiplier;
    b->max_delay_ms = p->max_delay_ms;
    b->nlevels = p->nlevels < RT_MAX_LEVELS ? p->nlevels : RT_MAX_LEVELS;
    memcpy(b->levels, p->levels, b->nlevels * sizeof b->levels[0]);
}

void rd_decide(const rt_policy *policy, const rt_http_target *target, const rd_answer *answer,
               int attempt, int64_t now_ms, int64_t prev_delay_ms, rt_rng *rng,
               rd_decision *out)
{
    int responded = answer->responded;
    long http_status = answer->http_status;
    out->delay_ms = 0;
    out->next_fire_at = now_ms;
    if (responded && answer->body_stop) {
        out->outcome = out->status = "stopped";
        return;
    }
    if (responded) {
        int ok = target->nsuccess_status
                     ? in_list(target->success_status, target->nsuccess_status, http_status)
                     : (http_status >= 200 && http_status <= 299);
        if (ok) {
            out->outcome = out->status = "succeeded";
            return;
        }
        if (in_list(policy->stop_on_status, policy->nstop_on_status, http_status)) {
            out->outcome = out->status = "stopped";
            return;
        }
    }
    out->outcome = "failed";
    if (attempt >= policy->max_attempts) {
        out->status = "exhausted";
        return;
    }
    rt_backoff b;
    rd_policy_backoff(policy, &b);
    int64_t delay = rt_backoff_delay(&b, (unsigned)attempt, prev_delay_ms, rng);
    if (responded && (http_status == 429 || http_status == 503) && answer->retry_after_ms > 0) {
        int64_t server = answer->retry_after_ms;
        if (policy->max_delay_ms > 0 && server > policy->max_delay_ms) server = policy->max_delay_ms;
        if (server > delay) delay = server;
    }
    int64_t next = now_ms + delay;
    if ((policy->set & RT_POL_DEADLINE) && policy->deadline > 0 && next > policy->deadline) {
        out->status = "exhausted";
        return;
    }
    out->status = "pending";
    out->delay_ms = delay;
    out->next_fire_at = next;
}
