/*
 * retry-devkafka — a development and test Kafka "broker" for retryd.
 *
 * DEV/TEST ONLY. NOT DURABLE. Everything lives in memory and is gone when the
 * process exits. Production points clients and retryd at a real Kafka cluster.
 *
 * It wraps librdkafka's in-memory mock cluster (<librdkafka/rdkafka_mock.h>),
 * which speaks the real Kafka protocol over TCP on 127.0.0.1 and supports
 * consumer groups and offset commits, so separate processes (libretryclient,
 * retryd, kcat) can share it. Used by the integration tests and the demo:
 *
 *   retry-devkafka [--brokers N] [--topic NAME[:PARTITIONS]]...
 *                  [--bootstrap-file PATH]
 *
 * On start it creates the topics (default "retry.tasks" with 4 partitions),
 * prints exactly one line "bootstrap=<host:port,...>" to stdout, optionally
 * writes the bootstrap string (no newline handling needed by readers: one line)
 * to PATH, and then runs until SIGTERM or SIGINT, when it destroys the cluster
 * and exits 0.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define DEVKAFKA_MAX_TOPICS 64

struct topic_spec {
    char *name;
    int partitions;
};

static void usage(FILE *out)
{
    fputs("usage: retry-devkafka [options]\n"
          "\n"
          "A dev/test Kafka on librdkafka's in-memory mock cluster (NOT durable).\n"
          "Prints one line 'bootstrap=<host:port,...>' and runs until SIGTERM/SIGINT.\n"
          "\n"
          "  --brokers N              number of mock brokers (default 1)\n"
          "  --topic NAME[:PARTS]     create a topic (repeatable; default retry.tasks:4)\n"
          "  --bootstrap-file PATH    also write the bootstrap string to PATH\n"
          "  --help                   this text\n",
          out);
}

static int parse_int(const char *s, int min, int max, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

/* Parses "NAME[:PARTITIONS]" into spec; NAME is copied. */
static int parse_topic(const char *arg, struct topic_spec *spec)
{
    const char *colon = strrchr(arg, ':');
    size_t len = colon ? (size_t)(colon - arg) : strlen(arg);
    int parts = 4;
    if (len == 0)
        return -1;
    if (colon && parse_int(colon + 1, 1, 10000, &parts) != 0)
        return -1;
    spec->name = strndup(arg, len);
    if (!spec->name)
        return -1;
    spec->partitions = parts;
    return 0;
}

/* Writes the bootstrap string to path atomically (tmp file + rename) so a
 * reader polling for the file never sees a partial line. */
static int write_bootstrap_file(const char *path, const char *bootstraps)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return -1;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    int bad = fprintf(f, "%s\n", bootstraps) < 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        remove(tmp);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct topic_spec topics[DEVKAFKA_MAX_TOPICS];
    int ntopics = 0;
    int brokers = 1;
    const char *bootstrap_file = NULL;
    int rc = 1;
    rd_kafka_t *rk = NULL;
    rd_kafka_mock_cluster_t *mcluster = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--brokers") == 0 && i + 1 < argc) {
            if (parse_int(argv[++i], 1, 64, &brokers) != 0) {
                fprintf(stderr, "retry-devkafka: bad --brokers value '%s'\n", argv[i]);
                return 2;
            }
        } else if (strcmp(a, "--topic") == 0 && i + 1 < argc) {
            if (ntopics == DEVKAFKA_MAX_TOPICS) {
                fprintf(stderr, "retry-devkafka: too many --topic options\n");
                return 2;
            }
            if (parse_topic(argv[++i], &topics[ntopics]) != 0) {
                fprintf(stderr, "retry-devkafka: bad --topic value '%s'\n", argv[i]);
                return 2;
            }
            ntopics++;
        } else if (strcmp(a, "--bootstrap-file") == 0 && i + 1 < argc) {
            bootstrap_file = argv[++i];
        } else {
            fprintf(stderr, "retry-devkafka: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (ntopics == 0) {
        topics[0].name = strdup("retry.tasks");
        topics[0].partitions = 4;
        if (!topics[0].name)
            return 1;
        ntopics = 1;
    }

    /* Block the stop signals before librdkafka starts its threads, so they
     * inherit the mask and only sigwait() below ever sees the signals. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    if (pthread_sigmask(SIG_BLOCK, &stop_signals, NULL) != 0) {
        fprintf(stderr, "retry-devkafka: pthread_sigmask failed\n");
        goto out;
    }

    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* The handle only hosts the mock cluster; keep its own logging quiet. */
    if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
        fprintf(stderr, "retry-devkafka: rd_kafka_conf_set: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        goto out;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "retry-devkafka: rd_kafka_new: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        goto out;
    }

    mcluster = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mcluster) {
        fprintf(stderr, "retry-devkafka: rd_kafka_mock_cluster_new failed\n");
        goto out;
    }
    for (int i = 0; i < ntopics; i++) {
        int rf = brokers < 3 ? brokers : 3;
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
            mcluster, topics[i].name, topics[i].partitions, rf);
        if (err) {
            fprintf(stderr, "retry-devkafka: creating topic %s: %s\n", topics[i].name,
                    rd_kafka_err2str(err));
            goto out;
        }
        fprintf(stderr, "retry-devkafka: topic %s with %d partition(s)\n",
                topics[i].name, topics[i].partitions);
    }

    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mcluster);
    if (bootstrap_file && write_bootstrap_file(bootstrap_file, bootstraps) != 0) {
        fprintf(stderr, "retry-devkafka: cannot write %s: %s\n", bootstrap_file,
                strerror(errno));
        goto out;
    }
    printf("bootstrap=%s\n", bootstraps);
    fflush(stdout);
    fprintf(stderr,
            "retry-devkafka: %d broker(s) at %s (dev/test only, not durable); "
            "SIGTERM/SIGINT stops\n",
            brokers, bootstraps);

    int sig = 0;
    while (sigwait(&stop_signals, &sig) != 0)
        ;
    fprintf(stderr, "retry-devkafka: signal %d, shutting down\n", sig);
    rc = 0;

out:
    if (mcluster)
        rd_kafka_mock_cluster_destroy(mcluster);
    if (rk)
        rd_kafka_destroy(rk);
    for (int i = 0; i < ntopics; i++)
        free(topics[i].name);
    return rc;
}
