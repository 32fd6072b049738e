/*
 * client/call.c: the call loop behind RETRY_CALL and retry_http_call: judge
 * each attempt's code against the policy, wait the backoff (src/backoff.h)
 * through the client's sleep hook, and at the end ship, recover and report.
 *
 * The loop is driven from the caller's for statement (retry/call.h):
 * retry_call_begin() once, then retry_call_next() before every attempt. All
 * state lives in the caller's retry_call_state; the client is only read,
 * apart from its atomic counters, so one client serves many threads.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "internal.h"

enum { PH_START = 0, PH_RUNNING = 1, PH_DONE = 2 };

static const retry_policy default_policy = RETRY_POLICY_DEFAULT;

RETRY_API void retry_policy_init(retry_policy *policy)
{
    if (policy != NULL)
        *policy = default_policy;
}

static int in_list(const int *list, size_t n, int code)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (list[i] == code)
            return 1;
    return 0;
}

static int valid_scene(const char *s)
{
    size_t n;

    if (s == NULL)
        return 0;
    for (n = 0; s[n] != '\0'; n++) {
        char ch = s[n];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == ':' || ch == '-'))
            return 0;
    }
    return n >= 1 && n <= RT_SCENE_MAX;
}

/* Returns NULL when the policy is usable, else a sentence saying why not. */
static const char *policy_problem(const retry_policy *p)
{
    if (p->max_attempts < 1)
        return "max_attempts must be >= 1";
    if (p->delay_ms < 0)
        return "delay_ms must be >= 0";
    if (p->max_delay_ms < 0)
        return "max_delay_ms must be >= 0";
    if (!(p->multiplier >= 0.0) || isinf(p->multiplier))
        return "multiplier must be a finite number >= 0";
    if (p->jitter < RETRY_JITTER_NONE || p->jitter > RETRY_JITTER_DECORRELATED)
        return "jitter must be one of RETRY_JITTER_NONE, _FULL, _EQUAL, _DECORRELATED";
    if (p->retry_on_count > 0 && p->retry_on == NULL)
        return "retry_on is NULL but retry_on_count is not 0";
    if (p->stop_on_count > 0 && p->stop_on == NULL)
        return "stop_on is NULL but stop_on_count is not 0";
    if (p->deadline_ms < 0)
        return "deadline_ms must be >= 0 (0 = none)";
    if (p->scene != NULL && !valid_scene(p->scene))
        return "scene must match [A-Za-z0-9._:-]{1,128}";
    return NULL;
}

static void describe(const retry_call_state *st, int code, char *buf, size_t size)
{
    if (st->classify_ == rc_http_classify)
        rc_http_describe(code, buf, size);
    else
        snprintf(buf, size, "local call failed with code %d", code);
}

static int finish(retry_call_state *st, retry_err outcome)
{
    retry_client *c = st->client_;
    const retry_policy *p = st->policy_;
    int result = outcome == RETRY_OK ? 0 : st->last_code_;

    if (outcome == RETRY_ERR_EXHAUSTED && (st->flags_ & RC_FL_SHIP)) {
        char msg[256], key[RC_MSG_KEY_MAX], err[512];
        char *json = NULL;
        retry_err e;

        describe(st, st->last_code_, msg, sizeof msg);
        e = rc_task_json(c, p, st->ship_, st->last_code_, msg, st->attempt_,
                         st->first_failure_ms_, &json, key, sizeof key, err, sizeof err);
        if (e == RETRY_OK)
            e = rc_produce(c, key, json, err, sizeof err);
        free(json);
        if (e == RETRY_OK) {
            st->flags_ |= RC_FL_SHIPPED;
            atomic_fetch_add(&c->shipped, 1);
            rc_log(c, RETRY_LOG_NOTICE, "task %s shipped to topic %s after %d local attempt(s)",
                   key, c->topic, st->attempt_);
        } else {
            atomic_fetch_add(&c->ship_failed, 1);
            rc_log(c, RETRY_LOG_ERR, "exhausted call not shipped: %s", err);
            outcome = e;
        }
    }
    if (c != NULL) {
        /* Counted once per call, at its end: two atomic adds on the happy
         * path. calls is the sum of the outcome counters (client.c). */
        atomic_fetch_add_explicit(&c->attempts, (uint_fast64_t)st->attempt_,
                                  memory_order_relaxed);
        switch (outcome) {
        case RETRY_OK:
            atomic_fetch_add_explicit(&c->succeeded, 1, memory_order_relaxed);
            break;
        case RETRY_ERR_STOPPED:
            atomic_fetch_add(&c->stopped, 1);
            break;
        case RETRY_ERR_DEADLINE:
            atomic_fetch_add(&c->deadline, 1);
            break;
        default: /* exhausted, shipped or not */
            atomic_fetch_add(&c->exhausted, 1);
            break;
        }
    }
    if (outcome != RETRY_OK && p->recover != NULL && !(st->flags_ & RC_FL_DISABLED)) {
        result = p->recover(p->recover_ctx, st->last_code_);
        st->flags_ |= RC_FL_RECOVERED;
    }
    *st->rc_ = result;
    if (st->outcome_ != NULL)
        *st->outcome_ = outcome;
    st->phase_ = PH_DONE;
    return 0;
}

