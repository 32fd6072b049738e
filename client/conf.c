/*
 * client/conf.c: the client config file (INI, read with inih like retryd's
 * own) and the RETRY_CLIENT_* environment overrides, read once by
 * retry_client_new() into an rc_file_conf that policy.c turns into client
 * defaults, scenes and client settings.
 *
 *     enabled = true                 ; keys before any section, or [client]
 *     budget_tokens = 500
 *     [defaults]
 *     max_attempts = 3
 *     delay_ms = 100
 *     [scene:payment.notify]
 *     max_attempts = 8
 *     jitter = decorrelated_v2
 *     retry_on = 502, 503, -7
 *
 * One table below describes every key (name, where it may appear, type,
 * bounds); it parses file values and environment values alike. Errors name
 * "path:line" or the environment variable. inih's run-time settings (its
 * global variables) are left alone: the library has no business changing
 * them. Our reader tracks line numbers and sections itself, left-trims lines
 * (so an indented line is a key, not a continuation) and rejects lines
 * longer than inih's buffer instead of letting them be split.
 */
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backoff.h"
#include "internal.h"
#include "policy_int.h"

extern char **environ;

enum { SC_CLIENT = 1, SC_POLICY = 2 };
enum { T_INT, T_MS, T_DOUBLE, T_BOOL, T_JITTER, T_LIST, T_URL };

typedef struct conf_key {
    const char *name;
    int scope;
    int type;
    int64_t lo, hi;
} conf_key;

#define MS_MAX 31536000000LL /* one year */

static const conf_key keys[] = {
    {"enabled", SC_CLIENT, T_BOOL, 0, 1},
    {"budget_tokens", SC_CLIENT, T_INT, 0, 1000000000000LL},
    {"budget_retry_cost", SC_CLIENT, T_INT, 1, 1000000000LL},
    {"budget_success_refill", SC_CLIENT, T_INT, 0, 1000000000LL},
    {"max_attempts", SC_POLICY, T_INT, 1, 1000000},
    {"delay_ms", SC_POLICY, T_MS, 0, MS_MAX},
    {"multiplier", SC_POLICY, T_DOUBLE, 0, 1000},
    {"max_delay_ms", SC_POLICY, T_MS, 0, MS_MAX},
    {"jitter", SC_POLICY, T_JITTER, 0, 0},
    {"retry_on", SC_POLICY, T_LIST, INT_MIN, INT_MAX},
    {"stop_on", SC_POLICY, T_LIST, INT_MIN, INT_MAX},
    {"max_elapsed_ms", SC_POLICY, T_MS, 0, MS_MAX},
    {"send_queue", SC_POLICY, T_BOOL, 0, 1},
    {"callback_url", SC_POLICY, T_URL, 0, 0},
};
#define NKEYS (sizeof keys / sizeof keys[0])

static const conf_key *find_key(const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < NKEYS; i++)
        if (strlen(keys[i].name) == len && strncasecmp(keys[i].name, name, len) == 0)
            return &keys[i];
    return NULL;
}

static int parse_i64(const char *v, int64_t *out)
{
    char *end;
    long long x;

    while (*v == ' ' || *v == '\t')
        v++;
    if (*v == '\0')
        return -1;
    errno = 0;
    x = strtoll(v, &end, 10);
    while (*end == ' ' || *end == '\t')
        end++;
    if (errno != 0 || *end != '\0')
        return -1;
    *out = x;
    return 0;
}

