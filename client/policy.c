/*
 * client/policy.c: the policy surface of a client: which policy a call runs
 * under (call site > scene > client defaults > built-in, retry/policy.h),
 * the scene table (retry_scene_register), listeners with the built-in log
 * output, and the retry budget (a token bucket shared by the client's calls).
 *
 * Sits between the application's call and the call loop (call.c): a call
 * resolves its effective policy once when it starts, then asks the budget
 * before every retry and reports every attempt to the listeners.
 *
 * Concurrency: the scene table is an immutable snapshot behind an atomic
 * pointer, replaced whole by retry_scene_register() under a mutex; replaced
 * tables, like every policy, list and string the client copied, are kept
 * until retry_client_destroy() (rc_keep), so a running call never sees
 * freed memory and readers take no lock. The budget is one atomic counter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "policy_int.h"

/* The built-in defaults (level 4). */
static const retry_policy builtin = {
    3, 0, 0.0, 0, RETRY_JITTER_NONE, NULL, 0, NULL, 0, 0, NULL, NULL, 1, NULL, NULL, NULL,
    0, NULL, NULL, NULL};

/* A non-NULL pointer for lists that are explicitly empty (count 0). */
static const int empty_list[1];

/* rc_keep_alloc() with pe->lock held. */
static void *keep_alloc_locked(rc_pe *pe, size_t size)
{
    rc_keep *k = calloc(1, sizeof *k + size);

    if (k == NULL)
        return NULL;
    k->next = pe->keep;
    pe->keep = k;
    return k->data;
}

void *rc_keep_alloc(rc_pe *pe, size_t size)
{
    void *p;

    pthread_mutex_lock(&pe->lock);
    p = keep_alloc_locked(pe, size);
    pthread_mutex_unlock(&pe->lock);
    return p;
}