retry_call_state *rc_call_begin(retry_call_state *st, retry_client *client,
                                const retry_policy *policy, int *rc, retry_err *outcome,
                                const retry_http_request *ship, int (*classify)(int code))
{
    const char *problem;
    memset(st, 0, sizeof *st);
    st->client_ = client;
    st->policy_ = policy != NULL ? policy : &default_policy;
    st->ship_ = ship;
    st->classify_ = classify;
    st->rc_ = rc;
    st->outcome_ = outcome;
    st->phase_ = PH_START;
    st->max_attempts_ = st->policy_->max_attempts;

    problem = policy_problem(st->policy_);
    if (problem != NULL) {
        rc_log(client, RETRY_LOG_ERR, "invalid retry policy: %s", problem);
        goto invalid;
    }
    if (client != NULL) {
        if (!client->enabled) {
            st->flags_ |= RC_FL_DISABLED;
            st->max_attempts_ = 1;
        }
        if (client->rk != NULL && client->enabled && st->policy_->send_queue && ship != NULL) {
            /* Build the task once now, so that anything that would stop it
             * from being shipped is reported before the first attempt. */
            char key[RC_MSG_KEY_MAX], err[512];
            char *json = NULL;
            retry_err e = rc_task_json(client, st->policy_, ship, 1, "dry run", 1, 1, &json,
                                       key, sizeof key, err, sizeof err);
            free(json);
            if (e != RETRY_OK) {
                rc_log(client, RETRY_LOG_ERR, "call cannot be shipped: %s", err);
                if (e != RETRY_ERR_INVALID_ARG) {
                    *rc = (int)e;
                    if (outcome != NULL)
                        *outcome = e;
                    st->phase_ = PH_DONE;
                    return st;
                }
                goto invalid;
            }
            st->flags_ |= RC_FL_SHIP;
        }
    }
    return st;

invalid:
    *rc = RETRY_ERR_INVALID_ARG;
    if (outcome != NULL)
        *outcome = RETRY_ERR_INVALID_ARG;
    st->phase_ = PH_DONE;
    return st;
}

RETRY_API retry_call_state *retry_call_begin(retry_call_state *st, retry_client *client,
                                             const retry_policy *policy, int *rc,
                                             retry_err *outcome)
{
    return rc_call_begin(st, client, policy, rc, outcome,
                         policy != NULL ? policy->ship_as : NULL, NULL);
}

