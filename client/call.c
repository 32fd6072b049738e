/*
 * client/call.c: the call loop behind RETRY_CALL and retry_http_call: resolve
 * the call's effective policy (policy.c: call site > scene > defaults >
 * built-in), judge each attempt's code against it (lists, should_retry, the
 * default classification), ask the retry budget, wait the backoff
 * (src/backoff.h) through the client's sleep hook, tell the listeners, and at
 * the end ship, recover and report.
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
#include "policy_int.h"

enum { PH_START = 0, PH_RUNNING = 1, PH_DONE = 2 };

RETRY_API void retry_policy_init(retry_policy *policy)
{
    if (policy != NULL)
        rc_policy_unset(policy);
}

static int in_list(const int *list, size_t n, int code)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (list[i] == code)
            return 1;
    return 0;
}

static void describe(const retry_call_state *st, int code, char *buf, size_t size)
{
    if (st->classify_ == rc_http_classify)
        rc_http_describe(code, buf, size);
    else
        snprintf(buf, size, "local call failed with code %d", code);
}

/* Fills the fields every event shares. */
static void event_init(const retry_call_state *st, retry_event *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->scene = st->eff_.scene != NULL ? st->eff_.scene : "-";
    ev->attempt = st->attempt_;
    ev->max_attempts = st->max_attempts_;
    ev->what = "";
    ev->delay_ms = -1;
    ev->outcome = RETRY_OK;
    ev->elapsed_ms = rc_now_ms(st->client_) - st->start_ms_;
}

static void fire_simple(retry_call_state *st, int kind, int code, retry_err outcome)
{
    retry_event ev;

    if (!rc_has_listeners(st->client_, &st->eff_))
        return;
    event_init(st, &ev);
    ev.code = code;
    ev.outcome = outcome;
    rc_fire(st->client_, &st->eff_, kind, &ev);
}

/* on_failure: delay >= 0 retries, -1 ends the call with outcome. */
static void fire_failure(retry_call_state *st, int code, int64_t delay, retry_err outcome)
{
    retry_event ev;
    char what[256];

    if (!rc_has_listeners(st->client_, &st->eff_))
        return;
    describe(st, code, what, sizeof what);
    event_init(st, &ev);
    ev.code = code;
    ev.what = what;
    ev.delay_ms = delay;
    ev.outcome = delay >= 0 ? RETRY_OK : outcome;
    rc_fire(st->client_, &st->eff_, RC_EV_FAILURE, &ev);
}

/* The task this call ships: its HTTP request (st->ship_) or its dispatch
 * (kept in reserved_[0] by rc_call_begin_dispatch). */
static retry_err task_json(const retry_call_state *st, const retry_policy *p, int code,
                           const char *msg, int attempts, int64_t created_at, char **json,
                           char *key, size_t keysz, char *err, size_t errsz)
{
    const rc_dispatch_ship *d = st->reserved_[0];
    if (d != NULL)
        return rc_dispatch_task_json(st->client_, p, d, code, msg, attempts, created_at, json,
                                     key, keysz, err, errsz);
    return rc_task_json(st->client_, p, st->ship_, code, msg, attempts, created_at, json, key,
                        keysz, err, errsz);
}

