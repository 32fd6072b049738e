/*
 * config.c: retryd's configuration, read once at start-up before anything
 * else runs (main → config → ingest/store/scheduler/dispatcher).
 *
 * Every key lives in one table, `keys[]` below: section, name, type, bounds,
 * default, reloadable flag, description and where the value is stored. The
 * same table parses the INI file (inih), applies RETRYD_* environment
 * overrides, fills the defaults, prints --help-config, writes
 * docs/configuration.md and dumps the effective config, so the code and the
 * documentation cannot disagree (Redis src/config.c, librdkafka
 * rdkafka_conf.c). Defaults are written as text and go through the same
 * parser as file values, so a default is valid by construction (test_config
 * checks that loading no file succeeds).
 *
 * The policy keys are listed once (section RDS_POLICY): they appear as
 * default_<key> in [scheduler] (stored in rd_config.defaults) and as <key> in
 * every [scene:NAME] section (stored in that scene's policy).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backoff.h"
#include "jsonptr.h"

/* Longest accepted line in the INI file, newline included. */
#define RD_CONFIG_MAX_LINE 4096
/* Longest value quoted back in an error message. */
#define RD_ECHO_MAX 64

typedef enum rd_section {
    RDS_NODE,
    RDS_MYSQL,
    RDS_KAFKA,
    RDS_HTTP,
    RDS_DISPATCH,
    RDS_SCHEDULER,
    RDS_POLICY, /* [scheduler] default_<key> and [scene:NAME] <key> */
    RDS_SCENE,  /* [scene:NAME] only */
    RDS_ALERTS,
    RDS_RETENTION,
    RDS_LOG
} rd_section;

typedef enum rd_type {
    RDT_STRING,      /* char *; lo = minimum length */
    RDT_INT,         /* int in lo..hi */
    RDT_MS,          /* int64_t milliseconds in lo..hi */
    RDT_DOUBLE,      /* double in lo..hi */
    RDT_BOOL,        /* int, 0 or 1 */
    RDT_CHOICE,      /* char *, one of choices[] */
    RDT_BACKOFF,     /* rt_backoff_kind */
    RDT_JITTER,      /* rt_jitter_kind */
    RDT_STATUS_LIST, /* int[RT_MAX_STATUS_LIST] at off, size_t count at noff */
    RDT_LEVELS,      /* int64_t[RT_MAX_LEVELS] at off, size_t count at noff */
    RDT_EMAILS,      /* char ** at off, size_t count at noff */
    RDT_STRINGS      /* like RDT_EMAILS, any non-empty items */
} rd_type;

enum {
    RDF_RELOADABLE = 1 << 0, /* informational until retryd reloads config */
    RDF_SECRET = 1 << 1,     /* never echoed in errors, masked in dumps */
    RDF_EMPTY_NULL = 1 << 2  /* an empty value means "not set" (NULL) */
};

/* Extra validation for string values (the table's apply hook). Returns 0, or
 * -1 with the reason (the end of a sentence) in why. */
typedef int (*rd_check_fn)(const char *value, char *why, size_t whysz);

typedef struct rd_key {
    rd_section sec;
    const char *name;
    rd_type type;
    double lo, hi;              /* bounds; RDT_STRING: lo = minimum length */
    const char *def;            /* default as text, parsed like a file value; NULL = unset */
    const char *def_doc;        /* shown instead of def in help and docs */
    const char *const *choices; /* RDT_CHOICE, NULL-terminated */
    unsigned flags;             /* RDF_* */
    size_t off;                 /* offsetof into rd_config, rt_policy or rd_scene_conf */
    size_t noff;                /* count field of list types */
    unsigned polbit;            /* RDS_POLICY: the RT_POL_* bit */
    rd_check_fn check;
    const char *desc;
} rd_key;

static int check_node_id(const char *v, char *why, size_t whysz);
static int check_listen(const char *v, char *why, size_t whysz);
static int check_topic(const char *v, char *why, size_t whysz);
static int check_http_url(const char *v, char *why, size_t whysz);
static int check_smtp_url(const char *v, char *why, size_t whysz);
static int check_email(const char *v, char *why, size_t whysz);
static int check_json_pointer(const char *v, char *why, size_t whysz);

static const char *const log_levels[] = {"err", "warning", "notice", "info", "debug", NULL};
static const char *const log_formats[] = {"text", "json", NULL};

#define CFG(f) offsetof(rd_config, f)
#define POL(f) offsetof(rt_policy, f)

