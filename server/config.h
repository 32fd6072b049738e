/*
 * config.h: retryd's configuration: an INI file (inih) overridden by
 * environment variables RETRYD_<SECTION>_<KEY> (upper case, '.' and '-' and ':'
 * become '_'), validated against one table of keys (name, type, bounds,
 * default, description) that also prints --help-config and generates
 * docs/configuration.md.
 */
#ifndef RD_CONFIG_H
#define RD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "task.h"

typedef struct rd_kv {
    char *key;
    char *value;
} rd_kv;

/* One [scene:NAME] section: any policy field (policy.set says which were
 * given) plus owners (comma-separated e-mail addresses). */
typedef struct rd_scene_conf {
    char *name;
    rt_policy policy;
    char **owners;
    size_t nowners;
    int max_inflight;         /* attempts of this scene at once on a node; 0 = no limit */
    /* Stop rule on the response body: when the value at this JSON Pointer
     * (RFC 6901) is one of the values, the task is stopped. NULL = none. */
    char *stop_on_body_pointer;
    char **stop_on_body_values;
    size_t nstop_on_body_values;
} rd_scene_conf;

typedef struct rd_config {
    /* [node] */
    char *node_id;            /* id; default "<hostname>:<pid>" */
    /* [mysql] */
    char *mysql_host;         /* host (127.0.0.1) */
    int mysql_port;           /* port (3306) */
    char *mysql_socket;       /* socket (NULL = TCP) */
    char *mysql_user;         /* user (retry) */
    char *mysql_password;     /* password ("") */
    char *mysql_database;     /* database (retry) */
    /* [kafka] */
    char *kafka_brokers;      /* brokers (required unless kafka is disabled) */
    char *kafka_topic;        /* topic (retry.tasks) */
    char *kafka_group_id;     /* group_id (retryd) */
    char *kafka_poison_topic; /* not used in v1; reserved */
    rd_kv *kafka_props;       /* any other key, passed to librdkafka as-is */
    size_t nkafka_props;
    /* [http] */
    char *http_listen;        /* listen (127.0.0.1:7788) */
    char *http_token;         /* token (NULL = no auth) */
    /* [dispatch] */
    char *dispatch_token;     /* token sent to dispatch endpoints (NULL = none) */
    /* [scheduler] */
    int64_t scan_interval_ms; /* 1000, 10..3600000 */
    int batch_size;           /* 500, 1..10000 */
    int64_t lease_ms;         /* 30000, 1000..86400000 */
    int max_inflight;         /* 256, 1..100000 */
    double breaker_failure_ratio;  /* 0 = breaker off (default) */
    int breaker_window;            /* 50 */
    int breaker_min_attempts;      /* 20 */
    int64_t breaker_cooldown_ms;   /* 30000 */
    rt_policy defaults;       /* default_* keys; every RT_POL_* bit set but RT_POL_DEADLINE */
    /* [alerts] */
    char *alerts_webhook_url; /* webhook_url (NULL = none) */
    char *alerts_smtp_url;    /* smtp_url (NULL = none), e.g. smtp://host:25 */
    char *alerts_smtp_from;   /* smtp_from */
    char **alerts_smtp_to;    /* smtp_to: fallback recipients when a task and its
                               * scene name no owners (added by the config module) */
    size_t nalerts_smtp_to;
    /* [retention] */
    int64_t retention_succeeded_max_age_ms; /* 7 days; 0 = keep */
    int64_t retention_attempt_max_age_ms;   /* 30 days; 0 = keep */
    int retention_batch_size;               /* 500 */
    int64_t retention_interval_ms;          /* 60000 */
    /* [log] */
    char *log_level;          /* level (info) */
    char *log_format;         /* format (text | json) */
    /* [scene:NAME] sections */
    rd_scene_conf *scenes;
    size_t nscenes;
} rd_config;

/* Loads `path` (NULL = defaults only), applies RETRYD_* environment overrides
 * from `envp` (NULL-terminated "K=V" array; NULL = the process environment),
 * validates everything. Returns 0, or -1 with one sentence in err naming the
 * file, line, section and key (e.g. "retryd.ini:12: [scheduler] batch_size:
 * must be an integer in 1..10000, got 'x'"). On error *out is left freed.
 * Not thread-safe: it sets inih's process-wide run-time options; call it from
 * one thread (start-up). docs/configuration.md lists the rules. */
int rd_config_load(const char *path, char *const *envp, rd_config *out, char *err,
                   size_t errsz);
void rd_config_free(rd_config *c);

/* Loads `path` again for a reload (SIGHUP). Keys marked reloadable in the
 * table (scenes, scheduler and retention settings, alerts, log level) take
 * the file's new values; any other key that changed (MySQL, Kafka, HTTP
 * listen, node id, log format) keeps its running value and is named in
 * `kept` ("[mysql] host, [http] listen"; "" when none) so the caller can
 * say a restart is needed. Returns 0 with *out filled (the caller frees it),
 * or -1 with a sentence in err; `old` is never changed. */
int rd_config_reload(const rd_config *old, const char *path, char *const *envp, rd_config *out,
                     char *kept, size_t keptsz, char *err, size_t errsz);

/* The [scene:NAME] section for a scene, or NULL. */
const rd_scene_conf *rd_config_scene(const rd_config *c, const char *scene);

/* Resolves a task's effective policy: fields present in `msg` (may be NULL)
 * win over the scene section, which wins over [scheduler] default_*. The
 * result has every RT_POL_* bit set except RT_POL_DEADLINE when no layer
 * gives a deadline. */
void rd_config_resolve_policy(const rd_config *c, const char *scene, const rt_policy *msg,
                              rt_policy *out);

/* Prints every key with type, bounds, default and description (--help-config). */
void rd_config_print_help(FILE *f);
/* Writes docs/configuration.md (Markdown) from the same table. */
void rd_config_write_markdown(FILE *f);
/* Prints the effective config with password and token masked (--check-config). */
void rd_config_dump(const rd_config *c, FILE *f);

#endif
