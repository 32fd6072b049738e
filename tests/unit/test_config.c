/*
 * test_config.c: server/config.c. Defaults, a full file, every kind of error
 * sentence, environment overrides (explicit envp arrays, never the process
 * environment), librdkafka pass-through properties, scene lookup, policy
 * precedence, the dump (masked secrets, re-readable) and the example file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char *const no_env[] = {NULL};

#define ALL_BUT_DEADLINE                                                                   \
    (RT_POL_MAX_ATTEMPTS | RT_POL_BACKOFF | RT_POL_INITIAL_DELAY | RT_POL_MULTIPLIER |     \
     RT_POL_MAX_DELAY | RT_POL_JITTER | RT_POL_STOP_ON_STATUS | RT_POL_LEVELS)

/* Writes text to a new temporary file; returns its path (static buffer). */
static const char *write_tmp(const char *text) {
    static char path[64];
    snprintf(path, sizeof path, "/tmp/test_config.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
    return path;
}

/* Loads text as a file; returns rd_config_load's result, err filled. */
static int load_text(const char *text, char *const *envp, rd_config *c, char *err,
                     size_t errsz, char *pathout, size_t pathsz) {
    const char *path = write_tmp(text);
    if (pathout) snprintf(pathout, pathsz, "%s", path);
    int rc = rd_config_load(path, envp, c, err, errsz);
    unlink(path);
    return rc;
}

static void test_scene_body_rule(void **state) {
    (void)state;
    rd_config c;
    char err[512];
    assert_int_equal(load_text("[scene:pay]\nstop_on_body_pointer = /error/code\n"
                               "stop_on_body_values = E1001, 42 ,true\n",
                               NULL, &c, err, sizeof err, NULL, 0),
                     0);
    const rd_scene_conf *sc = rd_config_scene(&c, "pay");
    assert_non_null(sc);
    assert_string_equal(sc->stop_on_body_pointer, "/error/code");
    assert_int_equal(sc->nstop_on_body_values, 3);
    assert_string_equal(sc->stop_on_body_values[0], "E1001");
    assert_string_equal(sc->stop_on_body_values[1], "42");
    assert_string_equal(sc->stop_on_body_values[2], "true");
    rd_config_free(&c);

    assert_int_equal(load_text("[scene:pay]\nstop_on_body_pointer = error/code\n", NULL, &c,
                               err, sizeof err, NULL, 0),
                     -1);
    assert_non_null(strstr(err, "must be a JSON Pointer (RFC 6901)"));
    assert_int_equal(load_text("[scene:pay]\nstop_on_body_values = a,,b\n", NULL, &c, err,
                               sizeof err, NULL, 0),
                     -1);
    assert_non_null(strstr(err, "must be values separated by commas"));
}

static void test_defaults(void **state) {
    (void)state;
    rd_config c;
    char err[256];
    assert_int_equal(rd_config_load(NULL, no_env, &c, err, sizeof err), 0);
    char host[256] = "";
    gethostname(host, sizeof host);
    char id[300];
    snprintf(id, sizeof id, "%s:%ld", host, (long)getpid());
    assert_string_equal(c.node_id, id);
    assert_string_equal(c.mysql_host, "127.0.0.1");
    assert_int_equal(c.mysql_port, 3306);
    assert_null(c.mysql_socket);
    assert_string_equal(c.mysql_user, "retry");
    assert_string_equal(c.mysql_password, "");
    assert_string_equal(c.mysql_database, "retry");
    assert_null(c.kafka_brokers);
    assert_string_equal(c.kafka_topic, "retry.tasks");
    assert_string_equal(c.kafka_group_id, "retryd");
    assert_int_equal(c.nkafka_props, 0);
    assert_string_equal(c.http_listen, "127.0.0.1:7788");
    assert_null(c.http_token);
    assert_int_equal(c.scan_interval_ms, 1000);
    assert_int_equal(c.batch_size, 500);
    assert_int_equal(c.lease_ms, 30000);
    assert_int_equal(c.max_inflight, 256);
    assert_int_equal(c.defaults.set, ALL_BUT_DEADLINE);
    assert_int_equal(c.defaults.max_attempts, 10);
    assert_int_equal(c.defaults.backoff, RT_BACKOFF_EXPONENTIAL);
    assert_int_equal(c.defaults.initial_delay_ms, 1000);
    assert_true(c.defaults.multiplier == 2.0);
    assert_int_equal(c.defaults.max_delay_ms, 300000);
    assert_int_equal(c.defaults.jitter, RT_JITTER_FULL);
    assert_int_equal(c.defaults.nstop_on_status, 0);
    static const int64_t levels[] = {1000,   5000,   10000,   30000,   60000,
                                     120000, 300000, 600000, 1800000, 3600000};
    assert_int_equal(c.defaults.nlevels, 10);
    assert_memory_equal(c.defaults.levels, levels, sizeof levels);
    assert_null(c.alerts_webhook_url);
    assert_null(c.alerts_smtp_url);
    assert_null(c.alerts_smtp_from);
    assert_int_equal(c.nalerts_smtp_to, 0);
    assert_string_equal(c.log_level, "info");
    assert_string_equal(c.log_format, "text");
    assert_int_equal(c.nscenes, 0);
    rd_config_free(&c);
    rd_config_free(&c); /* freeing twice is harmless: free zeroes the struct */
    rd_config_free(NULL);
}

static const char full_file[] =
    "; a comment\n"
    "# another comment\n"
    "[node]\n"
    "id = node-a\n"
    "\n"
    "[mysql]\n"
    "host = db.internal\n"
    "port = 3307\n"
    "socket = /run/mysqld/mysqld.sock\n"
    "user = svc\n"
    "password = s3cret\n"
    "database = retries\n"
    "\n"
    "[kafka]\n"
    "brokers = k1:9092,k2:9092\n"
    "topic = my.tasks\n"
    "group_id = retryd-prod\n"
    "security.protocol = sasl_ssl\n"
    "sasl.password = kpass\n"
    "  fetch.wait.max.ms = 100\n"
    "\n"
    "[http]\n"
    "listen = [::1]:8080\n"
    "token = tok\n"
    "\n"
    "[scheduler]\n"
    "scan_interval_ms = 250\n"
    "batch_size = 100\n"
    "lease_ms = 60000\n"
    "max_inflight = 64\n"
    "default_max_attempts = 5\n"
    "default_backoff = levels\n"
    "default_initial_delay_ms = 200\n"
    "default_multiplier = 1.5\n"
    "default_max_delay_ms = 0\n"
    "default_jitter = none\n"
    "default_stop_on_status = 400, 404,410\n"
    "default_levels = 1s 2s 500ms\n"
    "\n"
    "[scene:order.pay]\n"
    "max_attempts = 3\n"
    "jitter = equal\n"
    "owners = a@example.com, b@example.org\n"
    "\n"
    "[scene:sms:send]\n"
    "backoff = fixed ; inline comment\n"
    "stop_on_status =\n"
    "\n"
    "[alerts]\n"
    "webhook_url = https://hooks.example.com/x?a=1\n"
    "smtp_url = smtp://mail:25\n"
    "smtp_from = retryd@example.com\n"
    "smtp_to = ops@example.com\n"
    "\n"
    "[log]\n"
    "level = debug\n"
    "format = json\n";

static void test_full_file(void **state) {
    (void)state;
    rd_config c;
    char err[256] = "";
    assert_int_equal(load_text(full_file, no_env, &c, err, sizeof err, NULL, 0), 0);
    assert_string_equal(c.node_id, "node-a");
    assert_string_equal(c.mysql_host, "db.internal");
    assert_int_equal(c.mysql_port, 3307);
    assert_string_equal(c.mysql_socket, "/run/mysqld/mysqld.sock");
    assert_string_equal(c.mysql_user, "svc");
    assert_string_equal(c.mysql_password, "s3cret");
    assert_string_equal(c.mysql_database, "retries");
    assert_string_equal(c.kafka_brokers, "k1:9092,k2:9092");
    assert_string_equal(c.kafka_topic, "my.tasks");
    assert_string_equal(c.kafka_group_id, "retryd-prod");
    assert_int_equal(c.nkafka_props, 3);
    assert_string_equal(c.kafka_props[0].key, "security.protocol");
    assert_string_equal(c.kafka_props[0].value, "sasl_ssl");
    assert_string_equal(c.kafka_props[1].key, "sasl.password");
    assert_string_equal(c.kafka_props[2].key, "fetch.wait.max.ms"); /* indented key */
    assert_string_equal(c.kafka_props[2].value, "100");
    assert_string_equal(c.http_listen, "[::1]:8080");
    assert_string_equal(c.http_token, "tok");
    assert_int_equal(c.scan_interval_ms, 250);
    assert_int_equal(c.batch_size, 100);
    assert_int_equal(c.lease_ms, 60000);
    assert_int_equal(c.max_inflight, 64);
    assert_int_equal(c.defaults.set, ALL_BUT_DEADLINE);
    assert_int_equal(c.defaults.max_attempts, 5);
    assert_int_equal(c.defaults.backoff, RT_BACKOFF_LEVELS);
    assert_int_equal(c.defaults.initial_delay_ms, 200);
    assert_true(c.defaults.multiplier == 1.5);
    assert_int_equal(c.defaults.max_delay_ms, 0);
    assert_int_equal(c.defaults.jitter, RT_JITTER_NONE);
    assert_int_equal(c.defaults.nstop_on_status, 3);
    assert_int_equal(c.defaults.stop_on_status[0], 400);
    assert_int_equal(c.defaults.stop_on_status[1], 404);
    assert_int_equal(c.defaults.stop_on_status[2], 410);
    assert_int_equal(c.defaults.nlevels, 3);
    assert_int_equal(c.defaults.levels[0], 1000);
    assert_int_equal(c.defaults.levels[1], 2000);
    assert_int_equal(c.defaults.levels[2], 500);

    assert_int_equal(c.nscenes, 2);
    const rd_scene_conf *pay = rd_config_scene(&c, "order.pay");
    assert_non_null(pay);
    assert_string_equal(pay->name, "order.pay");
    assert_int_equal(pay->policy.set, RT_POL_MAX_ATTEMPTS | RT_POL_JITTER);
    assert_int_equal(pay->policy.max_attempts, 3);
    assert_int_equal(pay->policy.jitter, RT_JITTER_EQUAL);
    assert_int_equal(pay->nowners, 2);
    assert_string_equal(pay->owners[0], "a@example.com");
    assert_string_equal(pay->owners[1], "b@example.org");
    const rd_scene_conf *sms = rd_config_scene(&c, "sms:send");
    assert_non_null(sms);
    assert_int_equal(sms->policy.set, RT_POL_BACKOFF | RT_POL_STOP_ON_STATUS);
    assert_int_equal(sms->policy.backoff, RT_BACKOFF_FIXED);
    assert_int_equal(sms->policy.nstop_on_status, 0);
    assert_int_equal(sms->nowners, 0);
    assert_null(rd_config_scene(&c, "order"));
    assert_null(rd_config_scene(&c, NULL));

    assert_string_equal(c.alerts_webhook_url, "https://hooks.example.com/x?a=1");
    assert_string_equal(c.alerts_smtp_url, "smtp://mail:25");
    assert_string_equal(c.alerts_smtp_from, "retryd@example.com");
    assert_int_equal(c.nalerts_smtp_to, 1);
    assert_string_equal(c.alerts_smtp_to[0], "ops@example.com");
    assert_string_equal(c.log_level, "debug");
    assert_string_equal(c.log_format, "json");
    rd_config_free(&c);
}

/* Every kind of error, as the exact sentence; "%s" stands for the file. */
static const struct {
    const char *text;
    const char *want;
} bad_files[] = {
    {"[scheduler]\nbatch_size = x\n",
     "%s:2: [scheduler] batch_size: must be an integer in 1..10000, got 'x'"},
    {"[scheduler]\nbatch_size = 0\n",
     "%s:2: [scheduler] batch_size: must be an integer in 1..10000, got '0'"},
    {"[scheduler]\nbatch_size = 10001\n",
     "%s:2: [scheduler] batch_size: must be an integer in 1..10000, got '10001'"},
    {"[scheduler]\nlease_ms = 999\n",
     "%s:2: [scheduler] lease_ms: must be an integer in 1000..86400000, got '999'"},
    {"[scheduler]\nscan_interval_ms = 10s\n",
     "%s:2: [scheduler] scan_interval_ms: must be an integer in 10..3600000, got '10s'"},
    {"[mysql]\nport = 99999999999999999999\n",
     "%s:2: [mysql] port: must be an integer in 1..65535, got '99999999999999999999'"},
    {"[mysql]\nhots = db\n", "%s:2: [mysql] hots: unknown key"},
    {"[mysql]\nhost = a\n\n[mysqll]\nport = 1\n", "%s:4: unknown section [mysqll]"},
    {"[empty]\n", "%s:1: unknown section [empty]"},
    {"[scene:bad name]\nmax_attempts = 1\n",
     "%s:1: [scene:bad name]: scene name must match [A-Za-z0-9._:-]{1,128}"},
    {"[scene:]\n", "%s:1: [scene:]: scene name must match [A-Za-z0-9._:-]{1,128}"},
    {"[scene:a]\nmax_attempts = 1001\n",
     "%s:2: [scene:a] max_attempts: must be an integer in 1..1000, got '1001'"},
    {"[scene:a]\nowners = a@example.com\nlease_ms = 1000\n",
     "%s:3: [scene:a] lease_ms: unknown key"},
    {"[scheduler]\nmax_attempts = 3\n", "%s:2: [scheduler] max_attempts: unknown key"},
    {"[scheduler]\ndefault_backoff = linear\n",
     "%s:2: [scheduler] default_backoff: must be one of fixed, exponential, levels, random, "
     "got 'linear'"},
    {"[scene:x]\njitter = some\n",
     "%s:2: [scene:x] jitter: must be one of none, full, equal, decorrelated, got 'some'"},
    {"[log]\nlevel = verbose\n",
     "%s:2: [log] level: must be one of err, warning, notice, info, debug, got 'verbose'"},
    {"[log]\nformat = xml\n", "%s:2: [log] format: must be one of text, json, got 'xml'"},
    {"[scheduler]\ndefault_multiplier = 0.5\n",
     "%s:2: [scheduler] default_multiplier: must be a number in 1.0..100.0, got '0.5'"},
    {"[scheduler]\ndefault_multiplier = nan\n",
     "%s:2: [scheduler] default_multiplier: must be a number in 1.0..100.0, got 'nan'"},
    {"[scheduler]\ndefault_initial_delay_ms = -1\n",
     "%s:2: [scheduler] default_initial_delay_ms: must be an integer in 0..86400000, got '-1'"},
    {"[scheduler]\ndefault_max_delay_ms = 604800001\n",
     "%s:2: [scheduler] default_max_delay_ms: must be an integer in 0..604800000, got "
     "'604800001'"},
    {"[scheduler]\ndefault_stop_on_status = 400,abc\n",
     "%s:2: [scheduler] default_stop_on_status: must be HTTP status codes in 100..599 "
     "separated by commas, got '400,abc'"},
    {"[scene:s]\nstop_on_status = 99\n",
     "%s:2: [scene:s] stop_on_status: must be HTTP status codes in 100..599 separated by "
     "commas, got '99'"},
    {"[scene:s]\nstop_on_status = 400,\n",
     "%s:2: [scene:s] stop_on_status: must be HTTP status codes in 100..599 separated by "
     "commas, got '400,'"},
    {"[scheduler]\ndefault_levels =\n",
     "%s:2: [scheduler] default_levels: empty table"},
    {"[scene:s]\nlevels = 1s 8d\n",
     "%s:2: [scene:s] levels: invalid item '8d' (expected a whole number with an optional "
     "unit ms, s, m or h)"},
    {"[scene:s]\nlevels = 25h\n", NULL /* wording from rt_levels_parse */},
    {"[http]\nlisten = localhost\n",
     "%s:2: [http] listen: must be host:port or [ipv6]:port with a port in 1..65535, got "
     "'localhost'"},
    {"[http]\nlisten = 0.0.0.0:0\n",
     "%s:2: [http] listen: must be host:port or [ipv6]:port with a port in 1..65535, got "
     "'0.0.0.0:0'"},
    {"[http]\nlisten = :80\n",
     "%s:2: [http] listen: must be host:port or [ipv6]:port with a port in 1..65535, got "
     "':80'"},
    {"[http]\nlisten = ::1:80\n",
     "%s:2: [http] listen: must be host:port or [ipv6]:port with a port in 1..65535, got "
     "'::1:80'"},
    {"[mysql]\nport = 1\nport = 2\n", "%s:3: [mysql] port: duplicate key"},
    {"[scene:a]\njitter = none\n[scene:b]\njitter = none\n[scene:a]\njitter = full\n",
     "%s:6: [scene:a] jitter: duplicate key"},
    {"[kafka]\nlinger.ms = 1\nlinger.ms = 2\n", "%s:3: [kafka] linger.ms: duplicate key"},
    {"[kafka]\ngroup.id = x\n", "%s:2: [kafka] group.id: set group_id instead"},
    {"[kafka]\nbootstrap.servers = x:1\n", "%s:2: [kafka] bootstrap.servers: set brokers instead"},
    {"port = 1\n", "%s:1: key 'port' outside any section"},
    {"[kafka]\n= x\n", "%s:2: key name missing before '='"},
    {"[mysql]\nthis is not a key\n", "%s:2: expected 'key = value' or '[section]'"},
    {"[mysql\nport = 1\n", "%s:1: section header without ']'"},
    {"[mysql]\nhost =\n", "%s:2: [mysql] host: must not be empty"},
    {"[node]\nid = has space\n",
     "%s:2: [node] id: must be printable characters without spaces, got 'has space'"},
    {"[kafka]\ntopic = a/b\n", "%s:2: [kafka] topic: must match [A-Za-z0-9._-]{1,249}, got 'a/b'"},
    {"[scene:a]\nowners = a@example.com,,b@example.com\n",
     "%s:2: [scene:a] owners: must be e-mail addresses separated by commas, got "
     "'a@example.com,,b@example.com'"},
    {"[alerts]\nsmtp_to = nobody\n",
     "%s:2: [alerts] smtp_to: must be e-mail addresses separated by commas, got 'nobody'"},
    {"[alerts]\nwebhook_url = ftp://x\n",
     "%s:2: [alerts] webhook_url: must be an http:// or https:// URL, got 'ftp://x'"},
    {"[alerts]\nsmtp_from = me\n",
     "%s:2: [alerts] smtp_from: must be an e-mail address such as retryd@example.com, got 'me'"},
    {"[alerts]\nsmtp_url = smtp://mail:25\n",
     "[alerts] smtp_from: must be set when smtp_url is set"},
};

static void test_errors(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++) {
        rd_config c;
        char err[512] = "", path[64], want[512];
        memset(&c, 0xAB, sizeof c);
        int rc = load_text(bad_files[i].text, no_env, &c, err, sizeof err, path, sizeof path);
        if (rc != -1) fail_msg("case %zu accepted: %s", i, bad_files[i].text);
        if (bad_files[i].want) {
            snprintf(want, sizeof want, bad_files[i].want, path);
            if (strcmp(err, want) != 0) fail_msg("case %zu:\n got: %s\nwant: %s", i, err, want);
        } else {
            snprintf(want, sizeof want, "%s:2: [scene:s] levels: ", path);
            assert_memory_equal(err, want, strlen(want));
            assert_true(strlen(err) > strlen(want));
        }
        /* On error *out is left freed (and zeroed). */
        assert_null(c.node_id);
        assert_null(c.scenes);
        assert_int_equal(c.nscenes, 0);
        assert_null(c.kafka_props);
    }
}

