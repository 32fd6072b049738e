/*
 * log.h: retryd's one logging macro. Lines go to stderr as
 *   2026-11-24T03:46:37.123Z level=info sub=kafka msg="..."
 * or, with [log] format = json, as one JSON object per line
 *   {"ts":"...","level":"info","sub":"kafka","msg":"..."}
 * The level is checked before any formatting (Redis serverLog). Thread-safe:
 * each line is written with one write(2).
 */
#ifndef RD_LOG_H
#define RD_LOG_H

#include <stdarg.h>

/* syslog(3) severities. */
typedef enum rd_log_level {
    RD_LOG_ERR = 3,
    RD_LOG_WARNING = 4,
    RD_LOG_NOTICE = 5,
    RD_LOG_INFO = 6,
    RD_LOG_DEBUG = 7
} rd_log_level;

/* Lines above this severity number are skipped. Atomic: SIGHUP may change it
 * while other threads log. */
extern _Atomic int rd_log_min_level;

/* Sets level from "err","warning","notice","info","debug" and format from
 * "text" or "json". Returns 0, or -1 for an unknown name. Call before threads
 * start. */
int rd_log_configure(const char *level, const char *format);

void rd_log_write(rd_log_level level, const char *sub, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define rd_log(level, sub, ...)                                                 \
    do {                                                                        \
        if ((int)(level) <= rd_log_min_level) rd_log_write((level), (sub), __VA_ARGS__); \
    } while (0)

#define LOG_ERROR(sub, ...) rd_log(RD_LOG_ERR, sub, __VA_ARGS__)
#define LOG_WARN(sub, ...) rd_log(RD_LOG_WARNING, sub, __VA_ARGS__)
#define LOG_NOTICE(sub, ...) rd_log(RD_LOG_NOTICE, sub, __VA_ARGS__)
#define LOG_INFO(sub, ...) rd_log(RD_LOG_INFO, sub, __VA_ARGS__)
#define LOG_DEBUG(sub, ...) rd_log(RD_LOG_DEBUG, sub, __VA_ARGS__)

/* Logs "assertion failed: <cond> at file:line" at err level and aborts. */
#define RD_ASSERT(cond)                                                          \
    do {                                                                         \
        if (!(cond)) rd_log_assert_fail(#cond, __FILE__, __LINE__);              \
    } while (0)
void rd_log_assert_fail(const char *cond, const char *file, int line)
    __attribute__((noreturn));

#endif