static int finish(retry_call_state *st, retry_err outcome)
{
    retry_client *c = st->client_;
    const retry_policy *p = &st->eff_;
    retry_err ended = outcome;
    int result = outcome == RETRY_OK ? 0 : st->last_code_;

    if (outcome != RETRY_OK)
        fire_simple(st, RC_EV_EXHAUSTED, st->last_code_, outcome);
    /* A call the budget ended is shipped like an exhausted one: the budget
     * protects the dependency from this process, retryd throttles itself. */
    if ((outcome == RETRY_ERR_EXHAUSTED || outcome == RETRY_ERR_BUDGET) &&
        (st->flags_ & RC_FL_SHIP)) {
        char msg[256], key[RC_MSG_KEY_MAX], err[512];
        char *json = NULL;
        retry_err e;

        describe(st, st->last_code_, msg, sizeof msg);
        e = task_json(st, p, st->last_code_, msg, st->attempt_, st->first_failure_ms_, &json,
                      key, sizeof key, err, sizeof err);
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
        switch (ended) {
        case RETRY_OK:
            atomic_fetch_add_explicit(&c->succeeded, 1, memory_order_relaxed);
            break;
        case RETRY_ERR_STOPPED:
            atomic_fetch_add(&c->stopped, 1);
            break;
        case RETRY_ERR_DEADLINE:
            atomic_fetch_add(&c->deadline, 1);
            break;
        case RETRY_ERR_BUDGET:
            break; /* counted by rc_budget_take() */
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

static retry_call_state *call_begin(retry_call_state *st, retry_client *client,
                                    const retry_policy *policy, int *rc, retry_err *outcome,
                                    const retry_http_request *ship,
                                    const rc_dispatch_ship *dship, int (*classify)(int code))
{
    const char *problem;
    memset(st, 0, sizeof *st);
    st->client_ = client;
    st->policy_ = policy;
    st->ship_ = ship;
    st->reserved_[0] = (void *)dship;
    st->classify_ = classify;
    st->rc_ = rc;
    st->outcome_ = outcome;
    st->phase_ = PH_START;
    st->hint_delay_ms_ = -1;
    rc_policy_resolve(client, policy, &st->eff_);
    st->max_attempts_ = st->eff_.max_attempts;

    problem = rc_policy_problem(&st->eff_);
    if (problem != NULL) {
        rc_log(client, RETRY_LOG_ERR, "invalid retry policy: %s", problem);
        goto invalid;
    }
    /* The clock is read at the start only when something needs it. */
    if (st->eff_.max_elapsed_ms > 0 || rc_has_listeners(client, &st->eff_))
        st->start_ms_ = rc_now_ms(client);
    st->deadline_ms_ = st->eff_.deadline_ms;
    if (st->eff_.max_elapsed_ms > 0) {
        int64_t end = st->start_ms_ + st->eff_.max_elapsed_ms;
        if (st->deadline_ms_ == 0 || end < st->deadline_ms_)
            st->deadline_ms_ = end;
    }
    if (client != NULL) {
        if (!client->enabled) {
            st->flags_ |= RC_FL_DISABLED;
            st->max_attempts_ = 1;
        }
        if (client->rk != NULL && client->enabled && st->eff_.send_queue &&
            (ship != NULL || dship != NULL)) {
            /* Build the task once now, so that anything that would stop it
             * from being shipped is reported before the first attempt. */
            char key[RC_MSG_KEY_MAX], err[512];
            char *json = NULL;
            retry_err e = task_json(st, &st->eff_, 1, "dry run", 1, 1, &json, key, sizeof key,
                                    err, sizeof err);
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

retry_call_state *rc_call_begin(retry_call_state *st, retry_client *client,
                                const retry_policy *policy, int *rc, retry_err *outcome,
                                const retry_http_request *ship, int (*classify)(int code))
{
    return call_begin(st, client, policy, rc, outcome, ship, NULL, classify);
}

retry_call_state *rc_call_begin_dispatch(retry_call_state *st, retry_client *client,
                                         const retry_policy *policy, int *rc,
                                         retry_err *outcome, const rc_dispatch_ship *d,
                                         int (*classify)(int code))
{
    return call_begin(st, client, policy, rc, outcome, NULL, d, classify);
}

RETRY_API retry_call_state *retry_call_begin(retry_call_state *st, retry_client *client,
                                             const retry_policy *policy, int *rc,
                                             retry_err *outcome)
{
    return rc_call_begin(st, client, policy, rc, outcome,
                         policy != NULL ? policy->ship_as : NULL, NULL);
}

void rc_call_hint_delay(retry_call_state *st, int64_t ms)
{
    st->hint_delay_ms_ = ms < 0 ? -1 : ms;
}

int64_t rc_call_deadline(const retry_call_state *st)
{
    return st->deadline_ms_;
}

/* The backoff delay of the next attempt, ms. *hinted is set when a
 * server's Retry-After made it longer than the backoff alone (*backoff). */
static int64_t next_delay(retry_call_state *st, int *hinted, int64_t *backoff)
{
    const retry_policy *p = &st->eff_;
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
    /* retry_jitter and rt_jitter_kind share their numbers. */
    b.jitter = p->jitter >= RETRY_JITTER_NONE && p->jitter <= RETRY_JITTER_DECORRELATED_V2
                   ? (rt_jitter_kind)p->jitter
                   : RT_JITTER_NONE;
    rng.state = st->rng_;
    d = rt_backoff_delay_ex(&b, (unsigned)st->attempt_, st->prev_delay_ms_, &st->v2_prev_, &rng);
    st->rng_ = rng.state;
    *hinted = 0;
    *backoff = d;
    if (st->hint_delay_ms_ >= 0) {
        /* The server asked for a pause (Retry-After): honoured when longer
         * than the backoff, capped by max_delay_ms as retryd does, or by
         * RETRY_RETRY_AFTER_MAX_MS without one, so that a bogus header
         * cannot put a thread to sleep for years. */
        int64_t h = st->hint_delay_ms_;
        int64_t cap = p->max_delay_ms > 0 ? p->max_delay_ms : RETRY_RETRY_AFTER_MAX_MS;
        if (h > cap)
            h = cap;
        if (h > d) {
            d = h;
            *hinted = 1;
        }
        st->hint_delay_ms_ = -1;
    }
    st->prev_delay_ms_ = d;
    return d;
}

int rc_call_judge(retry_call_state *st, int64_t *delay_ms)
{
    retry_client *c = st->client_;
    const retry_policy *p = &st->eff_;
    int code, stop, hinted;
    int64_t delay, backoff;

    if (st->phase_ != PH_RUNNING)
        return 0;
    code = *st->rc_;
    if (code == 0) {
        fire_simple(st, RC_EV_SUCCESS, 0, RETRY_OK);
        rc_budget_success(c);
        return finish(st, RETRY_OK);
    }
    st->last_code_ = code;
    if (st->first_failure_ms_ == 0)
        st->first_failure_ms_ = rc_now_ms(c);

    if (in_list(p->stop_on, p->stop_on_count, code))
        stop = 1;
    else if (p->retry_on_count > 0)
        stop = !in_list(p->retry_on, p->retry_on_count, code);
    else if (p->should_retry != NULL)
        stop = !p->should_retry(p->should_retry_ctx, code, st->attempt_);
    else
        stop = st->classify_ != NULL && !st->classify_(code);
    if (stop) {
        fire_failure(st, code, -1, RETRY_ERR_STOPPED);
        return finish(st, RETRY_ERR_STOPPED);
    }
    if (st->attempt_ >= st->max_attempts_) {
        fire_failure(st, code, -1, RETRY_ERR_EXHAUSTED);
        return finish(st, RETRY_ERR_EXHAUSTED);
    }
    delay = next_delay(st, &hinted, &backoff);
    if (st->deadline_ms_ > 0 && rc_now_ms(c) + delay >= st->deadline_ms_) {
        /* When only the server's Retry-After reaches past the deadline, the
         * call is over locally but not hopeless: it ends exhausted (and is
         * shipped when the policy ships), for retryd to wait the pause. */
        retry_err why = hinted && rc_now_ms(c) + backoff < st->deadline_ms_
                            ? RETRY_ERR_EXHAUSTED
                            : RETRY_ERR_DEADLINE;
        fire_failure(st, code, -1, why);
        return finish(st, why);
    }
    if (!rc_budget_take(c)) {
        fire_failure(st, code, -1, RETRY_ERR_BUDGET);
        return finish(st, RETRY_ERR_BUDGET);
    }
    fire_failure(st, code, delay, RETRY_OK);
    *delay_ms = delay;
    return 1;
}

void rc_call_attempt(retry_call_state *st)
{
    st->attempt_++;
    fire_simple(st, RC_EV_ATTEMPT, 0, RETRY_OK);
}

void rc_call_finish_exhausted(retry_call_state *st)
{
    if (st->phase_ != PH_RUNNING)
        return;
    *st->rc_ = st->last_code_;
    finish(st, RETRY_ERR_EXHAUSTED);
}

RETRY_API int retry_call_next(retry_call_state *st)
{
    retry_client *c = st->client_;
    int64_t delay = 0;

    if (st->phase_ == PH_START) {
        st->phase_ = PH_RUNNING;
        st->attempt_ = 1;
        fire_simple(st, RC_EV_ATTEMPT, 0, RETRY_OK);
        return 1;
    }
    if (!rc_call_judge(st, &delay))
        return 0;
    /* An async call (client/async.c) waits on its workers' timer instead
     * (the delay is left in prev_delay_ms_), and starts the attempt with
     * rc_call_attempt() when it is due. */
    if (st->flags_ & RC_FL_ASYNC)
        return 1;
    if (delay > 0 || (c != NULL && c->sleep_fn != NULL))
        rc_sleep_ms(c, delay);
    rc_call_attempt(st);
    return 1;
}