/* clang-format off */
static const rd_key keys[] = {
    {RDS_NODE, "id", RDT_STRING, 1, 128, NULL, "<hostname>:<pid>", NULL, 0,
     CFG(node_id), 0, 0, check_node_id,
     "Name of this node, stamped on the tasks it leases and the attempts it makes. "
     "Must be unique among the nodes sharing one MySQL database."},

    {RDS_MYSQL, "host", RDT_STRING, 1, 0, "127.0.0.1", NULL, NULL, 0,
     CFG(mysql_host), 0, 0, NULL, "MySQL or MariaDB server host name or address."},
    {RDS_MYSQL, "port", RDT_INT, 1, 65535, "3306", NULL, NULL, 0,
     CFG(mysql_port), 0, 0, NULL, "Server TCP port."},
    {RDS_MYSQL, "socket", RDT_STRING, 0, 0, NULL, NULL, NULL, RDF_EMPTY_NULL,
     CFG(mysql_socket), 0, 0, NULL,
     "Path of the server's Unix socket; when set it is used instead of TCP."},
    {RDS_MYSQL, "user", RDT_STRING, 1, 0, "retry", NULL, NULL, 0,
     CFG(mysql_user), 0, 0, NULL, "User name."},
    {RDS_MYSQL, "password", RDT_STRING, 0, 0, "", NULL, NULL, RDF_SECRET,
     CFG(mysql_password), 0, 0, NULL,
     "Password; prefer the environment variable over the file."},
    {RDS_MYSQL, "database", RDT_STRING, 1, 0, "retry", NULL, NULL, 0,
     CFG(mysql_database), 0, 0, NULL, "Database holding retry_task, retry_attempt and retry_poison."},

    {RDS_KAFKA, "brokers", RDT_STRING, 0, 0, NULL, NULL, NULL, RDF_EMPTY_NULL,
     CFG(kafka_brokers), 0, 0, NULL,
     "Bootstrap brokers, host:port[,host:port...] (librdkafka bootstrap.servers). "
     "No default: set it to consume retry tasks from Kafka."},
    {RDS_KAFKA, "topic", RDT_STRING, 1, 249, "retry.tasks", NULL, NULL, 0,
     CFG(kafka_topic), 0, 0, check_topic, "Topic the retry tasks are read from."},
    {RDS_KAFKA, "group_id", RDT_STRING, 1, 0, "retryd", NULL, NULL, 0,
     CFG(kafka_group_id), 0, 0, NULL,
     "Consumer group shared by all retryd nodes (librdkafka group.id)."},

    {RDS_HTTP, "listen", RDT_STRING, 1, 0, "127.0.0.1:7788", NULL, NULL, 0,
     CFG(http_listen), 0, 0, check_listen,
     "Address of the HTTP API, host:port or [ipv6]:port."},
    {RDS_HTTP, "token", RDT_STRING, 0, 0, NULL, NULL, NULL, RDF_SECRET | RDF_EMPTY_NULL,
     CFG(http_token), 0, 0, NULL,
     "When set, requests to /api/ need the header \"Authorization: Bearer <token>\"."},

    {RDS_DISPATCH, "token", RDT_STRING, 0, 0, NULL, NULL, NULL,
     RDF_RELOADABLE | RDF_SECRET | RDF_EMPTY_NULL, CFG(dispatch_token), 0, 0, NULL,
     "Shared secret sent to the dispatch endpoints of client applications (tasks with "
     "target type dispatch) as \"Authorization: Bearer <token>\"; the same value as the "
     "endpoint's retry_dispatch_conf.token. Unset = no Authorization header."},

    {RDS_SCHEDULER, "scan_interval_ms", RDT_MS, 10, 3600000, "1000", NULL, NULL,
     RDF_RELOADABLE, CFG(scan_interval_ms), 0, 0, NULL, "How often due tasks are looked for."},
    {RDS_SCHEDULER, "batch_size", RDT_INT, 1, 10000, "500", NULL, NULL, RDF_RELOADABLE,
     CFG(batch_size), 0, 0, NULL, "Most due tasks claimed by one scan."},
    {RDS_SCHEDULER, "lease_ms", RDT_MS, 1000, 86400000, "30000", NULL, NULL, RDF_RELOADABLE,
     CFG(lease_ms), 0, 0, NULL,
     "How long a claimed task stays with this node; another node takes over a "
     "task whose lease has expired."},
    {RDS_SCHEDULER, "max_inflight", RDT_INT, 1, 100000, "256", NULL, NULL, RDF_RELOADABLE,
     CFG(max_inflight), 0, 0, NULL, "Most attempts running at the same time on this node."},

    {RDS_SCHEDULER, "breaker_failure_ratio", RDT_DOUBLE, 0.0, 1.0, "0", NULL, NULL,
     RDF_RELOADABLE, CFG(breaker_failure_ratio), 0, 0, NULL,
     "Circuit breaker, per scene and per node: when at least breaker_min_attempts of the "
     "scene's last breaker_window attempts are known and this fraction of them failed "
     "(error status, timeout, no connection), the scene is not dispatched for "
     "breaker_cooldown_ms; its due tasks are pushed back, one alert is sent. 0 = off "
     "(the default: every task reaching retryd has already failed once, so a burst of "
     "new tasks fails often by nature; pick a ratio that fits your targets, e.g. 0.95)."},
    {RDS_SCHEDULER, "breaker_window", RDT_INT, 1, 1000, "50", NULL, NULL, RDF_RELOADABLE,
     CFG(breaker_window), 0, 0, NULL, "How many recent attempts of a scene the breaker judges."},
    {RDS_SCHEDULER, "breaker_min_attempts", RDT_INT, 1, 1000, "20", NULL, NULL, RDF_RELOADABLE,
     CFG(breaker_min_attempts), 0, 0, NULL,
     "Fewest recent attempts before the breaker may open (at most breaker_window)."},
    {RDS_SCHEDULER, "breaker_cooldown_ms", RDT_MS, 100, 86400000, "30000", NULL, NULL,
     RDF_RELOADABLE, CFG(breaker_cooldown_ms), 0, 0, NULL,
     "How long an open breaker keeps a scene from being dispatched; then one probe attempt "
     "decides whether it closes or opens again."},

    {RDS_POLICY, "max_attempts", RDT_INT, 1, 1000, "10", NULL, NULL, RDF_RELOADABLE,
     POL(max_attempts), 0, RT_POL_MAX_ATTEMPTS, NULL,
     "Attempts retryd makes before the task is exhausted (local attempts not counted)."},
    {RDS_POLICY, "backoff", RDT_BACKOFF, 0, 0, "exponential", NULL, NULL, RDF_RELOADABLE,
     POL(backoff), 0, RT_POL_BACKOFF, NULL,
     "How the delay grows: fixed (initial_delay_ms), exponential (initial_delay_ms * "
     "multiplier^(n-1)), levels (the levels table), random (uniform in "
     "[initial_delay_ms, max_delay_ms])."},
    {RDS_POLICY, "initial_delay_ms", RDT_MS, 0, 86400000, "1000", NULL, NULL, RDF_RELOADABLE,
     POL(initial_delay_ms), 0, RT_POL_INITIAL_DELAY, NULL, "Delay after the first failed attempt."},
    {RDS_POLICY, "multiplier", RDT_DOUBLE, 1.0, 100.0, "2.0", NULL, NULL, RDF_RELOADABLE,
     POL(multiplier), 0, RT_POL_MULTIPLIER, NULL, "Growth factor of exponential backoff."},
    {RDS_POLICY, "max_delay_ms", RDT_MS, 0, 604800000, "300000", NULL, NULL, RDF_RELOADABLE,
     POL(max_delay_ms), 0, RT_POL_MAX_DELAY, NULL, "Cap on any delay; 0 = no cap."},
    {RDS_POLICY, "jitter", RDT_JITTER, 0, 0, "full", NULL, NULL, RDF_RELOADABLE,
     POL(jitter), 0, RT_POL_JITTER, NULL,
     "Randomisation of each delay (AWS Architecture Blog, \"Exponential Backoff And Jitter\")."},
    {RDS_POLICY, "stop_on_status", RDT_STATUS_LIST, 100, 599, "", NULL, NULL, RDF_RELOADABLE,
     POL(stop_on_status), POL(nstop_on_status), RT_POL_STOP_ON_STATUS, NULL,
     "HTTP statuses that stop the task at once, comma-separated, e.g. 400,404; empty = none."},
    {RDS_POLICY, "levels", RDT_LEVELS, 0, 86400000, "1s 5s 10s 30s 1m 2m 5m 10m 30m 1h", NULL,
     NULL, RDF_RELOADABLE, POL(levels), POL(nlevels), RT_POL_LEVELS, NULL,
     "Delays used by backoff = levels, one per attempt, the last one repeating; plain "
     "numbers are ms, units ms, s, m, h."},

    {RDS_SCENE, "owners", RDT_EMAILS, 0, 0, NULL, NULL, NULL, RDF_RELOADABLE,
     offsetof(rd_scene_conf, owners), offsetof(rd_scene_conf, nowners), 0, NULL,
     "E-mail addresses alerted when a task of this scene ends badly, comma-separated; "
     "added to the owners the task itself names."},

    {RDS_SCENE, "max_inflight", RDT_INT, 0, 100000, "0", NULL, NULL, RDF_RELOADABLE,
     offsetof(rd_scene_conf, max_inflight), 0, 0, NULL,
     "Most attempts of this scene running at once on this node (within [scheduler] "
     "max_inflight); 0 = no limit of its own. A saturated scene is left out of claims, so "
     "its tasks wait in MySQL while other scenes run."},
    {RDS_SCENE, "stop_on_body_pointer", RDT_STRING, 1, 0, NULL, NULL, NULL,
     RDF_RELOADABLE | RDF_EMPTY_NULL, offsetof(rd_scene_conf, stop_on_body_pointer), 0, 0,
     check_json_pointer,
     "JSON Pointer (RFC 6901) into a response body, e.g. /error/code: when the value there "
     "is one of stop_on_body_values the task is stopped, whatever the HTTP status (for "
     "services that answer 200 with an error code)."},
    {RDS_SCENE, "stop_on_body_values", RDT_STRINGS, 0, 0, NULL, NULL, NULL, RDF_RELOADABLE,
     offsetof(rd_scene_conf, stop_on_body_values), offsetof(rd_scene_conf, nstop_on_body_values),
     0, NULL,
     "Values, comma-separated, that stop the task when found at stop_on_body_pointer; "
     "strings compare without quotes, other JSON values as compact JSON (42, true)."},

    {RDS_ALERTS, "webhook_url", RDT_STRING, 0, 0, NULL, NULL, NULL,
     RDF_RELOADABLE | RDF_EMPTY_NULL, CFG(alerts_webhook_url), 0, 0, check_http_url,
     "http:// or https:// URL that receives every alert as a JSON POST."},
    {RDS_ALERTS, "smtp_url", RDT_STRING, 0, 0, NULL, NULL, NULL,
     RDF_RELOADABLE | RDF_EMPTY_NULL, CFG(alerts_smtp_url), 0, 0, check_smtp_url,
     "Mail server for e-mail alerts, smtp://host:port or smtps://host:port; unset = no e-mail."},
    {RDS_ALERTS, "smtp_from", RDT_STRING, 0, 0, NULL, NULL, NULL,
     RDF_RELOADABLE | RDF_EMPTY_NULL, CFG(alerts_smtp_from), 0, 0, check_email,
     "Sender address of e-mail alerts; required when smtp_url is set."},
    {RDS_ALERTS, "smtp_to", RDT_EMAILS, 0, 0, "", NULL, NULL, RDF_RELOADABLE,
     CFG(alerts_smtp_to), CFG(nalerts_smtp_to), 0, NULL,
     "Recipients, comma-separated, for alerts about tasks whose message and scene name no owners."},

    {RDS_RETENTION, "succeeded_max_age_ms", RDT_MS, 0, 315360000000.0, "604800000", NULL, NULL,
     RDF_RELOADABLE, CFG(retention_succeeded_max_age_ms), 0, 0, NULL,
     "Succeeded tasks (and their attempt rows) that ended longer ago than this are deleted; "
     "0 = keep them forever."},
    {RDS_RETENTION, "attempt_max_age_ms", RDT_MS, 0, 315360000000.0, "2592000000", NULL, NULL,
     RDF_RELOADABLE, CFG(retention_attempt_max_age_ms), 0, 0, NULL,
     "Attempt rows of any task started longer ago than this are deleted (the task row "
     "stays); 0 = keep them forever."},
    {RDS_RETENTION, "batch_size", RDT_INT, 1, 10000, "500", NULL, NULL, RDF_RELOADABLE,
     CFG(retention_batch_size), 0, 0, NULL,
     "Most rows deleted per statement, so that purging never holds long locks."},
    {RDS_RETENTION, "interval_ms", RDT_MS, 1000, 86400000, "60000", NULL, NULL, RDF_RELOADABLE,
     CFG(retention_interval_ms), 0, 0, NULL,
     "How often the purge runs when it has caught up (it repeats at once while full "
     "batches are deleted)."},

    {RDS_LOG, "level", RDT_CHOICE, 0, 0, "info", NULL, log_levels, RDF_RELOADABLE,
     CFG(log_level), 0, 0, NULL, "Most verbose severity written."},
    {RDS_LOG, "format", RDT_CHOICE, 0, 0, "text", NULL, log_formats, 0,
     CFG(log_format), 0, 0, NULL,
     "text: 'TIME level=info sub=kafka msg=\"...\"' lines; json: one JSON object per line."},
};
/* clang-format on */