char *rc_keep_strdup(rc_pe *pe, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = rc_keep_alloc(pe, n);

    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

void rc_policy_unset(retry_policy *p)
{
    static const retry_policy unset = RETRY_POLICY_DEFAULT;

    *p = unset;
}

static int list_unset(const int *list, size_t n)
{
    return list == NULL && n == 0;
}

void rc_policy_fill(retry_policy *dst, const retry_policy *src)
{
    if (dst->max_attempts == RETRY_UNSET)
        dst->max_attempts = src->max_attempts;
    if (dst->delay_ms == RETRY_UNSET)
        dst->delay_ms = src->delay_ms;
    if (dst->multiplier == -1.0)
        dst->multiplier = src->multiplier;
    if (dst->max_delay_ms == RETRY_UNSET)
        dst->max_delay_ms = src->max_delay_ms;
    if (dst->jitter == RETRY_JITTER_UNSET)
        dst->jitter = src->jitter;
    if (list_unset(dst->retry_on, dst->retry_on_count)) {
        dst->retry_on = src->retry_on;
        dst->retry_on_count = src->retry_on_count;
    }
    if (list_unset(dst->stop_on, dst->stop_on_count)) {
        dst->stop_on = src->stop_on;
        dst->stop_on_count = src->stop_on_count;
    }
    if (dst->recover == NULL) {
        dst->recover = src->recover;
        dst->recover_ctx = src->recover_ctx;
    }
    if (dst->send_queue == RETRY_UNSET)
        dst->send_queue = src->send_queue;
    if (dst->callback_url == NULL)
        dst->callback_url = src->callback_url;
    if (dst->max_elapsed_ms == RETRY_UNSET)
        dst->max_elapsed_ms = src->max_elapsed_ms;
    if (dst->should_retry == NULL) {
        dst->should_retry = src->should_retry;
        dst->should_retry_ctx = src->should_retry_ctx;
    }
    if (dst->listener == NULL)
        dst->listener = src->listener;
}

int rc_valid_scene(const char *s)
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

void rc_scene_mangle(const char *name, char *out, size_t outsz)
{
    size_t i;

    for (i = 0; name[i] != '\0' && i + 1 < outsz; i++) {
        char ch = name[i];
        if (ch >= 'a' && ch <= 'z')
            ch = (char)(ch - 'a' + 'A');
        else if (!((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')))
            ch = '_';
        out[i] = ch;
    }
    out[i] = '\0';
}

const char *rc_policy_problem(const retry_policy *p)
{
    if (p->max_attempts < 1)
        return "max_attempts must be >= 1";
    if (p->delay_ms < 0)
        return "delay_ms must be >= 0";
    if (p->max_delay_ms < 0)
        return "max_delay_ms must be >= 0";
    if (!(p->multiplier >= 0.0) || p->multiplier > 1e9)
        return "multiplier must be a finite number >= 0";
    if (p->jitter < RETRY_JITTER_NONE || p->jitter > RETRY_JITTER_DECORRELATED_V2)
        return "jitter must be one of RETRY_JITTER_NONE, _FULL, _EQUAL, _DECORRELATED, "
               "_DECORRELATED_V2";
    if (p->retry_on_count > 0 && p->retry_on == NULL)
        return "retry_on is NULL but retry_on_count is not 0";
    if (p->stop_on_count > 0 && p->stop_on == NULL)
        return "stop_on is NULL but stop_on_count is not 0";
    if (p->deadline_ms < 0)
        return "deadline_ms must be >= 0 (0 = none)";
    if (p->max_elapsed_ms < 0)
        return "max_elapsed_ms must be >= 0 (0 = none)";
    if (p->send_queue != 0 && p->send_queue != 1)
        return "send_queue must be 0 or 1";
    if (p->scene != NULL && !rc_valid_scene(p->scene))
        return "scene must match [A-Za-z0-9._:-]{1,128}";
    return NULL;
}

static const rc_scene *find_scene(const rc_pe *pe, const char *name)
{
    rc_scene_table *t = atomic_load_explicit(&((rc_pe *)pe)->scenes, memory_order_acquire);
    size_t i;

    if (t == NULL)
        return NULL;
    for (i = 0; i < t->n; i++)
        if (strcmp(t->items[i].name, name) == 0)
            return &t->items[i];
    return NULL;
}

void rc_policy_resolve(const retry_client *c, const retry_policy *call, retry_policy *out)
{
    if (call != NULL)
        *out = *call;
    else
        rc_policy_unset(out);
    if (c == NULL || c->pe == NULL) {
        rc_policy_fill(out, &builtin);
        return;
    }
    if (out->scene != NULL) {
        const rc_scene *s = find_scene(c->pe, out->scene);
        if (s != NULL)
            rc_policy_fill(out, &s->p);
    }
    rc_policy_fill(out, &c->pe->defaults);
}

RETRY_API retry_err retry_policy_resolve(const retry_client *client, const retry_policy *policy,
                                         retry_policy *out)
{
    if (out == NULL)
        return RETRY_ERR_INVALID_ARG;
    rc_policy_resolve(client, policy, out);
    return rc_policy_problem(out) == NULL ? RETRY_OK : RETRY_ERR_INVALID_ARG;
}

/* Copies src's lists and callback_url into kept memory. */
static retry_err keep_policy(rc_pe *pe, const retry_policy *src, retry_policy *dst)
{
    *dst = *src;
    if (src->retry_on_count > 0) {
        int *l = rc_keep_alloc(pe, src->retry_on_count * sizeof(int));
        if (l == NULL)
            return RETRY_ERR_NOMEM;
        memcpy(l, src->retry_on, src->retry_on_count * sizeof(int));
        dst->retry_on = l;
    }
    if (src->stop_on_count > 0) {
        int *l = rc_keep_alloc(pe, src->stop_on_count * sizeof(int));
        if (l == NULL)
            return RETRY_ERR_NOMEM;
        memcpy(l, src->stop_on, src->stop_on_count * sizeof(int));
        dst->stop_on = l;
    }
    /* A non-NULL empty list means "explicitly empty": keep it non-NULL. */
    if (src->retry_on != NULL && src->retry_on_count == 0)
        dst->retry_on = empty_list;
    if (src->stop_on != NULL && src->stop_on_count == 0)
        dst->stop_on = empty_list;
    if (src->callback_url != NULL) {
        dst->callback_url = rc_keep_strdup(pe, src->callback_url);
        if (dst->callback_url == NULL)
            return RETRY_ERR_NOMEM;
    }
    return RETRY_OK;
}

/* Checks a policy given at a level below the call site: call-site-only
 * fields unset, and valid once filled with the built-in defaults. */
static const char *level_problem(const retry_policy *p)
{
    retry_policy t = *p;

    if (p->deadline_ms != 0 || p->scene != NULL || p->ship_as != NULL)
        return "deadline_ms, scene and ship_as are call-site only and must be unset";
    if ((p->max_attempts < 1 && p->max_attempts != RETRY_UNSET) ||
        (p->delay_ms < 0 && p->delay_ms != RETRY_UNSET) ||
        (p->max_delay_ms < 0 && p->max_delay_ms != RETRY_UNSET) ||
        (p->max_elapsed_ms < 0 && p->max_elapsed_ms != RETRY_UNSET) ||
        (p->multiplier < 0 && p->multiplier != -1.0) ||
        (p->send_queue != RETRY_UNSET && p->send_queue != 0 && p->send_queue != 1))
        return "a field holds a negative value other than RETRY_UNSET";
    rc_policy_fill(&t, &builtin);
    return rc_policy_problem(&t);
}

static retry_err add_scene(rc_pe *pe, const char *name, const retry_policy *merged)
{
    rc_scene_table *old, *t;
    size_t i, n;
    retry_err e = RETRY_OK;

    pthread_mutex_lock(&pe->lock);
    old = atomic_load(&pe->scenes);
    n = old != NULL ? old->n : 0;
    t = keep_alloc_locked(pe, sizeof *t + (n + 1) * sizeof t->items[0]);
    if (t == NULL) {
        e = RETRY_ERR_NOMEM;
        goto out;
    }
    t->n = 0;
    for (i = 0; old != NULL && i < old->n; i++) {
        if (strcmp(old->items[i].name, name) == 0)
            continue;
        t->items[t->n++] = old->items[i];
    }
    t->items[t->n].name = name;
    t->items[t->n].p = *merged;
    t->n++;
    atomic_store_explicit(&pe->scenes, t, memory_order_release);
out:
    pthread_mutex_unlock(&pe->lock);
    return e;
}

static const rc_overlay *find_overlay(const rc_pe *pe, const char *name)
{
    char m[2 * RT_SCENE_MAX + 1];
    size_t i;

    for (i = 0; i < pe->file.noverlays; i++)
        if (pe->file.overlays[i].name != NULL && strcmp(pe->file.overlays[i].name, name) == 0)
            return &pe->file.overlays[i];
    rc_scene_mangle(name, m, sizeof m);
    for (i = 0; i < pe->file.noverlays; i++)
        if (pe->file.overlays[i].name == NULL && strcmp(pe->file.overlays[i].mangled, m) == 0)
            return &pe->file.overlays[i];
    return NULL;
}

RETRY_API retry_err retry_scene_register(retry_client *client, const char *name,
                                         const retry_policy *policy)
{
    const char *problem;
    const rc_overlay *ov;
    retry_policy merged, kept;
    const char *kname;
    retry_err e;

    if (client == NULL || client->pe == NULL || name == NULL || policy == NULL) {
        rc_log(client, RETRY_LOG_ERR, "retry_scene_register: client, name and policy must not be NULL");
        return RETRY_ERR_INVALID_ARG;
    }
    if (!rc_valid_scene(name)) {
        rc_log(client, RETRY_LOG_ERR,
               "retry_scene_register: scene \"%.140s\" must match [A-Za-z0-9._:-]{1,128}", name);
        return RETRY_ERR_INVALID_ARG;
    }
    problem = level_problem(policy);
    if (problem != NULL) {
        rc_log(client, RETRY_LOG_ERR, "retry_scene_register: scene %s: invalid policy: %s", name,
               problem);
        return RETRY_ERR_INVALID_ARG;
    }
    e = keep_policy(client->pe, policy, &kept);
    if (e != RETRY_OK)
        return e;
    kname = rc_keep_strdup(client->pe, name);
    if (kname == NULL)
        return RETRY_ERR_NOMEM;
    ov = find_overlay(client->pe, name);
    if (ov != NULL) {
        merged = ov->p;
        rc_policy_fill(&merged, &kept);
    } else {
        merged = kept;
    }
    e = add_scene(client->pe, kname, &merged);
    if (e == RETRY_OK)
        rc_log(client, RETRY_LOG_DEBUG, "scene %s registered%s", name,
               ov != NULL ? " (config file / environment keys win)" : "");
    return e;
}

/* ---- retry budget ----------------------------------------------------- */

int rc_budget_take(retry_client *c)
{
    rc_pe *pe = c != NULL ? c->pe : NULL;
    int_fast64_t cur;

    if (pe == NULL || pe->budget_max == 0)
        return 1;
    cur = atomic_load_explicit(&pe->budget_tokens, memory_order_relaxed);
    do {
        if (cur < pe->budget_cost) {
            atomic_fetch_add_explicit(&pe->budget_denied, 1, memory_order_relaxed);
            return 0;
        }
    } while (!atomic_compare_exchange_weak_explicit(&pe->budget_tokens, &cur,
                                                    cur - pe->budget_cost,
                                                    memory_order_relaxed, memory_order_relaxed));
    return 1;
}

void rc_budget_success(retry_client *c)
{
    rc_pe *pe = c != NULL ? c->pe : NULL;
    int_fast64_t cur, next;

    if (pe == NULL || pe->budget_max == 0 || pe->budget_refill == 0)
        return;
    cur = atomic_load_explicit(&pe->budget_tokens, memory_order_relaxed);
    do {
        if (cur >= pe->budget_max)
            return;
        next = cur + pe->budget_refill;
        if (next > pe->budget_max)
            next = pe->budget_max;
    } while (!atomic_compare_exchange_weak_explicit(&pe->budget_tokens, &cur, next,
                                                    memory_order_relaxed, memory_order_relaxed));
}

uint64_t rc_budget_denied(const retry_client *c)
{
    if (c == NULL || c->pe == NULL)
        return 0;
    return atomic_load(&((rc_pe *)c->pe)->budget_denied);
}

/* ---- listeners -------------------------------------------------------- */

/* The built-in log output: one line per attempt on log_cb, at INFO. */
static void log_failure(void *ctx, const retry_event *ev)
{
    const retry_client *c = ctx;
    const char *how;

    if (ev->delay_ms >= 0) {
        rc_log(c, RETRY_LOG_INFO, "scene %s: attempt %d/%d failed (%s): retrying in %lld ms",
               ev->scene, ev->attempt, ev->max_attempts, ev->what, (long long)ev->delay_ms);
        return;
    }
    switch (ev->outcome) {
    case RETRY_ERR_STOPPED:
        how = "not retryable, stopping";
        break;
    case RETRY_ERR_DEADLINE:
        how = "the next attempt would pass the deadline";
        break;
    case RETRY_ERR_BUDGET:
        how = "the client's retry budget is empty, not retrying";
        break;
    default:
        how = "attempts exhausted";
        break;
    }
    rc_log(c, RETRY_LOG_INFO, "scene %s: attempt %d/%d failed (%s): %s", ev->scene, ev->attempt,
           ev->max_attempts, ev->what, how);
}

static void log_success(void *ctx, const retry_event *ev)
{
    rc_log(ctx, RETRY_LOG_INFO, "scene %s: attempt %d/%d succeeded", ev->scene, ev->attempt,
           ev->max_attempts);
}

static void call_hook(const retry_listener *l, int kind, const retry_event *ev)
{
    void (*fn)(void *, const retry_event *) = NULL;

    switch (kind) {
    case RC_EV_ATTEMPT:
        fn = l->on_attempt;
        break;
    case RC_EV_FAILURE:
        fn = l->on_failure;
        break;
    case RC_EV_SUCCESS:
        fn = l->on_success;
        break;
    default:
        fn = l->on_exhausted;
        break;
    }
    if (fn != NULL)
        fn(l->ctx, ev);
}

int rc_has_listeners(const retry_client *c, const retry_policy *eff)
{
    return eff->listener != NULL ||
           (c != NULL && (c->log_cb != NULL || (c->pe != NULL && c->pe->nlisteners > 0)));
}

void rc_fire(const retry_client *c, const retry_policy *eff, int kind, const retry_event *ev)
{
    size_t i;

    if (c != NULL && c->log_cb != NULL) {
        retry_listener builtin_log = {NULL, log_failure, log_success, NULL, (void *)c};
        call_hook(&builtin_log, kind, ev);
    }
    if (c != NULL && c->pe != NULL)
        for (i = 0; i < c->pe->nlisteners; i++)
            call_hook(&c->pe->listeners[i], kind, ev);
    if (eff->listener != NULL)
        call_hook(eff->listener, kind, ev);
}

/* ---- construction ----------------------------------------------------- */

retry_err rc_pe_new(retry_client *c, const retry_client_conf *conf, char *errstr,
                    size_t errstr_size)
{
    rc_pe *pe = calloc(1, sizeof *pe);
    const char *path = conf->config_path;
    const char *problem;
    retry_policy d;
    retry_err e;
    size_t i;

    if (pe == NULL) {
        snprintf(errstr, errstr_size, "out of memory allocating the policy state");
        return RETRY_ERR_NOMEM;
    }
    pthread_mutex_init(&pe->lock, NULL);
    atomic_init(&pe->scenes, NULL);
    c->pe = pe;
    if (path == NULL)
        path = getenv("RETRY_CLIENT_CONFIG_PATH");
    e = rc_conf_read(pe, path, &pe->file, errstr, errstr_size);
    if (e != RETRY_OK)
        return e;

    /* Client defaults: file/env [defaults] > conf.defaults > built-in. */
    d = pe->file.defaults;
    if (conf->defaults != NULL) {
        retry_policy kept;
        problem = level_problem(conf->defaults);
        if (problem != NULL) {
            snprintf(errstr, errstr_size, "defaults: invalid policy: %s", problem);
            return RETRY_ERR_INVALID_ARG;
        }
        e = keep_policy(pe, conf->defaults, &kept);
        if (e != RETRY_OK) {
            snprintf(errstr, errstr_size, "out of memory copying the defaults");
            return e;
        }
        rc_policy_fill(&d, &kept);
    }
    rc_policy_fill(&d, &builtin);
    problem = rc_policy_problem(&d);
    if (problem != NULL) {
        snprintf(errstr, errstr_size, "client defaults: %s", problem);
        return RETRY_ERR_INVALID_ARG;
    }
    pe->defaults = d;

    /* Scenes of the file are scenes from the start. */
    for (i = 0; i < pe->file.noverlays; i++) {
        const rc_overlay *ov = &pe->file.overlays[i];
        if (ov->name == NULL)
            continue;
        e = add_scene(pe, ov->name, &ov->p);
        if (e != RETRY_OK) {
            snprintf(errstr, errstr_size, "out of memory building the scene table");
            return RETRY_ERR_NOMEM;
        }
    }

    if (conf->listener_count > 0) {
        if (conf->listeners == NULL) {
            snprintf(errstr, errstr_size, "listeners is NULL but listener_count is %zu",
                     conf->listener_count);
            return RETRY_ERR_INVALID_ARG;
        }
        pe->listeners = rc_keep_alloc(pe, conf->listener_count * sizeof(retry_listener));
        if (pe->listeners == NULL) {
            snprintf(errstr, errstr_size, "out of memory copying the listeners");
            return RETRY_ERR_NOMEM;
        }
        memcpy(pe->listeners, conf->listeners, conf->listener_count * sizeof(retry_listener));
        pe->nlisteners = conf->listener_count;
    }

    /* Client keys: the file/environment win over the struct. */
    if (pe->file.enabled >= 0)
        c->enabled = pe->file.enabled;
    pe->budget_max = pe->file.budget_tokens >= 0 ? pe->file.budget_tokens : conf->budget_tokens;
    pe->budget_cost =
        pe->file.budget_retry_cost >= 0 ? pe->file.budget_retry_cost : conf->budget_retry_cost;
    pe->budget_refill = pe->file.budget_success_refill >= 0 ? pe->file.budget_success_refill
                                                            : conf->budget_success_refill;
    if (pe->budget_max < 0 || pe->budget_cost < 1 || pe->budget_refill < 0) {
        snprintf(errstr, errstr_size,
                 "retry budget: budget_tokens (%lld) must be >= 0, budget_retry_cost (%lld) >= 1 "
                 "and budget_success_refill (%lld) >= 0",
                 (long long)pe->budget_max, (long long)pe->budget_cost,
                 (long long)pe->budget_refill);
        return RETRY_ERR_INVALID_ARG;
    }
    atomic_init(&pe->budget_tokens, pe->budget_max);
    atomic_init(&pe->budget_denied, 0);
    return RETRY_OK;
}

void rc_pe_free(retry_client *c)
{
    rc_pe *pe = c->pe;
    rc_keep *k, *next;

    if (pe == NULL)
        return;
    for (k = pe->keep; k != NULL; k = next) {
        next = k->next;
        free(k);
    }
    free(pe->file.overlays);
    pthread_mutex_destroy(&pe->lock);
    free(pe);
    c->pe = NULL;
}
