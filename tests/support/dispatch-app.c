/*
 * dispatch-app — the client application of tests/integration/test_dispatch.sh.
 *
 * It links libretryclient, registers a handler for one scene that fails its
 * first N calls (returning 1, "retry") and succeeds afterwards, serves the
 * dispatch endpoint with a token, then makes one retry_dispatch_call() with
 * one local attempt: that attempt fails, so the call is shipped over Kafka
 * with target type dispatch, and retryd keeps calling the handler through
 * the endpoint until it succeeds. It stays up until SIGTERM or SIGINT.
 *
 *   dispatch-app --brokers B --group G --scene S --token T --key K
 *                --args JSON --fail N --calls-file F --port-file P
 *
 * Every handler call appends "<n> <args_json>" to F (n counts from 1, local
 * and endpoint calls alike). P receives the endpoint's port once it listens.
 * stdout gets one line after the call:
 *   result=<retry_err name> shipped=<0|1> delivered=<0|1> url=<advertised URL>
 * The library's log lines go to stderr (the endpoint logs every request with
 * its X-Retry-Task-Id, X-Retry-Attempt and Idempotency-Key at debug level).
 * Exit status 0 after SIGTERM, 1 when the set-up fails, 2 for a usage error.
 */
#define _POSIX_C_SOURCE 200809L

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <retry/retry.h>

typedef struct app {
    pthread_mutex_t mu;
    long fail_first;
    long calls;
    FILE *calls_file;
} app;

static int handler(void *ctx, const char *args_json, size_t len, char *errbuf, size_t errsz)
{
    app *a = ctx;
    long n;
    pthread_mutex_lock(&a->mu);
    n = ++a->calls;
    fprintf(a->calls_file, "%ld %.*s\n", n, (int)len, args_json);
    fflush(a->calls_file);
    pthread_mutex_unlock(&a->mu);
    if (n <= a->fail_first) {
        snprintf(errbuf, errsz, "dispatch-app fails call %ld of the first %ld", n, a->fail_first);
        return 1;
    }
    return 0;
}

static void log_line(void *opaque, int level, const char *msg)
{
    (void)opaque;
    fprintf(stderr, "dispatch-app: <%d> %s\n", level, msg);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"brokers", required_argument, NULL, 'b'},   {"group", required_argument, NULL, 'g'},
        {"scene", required_argument, NULL, 's'},     {"token", required_argument, NULL, 't'},
        {"key", required_argument, NULL, 'k'},       {"args", required_argument, NULL, 'a'},
        {"fail", required_argument, NULL, 'f'},      {"calls-file", required_argument, NULL, 'c'},
        {"port-file", required_argument, NULL, 'p'}, {NULL, 0, NULL, 0}};
    const char *brokers = NULL, *group = NULL, *scene = NULL, *token = NULL, *key = NULL;
    const char *args = "null", *calls_path = NULL, *port_path = NULL;
    app a = {PTHREAD_MUTEX_INITIALIZER, 0, 0, NULL};
    int o;

    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'b': brokers = optarg; break;
        case 'g': group = optarg; break;
        case 's': scene = optarg; break;
        case 't': token = optarg; break;
        case 'k': key = optarg; break;
        case 'a': args = optarg; break;
        case 'f': a.fail_first = strtol(optarg, NULL, 10); break;
        case 'c': calls_path = optarg; break;
        case 'p': port_path = optarg; break;
        default: return 2;
        }
    }
    if (!brokers || !group || !scene || !token || !key || !calls_path || !port_path) {
        fprintf(stderr, "usage: dispatch-app --brokers B --group G --scene S --token T --key K "
                        "--args JSON --fail N --calls-file F --port-file P\n");
        return 2;
    }
    if ((a.calls_file = fopen(calls_path, "a")) == NULL) {
        perror(calls_path);
        return 1;
    }

    /* SIGTERM/SIGINT are taken with sigwait below; block them before any
     * thread (librdkafka's, the endpoint's) starts, so they inherit it. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    char err[512];
    retry_client_conf cc = RETRY_CLIENT_CONF_DEFAULT;
    cc.group = group;
    cc.brokers = brokers;
    cc.log_cb = log_line;
    retry_client *client;
    if (retry_client_new(&cc, &client, err, sizeof err) != RETRY_OK) {
        fprintf(stderr, "dispatch-app: %s\n", err);
        return 1;
    }
    retry_dispatch_register(client, scene, handler, &a);
    retry_dispatch_conf dc = RETRY_DISPATCH_CONF_DEFAULT;
    dc.token = token;
    dc.task_timeout_ms = 5000;
    if (retry_dispatch_serve(client, &dc, err, sizeof err) != RETRY_OK) {
        fprintf(stderr, "dispatch-app: %s\n", err);
        retry_client_destroy(client);
        return 1;
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", port_path);
    FILE *pf = fopen(tmp, "w");
    if (pf == NULL || fprintf(pf, "%d\n", retry_dispatch_port(client)) < 0 || fclose(pf) != 0 ||
        rename(tmp, port_path) != 0) {
        perror(port_path);
        retry_client_destroy(client);
        return 1;
    }

    retry_policy p = RETRY_POLICY_DEFAULT;
    p.max_attempts = 1;
    int rc = retry_dispatch_call(client, &p, scene, args, key);
    retry_err fl = retry_client_flush(client, 15000);
    retry_stats st;
    retry_client_stats(client, &st);
    char url[2100];
    retry_dispatch_url(client, url, sizeof url);
    printf("result=%s shipped=%d delivered=%d url=%s\n", retry_err_name(rc), (int)st.shipped,
           fl == RETRY_OK && st.delivered == 1, url);
    fflush(stdout);

    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "dispatch-app: signal %d, stopping after %ld handler call(s)\n", sig, a.calls);
    retry_client_destroy(client);
    fclose(a.calls_file);
    return 0;
}