#define NKEYS (sizeof keys / sizeof keys[0])

/* Sections in the order help and docs list them. RDS_POLICY and RDS_SCENE
 * print under [scheduler] and [scene:NAME]. */
static const struct {
    rd_section sec;
    const char *name; /* as written in the file */
    const char *env;  /* RETRYD_<SECTION>_ prefix; NULL: no overrides */
    const char *desc;
} sections[] = {
    {RDS_NODE, "node", "RETRYD_NODE_", "This retryd process."},
    {RDS_MYSQL, "mysql", "RETRYD_MYSQL_", "Where tasks and attempts are stored."},
    {RDS_KAFKA, "kafka", "RETRYD_KAFKA_",
     "Where retry tasks come from. Any other key in this section is passed to "
     "librdkafka unchanged, in the order given (e.g. security.protocol = ssl)."},
    {RDS_HTTP, "http", "RETRYD_HTTP_", "The management and ingest HTTP API."},
    {RDS_DISPATCH, "dispatch", "RETRYD_DISPATCH_",
     "Tasks whose target type is dispatch (docs/wire-format.md): retryd POSTs them to "
     "the client library's dispatch endpoint."},
    {RDS_SCHEDULER, "scheduler", "RETRYD_SCHEDULER_",
     "Scanning for due tasks, and the default policy of tasks whose message and "
     "scene leave a field out (keys default_<field>)."},
    {RDS_SCENE, "scene:NAME", NULL,
     "Policy of one scene (NAME matches [A-Za-z0-9._:-]{1,128}): any policy field, "
     "winning over the [scheduler] default_* keys and losing to the fields a task's "
     "message carries, plus owners. Not settable from the environment."},
    {RDS_ALERTS, "alerts", "RETRYD_ALERTS_",
     "Where alerts go when a task is exhausted or stopped."},
    {RDS_RETENTION, "retention", "RETRYD_RETENTION_",
     "Purging old history, in small batches, off the hot path."},
    {RDS_LOG, "log", "RETRYD_LOG_", "Logging to stderr."},
};

#define NSECTIONS (sizeof sections / sizeof sections[0])

/* ---- small helpers ---- */

static void free_list(char **v, size_t n) {
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* Quotes a value back to the user: truncated, never a secret. */
static const char *echo(const rd_key *k, const char *v, char *buf, size_t bufsz) {
    if (k && (k->flags & RDF_SECRET)) return "(hidden)";
    size_t n = strlen(v);
    if (n <= RD_ECHO_MAX) {
        snprintf(buf, bufsz, "'%s'", v);
    } else {
        snprintf(buf, bufsz, "'%.*s...'", RD_ECHO_MAX, v);
    }
    return buf;
}

/* Shortest text that reads back as the same double, with ".0" on integers so
 * that it is visibly a number with a fraction (2.0, not 2). */
static void fmt_double(double d, char *buf, size_t bufsz) {
    if (d == floor(d) && fabs(d) < 1e15) {
        snprintf(buf, bufsz, "%.1f", d);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, bufsz, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) break;
    }
    if (!strpbrk(buf, ".eEin") && strlen(buf) + 3 <= bufsz) strcat(buf, ".0");
}

static bool parse_ll(const char *v, long long *out) {
    if (!*v || isspace((unsigned char)*v)) return false;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || *end) return false;
    *out = n;
    return true;
}

static bool is_email(const char *s, size_t n) {
    const char *at = memchr(s, '@', n);
    if (!at || at == s || at == s + n - 1 || n > 254) return false;
    if (memchr(at + 1, '@', (size_t)(s + n - at - 1))) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= ' ' || ch == 0x7f || strchr("<>()[]\\,;:\"", ch)) return false;
    }
    return true;
}

/* ---- apply hooks ---- */

static int check_node_id(const char *v, char *why, size_t whysz) {
    for (const char *p = v; *p; p++) {
        if (!isgraph((unsigned char)*p)) {
            snprintf(why, whysz, "must be printable characters without spaces");
            return -1;
        }
    }
    return 0;
}

static int check_listen(const char *v, char *why, size_t whysz) {
    const char *colon;
    size_t hostlen;
    if (v[0] == '[') {
        const char *close = strchr(v, ']');
        if (!close || close[1] != ':' || close == v + 1) goto bad;
        colon = close + 1;
        hostlen = (size_t)(close - v - 1);
    } else {
        colon = strrchr(v, ':');
        if (!colon || colon == v || memchr(v, ':', (size_t)(colon - v))) goto bad;
        hostlen = (size_t)(colon - v);
    }
    for (size_t i = 0; i < hostlen; i++) {
        if (!isgraph((unsigned char)v[i])) goto bad;
    }
    long long port;
    if (!parse_ll(colon + 1, &port) || colon[1] == '+' || colon[1] == '-' || port < 1 ||
        port > 65535)
        goto bad;
    return 0;
bad:
    snprintf(why, whysz, "must be host:port or [ipv6]:port with a port in 1..65535");
    return -1;
}

static int check_topic(const char *v, char *why, size_t whysz) {
    for (const char *p = v; *p; p++) {
        if (!isalnum((unsigned char)*p) && !strchr("._-", *p)) {
            snprintf(why, whysz, "must match [A-Za-z0-9._-]{1,249}");
            return -1;
        }
    }
    return 0;
}

static int check_url_scheme(const char *v, const char *const *schemes, const char *what,
                            char *why, size_t whysz) {
    for (size_t i = 0; schemes[i]; i++) {
        size_t n = strlen(schemes[i]);
        if (strncmp(v, schemes[i], n) == 0 && v[n]) {
            for (const char *p = v; *p; p++) {
                if (!isgraph((unsigned char)*p)) goto bad;
            }
            return 0;
        }
    }
bad:
    snprintf(why, whysz, "must be %s URL", what);
    return -1;
}

static int check_http_url(const char *v, char *why, size_t whysz) {
    static const char *const s[] = {"http://", "https://", NULL};
    return check_url_scheme(v, s, "an http:// or https://", why, whysz);
}

static int check_smtp_url(const char *v, char *why, size_t whysz) {
    static const char *const s[] = {"smtp://", "smtps://", NULL};
    return check_url_scheme(v, s, "an smtp:// or smtps://", why, whysz);
}

static int check_json_pointer(const char *v, char *why, size_t whysz) {
    if (rt_jsonptr_valid(v) == 0 && v[0] == '/') return 0;
    snprintf(why, whysz, "must be a JSON Pointer (RFC 6901) such as /error/code");
    return -1;
}

static int check_email(const char *v, char *why, size_t whysz) {
    if (is_email(v, strlen(v))) return 0;
    snprintf(why, whysz, "must be an e-mail address such as retryd@example.com");
    return -1;
}

/* ---- typed values ---- */

/* Parses `v` for key `k` and stores it in the slot `base + k->off`. Returns 0,
 * -1 with the reason in why (the end of a sentence: "must be ..."), or -2 when
 * out of memory. On failure the slot is unchanged. */