static void test_error_misc(void **state) {
    (void)state;
    rd_config c;
    char err[512];
    assert_int_equal(rd_config_load("/nonexistent/retryd.ini", no_env, &c, err, sizeof err), -1);
    assert_string_equal(err, "cannot open /nonexistent/retryd.ini: No such file or directory");

    char dir[] = "/tmp/test_config_dir.XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(rd_config_load(dir, no_env, &c, err, sizeof err), -1);
    char want_dir[128];
    snprintf(want_dir, sizeof want_dir, "cannot read %s: Is a directory", dir);
    assert_string_equal(err, want_dir);
    rmdir(dir);

    /* Long values are cut when quoted back. */
    char text[300], path[64], xs[101];
    memset(xs, 'x', 100);
    xs[100] = '\0';
    snprintf(text, sizeof text, "[scheduler]\nbatch_size = %s\n", xs);
    assert_int_equal(load_text(text, no_env, &c, err, sizeof err, path, sizeof path), -1);
    assert_non_null(strstr(err, "got 'xxxx"));
    assert_non_null(strstr(err, "...'"));

    /* Lines up to the limit are fine; longer ones are an error. */
    char *big = malloc(10000);
    assert_non_null(big);
    int n = snprintf(big, 10000, "[alerts]\nwebhook_url = https://example.com/");
    memset(big + n, 'a', 4000);
    strcpy(big + n + 4000, "\n");
    assert_int_equal(load_text(big, no_env, &c, err, sizeof err, NULL, 0), 0);
    assert_int_equal(strlen(c.alerts_webhook_url), strlen("https://example.com/") + 4000);
    rd_config_free(&c);
    memset(big + n, 'a', 5000);
    strcpy(big + n + 5000, "\n");
    assert_int_equal(load_text(big, no_env, &c, err, sizeof err, path, sizeof path), -1);
    char want[128];
    snprintf(want, sizeof want, "%s:2: line is longer than 4094 characters", path);
    assert_string_equal(err, want);
    free(big);

    /* A scene name of 128 characters (longer than inih's section buffer). */
    char name[130];
    memset(name, 'n', 128);
    name[128] = '\0';
    snprintf(text, sizeof text, "[scene:%s]\nmax_attempts = 2\n", name);
    assert_int_equal(load_text(text, no_env, &c, err, sizeof err, NULL, 0), 0);
    assert_non_null(rd_config_scene(&c, name));
    assert_int_equal(rd_config_scene(&c, name)->policy.max_attempts, 2);
    rd_config_free(&c);
    snprintf(text, sizeof text, "[scene:%sn]\n", name);
    assert_int_equal(load_text(text, no_env, &c, err, sizeof err, NULL, 0), -1);
    assert_non_null(strstr(err, "scene name must match"));

    /* err may be NULL. */
    assert_int_equal(load_text("[nope]\n", no_env, &c, NULL, 0, NULL, 0), -1);
}

