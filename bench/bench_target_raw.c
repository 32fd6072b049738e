/*
 * bench_target_raw — the raw capacity of an HTTP target, measured with the
 * same kind of client retryd's dispatcher uses (libcurl multi).
 *
 *   bench_target_raw URL CONCURRENCY TOTAL
 *
 * Keeps CONCURRENCY easy handles busy (each is re-added as soon as its
 * request completes) until TOTAL requests have completed: POST of a small JSON
 * body ({"order":N}, Content-Type: application/json) to URL. Connections are
 * kept alive through the multi handle's connection cache, as in retryd.
 * Prints one line:
 *
 *   requests=TOTAL concurrency=N errors=E elapsed_ms=MS rate=R
 *
 * where errors counts transfers that failed or answered something other than
 * 2xx, and rate is requests per second (completed requests / elapsed time).
 * Used by bench/bench_dispatch.sh; asserts nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

struct slot {
    CURL *easy;
    char body[64];
};

static size_t discard(char *ptr, size_t size, size_t nmemb, void *user)
{
    (void)ptr;
    (void)user;
    return size * nmemb;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void arm(struct slot *s, long n)
{
    snprintf(s->body, sizeof s->body, "{\"order\":%ld}", n);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->body);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(s->body));
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s URL CONCURRENCY TOTAL\n", argv[0]);
        return 2;
    }
    const char *url = argv[1];
    long conc = strtol(argv[2], NULL, 10), total = strtol(argv[3], NULL, 10);
    if (conc < 1 || total < 1) {
        fprintf(stderr, "CONCURRENCY and TOTAL must be positive\n");
        return 2;
    }
    if (conc > total) conc = total;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *multi = curl_multi_init();
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    struct slot *slots = calloc((size_t)conc, sizeof *slots);
    if (!multi || !hdrs || !slots) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    long started = 0, done = 0, errors = 0;
    double t0 = now_ms();
    for (long i = 0; i < conc; i++) {
        CURL *e = curl_easy_init();
        slots[i].easy = e;
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(e, CURLOPT_USERAGENT, "bench_target_raw");
        curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)&slots[i]);
        arm(&slots[i], ++started);
        curl_multi_add_handle(multi, e);
    }
    while (done < total) {
        int running = 0, numfds = 0, left = 0;
        if (curl_multi_perform(multi, &running) != CURLM_OK) {
            fprintf(stderr, "curl_multi_perform failed\n");
            return 1;
        }
        CURLMsg *m;
        while ((m = curl_multi_info_read(multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE) continue;
            CURL *e = m->easy_handle;
            CURLcode rc = m->data.result;
            long code = 0;
            struct slot *s = NULL;
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
            curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&s);
            done++;
            if (rc != CURLE_OK || code < 200 || code > 299) {
                if (errors < 5)
                    fprintf(stderr, "request failed: %s, HTTP %ld\n", curl_easy_strerror(rc), code);
                errors++;
            }
            curl_multi_remove_handle(multi, e);
            if (started < total) {
                arm(s, ++started);
                curl_multi_add_handle(multi, e);
            }
        }
        if (done < total) curl_multi_poll(multi, NULL, 0, 100, &numfds);
    }
    double el = now_ms() - t0;
    printf("requests=%ld concurrency=%ld errors=%ld elapsed_ms=%.0f rate=%.0f\n", total, conc, errors, el,
           total * 1000.0 / el);
    for (long i = 0; i < conc; i++) curl_easy_cleanup(slots[i].easy);
    free(slots);
    curl_slist_free_all(hdrs);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    return errors ? 1 : 0;
}