static int set_value(const rd_key *k, void *base, const char *v, char *why, size_t whysz) {
    char *slot = (char *)base + k->off;
    char q[RD_ECHO_MAX + 8];
    long long n;

    switch (k->type) {
    case RDT_STRING: {
        size_t len = strlen(v);
        if ((k->flags & RDF_EMPTY_NULL) && len == 0) {
            free(*(char **)slot);
            *(char **)slot = NULL;
            return 0;
        }
        if (len < (size_t)k->lo) {
            snprintf(why, whysz, "must not be empty");
            return -1;
        }
        if (k->hi > 0 && len > (size_t)k->hi) {
            snprintf(why, whysz, "must be at most %.0f characters long", k->hi);
            return -1;
        }
        if (k->check && k->check(v, why, whysz) != 0) {
            size_t used = strlen(why);
            if (!(k->flags & RDF_SECRET) && used < whysz)
                snprintf(why + used, whysz - used, ", got %s", echo(k, v, q, sizeof q));
            return -1;
        }
        char *copy = strdup(v);
        if (!copy) return -2;
        free(*(char **)slot);
        *(char **)slot = copy;
        return 0;
    }
    case RDT_INT:
    case RDT_MS:
        if (!parse_ll(v, &n) || n < (long long)k->lo || n > (long long)k->hi) {
            snprintf(why, whysz, "must be an integer in %.0f..%.0f, got %s", k->lo, k->hi,
                     echo(k, v, q, sizeof q));
            return -1;
        }
        if (k->type == RDT_INT)
            *(int *)slot = (int)n;
        else
            *(int64_t *)slot = (int64_t)n;
        return 0;
    case RDT_DOUBLE: {
        char *end;
        errno = 0;
        double d = *v && !isspace((unsigned char)*v) ? strtod(v, &end) : NAN;
        if (isnan(d) || errno || *end || d < k->lo || d > k->hi) {
            char lo[32], hi[32];
            fmt_double(k->lo, lo, sizeof lo);
            fmt_double(k->hi, hi, sizeof hi);
            snprintf(why, whysz, "must be a number in %s..%s, got %s", lo, hi,
                     echo(k, v, q, sizeof q));
            return -1;
        }
        *(double *)slot = d;
        return 0;
    }
    case RDT_BOOL:
        if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "1")) {
            *(int *)slot = 1;
        } else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off") ||
                   !strcmp(v, "0")) {
            *(int *)slot = 0;
        } else {
            snprintf(why, whysz, "must be true or false, got %s", echo(k, v, q, sizeof q));
            return -1;
        }
        return 0;
    case RDT_CHOICE:
        for (size_t i = 0; k->choices[i]; i++) {
            if (strcmp(v, k->choices[i]) == 0) {
                char *copy = strdup(v);
                if (!copy) return -2;
                free(*(char **)slot);
                *(char **)slot = copy;
                return 0;
            }
        }
        {
            size_t used = (size_t)snprintf(why, whysz, "must be one of");
            for (size_t i = 0; k->choices[i] && used < whysz; i++)
                used += (size_t)snprintf(why + used, whysz - used, "%s %s", i ? "," : "",
                                         k->choices[i]);
            if (used < whysz)
                snprintf(why + used, whysz - used, ", got %s", echo(k, v, q, sizeof q));
        }
        return -1;
    case RDT_BACKOFF: {
        rt_backoff_kind kind;
        if (rt_backoff_kind_parse(v, &kind) != 0) {
            snprintf(why, whysz, "must be one of %s, %s, %s, %s, got %s",
                     rt_backoff_kind_name(RT_BACKOFF_FIXED),
                     rt_backoff_kind_name(RT_BACKOFF_EXPONENTIAL),
                     rt_backoff_kind_name(RT_BACKOFF_LEVELS),
                     rt_backoff_kind_name(RT_BACKOFF_RANDOM), echo(k, v, q, sizeof q));
            return -1;
        }
        *(rt_backoff_kind *)slot = kind;
        return 0;
    }
    case RDT_JITTER: {
        rt_jitter_kind kind;
        if (rt_jitter_kind_parse(v, &kind) != 0) {
            snprintf(why, whysz, "must be one of %s, %s, %s, %s, got %s",
                     rt_jitter_kind_name(RT_JITTER_NONE), rt_jitter_kind_name(RT_JITTER_FULL),
                     rt_jitter_kind_name(RT_JITTER_EQUAL),
                     rt_jitter_kind_name(RT_JITTER_DECORRELATED), echo(k, v, q, sizeof q));
            return -1;
        }
        *(rt_jitter_kind *)slot = kind;
        return 0;
    }
    case RDT_STATUS_LIST: {
        int codes[RT_MAX_STATUS_LIST];
        size_t count = 0;
        const char *p = v;
        for (;;) {
            while (isspace((unsigned char)*p)) p++;
            if (!*p) break;
            char *end;
            errno = 0;
            long code = isdigit((unsigned char)*p) ? strtol(p, &end, 10) : -1;
            if (code < (long)k->lo || code > (long)k->hi || errno) goto bad_status;
            if (count == RT_MAX_STATUS_LIST) {
                snprintf(why, whysz, "must list at most %d status codes",
                         (int)RT_MAX_STATUS_LIST);
                return -1;
            }
            codes[count++] = (int)code;
            p = end;
            while (isspace((unsigned char)*p)) p++;
            if (*p == ',') {
                p++;
                while (isspace((unsigned char)*p)) p++;
                if (!*p) goto bad_status; /* trailing comma */
            } else if (*p) {
                goto bad_status;
            }
        }
        memcpy(slot, codes, count * sizeof codes[0]);
        *(size_t *)((char *)base + k->noff) = count;
        return 0;
    bad_status:
        snprintf(why, whysz,
                 "must be HTTP status codes in %.0f..%.0f separated by commas, got %s",
                 k->lo, k->hi, echo(k, v, q, sizeof q));
        return -1;
    }
    case RDT_LEVELS: {
        int64_t levels[RT_MAX_LEVELS];
        size_t count = 0;
        char lerr[200];
        lerr[0] = '\0';
        if (rt_levels_parse(v, levels, &count, lerr, sizeof lerr) != 0 || count == 0) {
            /* Its sentences start with "levels: "; the caller names the key. */
            const char *m = lerr[0] ? lerr : "must list at least one delay";
            if (strncmp(m, "levels: ", 8) == 0) m += 8;
            snprintf(why, whysz, "%s", m);
            return -1;
        }
        for (size_t i = 0; i < count; i++) {
            if (levels[i] < (int64_t)k->lo || levels[i] > (int64_t)k->hi) {
                snprintf(why, whysz, "delays must be in %.0f..%.0f ms, got %s", k->lo, k->hi,
                         echo(k, v, q, sizeof q));
                return -1;
            }
        }
        memcpy(slot, levels, count * sizeof levels[0]);
        *(size_t *)((char *)base + k->noff) = count;
        return 0;
    }
    case RDT_EMAILS:
    case RDT_STRINGS: {
        const char *what = k->type == RDT_EMAILS ? "e-mail addresses" : "values";
        char **list = NULL;
        size_t count = 0;
        const char *p = v;
        while (isspace((unsigned char)*p)) p++;
        while (*p) {
            const char *comma = strchr(p, ',');
            const char *end = comma ? comma : p + strlen(p);
            const char *e = end;
            while (e > p && isspace((unsigned char)e[-1])) e--;
            if (k->type == RDT_EMAILS ? !is_email(p, (size_t)(e - p)) : e == p) {
                free_list(list, count);
                snprintf(why, whysz, "must be %s separated by commas, got %s", what,
                         echo(k, v, q, sizeof q));
                return -1;
            }
            char **grown = realloc(list, (count + 1) * sizeof *list);
            char *addr = grown ? strndup(p, (size_t)(e - p)) : NULL;
            if (grown) list = grown;
            if (!addr) {
                free_list(list, count);
                return -2;
            }
            list[count++] = addr;
            if (!comma) break;
            p = comma + 1;
            while (isspace((unsigned char)*p)) p++;
            if (!*p) { /* trailing comma */
                free_list(list, count);
                snprintf(why, whysz, "must be %s separated by commas, got %s", what,
                         echo(k, v, q, sizeof q));
                return -1;
            }
        }
        size_t *nslot = (size_t *)((char *)base + k->noff);
        free_list(*(char ***)slot, *nslot);
        *(char ***)slot = list;
        *nslot = count;
        return 0;
    }
    }
    snprintf(why, whysz, "has an unknown type");
    return -1;
}

/* ---- loading ---- */

typedef struct load_state {
    rd_config *c;
    const char *path;
    FILE *f;
    int line;
    /* The current section, tracked by the reader: inih truncates section
     * names to 50 bytes, shorter than the longest scene name. */
    int sec;            /* index into sections[], -1 before the first header */
    size_t scene;       /* index into c->scenes when sections[sec] is RDS_SCENE */
    unsigned char seen[NKEYS];
    unsigned char *scene_seen; /* nscenes * NKEYS flags */
    char *err;
    size_t errsz;
    bool failed;
} load_state;

static void failf(load_state *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void failf(load_state *st, const char *fmt, ...) {
    if (st->failed) return;
    st->failed = true;
    if (!st->err || !st->errsz) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->err, st->errsz, fmt, ap);
    va_end(ap);
}

static bool valid_scene_name(const char *s, size_t n) {
    if (n < 1 || n > RT_SCENE_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && !strchr("._:-", s[i])) return false;
    }
    return true;
}

static rd_scene_conf *find_scene(const rd_config *c, const char *name, size_t n) {
    for (size_t i = 0; i < c->nscenes; i++) {
        if (strlen(c->scenes[i].name) == n && memcmp(c->scenes[i].name, name, n) == 0)
            return &c->scenes[i];
    }
    return NULL;
}

/* Finds or adds the scene `name` and makes it the current section. */
static int enter_scene(load_state *st, const char *name, size_t n) {
    rd_config *c = st->c;
    rd_scene_conf *s = find_scene(c, name, n);
    if (s) {
        st->scene = (size_t)(s - c->scenes);
        return 0;
    }
    rd_scene_conf *grown = realloc(c->scenes, (c->nscenes + 1) * sizeof *grown);
    if (!grown) return -1;
    c->scenes = grown;
    unsigned char *seen = realloc(st->scene_seen, (c->nscenes + 1) * NKEYS);
    if (!seen) return -1;
    st->scene_seen = seen;
    char *copy = strndup(name, n);
    if (!copy) return -1;
    s = &c->scenes[c->nscenes];
    memset(s, 0, sizeof *s);
    s->name = copy;
    memset(st->scene_seen + c->nscenes * NKEYS, 0, NKEYS);
    st->scene = c->nscenes++;
    return 0;
}