static void test_env_overrides(void **state) {
    (void)state;
    char *envp[] = {
        "PATH=/usr/bin",
        "RETRYD_UNRELATED_THING=1", /* not a section of ours: ignored */
        "RETRYD_SCHEDULER_BATCH_SIZE=200",
        "RETRYD_SCHEDULER_DEFAULT_MAX_ATTEMPTS=7",
        "RETRYD_SCHEDULER_DEFAULT_STOP_ON_STATUS=409",
        "RETRYD_MYSQL_PASSWORD=from-env",
        "RETRYD_HTTP_TOKEN=",
        "RETRYD_NODE_ID=env-node",
        "RETRYD_LOG_LEVEL=warning",
        "RETRYD_KAFKA_BROKERS=envbroker:9092",
        "RETRYD_KAFKA_SECURITY_PROTOCOL=ssl",
        "RETRYD_KAFKA_LINGER_MS=5",
        NULL,
    };
    const char *text = "[scheduler]\nbatch_size = 100\nmax_inflight = 9\n"
                       "[mysql]\npassword = from-file\n"
                       "[http]\ntoken = filetoken\n"
                       "[kafka]\nbrokers = filebroker:9092\nlinger.ms = 50\nacks = all\n";
    rd_config c;
    char err[256] = "";
    assert_int_equal(load_text(text, envp, &c, err, sizeof err, NULL, 0), 0);
    assert_int_equal(c.batch_size, 200);   /* env beats file */
    assert_int_equal(c.max_inflight, 9);   /* file beats default */
    assert_int_equal(c.defaults.max_attempts, 7);
    assert_int_equal(c.defaults.nstop_on_status, 1);
    assert_int_equal(c.defaults.stop_on_status[0], 409);
    assert_int_equal(c.defaults.set, ALL_BUT_DEADLINE);
    assert_string_equal(c.mysql_password, "from-env");
    assert_null(c.http_token); /* an empty value clears an optional key */
    assert_string_equal(c.node_id, "env-node");
    assert_string_equal(c.log_level, "warning");
    assert_string_equal(c.kafka_brokers, "envbroker:9092");
    /* File order kept, env replaces in place and appends new properties. */
    assert_int_equal(c.nkafka_props, 3);
    assert_string_equal(c.kafka_props[0].key, "linger.ms");
    assert_string_equal(c.kafka_props[0].value, "5");
    assert_string_equal(c.kafka_props[1].key, "acks");
    assert_string_equal(c.kafka_props[1].value, "all");
    assert_string_equal(c.kafka_props[2].key, "security.protocol");
    assert_string_equal(c.kafka_props[2].value, "ssl");
    rd_config_free(&c);

    /* Without a file. */
    char *env2[] = {"RETRYD_MYSQL_PORT=3310", NULL};
    assert_int_equal(rd_config_load(NULL, env2, &c, err, sizeof err), 0);
    assert_int_equal(c.mysql_port, 3310);
    rd_config_free(&c);
}