static int64_t next_delay(retry_call_state *st)
{
    const retry_policy *p = st->policy_;
    retry_client *c = st->client_;
    rt_backoff b;
    rt_rng rng;
    int64_t d;

    if (st->attempt_ == 1) {
        /* Seeded at the first retry, so the happy path pays nothing: call
         * number n of a client gets stream n of its seed. */
        if (c != NULL)
            rt_rng_seed(&rng, c->rng_seed + 0x9E3779B97F4A7C15ull *
                                                 (uint64_t)atomic_fetch_add(&c->call_seq, 1));
        else
            rt_rng_seed(&rng, (uint64_t)(uintptr_t)st ^ (uint64_t)rc_now_ms(NULL));
        st->rng_ = rng.state;
    }

    memset(&b, 0, sizeof b);
    b.kind = p->multiplier >= 1.0 ? RT_BACKOFF_EXPONENTIAL : RT_BACKOFF_FIXED;
    b.initial_delay_ms = p->delay_ms;
    b.multiplier = p->multiplier;
    b.max_delay_ms = p->max_delay_ms;
    switch (p->jitter) {
    case RETRY_JITTER_FULL:
        b.jitter = RT_JITTER_FULL;
        break;
    case RETRY_JITTER_EQUAL:
        b.jitter = RT_JITTER_EQUAL;
        break;
    case RETRY_JITTER_DECORRELATED:
        b.jitter = RT_JITTER_DECORRELATED;
        break;
    default:
        b.jitter = RT_JITTER_NONE;
        break;
    }
    rng.state = st->rng_;
    d = rt_backoff_delay(&b, (unsigned)st->attempt_, st->prev_delay_ms_, &rng);
    st->rng_ = rng.state;
    st->prev_delay_ms_ = d;
    return d;
}

RETRY_API int retry_call_next(retry_call_state *st)
{
    retry_client *c = st->client_;
    const retry_policy *p = st->policy_;
    const char *scene = p->scene != NULL ? p->scene : "-";
    char what[256];
    int code, stop;
    int64_t delay;

    if (st->phase_ == PH_START) {
        st->phase_ = PH_RUNNING;
        st->attempt_ = 1;
        return 1;
    }
    if (st->phase_ != PH_RUNNING)
        return 0;

    code = *st->rc_;
    if (code == 0) {
        rc_log(c, RETRY_LOG_INFO, "scene %s: attempt %d/%d succeeded", scene, st->attempt_,
               st->max_attempts_);
        return finish(st, RETRY_OK);
    }
    st->last_code_ = code;
    if (st->first_failure_ms_ == 0)
        st->first_failure_ms_ = rc_now_ms(c);
    if (c != NULL && c->log_cb != NULL)
        describe(st, code, what, sizeof what);
    else
        what[0] = '\0';

    if (in_list(p->stop_on, p->stop_on_count, code))
        stop = 1;
    else if (p->retry_on_count > 0)
        stop = !in_list(p->retry_on, p->retry_on_count, code);
    else
        stop = st->classify_ != NULL && !st->classify_(code);
    if (stop) {
        rc_log(c, RETRY_LOG_INFO, "scene %s: attempt %d/%d failed (%s): not retryable, stopping",
               scene, st->attempt_, st->max_attempts_, what);
        return finish(st, RETRY_ERR_STOPPED);
    }
    if (st->attempt_ >= st->max_attempts_) {
        rc_log(c, RETRY_LOG_INFO, "scene %s: attempt %d/%d failed (%s): attempts exhausted",
               scene, st->attempt_, st->max_attempts_, what);
        return finish(st, RETRY_ERR_EXHAUSTED);
    }
    delay = next_delay(st);
    if (p->deadline_ms > 0 && rc_now_ms(c) + delay >= p->deadline_ms) {
        rc_log(c, RETRY_LOG_INFO,
               "scene %s: attempt %d/%d failed (%s): the next attempt would pass the deadline",
               scene, st->attempt_, st->max_attempts_, what);
        return finish(st, RETRY_ERR_DEADLINE);
    }
    rc_log(c, RETRY_LOG_INFO, "scene %s: attempt %d/%d failed (%s): retrying in %lld ms", scene,
           st->attempt_, st->max_attempts_, what, (long long)delay);
    if (delay > 0 || (c != NULL && c->sleep_fn != NULL))
        rc_sleep_ms(c, delay);
    st->attempt_++;
    return 1;
}