/* Reads one line for inih, counting lines and following section headers. */
static char *reader(char *str, int num, void *stream) {
    load_state *st = stream;
    if (st->failed || !fgets(str, num, st->f)) return NULL;
    st->line++;
    size_t len = strlen(str);
    if (len == (size_t)num - 1 && str[len - 1] != '\n' && !feof(st->f)) {
        failf(st, "%s:%d: line is longer than %d characters", st->path, st->line,
              RD_CONFIG_MAX_LINE - 2);
        return NULL;
    }
    const char *p = str;
    if (st->line == 1 && strncmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3;
    while (isspace((unsigned char)*p)) p++;
    if (*p != '[') return str;
    const char *close = strchr(p, ']');
    if (!close) {
        failf(st, "%s:%d: section header without ']'", st->path, st->line);
        return NULL;
    }
    const char *name = p + 1;
    size_t n = (size_t)(close - name);
    for (size_t i = 0; i < NSECTIONS; i++) {
        if (sections[i].sec != RDS_SCENE && strlen(sections[i].name) == n &&
            memcmp(sections[i].name, name, n) == 0) {
            st->sec = (int)i;
            return str;
        }
    }
    if (n >= 6 && memcmp(name, "scene:", 6) == 0) {
        if (!valid_scene_name(name + 6, n - 6)) {
            failf(st, "%s:%d: [%.*s]: scene name must match [A-Za-z0-9._:-]{1,%d}", st->path,
                  st->line, (int)(n > 200 ? 200 : n), name, RT_SCENE_MAX);
            return NULL;
        }
        for (size_t i = 0; i < NSECTIONS; i++) {
            if (sections[i].sec == RDS_SCENE) st->sec = (int)i;
        }
        if (enter_scene(st, name + 6, n - 6) != 0) {
            failf(st, "%s:%d: out of memory", st->path, st->line);
            return NULL;
        }
        return str;
    }
    failf(st, "%s:%d: unknown section [%.*s]", st->path, st->line, (int)(n > 200 ? 200 : n),
          name);
    return NULL;
}

/* The key of section `sec` named `name`; [scheduler] also holds default_<policy key>. */
static const rd_key *find_key(rd_section sec, const char *name, size_t *idx) {
    for (size_t i = 0; i < NKEYS; i++) {
        const rd_key *k = &keys[i];
        const char *kn = name;
        if (k->sec == RDS_POLICY) {
            if (sec == RDS_SCHEDULER) {
                if (strncmp(name, "default_", 8) != 0) continue;
                kn = name + 8;
            } else if (sec != RDS_SCENE) {
                continue;
            }
        } else if (k->sec != sec) {
            continue;
        }
        if (strcmp(k->name, kn) == 0) {
            *idx = i;
            return k;
        }
    }
    return NULL;
}

static const char *section_name(rd_section sec) {
    if (sec == RDS_POLICY) return "scheduler";
    for (size_t i = 0; i < NSECTIONS; i++) {
        if (sections[i].sec == sec) return sections[i].name;
    }
    return "?";
}

/* Where key k of section `sec` is stored. */
static void *key_base(rd_config *c, const rd_key *k, rd_scene_conf *scene) {
    if (k->sec == RDS_POLICY) return scene ? (void *)&scene->policy : (void *)&c->defaults;
    if (k->sec == RDS_SCENE) return scene;
    return c;
}

/* Sets key k from a file line or the environment; `where` prefixes errors. */
static int apply(load_state *st, const rd_key *k, rd_scene_conf *scene, const char *where,
                 const char *value) {
    char why[512];
    void *base = key_base(st->c, k, scene);
    int rc = set_value(k, base, value, why, sizeof why);
    if (rc == -2) {
        failf(st, "%s: out of memory", where);
        return -1;
    }
    if (rc != 0) {
        if (scene)
            failf(st, "%s: [scene:%s] %s: %s", where, scene->name, k->name, why);
        else
            failf(st, "%s: [%s] %s%s: %s", where, section_name(k->sec),
                  k->sec == RDS_POLICY ? "default_" : "", k->name, why);
        return -1;
    }
    if (k->sec == RDS_POLICY) ((rt_policy *)base)->set |= k->polbit;
    return 0;
}

/* Appends or replaces a librdkafka property (file order is kept). */
static int set_kafka_prop(rd_config *c, const char *key, const char *value, bool replace,
                          bool *dup) {
    for (size_t i = 0; i < c->nkafka_props; i++) {
        if (strcmp(c->kafka_props[i].key, key) == 0) {
            if (!replace) {
                *dup = true;
                return 0;
            }
            char *v = strdup(value);
            if (!v) return -1;
            free(c->kafka_props[i].value);
            c->kafka_props[i].value = v;
            return 0;
        }
    }
    rd_kv *grown = realloc(c->kafka_props, (c->nkafka_props + 1) * sizeof *grown);
    if (!grown) return -1;
    c->kafka_props = grown;
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return -1;
    }
    c->kafka_props[c->nkafka_props].key = k;
    c->kafka_props[c->nkafka_props].value = v;
    c->nkafka_props++;
    return 0;
}

/* librdkafka properties that have a retryd key of their own. */
static const char *kafka_alias(const char *key) {
    if (!strcmp(key, "bootstrap.servers") || !strcmp(key, "metadata.broker.list"))
        return "brokers";
    if (!strcmp(key, "group.id")) return "group_id";
    return NULL;
}

static int handler(void *user, const char *section, const char *name, const char *value) {
    load_state *st = user;
    char where[300];
    (void)section; /* the reader tracks sections; inih truncates long names */
    if (st->failed) return 0;
    snprintf(where, sizeof where, "%s:%d", st->path, st->line);
    if (!name[0]) {
        failf(st, "%s: key name missing before '='", where);
        return 0;
    }
    if (st->sec < 0) {
        failf(st, "%s: key '%s' outside any section", where, name);
        return 0;
    }
    rd_section sec = sections[st->sec].sec;
    rd_scene_conf *scene = sec == RDS_SCENE ? &st->c->scenes[st->scene] : NULL;
    size_t idx;
    const rd_key *k = find_key(sec, name, &idx);
    if (!k) {
        if (sec == RDS_KAFKA) {
            const char *alias = kafka_alias(name);
            if (alias) {
                failf(st, "%s: [kafka] %s: set %s instead", where, name, alias);
                return 0;
            }
            bool dup = false;
            if (set_kafka_prop(st->c, name, value, false, &dup) != 0) {
                failf(st, "%s: out of memory", where);
                return 0;
            }
            if (dup) {
                failf(st, "%s: [kafka] %s: duplicate key", where, name);
                return 0;
            }
            return 1;
        }
        if (scene)
            failf(st, "%s: [scene:%s] %s: unknown key", where, scene->name, name);
        else
            failf(st, "%s: [%s] %s: unknown key", where, sections[st->sec].name, name);
        return 0;
    }
    unsigned char *seen = scene ? &st->scene_seen[st->scene * NKEYS + idx] : &st->seen[idx];
    if (*seen) {
        if (scene)
            failf(st, "%s: [scene:%s] %s: duplicate key", where, scene->name, name);
        else
            failf(st, "%s: [%s] %s: duplicate key", where, sections[st->sec].name, name);
        return 0;
    }
    *seen = 1;
    return apply(st, k, scene, where, value) == 0;
}

/* RETRYD_<SECTION>_<KEY> for key k ([scheduler] default_* for policy keys). */
static void env_name(const rd_key *k, char *buf, size_t bufsz) {
    snprintf(buf, bufsz, "RETRYD_%s_%s%s", section_name(k->sec),
             k->sec == RDS_POLICY ? "default_" : "", k->name);
    for (char *p = buf; *p; p++) {
        if (*p == '.' || *p == '-' || *p == ':')
            *p = '_';
        else
            *p = (char)toupper((unsigned char)*p);
    }
}

static const char *env_lookup(char *const *envp, const char *name) {
    size_t n = strlen(name);
    for (size_t i = 0; envp[i]; i++) {
        if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=') return envp[i] + n + 1;
    }
    return NULL;
}