static void test_env_errors(void **state) {
    (void)state;
    static const struct {
        const char *var;
        const char *want;
    } cases[] = {
        {"RETRYD_SCHEDULER_BATCH_SIZE=abc",
         "environment RETRYD_SCHEDULER_BATCH_SIZE: [scheduler] batch_size: must be an integer "
         "in 1..10000, got 'abc'"},
        {"RETRYD_SCHEDULER_DEFAULT_JITTER=lots",
         "environment RETRYD_SCHEDULER_DEFAULT_JITTER: [scheduler] default_jitter: must be one "
         "of none, full, equal, decorrelated, got 'lots'"},
        {"RETRYD_HTTP_LISTEN=nope",
         "environment RETRYD_HTTP_LISTEN: [http] listen: must be host:port or [ipv6]:port with "
         "a port in 1..65535, got 'nope'"},
        {"RETRYD_SCHEDULER_BATCHSIZE=1",
         "environment RETRYD_SCHEDULER_BATCHSIZE: no key of [scheduler] has this name"},
        {"RETRYD_SCENE_ORDER_MAX_ATTEMPTS=1",
         "environment RETRYD_SCENE_ORDER_MAX_ATTEMPTS: [scene:NAME] keys cannot be set from "
         "the environment"},
        {"RETRYD_KAFKA_GROUP_ID_X=1", NULL}, /* passes through, see below */
        {"RETRYD_KAFKA_GROUP.ID=1", NULL},
        {"RETRYD_KAFKA_BOOTSTRAP_SERVERS=x:1",
         "environment RETRYD_KAFKA_BOOTSTRAP_SERVERS: [kafka] bootstrap.servers: set brokers "
         "instead"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *envp[] = {(char *)cases[i].var, NULL};
        rd_config c;
        char err[512] = "";
        int rc = rd_config_load(NULL, envp, &c, err, sizeof err);
        if (i == 5) { /* an unknown librdkafka property is librdkafka's to judge */
            assert_int_equal(rc, 0);
            assert_int_equal(c.nkafka_props, 1);
            assert_string_equal(c.kafka_props[0].key, "group.id.x");
            rd_config_free(&c);
            continue;
        }
        if (i == 6) { /* maps to "group.id", which has a key of its own */
            assert_int_equal(rc, -1);
            assert_non_null(strstr(err, "set group_id instead"));
            continue;
        }
        if (rc != -1) fail_msg("case %zu accepted", i);
        if (strcmp(err, cases[i].want) != 0)
            fail_msg("case %zu:\n got: %s\nwant: %s", i, err, cases[i].want);
    }
}

static void test_resolve_policy(void **state) {
    (void)state;
    const char *text = "[scheduler]\n"
                       "default_max_attempts = 10\n"
                       "default_stop_on_status = 400\n"
                       "[scene:s]\n"
                       "max_attempts = 4\n"
                       "backoff = levels\n"
                       "initial_delay_ms = 50\n"
                       "multiplier = 3\n"
                       "max_delay_ms = 9000\n"
                       "jitter = decorrelated\n"
                       "stop_on_status = 409,410\n"
                       "levels = 1s 2s\n"
                       "[scene:partial]\n"
                       "jitter = none\n";
    rd_config c;
    char err[256] = "";
    assert_int_equal(load_text(text, no_env, &c, err, sizeof err, NULL, 0), 0);

    /* No scene, no message: the defaults, without a deadline. */
    rt_policy out;
    rd_config_resolve_policy(&c, "unknown", NULL, &out);
    assert_int_equal(out.set, ALL_BUT_DEADLINE);
    assert_int_equal(out.max_attempts, 10);
    assert_int_equal(out.backoff, RT_BACKOFF_EXPONENTIAL);
    assert_int_equal(out.jitter, RT_JITTER_FULL);
    assert_int_equal(out.nstop_on_status, 1);
    assert_int_equal(out.nlevels, 10);

    /* Scene beats defaults, field by field. */
    rd_config_resolve_policy(&c, "s", NULL, &out);
    assert_int_equal(out.set, ALL_BUT_DEADLINE);
    assert_int_equal(out.max_attempts, 4);
    assert_int_equal(out.backoff, RT_BACKOFF_LEVELS);
    assert_int_equal(out.initial_delay_ms, 50);
    assert_true(out.multiplier == 3.0);
    assert_int_equal(out.max_delay_ms, 9000);
    assert_int_equal(out.jitter, RT_JITTER_DECORRELATED);
    assert_int_equal(out.nstop_on_status, 2);
    assert_int_equal(out.stop_on_status[1], 410);
    assert_int_equal(out.nlevels, 2);
    assert_int_equal(out.levels[1], 2000);

    rd_config_resolve_policy(&c, "partial", NULL, &out);
    assert_int_equal(out.jitter, RT_JITTER_NONE);
    assert_int_equal(out.max_attempts, 10);

    /* Each message field beats the scene; absent ones still come from it. */
    static const unsigned bits[] = {RT_POL_MAX_ATTEMPTS, RT_POL_BACKOFF, RT_POL_INITIAL_DELAY,
                                    RT_POL_MULTIPLIER,   RT_POL_MAX_DELAY, RT_POL_JITTER,
                                    RT_POL_STOP_ON_STATUS, RT_POL_DEADLINE, RT_POL_LEVELS};
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++) {
        rt_policy msg;
        memset(&msg, 0, sizeof msg);
        msg.set = bits[i];
        msg.max_attempts = 1;
        msg.backoff = RT_BACKOFF_RANDOM;
        msg.initial_delay_ms = 7;
        msg.multiplier = 1.25;
        msg.max_delay_ms = 77;
        msg.jitter = RT_JITTER_EQUAL;
        msg.stop_on_status[0] = 503;
        msg.nstop_on_status = 1;
        msg.deadline = 1767225600000;
        msg.levels[0] = 42;
        msg.nlevels = 1;
        rd_config_resolve_policy(&c, "s", &msg, &out);
        unsigned b = bits[i];
        assert_int_equal(out.set, ALL_BUT_DEADLINE | (b & RT_POL_DEADLINE));
        assert_int_equal(out.max_attempts, b == RT_POL_MAX_ATTEMPTS ? 1 : 4);
        assert_int_equal(out.backoff, b == RT_POL_BACKOFF ? RT_BACKOFF_RANDOM : RT_BACKOFF_LEVELS);
        assert_int_equal(out.initial_delay_ms, b == RT_POL_INITIAL_DELAY ? 7 : 50);
        assert_true(out.multiplier == (b == RT_POL_MULTIPLIER ? 1.25 : 3.0));
        assert_int_equal(out.max_delay_ms, b == RT_POL_MAX_DELAY ? 77 : 9000);
        assert_int_equal(out.jitter, b == RT_POL_JITTER ? RT_JITTER_EQUAL : RT_JITTER_DECORRELATED);
        assert_int_equal(out.nstop_on_status, b == RT_POL_STOP_ON_STATUS ? 1 : 2);
        assert_int_equal(out.stop_on_status[0], b == RT_POL_STOP_ON_STATUS ? 503 : 409);
        if (b == RT_POL_DEADLINE) assert_int_equal(out.deadline, 1767225600000);
        assert_int_equal(out.nlevels, b == RT_POL_LEVELS ? 1 : 2);
        assert_int_equal(out.levels[0], b == RT_POL_LEVELS ? 42 : 1000);
    }

    /* A message's empty stop list is a value, not an absence. */
    rt_policy msg;
    memset(&msg, 0, sizeof msg);
    msg.set = RT_POL_STOP_ON_STATUS;
    rd_config_resolve_policy(&c, NULL, &msg, &out);
    assert_int_equal(out.nstop_on_status, 0);
    rd_config_free(&c);
}

