/*
 * client/http.c: retry_http_call(), one HTTP request under a retry policy,
 * made with a libcurl easy handle per call; exhausted requests are shipped to
 * retryd by the call loop (call.c, ship.c).
 *
 * The policy judges, per attempt: 0 for a success status, the HTTP status
 * otherwise, or -(CURLcode) when no answer arrived. Without retry_on /
 * should_retry, rc_http_classify() decides like curl's --retry (plus
 * --retry-connrefused). A Retry-After header on a 429 or 503 answer becomes
 * the next delay when longer than the backoff (capped by max_delay_ms).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "internal.h"

/* Transient, as curl's --retry judges (tool_operate.c): a timeout, a name
 * that did not resolve, and HTTP 408, 429, 500, 502, 503, 504. Like
 * --retry-connrefused we also retry a refused connection, and a connection
 * that broke without an answer (nothing received, send or receive error,
 * HTTP/2 stream reset, partial body), which is the same kind of trouble.
 * Everything else stops: a bad URL, a TLS certificate problem, and the other
 * statuses (e.g. 400, 404, 501, 505). */
int rc_http_classify(int code)
{
    if (code < 0) {
        switch ((CURLcode)-code) {
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_CONNECT:
        case CURLE_HTTP2:
        case CURLE_PARTIAL_FILE:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_GOT_NOTHING:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_HTTP2_STREAM:
            return 1;
        default:
            return 0;
        }
    }
    switch (code) {
    case 408:
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
        return 1;
    default:
        return 0;
    }
}

/* The value of the last answer's Retry-After header. */
typedef struct hdr_buf {
    char retry_after[64];
} hdr_buf;

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    hdr_buf *h = userdata;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";

    /* A new response (also after a 100 Continue) starts with its status
     * line: forget what an earlier one said. */
    if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0)
        h->retry_after[0] = '\0';
    if (n > sizeof name - 1 && strncasecmp(ptr, name, sizeof name - 1) == 0) {
        const char *v = ptr + sizeof name - 1;
        size_t len = n - (sizeof name - 1);
        while (len > 0 && (*v == ' ' || *v == '\t')) {
            v++;
            len--;
        }
        while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' ' ||
                           v[len - 1] == '\t'))
            len--;
        if (len >= sizeof h->retry_after)
            len = 0; /* not a value we understand */
        memcpy(h->retry_after, v, len);
        h->retry_after[len] = '\0';
    }
    return n;
}

/* Retry-After (RFC 9110 10.2.3): delay-seconds or an HTTP-date, parsed
 * with curl_getdate() and measured against the client's clock. Returns the
 * delay in ms, or -1 when absent or unparsable. */
static int64_t rc_http_retry_after_ms(const char *v, int64_t now_ms)
{
    size_t i;

    if (v == NULL || v[0] == '\0')
        return -1;
    for (i = 0; v[i] >= '0' && v[i] <= '9'; i++)
        ;
    if (v[i] == '\0') {
        int64_t secs = 0;
        for (i = 0; v[i] != '\0' && secs < 100000000; i++)
            secs = secs * 10 + (v[i] - '0');
        return secs * 1000;
    }
    {
        time_t t = curl_getdate(v, NULL);
        int64_t d;
        if (t == (time_t)-1)
            return -1;
        d = (int64_t)t * 1000 - now_ms;
        return d > 0 ? d : 0;
    }
}

void rc_http_describe(int code, char *buf, size_t size)
{
    if (code < 0)
        snprintf(buf, size, "transport error %d: %s", code, curl_easy_strerror((CURLcode)-code));
    else
        snprintf(buf, size, "HTTP status %d", code);
}

RETRY_API void retry_http_response_free(retry_http_response *resp)
{
    size_t max;

    if (resp == NULL)
        return;
    max = resp->max_body_bytes;
    free(resp->body);
    memset(resp, 0, sizeof *resp);
    resp->max_body_bytes = max;
}

/* The last answer's body, kept up to max bytes. */
typedef struct body_buf {
    char *data;
    size_t len;
    size_t max;
    int truncated;
    int nomem;
} body_buf;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    body_buf *b = userdata;
    size_t n = size * nmemb;
    size_t take = n;

    if (b->len + take > b->max) {
        take = b->max - b->len;
        b->truncated = 1;
    }
    if (take > 0) {
        char *d = realloc(b->data, b->len + take + 1);
        if (d == NULL) {
            b->nomem = 1;
            return n; /* keep the request going; the body is just not kept */
        }
        memcpy(d + b->len, ptr, take);
        b->len += take;
        d[b->len] = '\0';
        b->data = d;
    }
    return n;
}

static int is_success(const retry_http_request *req, long status)
{
    size_t i;

    if (req->success_status_count == 0)
        return status >= 200 && status <= 299;
    for (i = 0; i < req->success_status_count; i++)
        if (req->success_status[i] == status)
            return 1;
    return 0;
}

static int has_header(const retry_http_request *req, const char *name)
{
    size_t i, n = strlen(name);

    for (i = 0; i < req->header_count; i++)
        if (strncasecmp(req->headers[i], name, n) == 0 && req->headers[i][n] == ':')
            return 1;
    return 0;
}

/* Sets up everything that stays the same across attempts. */
static retry_err setup(CURL *h, const retry_http_request *req, const char *idem,
                       struct curl_slist **hdrs, body_buf *b, char *errbuf)
{
    const char *m = rc_http_method(req);
    size_t i;
    CURLcode cc = CURLE_OK;
    char line[RETRY_IDEMPOTENCY_KEY_MAX + 32];