static int apply_env(load_state *st, char *const *envp) {
    char name[128], where[300];
    for (size_t i = 0; i < NKEYS; i++) {
        const rd_key *k = &keys[i];
        if (k->sec == RDS_SCENE) continue;
        env_name(k, name, sizeof name);
        const char *v = env_lookup(envp, name);
        if (!v) continue;
        snprintf(where, sizeof where, "environment %s", name);
        if (apply(st, k, NULL, where, v) != 0) return -1;
    }
    /* Anything else under a known prefix is a typo, except librdkafka
     * properties, which map back by lowercasing and '_' -> '.'. */
    for (size_t i = 0; envp[i]; i++) {
        const char *e = envp[i];
        const char *eq = strchr(e, '=');
        if (!eq || strncmp(e, "RETRYD_", 7) != 0) continue;
        size_t n = (size_t)(eq - e);
        if (n >= sizeof name) n = sizeof name - 1;
        memcpy(name, e, n);
        name[n] = '\0';
        snprintf(where, sizeof where, "environment %s", name);
        bool known = false;
        for (size_t j = 0; j < NKEYS && !known; j++) {
            char kn[128];
            if (keys[j].sec == RDS_SCENE) continue;
            env_name(&keys[j], kn, sizeof kn);
            known = strcmp(kn, name) == 0;
        }
        if (known) continue;
        if (strncmp(name, "RETRYD_SCENE_", 13) == 0) {
            failf(st, "%s: [scene:NAME] keys cannot be set from the environment", where);
            return -1;
        }
        if (strncmp(name, "RETRYD_KAFKA_", 13) == 0) {
            char key[128];
            size_t j = 0;
            for (const char *p = name + 13; *p && j < sizeof key - 1; p++)
                key[j++] = *p == '_' ? '.' : (char)tolower((unsigned char)*p);
            key[j] = '\0';
            if (!key[0]) {
                failf(st, "%s: no librdkafka property named", where);
                return -1;
            }
            const char *alias = kafka_alias(key);
            if (alias) {
                failf(st, "%s: [kafka] %s: set %s instead", where, key, alias);
                return -1;
            }
            bool dup = false;
            if (set_kafka_prop(st->c, key, eq + 1, true, &dup) != 0) {
                failf(st, "%s: out of memory", where);
                return -1;
            }
            continue;
        }
        for (size_t s = 0; s < NSECTIONS; s++) {
            const char *pre = sections[s].env;
            if (pre && strncmp(name, pre, strlen(pre)) == 0) {
                failf(st, "%s: no key of [%s] has this name", where, sections[s].name);
                return -1;
            }
        }
    }
    return 0;
}

static int default_node_id(rd_config *c) {
    char host[256];
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    char id[300];
    snprintf(id, sizeof id, "%s:%ld", host, (long)getpid());
    c->node_id = strdup(id);
    return c->node_id ? 0 : -1;
}

int rd_config_load(const char *path, char *const *envp, rd_config *out, char *err,
                   size_t errsz) {
    extern char **environ;
    load_state st;
    char why[512];

    memset(out, 0, sizeof *out);
    memset(&st, 0, sizeof st);
    st.c = out;
    st.sec = -1;
    st.err = err;
    st.errsz = errsz;
    if (err && errsz) err[0] = '\0';

    for (size_t i = 0; i < NKEYS; i++) {
        const rd_key *k = &keys[i];
        if (!k->def || k->sec == RDS_SCENE) continue;
        void *base = key_base(out, k, NULL);
        if (set_value(k, base, k->def, why, sizeof why) != 0) {
            failf(&st, "default of [%s] %s: %s", section_name(k->sec), k->name, why);
            goto fail;
        }
        if (k->sec == RDS_POLICY) out->defaults.set |= k->polbit;
    }

    if (path) {
        st.path = path;
        st.f = fopen(path, "r");
        if (!st.f) {
            failf(&st, "cannot open %s: %s", path, strerror(errno));
            goto fail;
        }
        /* inih 55 as packaged by Debian reads these at run time. A heap line
         * buffer lets lines be longer than the built-in 200 bytes (the reader
         * rejects longer ones); without multi-line values an indented key is a
         * key, not the continuation of the previous value. */
        ini_use_stack = false;
        ini_allow_realloc = false;
        ini_max_line = RD_CONFIG_MAX_LINE;
        ini_initial_alloc = RD_CONFIG_MAX_LINE;
        ini_allow_multiline = false;
        ini_stop_on_first_error = true;
        int rc = ini_parse_stream(reader, &st, handler, &st);
        if (!st.failed && ferror(st.f)) failf(&st, "cannot read %s: %s", path, strerror(errno));
        fclose(st.f);
        st.f = NULL;
        if (!st.failed && rc == -2) failf(&st, "%s: out of memory", path);
        if (!st.failed && rc > 0)
            failf(&st, "%s:%d: expected 'key = value' or '[section]'", path, rc);
        if (!st.failed && rc != 0) failf(&st, "%s: cannot be read", path);
        if (st.failed) goto fail;
    }

    if (apply_env(&st, envp ? envp : environ) != 0) goto fail;

    if (!out->node_id && default_node_id(out) != 0) {
        failf(&st, "out of memory");
        goto fail;
    }
    if (out->alerts_smtp_url && !out->alerts_smtp_from) {
        failf(&st, "[alerts] smtp_from: must be set when smtp_url is set");
        goto fail;
    }
    free(st.scene_seen);
    return 0;

fail:
    free(st.scene_seen);
    rd_config_free(out);
    return -1;
}

static void free_slot(const rd_key *k, void *base) {
    char *slot = (char *)base + k->off;
    switch (k->type) {
    case RDT_STRING:
    case RDT_CHOICE:
        free(*(char **)slot);
        *(char **)slot = NULL;
        break;
    case RDT_EMAILS:
    case RDT_STRINGS: {
        size_t *n = (size_t *)((char *)base + k->noff);
        free_list(*(char ***)slot, *n);
        *(char ***)slot = NULL;
        *n = 0;
        break;
    }
    default:
        break;
    }
}

void rd_config_free(rd_config *c) {
    if (!c) return;
    for (size_t i = 0; i < NKEYS; i++) {
        const rd_key *k = &keys[i];
        if (k->sec == RDS_SCENE) {
            for (size_t s = 0; s < c->nscenes; s++) free_slot(k, &c->scenes[s]);
        } else if (k->sec != RDS_POLICY) {
            free_slot(k, c);
        }
    }
    for (size_t s = 0; s < c->nscenes; s++) free(c->scenes[s].name);
    free(c->scenes);
    for (size_t i = 0; i < c->nkafka_props; i++) {
        free(c->kafka_props[i].key);
        free(c->kafka_props[i].value);
    }
    free(c->kafka_props);
    free(c->kafka_poison_topic);
    memset(c, 0, sizeof *c);
}

const rd_scene_conf *rd_config_scene(const rd_config *c, const char *scene) {
    if (!c || !scene) return NULL;
    return find_scene(c, scene, strlen(scene));
}

/* Copies into `out` the fields of `p` whose bits are set. */
static void overlay(rt_policy *out, const rt_policy *p) {
    if (p->set & RT_POL_MAX_ATTEMPTS) out->max_attempts = p->max_attempts;
    if (p->set & RT_POL_BACKOFF) out->backoff = p->backoff;
    if (p->set & RT_POL_INITIAL_DELAY) out->initial_delay_ms = p->initial_delay_ms;
    if (p->set & RT_POL_MULTIPLIER) out->multiplier = p->multiplier;
    if (p->set & RT_POL_MAX_DELAY) out->max_delay_ms = p->max_delay_ms;
    if (p->set & RT_POL_JITTER) out->jitter = p->jitter;
    if (p->set & RT_POL_STOP_ON_STATUS) {
        size_t n = p->nstop_on_status <= RT_MAX_STATUS_LIST ? p->nstop_on_status
                                                            : RT_MAX_STATUS_LIST;
        memcpy(out->stop_on_status, p->stop_on_status, n * sizeof p->stop_on_status[0]);
        out->nstop_on_status = n;
    }
    if (p->set & RT_POL_DEADLINE) out->deadline = p->deadline;
    if (p->set & RT_POL_LEVELS) {
        size_t n = p->nlevels <= RT_MAX_LEVELS ? p->nlevels : RT_MAX_LEVELS;
        memcpy(out->levels, p->levels, n * sizeof p->levels[0]);
        out->nlevels = n;
    }
    out->set |= p->set;
}

void rd_config_resolve_policy(const rd_config *c, const char *scene, const rt_policy *msg,
                              rt_policy *out) {
    memset(out, 0, sizeof *out);
    overlay(out, &c->defaults);
    const rd_scene_conf *s = rd_config_scene(c, scene);
    if (s) overlay(out, &s->policy);
    if (msg) overlay(out, msg);
}

/* ---- printing: help, markdown, dump ---- */

static const char *type_name(const rd_key *k) {
    switch (k->type) {
    case RDT_STRING:
        return k->check == check_listen ? "host:port"
               : k->check == check_email ? "e-mail address"
               : (k->check == check_http_url || k->check == check_smtp_url) ? "URL"
                                                                             : "string";
    case RDT_INT:
        return "integer";
    case RDT_MS:
        return "integer (ms)";
    case RDT_DOUBLE:
        return "number";
    case RDT_BOOL:
        return "boolean";
    case RDT_CHOICE:
    case RDT_BACKOFF:
    case RDT_JITTER:
        return "enum";
    case RDT_STATUS_LIST:
        return "status list";
    case RDT_LEVELS:
        return "delay table";
    case RDT_EMAILS:
        return "e-mail list";
    case RDT_STRINGS:
        return "list";
    }
    return "?";
}