static int parse_bool(const char *v, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    size_t i;

    for (i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* Sets key k from value v in *fc (client keys) or *p (policy keys). Returns
 * 0, or -1 with a sentence in why. */
static int set_key(rc_pe *pe, const conf_key *k, const char *v, rc_file_conf *fc, retry_policy *p,
                   char *why, size_t whysz)
{
    int64_t x;
    int b;

    switch (k->type) {
    case T_INT:
    case T_MS:
        if (parse_i64(v, &x) != 0 || x < k->lo || x > k->hi) {
            snprintf(why, whysz, "%s must be a whole number%s in [%lld, %lld], not \"%.60s\"",
                     k->name, k->type == T_MS ? " of milliseconds" : "", (long long)k->lo,
                     (long long)k->hi, v);
            return -1;
        }
        if (strcmp(k->name, "budget_tokens") == 0)
            fc->budget_tokens = x;
        else if (strcmp(k->name, "budget_retry_cost") == 0)
            fc->budget_retry_cost = x;
        else if (strcmp(k->name, "budget_success_refill") == 0)
            fc->budget_success_refill = x;
        else if (strcmp(k->name, "max_attempts") == 0)
            p->max_attempts = (int)x;
        else if (strcmp(k->name, "delay_ms") == 0)
            p->delay_ms = x;
        else if (strcmp(k->name, "max_delay_ms") == 0)
            p->max_delay_ms = x;
        else
            p->max_elapsed_ms = x;
        return 0;
    case T_DOUBLE: {
        char *end;
        double d;
        errno = 0;
        d = strtod(v, &end);
        while (*end == ' ' || *end == '\t')
            end++;
        if (*v == '\0' || errno != 0 || *end != '\0' || !(d >= (double)k->lo) ||
            !(d <= (double)k->hi)) {
            snprintf(why, whysz, "%s must be a number in [%lld, %lld], not \"%.60s\"", k->name,
                     (long long)k->lo, (long long)k->hi, v);
            return -1;
        }
        p->multiplier = d;
        return 0;
    }
    case T_BOOL:
        if (parse_bool(v, &b) != 0) {
            snprintf(why, whysz, "%s must be true or false, not \"%.60s\"", k->name, v);
            return -1;
        }
        if (strcmp(k->name, "enabled") == 0)
            fc->enabled = b;
        else
            p->send_queue = b;
        return 0;
    case T_JITTER: {
        rt_jitter_kind j;
        if (rt_jitter_kind_parse(v, &j) != 0) {
            snprintf(why, whysz,
                     "jitter must be none, full, equal, decorrelated or decorrelated_v2, not "
                     "\"%.60s\"",
                     v);
            return -1;
        }
        p->jitter = (retry_jitter)j; /* the same numbers */
        return 0;
    }
    case T_LIST: {
        int tmp[64];
        size_t n = 0;
        const char *s = v;
        int *list;
        while (*s != '\0') {
            char *end;
            long x2;
            while (*s == ' ' || *s == '\t' || *s == ',')
                s++;
            if (*s == '\0')
                break;
            errno = 0;
            x2 = strtol(s, &end, 10);
            if (end == s || errno != 0 || x2 < INT_MIN || x2 > INT_MAX ||
                (*end != '\0' && *end != ',' && *end != ' ' && *end != '\t')) {
                snprintf(why, whysz,
                         "%s must be a list of whole numbers separated by commas, not \"%.60s\"",
                         k->name, v);
                return -1;
            }
            if (n == sizeof tmp / sizeof tmp[0]) {
                snprintf(why, whysz, "%s: more than 64 codes", k->name);
                return -1;
            }
            tmp[n++] = (int)x2;
            s = end;
        }
        /* An empty value is an explicitly empty list (non-NULL, count 0). */
        list = rc_keep_alloc(pe, (n > 0 ? n : 1) * sizeof(int));
        if (list == NULL) {
            snprintf(why, whysz, "out of memory");
            return -1;
        }
        memcpy(list, tmp, n * sizeof(int));
        if (strcmp(k->name, "retry_on") == 0) {
            p->retry_on = list;
            p->retry_on_count = n;
        } else {
            p->stop_on = list;
            p->stop_on_count = n;
        }
        return 0;
    }
    case T_URL:
    default:
        if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) {
            snprintf(why, whysz, "%s must be an http:// or https:// URL, not \"%.60s\"", k->name, v);
            return -1;
        }
        p->callback_url = rc_keep_strdup(pe, v);
        if (p->callback_url == NULL) {
            snprintf(why, whysz, "out of memory");
            return -1;
        }
        return 0;
    }
}

static rc_overlay *add_overlay(rc_pe *pe, rc_file_conf *fc, const char *name, const char *mangled)
{
    rc_overlay *o;

    if (fc->noverlays == fc->cap) {
        size_t cap = fc->cap ? fc->cap * 2 : 8;
        rc_overlay *n = realloc(fc->overlays, cap * sizeof *n);
        if (n == NULL)
            return NULL;
        fc->overlays = n;
        fc->cap = cap;
    }
    o = &fc->overlays[fc->noverlays];
    memset(o, 0, sizeof *o);
    rc_policy_unset(&o->p);
    o->name = name != NULL ? rc_keep_strdup(pe, name) : NULL;
    o->mangled = rc_keep_strdup(pe, mangled);
    if ((name != NULL && o->name == NULL) || o->mangled == NULL)
        return NULL;
    fc->noverlays++;
    return o;
}

/* ---- the file ---------------------------------------------------------- */

typedef struct file_state {
    rc_pe *pe;
    rc_file_conf *fc;
    const char *path;
    FILE *f;
    char *buf;
    size_t cap;
    int line;
    int scope;         /* SC_CLIENT or SC_POLICY */
    retry_policy *cur; /* the section's policy (SC_POLICY) */
    char section[160];
    int failed;
    char *err;
    size_t errsz;
} file_state;

static void failf(file_state *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void failf(file_state *st, const char *fmt, ...)
{
    va_list ap;

    if (st->failed)
        return;
    st->failed = 1;
    va_start(ap, fmt);
    vsnprintf(st->err, st->errsz, fmt, ap);
    va_end(ap);
}

/* Opens section s ("client", "defaults" or "scene:NAME"). */
static void open_section(file_state *st, const char *s, size_t len)
{
    char name[RT_SCENE_MAX + 2];
    size_t i;

    snprintf(st->section, sizeof st->section, "%.*s", (int)(len < 150 ? len : 150), s);
    if (len == 6 && strncmp(s, "client", 6) == 0) {
        st->scope = SC_CLIENT;
        st->cur = NULL;
        return;
    }
    if (len == 8 && strncmp(s, "defaults", 8) == 0) {
        st->scope = SC_POLICY;
        st->cur = &st->fc->defaults;
        return;
    }
    if (len > 6 && strncmp(s, "scene:", 6) == 0 && len - 6 < sizeof name) {
        char m[2 * RT_SCENE_MAX + 1];
        rc_overlay *o = NULL;
        memcpy(name, s + 6, len - 6);
        name[len - 6] = '\0';
        if (!rc_valid_scene(name)) {
            failf(st, "%s:%d: [scene:%s]: the scene name must match [A-Za-z0-9._:-]{1,128}",
                  st->path, st->line, name);
            return;
        }
        for (i = 0; i < st->fc->noverlays; i++)
            if (st->fc->overlays[i].name != NULL && strcmp(st->fc->overlays[i].name, name) == 0)
                o = &st->fc->overlays[i];
        if (o == NULL) {
            rc_scene_mangle(name, m, sizeof m);
            o = add_overlay(st->pe, st->fc, name, m);
            if (o == NULL) {
                failf(st, "%s:%d: out of memory", st->path, st->line);
                return;
            }
        }
        st->scope = SC_POLICY;
        /* overlays may move when the array grows: remember the index. */
        st->cur = NULL;
        snprintf(st->section, sizeof st->section, "scene:%s", name);
        return;
    }
    failf(st, "%s:%d: unknown section [%.*s] (expected [client], [defaults] or [scene:NAME])",
          st->path, st->line, (int)(len < 80 ? len : 80), s);
}

static retry_policy *section_policy(file_state *st)
{
    size_t i;

    if (st->cur != NULL)
        return st->cur;
    for (i = 0; i < st->fc->noverlays; i++)
        if (st->fc->overlays[i].name != NULL &&
            strcmp(st->fc->overlays[i].name, st->section + 6) == 0)
            return &st->fc->overlays[i].p;
    return NULL;
}

static char *reader(char *str, int num, void *stream)
{
    file_state *st = stream;
    ssize_t n;
    char *s;

    if (st->failed)
        return NULL;
    n = getline(&st->buf, &st->cap, st->f);
    if (n < 0)
        return NULL;
    st->line++;
    s = st->buf;
    if (st->line == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
        s += 3;
    while (*s == ' ' || *s == '\t')
        s++;
    if (num < 2 || strlen(s) > (size_t)num - 1) {
        failf(st, "%s:%d: line longer than %d bytes", st->path, st->line, num - 2);
        return NULL;
    }
    if (*s == '[') {
        char *end = strchr(s, ']');
        if (end == NULL) {
            failf(st, "%s:%d: '[' without ']'", st->path, st->line);
            return NULL;
        }
        open_section(st, s + 1, (size_t)(end - s - 1));
        if (st->failed)
            return NULL;
    }
    memcpy(str, s, strlen(s) + 1);
    return str;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    file_state *st = user;
    const conf_key *k;
    retry_policy *p = NULL;
    char why[256];

    (void)section; /* tracked by the reader: inih truncates long names */
    if (st->failed)
        return 0;
    k = find_key(name, strlen(name));
    if (k == NULL || k->scope != st->scope) {
        failf(st, "%s:%d: [%s] %s: unknown key%s", st->path, st->line,
              st->section[0] != '\0' ? st->section : "client", name,
              k == NULL ? ""
              : st->scope == SC_CLIENT
                  ? " here (policy keys go in [defaults] or [scene:NAME])"
                  : " here (client keys go before any section or in [client])");
        return 0;
    }
    if (st->scope == SC_POLICY) {
        p = section_policy(st);
        if (p == NULL) {
            failf(st, "%s:%d: internal error: no policy for [%s]", st->path, st->line,
                  st->section);
            return 0;
        }
    }
    if (set_key(st->pe, k, value, st->fc, p, why, sizeof why) != 0) {
        failf(st, "%s:%d: [%s] %s", st->path, st->line,
              st->section[0] != '\0' ? st->section : "client", why);
        return 0;
    }
    return 1;
}

static retry_err read_file(rc_pe *pe, const char *path, rc_file_conf *fc, char *err, size_t errsz)
{
    file_state st;
    int rc;

    memset(&st, 0, sizeof st);
    st.pe = pe;
    st.fc = fc;
    st.path = path;
    st.scope = SC_CLIENT;
    st.err = err;
    st.errsz = errsz;
    st.f = fopen(path, "r");
    if (st.f == NULL) {
        snprintf(err, errsz, "config file %s: cannot open: %s", path, strerror(errno));
        return RETRY_ERR_INVALID_ARG;
    }
    rc = ini_parse_stream(reader, &st, handler, &st);
    if (!st.failed && ferror(st.f))
        failf(&st, "%s: cannot read: %s", path, strerror(errno));
    fclose(st.f);
    free(st.buf);
    if (!st.failed && rc == -2)
        failf(&st, "%s: out of memory", path);
    if (!st.failed && rc > 0)
        failf(&st, "%s:%d: expected 'key = value', '[section]' or a comment", path, rc);
    if (!st.failed && rc != 0)
        failf(&st, "%s: cannot be read", path);
    if (st.failed)
        return strstr(err, "out of memory") != NULL ? RETRY_ERR_NOMEM : RETRY_ERR_INVALID_ARG;
    return RETRY_OK;
}

/* ---- the environment --------------------------------------------------- */

static const char ENV_PREFIX[] = "RETRY_CLIENT_";

static retry_err env_fail(char *err, size_t errsz, const char *var, size_t varlen,
                          const char *why)
{
    snprintf(err, errsz, "environment variable %.*s: %s", (int)(varlen < 200 ? varlen : 200), var,
             why);
    return RETRY_ERR_INVALID_ARG;
}

/* One RETRY_CLIENT_* variable: var is "NAME=value". */
static retry_err apply_env_var(rc_pe *pe, rc_file_conf *fc, const char *var, char *err,
                               size_t errsz)
{
    const char *eq = strchr(var, '=');
    const char *rest = var + sizeof ENV_PREFIX - 1;
    size_t varlen, restlen, i;
    const conf_key *k = NULL;
    char why[256];

    if (eq == NULL)
        return RETRY_OK;
    varlen = (size_t)(eq - var);
    restlen = (size_t)(eq - rest);
    if (varlen == strlen("RETRY_CLIENT_CONFIG_PATH") &&
        strncmp(var, "RETRY_CLIENT_CONFIG_PATH", varlen) == 0)
        return RETRY_OK; /* read by rc_pe_new() */

    if (restlen > 9 && strncmp(rest, "DEFAULTS_", 9) == 0) {
        k = find_key(rest + 9, restlen - 9);
        if (k == NULL || k->scope != SC_POLICY)
            return env_fail(err, errsz, var, varlen, "no key of [defaults] has this name");
        if (set_key(pe, k, eq + 1, fc, &fc->defaults, why, sizeof why) != 0)
            return env_fail(err, errsz, var, varlen, why);
        return RETRY_OK;
    }
    if (restlen > 6 && strncmp(rest, "SCENE_", 6) == 0) {
        /* SCENE_<NAME>_<KEY>: the longest key that ends the name wins. */
        const char *s = rest + 6;
        size_t slen = restlen - 6, best = 0, klen, mlen;
        char m[2 * RT_SCENE_MAX + 1];
        int matched = 0;
        for (i = 0; i < NKEYS; i++) {
            klen = strlen(keys[i].name);
            if (keys[i].scope != SC_POLICY || klen + 2 > slen || klen <= best)
                continue;
            if (s[slen - klen - 1] == '_' && strncasecmp(s + slen - klen, keys[i].name, klen) == 0) {
                k = &keys[i];
                best = klen;
            }
        }
        if (k == NULL)
            return env_fail(err, errsz, var, varlen,
                            "expected RETRY_CLIENT_SCENE_<NAME>_<KEY> with a policy key");
        mlen = slen - best - 1;
        if (mlen >= sizeof m)
            return env_fail(err, errsz, var, varlen, "scene name too long");
        memcpy(m, s, mlen);
        m[mlen] = '\0';
        for (i = 0; i < fc->noverlays; i++) {
            if (strcmp(fc->overlays[i].mangled, m) != 0)
                continue;
            if (set_key(pe, k, eq + 1, fc, &fc->overlays[i].p, why, sizeof why) != 0)
                return env_fail(err, errsz, var, varlen, why);
            matched = 1;
        }
        if (!matched) {
            rc_overlay *o = add_overlay(pe, fc, NULL, m);
            if (o == NULL)
                return env_fail(err, errsz, var, varlen, "out of memory");
            if (set_key(pe, k, eq + 1, fc, &o->p, why, sizeof why) != 0)
                return env_fail(err, errsz, var, varlen, why);
        }
        return RETRY_OK;
    }
    k = find_key(rest, restlen);
    if (k == NULL || k->scope != SC_CLIENT)
        return env_fail(err, errsz, var, varlen,
                        "no such client key (expected RETRY_CLIENT_<KEY>, "
                        "RETRY_CLIENT_DEFAULTS_<KEY> or RETRY_CLIENT_SCENE_<NAME>_<KEY>)");
    if (set_key(pe, k, eq + 1, fc, NULL, why, sizeof why) != 0)
        return env_fail(err, errsz, var, varlen, why);
    return RETRY_OK;
}

retry_err rc_conf_read(rc_pe *pe, const char *path, rc_file_conf *out, char *errstr,
                       size_t errstr_size)
{
    char **e;
    retry_err err;
    char dummy[1];

    if (errstr == NULL || errstr_size == 0) {
        errstr = dummy;
        errstr_size = sizeof dummy;
    }
    memset(out, 0, sizeof *out);
    out->enabled = -1;
    out->budget_tokens = out->budget_retry_cost = out->budget_success_refill = -1;
    rc_policy_unset(&out->defaults);
    if (path != NULL) {
        err = read_file(pe, path, out, errstr, errstr_size);
        if (err != RETRY_OK)
            return err;
    }
    /* Environment after the file: it wins. Scene variables are applied to
     * the file's scenes (matched by mangled name) and kept for scenes
     * registered later. */
    for (e = environ; e != NULL && *e != NULL; e++) {
        if (strncmp(*e, ENV_PREFIX, sizeof ENV_PREFIX - 1) != 0)
            continue;
        err = apply_env_var(pe, out, *e, errstr, errstr_size);
        if (err != RETRY_OK)
            return err;
    }
    return RETRY_OK;
}