    for (i = 0; i < req->header_count; i++) {
        struct curl_slist *n = curl_slist_append(*hdrs, req->headers[i]);
        if (n == NULL)
            return RETRY_ERR_NOMEM;
        *hdrs = n;
    }
    if (idem[0] != '\0' && !has_header(req, "Idempotency-Key")) {
        struct curl_slist *n;
        snprintf(line, sizeof line, "Idempotency-Key: %s", idem);
        n = curl_slist_append(*hdrs, line);
        if (n == NULL)
            return RETRY_ERR_NOMEM;
        *hdrs = n;
    }
    if (!has_header(req, "Expect")) {
        /* No "Expect: 100-continue" round trip for bodies. */
        struct curl_slist *n = curl_slist_append(*hdrs, "Expect:");
        if (n == NULL)
            return RETRY_ERR_NOMEM;
        *hdrs = n;
    }
    cc |= curl_easy_setopt(h, CURLOPT_URL, req->url);
    cc |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    cc |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    cc |= curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
    cc |= curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdrs);
    cc |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    cc |= curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    cc |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (req->body != NULL) {
        cc |= curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rc_http_body_len(req));
        cc |= curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
    }
    if (strcmp(m, "GET") == 0 && req->body == NULL)
        cc |= curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    else if (strcmp(m, "POST") != 0 || req->body == NULL)
        cc |= curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
    return cc == CURLE_OK ? RETRY_OK : RETRY_ERR_HTTP;
}

RETRY_API int retry_http_call(retry_client *client, const retry_policy *policy,
                              const retry_http_request *req, retry_http_response *resp)
{
    static const retry_policy def = RETRY_POLICY_DEFAULT;
    char idem[RETRY_IDEMPOTENCY_KEY_MAX + 1] = "";
    char err[512] = "";
    char errbuf[CURL_ERROR_SIZE];
    struct curl_slist *hdrs = NULL;
    body_buf b;
    retry_call_state st;
    retry_err outcome = RETRY_ERR_INVALID_ARG, e;
    int code = 0, status = 0, curl_code = 0;
    CURL *h = NULL;
    hdr_buf hb;

    memset(&b, 0, sizeof b);
    memset(&hb, 0, sizeof hb);
    if (resp != NULL) {
        retry_http_response_free(resp);
        b.max = resp->max_body_bytes;
    }
    if (client == NULL || req == NULL) {
        rc_log(client, RETRY_LOG_ERR, "retry_http_call: client and req must not be NULL");
        return RETRY_ERR_INVALID_ARG;
    }
    if (policy == NULL)
        policy = &def;
    e = rc_http_request_check(req, err, sizeof err);
    if (e == RETRY_OK)
        e = rc_idempotency_key(policy->scene, req, idem, err, sizeof err);
    if (e != RETRY_OK) {
        rc_log(client, RETRY_LOG_ERR, "retry_http_call: %s", err);
        return e;
    }
    h = curl_easy_init();
    if (h == NULL) {
        rc_log(client, RETRY_LOG_ERR, "retry_http_call: curl_easy_init failed");
        return RETRY_ERR_HTTP;
    }
    errbuf[0] = '\0';
    e = setup(h, req, idem, &hdrs, &b, errbuf);
    if (e == RETRY_OK && (curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
                          curl_easy_setopt(h, CURLOPT_HEADERDATA, &hb) != CURLE_OK))
        e = RETRY_ERR_HTTP;
    if (e != RETRY_OK) {
        rc_log(client, RETRY_LOG_ERR, "retry_http_call: cannot set up libcurl (%s)",
               retry_err_name(e));
        goto out;
    }

    rc_call_begin(&st, client, policy, &code, &outcome, req, rc_http_classify);
    while (retry_call_next(&st)) {
        CURLcode cc;
        long st_code = 0;

        int64_t deadline = rc_call_deadline(&st);

        free(b.data);
        b.data = NULL;
        b.len = 0;
        b.truncated = 0;
        errbuf[0] = '\0';
        hb.retry_after[0] = '\0';
        if (deadline > 0) {
            /* An attempt never runs past the call's deadline. */
            int64_t left = deadline - rc_now_ms(client), t = req->timeout_ms;
            if (left < t)
                t = left > 0 ? left : 1;
            curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)t);
        }
        cc = curl_easy_perform(h);
        if (cc != CURLE_OK) {
            curl_code = (int)cc;
            status = 0;
            code = -(int)cc;
            rc_log(client, RETRY_LOG_DEBUG, "%s %s: %s", rc_http_method(req), req->url,
                   errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc));
        } else {
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st_code);
            curl_code = 0;
            status = (int)st_code;
            code = is_success(req, st_code) ? 0 : status;
            if (code == 429 || code == 503) {
                int64_t ra = rc_http_retry_after_ms(hb.retry_after, rc_now_ms(client));
                if (ra >= 0)
                    rc_call_hint_delay(&st, ra);
            }
        }
    }
    e = outcome;
    if (resp != NULL) {
        resp->status = status;
        resp->curl_code = curl_code;
        resp->body = b.data;
        resp->body_len = b.len;
        resp->body_truncated = b.truncated;
        b.data = NULL;
        resp->attempts = st.attempt_;
        resp->shipped = (st.flags_ & RC_FL_SHIPPED) != 0;
        memcpy(resp->idempotency_key, idem, sizeof idem);
    }
    if (st.flags_ & RC_FL_RECOVERED) {
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(h);
        free(b.data);
        return code;
    }
out:
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    free(b.data);
    return (int)e;
}