static char *read_stream(FILE *f) {
    fflush(f);
    long n = ftell(f);
    assert_true(n >= 0);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    rewind(f);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    return buf;
}

static void test_dump(void **state) {
    (void)state;
    rd_config c;
    char err[256] = "";
    assert_int_equal(load_text(full_file, no_env, &c, err, sizeof err, NULL, 0), 0);
    FILE *f = tmpfile();
    assert_non_null(f);
    rd_config_dump(&c, f);
    char *dump = read_stream(f);
    fclose(f);
    rd_config_free(&c);
    assert_non_null(strstr(dump, "password = ***\n"));
    assert_non_null(strstr(dump, "token = ***\n"));
    assert_non_null(strstr(dump, "sasl.password = ***\n"));
    assert_null(strstr(dump, "s3cret"));
    assert_null(strstr(dump, "tok\n"));
    assert_null(strstr(dump, "kpass"));
    assert_non_null(strstr(dump, "default_levels = 1s 2s 500ms\n"));
    assert_non_null(strstr(dump, "default_multiplier = 1.5\n"));
    assert_non_null(strstr(dump, "[scene:order.pay]\nmax_attempts = 3\njitter = equal\n"
                                 "owners = a@example.com, b@example.org\n"));

    /* The dump reads back as the same configuration. */
    assert_int_equal(load_text(dump, no_env, &c, err, sizeof err, NULL, 0), 0);
    f = tmpfile();
    assert_non_null(f);
    rd_config_dump(&c, f);
    char *again = read_stream(f);
    fclose(f);
    assert_string_equal(again, dump);
    rd_config_free(&c);
    free(again);
    free(dump);
}

