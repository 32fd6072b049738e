/*
 * log.c: retryd's log lines on stderr, used by every server module (ingest,
 * store, scheduler, dispatcher, HTTP API) through the macros in log.h.
 *
 * Text lines look like
 *   2026-11-24T03:46:37.123Z level=info sub=kafka msg="consumer started"
 * with '"', '\\' and control characters in msg escaped, so one event is
 * always one line. JSON lines are built with jansson, which does the
 * escaping. Each line is assembled in memory and written with one write(2),
 * so lines from different threads never interleave.
 */
#include "log.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Set once at start-up (rd_log_configure) before threads start; read-only after. */
_Atomic int rd_log_min_level = RD_LOG_INFO;
static int log_json;

static const char *const level_names[] = {
    [RD_LOG_ERR] = "err",   [RD_LOG_WARNING] = "warning", [RD_LOG_NOTICE] = "notice",
    [RD_LOG_INFO] = "info", [RD_LOG_DEBUG] = "debug",
};

static const char *level_name(rd_log_level level) {
    if ((int)level >= RD_LOG_ERR && (int)level <= RD_LOG_DEBUG) return level_names[level];
    return "unknown";
}

int rd_log_configure(const char *level, const char *format) {
    int min = rd_log_min_level, json = log_json;
    if (level) {
        int i;
        for (i = RD_LOG_ERR; i <= RD_LOG_DEBUG; i++) {
            if (strcmp(level, level_names[i]) == 0) break;
        }
        if (i > RD_LOG_DEBUG) return -1;
        min = i;
    }
    if (format) {
        if (strcmp(format, "text") == 0)
            json = 0;
        else if (strcmp(format, "json") == 0)
            json = 1;
        else
            return -1;
    }
    rd_log_min_level = min;
    log_json = json;
    return 0;
}

/* A growable line buffer; on allocation failure it keeps what fits. */
typedef struct linebuf {
    char *p;
    size_t len, cap;
    char stack[1024];
} linebuf;

static void lb_add(linebuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap * 2;
        while (cap < b->len + n + 1) cap *= 2;
        char *np = b->p == b->stack ? malloc(cap) : realloc(b->p, cap);
        if (!np) {
            n = b->cap - b->len - 1; /* truncate rather than lose the line */
        } else {
            if (b->p == b->stack) memcpy(np, b->stack, b->len);
            b->p = np;
            b->cap = cap;
        }
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void lb_str(linebuf *b, const char *s) {
    lb_add(b, s, strlen(s));
}

/* Appends msg as the inside of a double-quoted logfmt value. */
static void lb_escaped(linebuf *b, const char *s) {
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        char esc[8];
        switch (ch) {
        case '"':
            lb_add(b, "\\\"", 2);
            break;
        case '\\':
            lb_add(b, "\\\\", 2);
            break;
        case '\n':
            lb_add(b, "\\n", 2);
            break;
        case '\r':
            lb_add(b, "\\r", 2);
            break;
        case '\t':
            lb_add(b, "\\t", 2);
            break;
        default:
            if (ch < 0x20 || ch == 0x7f) {
                snprintf(esc, sizeof esc, "\\x%02x", ch);
                lb_str(b, esc);
            } else {
                lb_add(b, (const char *)&ch, 1);
            }
        }
    }
}

/* Writes all of buf with as few write(2) calls as the kernel allows: one,
 * unless it is interrupted or the pipe is full. */
static void write_all(const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, buf, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

/* Formats the current time as 2026-11-24T03:46:37.123Z. */
static void timestamp(char *buf, size_t bufsz) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, bufsz, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, bufsz - n, ".%03ldZ", ts.tv_nsec / 1000000L);
}

/* Returns msg as a JSON string, replacing bytes that are not valid UTF-8. */
static json_t *json_msg(const char *msg) {
    json_t *j = json_string(msg);
    if (j) return j;
    char *copy = strdup(msg);
    if (!copy) return NULL;
    for (char *p = copy; *p; p++) {
        if ((unsigned char)*p >= 0x80) *p = '?';
    }
    j = json_string(copy);
    free(copy);
    return j;
}

static void emit(rd_log_level level, const char *sub, const char *msg) {
    char ts[40];
    linebuf b;
    b.p = b.stack;
    b.len = 0;
    b.cap = sizeof b.stack;
    b.stack[0] = '\0';
    if (!sub) sub = "-";
    timestamp(ts, sizeof ts);

    if (log_json) {
        json_t *o = json_object();
        if (o) {
            json_object_set_new(o, "ts", json_string(ts));
            json_object_set_new(o, "level", json_string(level_name(level)));
            json_object_set_new(o, "sub", json_msg(sub));
            json_object_set_new(o, "msg", json_msg(msg));
            char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
            json_decref(o);
            if (s) {
                lb_str(&b, s);
                lb_add(&b, "\n", 1);
                free(s);
                write_all(b.p, b.len);
                if (b.p != b.stack) free(b.p);
                return;
            }
        }
        /* Out of memory in jansson: fall back to a text line. */
    }
    lb_str(&b, ts);
    lb_str(&b, " level=");
    lb_str(&b, level_name(level));
    lb_str(&b, " sub=");
    lb_str(&b, sub);
    lb_str(&b, " msg=\"");
    lb_escaped(&b, msg);
    lb_add(&b, "\"\n", 2);
    if (b.len > 0 && b.p[b.len - 1] != '\n') b.p[b.len - 1] = '\n'; /* truncated */
    write_all(b.p, b.len);
    if (b.p != b.stack) free(b.p);
}

void rd_log_write(rd_log_level level, const char *sub, const char *fmt, ...) {
    char stackmsg[512];
    char *msg = stackmsg;
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(stackmsg, sizeof stackmsg, fmt, ap);
    va_end(ap);
    if (n < 0) {
        snprintf(stackmsg, sizeof stackmsg, "(bad log format: %s)", fmt);
    } else if ((size_t)n >= sizeof stackmsg) {
        char *big = malloc((size_t)n + 1);
        if (big) {
            va_start(ap, fmt);
            vsnprintf(big, (size_t)n + 1, fmt, ap);
            va_end(ap);
            msg = big;
        }
        /* else: log what fitted in stackmsg */
    }
    emit(level, sub, msg);
    if (msg != stackmsg) free(msg);
}

void rd_log_assert_fail(const char *cond, const char *file, int line) {
    rd_log_write(RD_LOG_ERR, "assert", "assertion failed: %s at %s:%d", cond, file, line);
    abort();
}