/* What values are allowed, e.g. "1..10000" or "fixed, exponential, ...". */
static void allowed(const rd_key *k, char *buf, size_t bufsz) {
    char lo[32], hi[32];
    buf[0] = '\0';
    switch (k->type) {
    case RDT_INT:
    case RDT_MS:
        snprintf(buf, bufsz, "%.0f..%.0f", k->lo, k->hi);
        break;
    case RDT_DOUBLE:
        fmt_double(k->lo, lo, sizeof lo);
        fmt_double(k->hi, hi, sizeof hi);
        snprintf(buf, bufsz, "%s..%s", lo, hi);
        break;
    case RDT_BOOL:
        snprintf(buf, bufsz, "true, false");
        break;
    case RDT_CHOICE: {
        size_t used = 0;
        for (size_t i = 0; k->choices[i] && used < bufsz; i++)
            used += (size_t)snprintf(buf + used, bufsz - used, "%s%s", i ? ", " : "",
                                     k->choices[i]);
        break;
    }
    case RDT_BACKOFF:
        snprintf(buf, bufsz, "%s, %s, %s, %s", rt_backoff_kind_name(RT_BACKOFF_FIXED),
                 rt_backoff_kind_name(RT_BACKOFF_EXPONENTIAL),
                 rt_backoff_kind_name(RT_BACKOFF_LEVELS), rt_backoff_kind_name(RT_BACKOFF_RANDOM));
        break;
    case RDT_JITTER:
        snprintf(buf, bufsz, "%s, %s, %s, %s", rt_jitter_kind_name(RT_JITTER_NONE),
                 rt_jitter_kind_name(RT_JITTER_FULL), rt_jitter_kind_name(RT_JITTER_EQUAL),
                 rt_jitter_kind_name(RT_JITTER_DECORRELATED));
        break;
    case RDT_STATUS_LIST:
        snprintf(buf, bufsz, "up to %d codes in %.0f..%.0f", (int)RT_MAX_STATUS_LIST, k->lo,
                 k->hi);
        break;
    case RDT_LEVELS:
        snprintf(buf, bufsz, "1..%d delays in %.0f..%.0f ms", (int)RT_MAX_LEVELS, k->lo, k->hi);
        break;
    case RDT_STRING:
        if (k->check == check_topic)
            snprintf(buf, bufsz, "[A-Za-z0-9._-]{1,249}");
        else if (k->check == check_listen)
            snprintf(buf, bufsz, "port 1..65535");
        else if (k->hi > 0)
            snprintf(buf, bufsz, "%.0f..%.0f characters", k->lo, k->hi);
        else if (k->lo > 0)
            snprintf(buf, bufsz, "not empty");
        break;
    case RDT_EMAILS:
    case RDT_STRINGS:
        break;
    }
}

static const char *default_text(const rd_key *k) {
    if (k->def_doc) return k->def_doc;
    if (!k->def) return NULL;
    return k->def;
}

/* Calls fn for every key in print order: the section's own keys, then for
 * [scheduler] the policy keys as default_*, for [scene:NAME] the policy keys
 * and owners. */
typedef void (*key_fn)(FILE *f, const rd_key *k, const char *prefix, bool env);

static void for_section_keys(FILE *f, rd_section sec, key_fn fn) {
    for (size_t i = 0; i < NKEYS; i++) {
        if (keys[i].sec == sec && sec != RDS_SCENE) fn(f, &keys[i], "", sec != RDS_SCENE);
    }
    if (sec == RDS_SCHEDULER || sec == RDS_SCENE) {
        for (size_t i = 0; i < NKEYS; i++) {
            if (keys[i].sec == RDS_POLICY)
                fn(f, &keys[i], sec == RDS_SCHEDULER ? "default_" : "", sec == RDS_SCHEDULER);
        }
    }
    if (sec == RDS_SCENE) {
        for (size_t i = 0; i < NKEYS; i++) {
            if (keys[i].sec == RDS_SCENE) fn(f, &keys[i], "", false);
        }
    }
}

/* Prints text word-wrapped to 78 columns, each line indented by `indent`. */
static void wrap(FILE *f, const char *text, int indent) {
    const int width = 78;
    int col = 0;
    const char *p = text;
    while (*p) {
        while (*p == ' ') p++;
        size_t n = strcspn(p, " ");
        if (col > indent && col + 1 + (int)n > width) {
            fputc('\n', f);
            col = 0;
        }
        if (col == 0)
            col = fprintf(f, "%*s", indent, "");
        else
            col += fprintf(f, " ");
        col += fprintf(f, "%.*s", (int)n, p);
        p += n;
    }
    fputc('\n', f);
}

static void help_key(FILE *f, const rd_key *k, const char *prefix, bool env) {
    char a[128], en[128], line[512];
    allowed(k, a, sizeof a);
    const char *d = default_text(k);
    if (prefix[0] || k->sec != RDS_POLICY)
        fprintf(f, "  %s%s =%s%s\n", prefix, k->name, d && !d[0] ? "" : " ", d ? d : "(none)");
    else
        fprintf(f, "  %s%s (default from [scheduler] default_%s)\n", prefix, k->name, k->name);
    snprintf(line, sizeof line, "%s%s%s%s.", type_name(k), a[0] ? ": " : "", a,
             k->flags & RDF_RELOADABLE ? "; reloadable" : "");
    wrap(f, line, 6);
    wrap(f, k->desc, 6);
    if (env) {
        env_name(k, en, sizeof en);
        fprintf(f, "      Environment: %s\n", en);
    }
}

void rd_config_print_help(FILE *f) {
    fprintf(f, "retryd reads an INI file (-c FILE). Every key of the fixed sections can be\n"
               "overridden by the environment variable RETRYD_<SECTION>_<KEY> (upper case;\n"
               "'.', '-' and ':' become '_'), applied after the file.\n");
    for (size_t s = 0; s < NSECTIONS; s++) {
        fprintf(f, "\n[%s]\n", sections[s].name);
        wrap(f, sections[s].desc, 2);
        for_section_keys(f, sections[s].sec, help_key);
    }
}

/* Writes `s` escaped for a Markdown table cell; inside a code span only '|'
 * needs escaping (entities would show literally). */
static void md_text(FILE *f, const char *s, bool code) {
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", f);
        else if (code)
            fputc(*s, f);
        else if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else
            fputc(*s, f);
    }
}

static void md_cell(FILE *f, const char *s) {
    md_text(f, s, false);
}

static void md_key(FILE *f, const rd_key *k, const char *prefix, bool env) {
    char a[128], en[128];
    allowed(k, a, sizeof a);
    const char *d = default_text(k);
    fprintf(f, "| `%s%s` | %s | ", prefix, k->name, type_name(k));
    if (k->sec == RDS_POLICY && !prefix[0])
        fputs("from `[scheduler]`", f);
    else if (!d)
        fputs("(none)", f);
    else if (!d[0])
        fputs("(empty)", f);
    else {
        fputs("`", f);
        md_text(f, d, true);
        fputs("`", f);
    }
    fputs(" | ", f);
    md_cell(f, a);
    fprintf(f, " | %s | ", k->flags & RDF_RELOADABLE ? "yes" : "no");
    if (env) {
        env_name(k, en, sizeof en);
        fprintf(f, "`%s`", en);
    } else {
        fputs("-", f);
    }
    fputs(" | ", f);
    md_cell(f, k->desc);
    fputs(" |\n", f);
}

void rd_config_write_markdown(FILE *f) {
    fprintf(f, "# retryd configuration\n\n"
          "<!-- Generated from the key table in server/config.c by "
          "rd_config_write_markdown();\n"
          "     do not edit. Regenerate with: "
          "tests/unit/check_config_doc.sh --update BUILD_DIR/tests/gen_config_doc "
          "docs/configuration.md -->\n\n"
          "`retryd -c FILE` reads an INI file; `retryd --help-config` prints this list and\n"
          "`retryd --check-config -c FILE` prints the effective configuration with secrets\n"
          "masked. `server/retryd.ini.example` is a commented example.\n\n"
          "## File syntax\n\n"
          "- `[section]` headers and `key = value` lines; lines starting with `;` or `#`\n"
          "  are comments, and so is the rest of a line after ` ;` (a `;` preceded by a\n"
          "  space). Values are taken literally: no quotes, no escapes.\n"
          "- Lines may be up to %d characters long. Indented lines are ordinary lines.\n"
          "- An unknown section, an unknown key (outside `[kafka]`), a key given twice in\n"
          "  one section or a value out of bounds stops retryd with one sentence naming\n"
          "  the file, line, section and key, e.g.\n"
          "  `retryd.ini:12: [scheduler] batch_size: must be an integer in 1..10000, got 'x'`.\n\n"
          "## Environment\n\n"
          "Every key of the fixed sections can be overridden by the environment variable\n"
          "`RETRYD_<SECTION>_<KEY>` (upper case; `.`, `-` and `:` become `_`), applied\n"
          "after the file, e.g. `RETRYD_MYSQL_PASSWORD`. Errors name the variable:\n"
          "`environment RETRYD_SCHEDULER_BATCH_SIZE: [scheduler] batch_size: ...`.\n"
          "An empty value unsets the keys whose default is \"(none)\".\n\n"
          "- `RETRYD_KAFKA_<NAME>`, for a NAME other than BROKERS, TOPIC and GROUP_ID, sets\n"
          "  the librdkafka property NAME lowercased with `_` turned into `.`:\n"
          "  `RETRYD_KAFKA_SECURITY_PROTOCOL=ssl` sets `security.protocol`.\n"
          "- `[scene:NAME]` sections cannot be set from the environment; a variable\n"
          "  starting with `RETRYD_SCENE_` is an error, and so is any other unknown\n"
          "  variable under a known section's prefix (a misspelt key).\n\n"
          "## Policy precedence\n\n"
          "A task's effective policy takes each field from the first of: the `policy`\n"
          "object in the task's message, the task's `[scene:NAME]` section, the\n"
          "`[scheduler] default_*` keys. Deadlines are absolute per task and come only\n"
          "from the message.\n",
            RD_CONFIG_MAX_LINE - 2);
    for (size_t s = 0; s < NSECTIONS; s++) {
        fprintf(f, "\n## [%s]\n\n", sections[s].name);
        md_cell(f, sections[s].desc);
        fputs("\n\n| key | type | default | allowed | reloadable | environment | description |\n"
              "|---|---|---|---|---|---|---|\n",
              f);
        for_section_keys(f, sections[s].sec, md_key);
    }
}

