/*
 * dispatch_app.c: retry a call that is not an HTTP request (retry/dispatch.h).
 *
 * The handler of scene "stock.reserve" reserves stock from its JSON
 * arguments; here it fails its first --fail calls (as if the stock service
 * were down) and then succeeds. The program serves the dispatch endpoint,
 * makes one call with one local attempt, and, when that is shipped to
 * retryd, keeps serving until Ctrl-C so that retryd can run the handler.
 *
 * usage: dispatch_app --token T [--brokers B] [--group G] [--fail N]
 *                     [--listen HOST:PORT] [--args JSON]
 *
 * retryd needs the same token: [dispatch] token = T in retryd.ini (or
 * RETRYD_DISPATCH_TOKEN). Without --brokers nothing is shipped and the
 * program ends after the local attempt.
 */
#define _POSIX_C_SOURCE 200809L

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <retry/retry.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* The handler: args is the call's JSON text, e.g. {"sku":"A-17","qty":3}.
 * 0 = done; RETRY_DISPATCH_STOP = never going to work (e.g. unknown SKU);
 * anything else = try again later. It runs on the caller's thread for the
 * local attempt and on the endpoint's thread for retryd's attempts. */
static int reserve_stock(void *ctx, const char *args, size_t len, char *errbuf, size_t errsz)
{
    int *fail_left = ctx;
    if (len < 2 || args[0] != '{') {
        snprintf(errbuf, errsz, "args must be an object");
        return RETRY_DISPATCH_STOP;
    }
    if (*fail_left > 0) {
        (*fail_left)--;
        snprintf(errbuf, errsz, "stock service unavailable");
        return 1;
    }
    printf("reserved stock for %s\n", args);
    fflush(stdout);
    return 0;
}

static void print_log(void *opaque, int level, const char *msg)
{
    (void)opaque;
    if (level <= RETRY_LOG_NOTICE)
        fprintf(stderr, "dispatch_app: %s\n", msg);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"token", required_argument, NULL, 't'},
                                         {"brokers", required_argument, NULL, 'b'},
                                         {"group", required_argument, NULL, 'g'},
                                         {"fail", required_argument, NULL, 'f'},
                                         {"listen", required_argument, NULL, 'l'},
                                         {"args", required_argument, NULL, 'a'},
                                         {NULL, 0, NULL, 0}};
    const char *token = NULL, *brokers = NULL, *group = "shop", *listen = "127.0.0.1:0";
    const char *args = "{\"sku\":\"A-17\",\"qty\":3}";
    int fail_left = 2, o;

    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 't': token = optarg; break;
        case 'b': brokers = optarg; break;
        case 'g': group = optarg; break;
        case 'f': fail_left = atoi(optarg); break;
        case 'l': listen = optarg; break;
        case 'a': args = optarg; break;
        default:
            fprintf(stderr, "usage: dispatch_app --token T [--brokers B] [--group G] "
                            "[--fail N] [--listen HOST:PORT] [--args JSON]\n");
            return 2;
        }
    }
    if (token == NULL) {
        fprintf(stderr, "dispatch_app: --token is required (the same as retryd's "
                        "[dispatch] token)\n");
        return 2;
    }

    char err[512];
    retry_client_conf cc = RETRY_CLIENT_CONF_DEFAULT;
    cc.group = group;
    cc.brokers = brokers;
    cc.log_cb = print_log;
    retry_client *client;
    if (retry_client_new(&cc, &client, err, sizeof err) != RETRY_OK) {
        fprintf(stderr, "dispatch_app: %s\n", err);
        return 1;
    }

    /* 1. A handler per scene. */
    retry_dispatch_register(client, "stock.reserve", reserve_stock, &fail_left);

    /* 2. The endpoint retryd calls: loopback, a token, port 0 = any free port. */
    retry_dispatch_conf dc = RETRY_DISPATCH_CONF_DEFAULT;
    dc.listen = listen;
    dc.token = token;
    if (retry_dispatch_serve(client, &dc, err, sizeof err) != RETRY_OK) {
        fprintf(stderr, "dispatch_app: %s\n", err);
        retry_client_destroy(client);
        return 1;
    }
    char url[2100];
    retry_dispatch_url(client, url, sizeof url);
    printf("dispatch endpoint %s (port %d)\n", url, retry_dispatch_port(client));

    /* 3. The call: local attempts first, then retryd. */
    retry_policy p = RETRY_POLICY_DEFAULT;
    p.max_attempts = 1;
    int rc = retry_dispatch_call(client, &p, "stock.reserve", args, NULL);
    retry_stats st;
    retry_client_stats(client, &st);
    printf("result=%s shipped=%d\n", retry_err_name(rc), (int)st.shipped);
    fflush(stdout);

    if (rc == RETRY_ERR_EXHAUSTED && st.shipped > 0) {
        retry_client_flush(client, 10000);
        printf("retryd owns the call now; serving until Ctrl-C\n");
        fflush(stdout);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        while (!stop) {
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    retry_client_destroy(client); /* stops the endpoint too */
    return rc == RETRY_OK || rc == RETRY_ERR_EXHAUSTED ? 0 : 1;
}
