/*
 * http_notify.c: send one HTTP notification with retry_http_call(); when
 * the local attempts are exhausted, the request is shipped over Kafka and
 * retryd takes over. Used by the demo and the integration tests against a
 * local target that fails.
 *
 * usage: http_notify --group G --scene S --url URL [--brokers B] [--topic T]
 *                    [--callback-url U] [--attempts N] [--delay-ms D]
 *                    [--body STR] [--key K] [--spool PATH]
 *                    [--kafka-prop NAME=VALUE]... [--verbose]
 *
 * --spool keeps tasks Kafka did not take in PATH and re-produces them from
 * there on the next run (docs/client.md, "When Kafka is down: the spool");
 * with it a line "spool: spooled=N replayed=N records=N" comes before the
 * result line. --kafka-prop passes a librdkafka producer property.
 *
 * Prints one line per local attempt, then one result line on stdout:
 *   result=ok status=200 local_attempts=1
 *   result=exhausted local_attempts=3 status=503 shipped=1 delivered=1 key=<key>
 *   result=stopped local_attempts=1 status=404
 * Exit status 0 when the call succeeded, or was exhausted, shipped and
 * delivered to Kafka; 1 otherwise; 2 for a usage error. Without --brokers
 * nothing is shipped.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <retry/retry.h>

static int verbose;

/* Attempt lines (INFO) go to stdout; warnings and notices to stderr. */
static void print_log(void *opaque, int level, const char *msg)
{
    (void)opaque;
    if (level == RETRY_LOG_INFO)
        printf("%s\n", msg);
    else if (level <= RETRY_LOG_NOTICE || verbose)
        fprintf(stderr, "http_notify: %s\n", msg);
    fflush(stdout);
}

static void usage(FILE *to)
{
    fprintf(to, "usage: http_notify --group G --scene S --url URL [--brokers B] [--topic T]\n"
                "                   [--callback-url U] [--attempts N] [--delay-ms D]\n"
                "                   [--body STR] [--key K] [--spool PATH]\n"
                "                   [--kafka-prop NAME=VALUE]... [--verbose]\n");
}

static int parse_int(const char *s, const char *what, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "http_notify: %s must be an integer in [%ld, %ld]\n", what, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"brokers", required_argument, NULL, 'b'},  {"group", required_argument, NULL, 'g'},
        {"scene", required_argument, NULL, 's'},    {"url", required_argument, NULL, 'u'},
        {"topic", required_argument, NULL, 't'},    {"callback-url", required_argument, NULL, 'c'},
        {"attempts", required_argument, NULL, 'n'}, {"delay-ms", required_argument, NULL, 'd'},
        {"body", required_argument, NULL, 'B'},     {"key", required_argument, NULL, 'k'},
        {"spool", required_argument, NULL, 'S'},    {"kafka-prop", required_argument, NULL, 'P'},
        {"verbose", no_argument, NULL, 'v'},        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    retry_client_conf conf = RETRY_CLIENT_CONF_DEFAULT;
    retry_policy policy = RETRY_POLICY_DEFAULT;
    retry_http_request req = RETRY_HTTP_REQUEST_DEFAULT;
    retry_http_response resp = RETRY_HTTP_RESPONSE_DEFAULT;
    static const char *const json_headers[] = {"Content-Type: application/json"};
    const char *props[8];
    size_t nprops = 0;
    retry_client *client = NULL;
    retry_stats stats;
    char errstr[512];
    int opt, rc, ok;
    long v;
    retry_err flushed;

    conf.log_cb = print_log;
    /* main() flushes for up to 10 s itself; destroy need not wait again. */
    conf.flush_timeout_ms = 1000;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'b': conf.brokers = optarg; break;
        case 'g': conf.group = optarg; break;
        case 't': conf.topic = optarg; break;
        case 's': policy.scene = optarg; break;
        case 'c': policy.callback_url = optarg; break;
        case 'u': req.url = optarg; break;
        case 'B': req.body = optarg; break;
        case 'k': req.idempotency_key = optarg; break;
        case 'v': verbose = 1; break;
        case 'S': conf.spool_path = optarg; break;
        case 'P':
            if (nprops == sizeof props / sizeof props[0]) {
                fprintf(stderr, "http_notify: at most %zu --kafka-prop\n", nprops);
                return 2;
            }
            props[nprops++] = optarg;
            conf.kafka_props = props;
            conf.kafka_props_count = nprops;
            break;
        case 'n':
            if (parse_int(optarg, "--attempts", 1, 1000, &v) != 0)
                return 2;
            policy.max_attempts = (int)v;
            break;
        case 'd':
            if (parse_int(optarg, "--delay-ms", 0, 3600000, &v) != 0)
                return 2;
            policy.delay_ms = v;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || conf.group == NULL || policy.scene == NULL || req.url == NULL) {
        usage(stderr);
        return 2;
    }
    if (req.body != NULL) {
        req.headers = json_headers;
        req.header_count = 1;
    }

    if (retry_client_new(&conf, &client, errstr, sizeof errstr) != RETRY_OK) {
        fprintf(stderr, "http_notify: %s\n", errstr);
        return 1;
    }
    rc = retry_http_call(client, &policy, &req, &resp);
    flushed = retry_client_flush(client, 10000);
    retry_client_stats(client, &stats);

    if (conf.spool_path)
        printf("spool: spooled=%llu replayed=%llu records=%llu\n",
               (unsigned long long)stats.spooled, (unsigned long long)stats.spool_replayed,
               (unsigned long long)stats.spool_records);
    switch (rc) {
    case RETRY_OK:
        printf("result=ok status=%d local_attempts=%d\n", resp.status, resp.attempts);
        ok = 1;
        break;
    case RETRY_ERR_EXHAUSTED:
        printf("result=exhausted local_attempts=%d status=%d shipped=%d delivered=%d key=%s\n",
               resp.attempts, resp.status, resp.shipped,
               resp.shipped && flushed == RETRY_OK ? 1 : 0, resp.idempotency_key);
        ok = resp.shipped && flushed == RETRY_OK;
        break;
    case RETRY_ERR_STOPPED:
        printf("result=stopped local_attempts=%d status=%d\n", resp.attempts, resp.status);
        ok = 0;
        break;
    default:
        printf("result=error error=%s local_attempts=%d\n", retry_err_name(rc), resp.attempts);
        ok = 0;
        break;
    }
    retry_http_response_free(&resp);
    retry_client_destroy(client);
    return ok ? 0 : 1;
}
