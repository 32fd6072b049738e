/*
 * bench_async.c: throughput of retry_async_submit(). Two figures, each next
 * to a synchronous RETRY_CALL of the same function as the reference:
 *  1. success path: fn succeeds at once, so submit runs it on the caller's
 *     thread and completes it there (ns per submit vs ns per RETRY_CALL);
 *  2. retry path: fn fails once, so submit returns RETRY_PENDING and the
 *     worker pool runs the second attempt (delay 0) through the timer heap;
 *     calls completed per second, the submitter retrying on
 *     RETRY_ERR_QUEUE_FULL.
 * No Kafka (brokers NULL). usage: bench_async [N] (default 1,000,000)
 */
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <retry/retry.h>

static atomic_long done_count;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int succeed(void *ctx)
{
    (void)ctx;
    return 0;
}

/* ctx is a counter owned by the call: fails on its first attempt. */
static int fail_once(void *ctx)
{
    int *n = ctx;
    return (*n)++ == 0 ? 7 : 0;
}

static void on_done(void *arg, void *ctx, const retry_async_result *res)
{
    (void)arg;
    (void)ctx;
    (void)res;
    atomic_fetch_add(&done_count, 1);
}

static int direct_counter;
static int sync_succeed(void)
{
    return succeed(&direct_counter);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    if (n <= 0) n = 1000000;
    retry_client_conf conf = RETRY_CLIENT_CONF_DEFAULT;
    conf.group = "bench";
    char err[256];
    retry_client *c;
    if (retry_client_new(&conf, &c, err, sizeof err) != RETRY_OK) {
        fprintf(stderr, "retry_client_new: %s\n", err);
        return 1;
    }
    retry_policy pol = RETRY_POLICY_DEFAULT;
    pol.max_attempts = 3;
    pol.delay_ms = 0;

    /* Reference: synchronous RETRY_CALL of the same successful function. */
    int rc = 0;
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++) RETRY_CALL(rc, c, &pol, sync_succeed());
    double sync_ns = (double)(now_ns() - t0) / (double)n;

    /* 1. success path through retry_async_submit. */
    t0 = now_ns();
    for (long i = 0; i < n; i++) {
        retry_err e = retry_async_submit(c, &pol, succeed, NULL, NULL, on_done, NULL);
        if (e != RETRY_OK) {
            fprintf(stderr, "submit: %s\n", retry_strerror(e));
            return 1;
        }
    }
    double async_ok_ns = (double)(now_ns() - t0) / (double)n;
    if (atomic_load(&done_count) != n) {
        fprintf(stderr, "completions %ld, expected %ld\n", atomic_load(&done_count), n);
        return 1;
    }

    /* 2. retry path: every call goes to the workers once. */
    atomic_store(&done_count, 0);
    long queue_full = 0;
    t0 = now_ns();
    for (long i = 0; i < n; i++) {
        int *ctx = calloc(1, sizeof *ctx);
        if (!ctx) return 1;
        for (;;) {
            retry_err e = retry_async_submit(c, &pol, fail_once, ctx, free, on_done, NULL);
            if (e == RETRY_PENDING || e == RETRY_OK) break;
            if (e != RETRY_ERR_QUEUE_FULL) {
                fprintf(stderr, "submit: %s\n", retry_strerror(e));
                return 1;
            }
            queue_full++;
            *ctx = 0; /* the refused call never ran: start over */
            sched_yield();
        }
    }
    while (atomic_load(&done_count) < n) sched_yield();
    double secs = (double)(now_ns() - t0) / 1e9;
    retry_client_destroy(c);

    printf("calls:                          %ld\n", n);
    printf("RETRY_CALL (sync), success:     %.1f ns/call\n", sync_ns);
    printf("retry_async_submit, success:    %.1f ns/submit (completes on the caller's thread)\n",
           async_ok_ns);
    printf("retry_async_submit, 1 retry:    %.0f calls/s (%.2f s; %ld QUEUE_FULL resubmits; "
           "2 workers)\n",
           (double)n / secs, secs, queue_full);
    printf("ratio async/sync success path:  %.2f\n", async_ok_ns / sync_ns);
    return 0;
}
