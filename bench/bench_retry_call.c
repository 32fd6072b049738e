/*
 * bench_retry_call.c: the cost of RETRY_CALL on the happy path. Times N calls
 * of a function that succeeds at once, called directly and wrapped in
 * RETRY_CALL (client without Kafka, default policy), and prints ns/call for
 * both and their difference and ratio. The function is called through a
 * volatile pointer so that neither loop can be inlined away.
 *
 *   usage: bench_retry_call [N]     (default 10000000)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <retry/retry.h>

static int succeed(int x)
{
    return x & 0;
}

static int (*volatile callee)(int) = succeed;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    retry_client_conf conf = RETRY_CLIENT_CONF_DEFAULT;
    retry_policy policy = RETRY_POLICY_DEFAULT;
    retry_client *client = NULL;
    char errstr[256];
    long n = 10000000, i;
    int64_t t0, t_direct, t_wrapped;
    volatile long sink = 0;
    double direct_ns, wrapped_ns;

    if (argc > 1) {
        char *end;
        n = strtol(argv[1], &end, 10);
        if (*argv[1] == '\0' || *end != '\0' || n <= 0) {
            fprintf(stderr, "usage: bench_retry_call [N > 0]\n");
            return 2;
        }
    }
    conf.group = "bench";
    if (retry_client_new(&conf, &client, errstr, sizeof errstr) != RETRY_OK) {
        fprintf(stderr, "retry_client_new: %s\n", errstr);
        return 1;
    }

    t0 = now_ns();
    for (i = 0; i < n; i++)
        sink += callee((int)i);
    t_direct = now_ns() - t0;

    t0 = now_ns();
    for (i = 0; i < n; i++) {
        int rc;
        RETRY_CALL(rc, client, &policy, callee((int)i));
        sink += rc;
    }
    t_wrapped = now_ns() - t0;

    direct_ns = (double)t_direct / (double)n;
    wrapped_ns = (double)t_wrapped / (double)n;
    printf("calls:      %ld\n", n);
    printf("direct:     %.2f ns/call\n", direct_ns);
    printf("RETRY_CALL: %.2f ns/call\n", wrapped_ns);
    printf("overhead:   %.2f ns/call (ratio %.1fx)\n", wrapped_ns - direct_ns,
           direct_ns > 0 ? wrapped_ns / direct_ns : 0.0);
    retry_client_destroy(client);
    return sink == 0 ? 0 : 1;
}