/* Writes a levels table with the largest exact unit per delay ("1s 5s 1m"). */
static void fmt_levels(FILE *f, const int64_t *levels, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int64_t v = levels[i];
        const char *sep = i ? " " : "";
        if (v > 0 && v % 3600000 == 0)
            fprintf(f, "%s%lldh", sep, (long long)(v / 3600000));
        else if (v > 0 && v % 60000 == 0)
            fprintf(f, "%s%lldm", sep, (long long)(v / 60000));
        else if (v > 0 && v % 1000 == 0)
            fprintf(f, "%s%llds", sep, (long long)(v / 1000));
        else
            fprintf(f, "%s%lldms", sep, (long long)v);
    }
}

/* Writes "key = value" ("key =" for an empty value). */
/* The value of key k in base as config-file text (malloc'd; NULL when out of
 * memory). mask: secrets print as "***". */
static char *value_text(const rd_key *k, const void *base, bool mask) {
    const char *slot = (const char *)base + k->off;
    char *text = NULL;
    size_t textlen = 0;
    FILE *f = open_memstream(&text, &textlen);
    if (!f) return NULL;
    switch (k->type) {
    case RDT_STRING:
    case RDT_CHOICE: {
        const char *s = *(char *const *)slot;
        if (s && *s && mask && (k->flags & RDF_SECRET))
            fputs("***", f);
        else if (s)
            fputs(s, f);
        break;
    }
    case RDT_INT:
    case RDT_BOOL:
        if (k->type == RDT_BOOL)
            fputs(*(const int *)slot ? "true" : "false", f);
        else
            fprintf(f, "%d", *(const int *)slot);
        break;
    case RDT_MS:
        fprintf(f, "%lld", (long long)*(const int64_t *)slot);
        break;
    case RDT_DOUBLE: {
        char buf[32];
        fmt_double(*(const double *)slot, buf, sizeof buf);
        fputs(buf, f);
        break;
    }
    case RDT_BACKOFF:
        fputs(rt_backoff_kind_name(*(const rt_backoff_kind *)slot), f);
        break;
    case RDT_JITTER:
        fputs(rt_jitter_kind_name(*(const rt_jitter_kind *)slot), f);
        break;
    case RDT_STATUS_LIST: {
        size_t n = *(const size_t *)((const char *)base + k->noff);
        for (size_t i = 0; i < n; i++) fprintf(f, "%s%d", i ? "," : "", ((const int *)slot)[i]);
        break;
    }
    case RDT_LEVELS:
        fmt_levels(f, (const int64_t *)slot, *(const size_t *)((const char *)base + k->noff));
        break;
    case RDT_EMAILS:
    case RDT_STRINGS: {
        size_t n = *(const size_t *)((const char *)base + k->noff);
        char *const *v = *(char **const *)slot;
        for (size_t i = 0; i < n; i++) fprintf(f, "%s%s", i ? ", " : "", v[i]);
        break;
    }
    }
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

static void dump_value(FILE *out, const rd_key *k, const void *base, const char *prefix) {
    char *text = value_text(k, base, true);
    if (!text) {
        fprintf(out, "%s%s = (out of memory)\n", prefix, k->name);
        return;
    }
    fprintf(out, "%s%s =%s%s\n", prefix, k->name, text[0] ? " " : "", text);
    free(text);
}

static bool kafka_props_equal(const rd_config *a, const rd_config *b) {
    if (a->nkafka_props != b->nkafka_props) return false;
    for (size_t i = 0; i < a->nkafka_props; i++)
        if (strcmp(a->kafka_props[i].key, b->kafka_props[i].key) != 0 ||
            strcmp(a->kafka_props[i].value, b->kafka_props[i].value) != 0)
            return false;
    return true;
}

int rd_config_reload(const rd_config *old, const char *path, char *const *envp, rd_config *out,
                     char *kept, size_t keptsz, char *err, size_t errsz) {
    if (rd_config_load(path, envp, out, err, errsz) != 0) return -1;
    size_t used = 0;
    kept[0] = '\0';
    for (size_t i = 0; i < NKEYS; i++) {
        const rd_key *k = &keys[i];
        if (k->sec == RDS_POLICY || k->sec == RDS_SCENE || (k->flags & RDF_RELOADABLE)) continue;
        char *was = value_text(k, old, false);
        char *now = value_text(k, out, false);
        int same = was && now && strcmp(was, now) == 0;
        char why[256];
        int rc = 0;
        if (!same && was) rc = set_value(k, out, was, why, sizeof why);
        free(was);
        free(now);
        if (same) continue;
        if (rc != 0) {
            rd_config_free(out);
            snprintf(err, errsz, "[%s] %s: cannot keep the running value", section_name(k->sec),
                     k->name);
            return -1;
        }
        int n = snprintf(kept + used, keptsz - used, "%s[%s] %s", used ? ", " : "",
                         section_name(k->sec), k->name);
        if (n > 0 && (size_t)n < keptsz - used) used += (size_t)n;
    }
    if (!kafka_props_equal(old, out)) {
        /* Put the running properties back: the consumer was built with them. */
        for (size_t i = 0; i < out->nkafka_props; i++) {
            free(out->kafka_props[i].key);
            free(out->kafka_props[i].value);
        }
        free(out->kafka_props);
        out->kafka_props = calloc(old->nkafka_props ? old->nkafka_props : 1, sizeof(rd_kv));
        out->nkafka_props = 0;
        for (size_t i = 0; out->kafka_props && i < old->nkafka_props; i++) {
            out->kafka_props[i].key = strdup(old->kafka_props[i].key);
            out->kafka_props[i].value = strdup(old->kafka_props[i].value);
            out->nkafka_props++;
        }
        int n = snprintf(kept + used, keptsz - used, "%s[kafka] properties", used ? ", " : "");
        if (n > 0 && (size_t)n < keptsz - used) used += (size_t)n;
    }
    return 0;
}

static bool is_secret_prop(const char *key) {
    return strstr(key, "password") || strstr(key, "secret");
}

void rd_config_dump(const rd_config *c, FILE *f) {
    for (size_t s = 0; s < NSECTIONS; s++) {
        rd_section sec = sections[s].sec;
        if (sec == RDS_SCENE) continue;
        fprintf(f, "[%s]\n", sections[s].name);
        for (size_t i = 0; i < NKEYS; i++) {
            if (keys[i].sec == sec) dump_value(f, &keys[i], c, "");
        }
        if (sec == RDS_KAFKA) {
            for (size_t i = 0; i < c->nkafka_props; i++)
                fprintf(f, "%s = %s\n", c->kafka_props[i].key,
                        is_secret_prop(c->kafka_props[i].key) ? "***"
                                                              : c->kafka_props[i].value);
        }
        if (sec == RDS_SCHEDULER) {
            for (size_t i = 0; i < NKEYS; i++) {
                if (keys[i].sec == RDS_POLICY) dump_value(f, &keys[i], &c->defaults, "default_");
            }
        }
        fputc('\n', f);
    }
    for (size_t s = 0; s < c->nscenes; s++) {
        const rd_scene_conf *sc = &c->scenes[s];
        fprintf(f, "[scene:%s]\n", sc->name);
        for (size_t i = 0; i < NKEYS; i++) {
            if (keys[i].sec == RDS_POLICY && (sc->policy.set & keys[i].polbit))
                dump_value(f, &keys[i], &sc->policy, "");
        }
        for (size_t i = 0; i < NKEYS; i++) {
            if (keys[i].sec == RDS_SCENE && sc->nowners) dump_value(f, &keys[i], sc, "");
        }
        fputc('\n', f);
    }
}