static void test_help_and_markdown(void **state) {
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    rd_config_print_help(f);
    char *help = read_stream(f);
    fclose(f);
    f = tmpfile();
    assert_non_null(f);
    rd_config_write_markdown(f);
    char *md = read_stream(f);
    fclose(f);
    static const char *const must[] = {
        "[scheduler]", "batch_size", "default_max_attempts", "default_levels",
        "RETRYD_SCHEDULER_BATCH_SIZE", "RETRYD_SCHEDULER_DEFAULT_JITTER", "[scene:NAME]",
        "owners", "smtp_to", "fixed, exponential, levels, random", "1..10000", "1.0..100.0"};
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++) {
        if (!strstr(help, must[i])) fail_msg("help lacks %s", must[i]);
        if (!strstr(md, must[i])) fail_msg("markdown lacks %s", must[i]);
    }
    free(help);
    free(md);
}

static void test_example_file(void **state) {
    (void)state;
    rd_config c;
    char err[512] = "";
    int rc = rd_config_load(RD_SOURCE_DIR "/server/retryd.ini.example", no_env, &c, err,
                            sizeof err);
    if (rc != 0) fail_msg("%s", err);
    assert_non_null(rd_config_scene(&c, "order.pay"));
    rd_config_free(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_scene_body_rule),       cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_errors),         cmocka_unit_test(test_error_misc),
        cmocka_unit_test(test_env_overrides),  cmocka_unit_test(test_env_errors),
        cmocka_unit_test(test_resolve_policy), cmocka_unit_test(test_dump),
        cmocka_unit_test(test_help_and_markdown), cmocka_unit_test(test_example_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
