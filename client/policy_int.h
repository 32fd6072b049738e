/*
 * client/policy_int.h: the policy surface of a client, private to the
 * library: client defaults, the scene table, listeners, the retry budget
 * (policy.c) and the config file / environment reader (conf.c).
 *
 * Flow: retry_client_new() builds an rc_pe (conf.c reads the file and the
 * environment); every call resolves its effective policy here when it
 * starts (call site > scene > defaults > built-in), fires listeners around
 * each attempt and asks the budget before each retry (call.c).
 */
#ifndef RC_POLICY_INT_H
#define RC_POLICY_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "retry/retry.h"
#include "retry/scene.h"

/* Memory kept until the client is destroyed (policies, lists, strings and
 * scene tables, which running calls may still read). */
typedef struct rc_keep {
    struct rc_keep *next;
    max_align_t data[];
} rc_keep;

typedef struct rc_scene {
    const char *name;
    retry_policy p; /* merged: file/env overlay over the registered policy */
} rc_scene;

/* An immutable snapshot; replaced as a whole by retry_scene_register(). */
typedef struct rc_scene_table {
    size_t n;
    rc_scene items[];
} rc_scene_table;

/* A [scene:NAME] section and/or RETRY_CLIENT_SCENE_* variables. */
typedef struct rc_overlay {
    const char *name;    /* from the file; NULL for environment-only */
    const char *mangled; /* NAME as in environment variable names */
    retry_policy p;
} rc_overlay;

/* What the config file and the environment say (conf.c). */
typedef struct rc_file_conf {
    int enabled; /* -1: not given */
    int64_t budget_tokens, budget_retry_cost, budget_success_refill; /* -1: not given */
    retry_policy defaults; /* overlay */
    rc_overlay *overlays;
    size_t noverlays, cap;
} rc_file_conf;

typedef struct rc_pe {
    pthread_mutex_t lock; /* keep list and scene table writers */
    rc_keep *keep;
    retry_policy defaults; /* every field set */
    _Atomic(rc_scene_table *) scenes;
    rc_file_conf file;
    retry_listener *listeners;
    size_t nlisteners;
    int64_t budget_max, budget_cost, budget_refill; /* budget_max 0 = off */
    atomic_int_fast64_t budget_tokens;
    atomic_uint_fast64_t budget_denied;
} rc_pe;

/* Allocates size zeroed bytes kept until rc_pe_free(); NULL on ENOMEM.
 * Thread-safe. */
void *rc_keep_alloc(rc_pe *pe, size_t size);
char *rc_keep_strdup(rc_pe *pe, const char *s);

/* Builds the client's policy surface from conf, the config file and the
 * environment, and applies the file's client keys to c (enabled). */
retry_err rc_pe_new(retry_client *c, const retry_client_conf *conf, char *errstr,
                    size_t errstr_size);
void rc_pe_free(retry_client *c);

/* Reads path (may be NULL) and the environment into out (conf.c). */
retry_err rc_conf_read(rc_pe *pe, const char *path, rc_file_conf *out, char *errstr,
                       size_t errstr_size);

/* Marks every field of p unset. */
void rc_policy_unset(retry_policy *p);
/* Fills the unset fields of dst from src (call-site-only fields excepted). */
void rc_policy_fill(retry_policy *dst, const retry_policy *src);
/* NULL when the resolved policy p is usable, else a sentence. */
const char *rc_policy_problem(const retry_policy *p);
/* Resolves a call's effective policy into out (every field set). */
void rc_policy_resolve(const retry_client *c, const retry_policy *call, retry_policy *out);
/* Scene names: [A-Za-z0-9._:-]{1,128}. */
int rc_valid_scene(const char *s);
/* NAME as it appears in RETRY_CLIENT_SCENE_<NAME>_<KEY> (out: 2*128+1). */
void rc_scene_mangle(const char *name, char *out, size_t outsz);

/* Retry budget: 1 when a retry may be made (tokens taken, or no budget). */
int rc_budget_take(retry_client *c);
void rc_budget_success(retry_client *c);
uint64_t rc_budget_denied(const retry_client *c);

/* Listeners: the built-in log output, the client's, then the call's. */
enum { RC_EV_ATTEMPT, RC_EV_FAILURE, RC_EV_SUCCESS, RC_EV_EXHAUSTED };
int rc_has_listeners(const retry_client *c, const retry_policy *eff);
void rc_fire(const retry_client *c, const retry_policy *eff, int kind, const retry_event *ev);

#endif
