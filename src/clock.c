/*
 * clock.c: the thin shell that reads the real clocks. Pure modules (backoff,
 * codec, policy decisions) take times as arguments; the client call loop, the
 * scheduler and the dispatcher read them here.
 */
#include "clock.h"

#include <time.h>

/* Reads clock `id`; a failing clock_gettime() (impossible for the clocks used
 * here on Linux) yields 0 rather than garbage. */
static struct timespec read_clock(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0) {
        ts.tv_sec = 0;
        ts.tv_nsec = 0;
    }
    return ts;
}

/* Wall clock in ms since the Unix epoch (CLOCK_REALTIME): may jump when the
 * system time is set, so use it for timestamps, never for durations.
 * Thread-safe. */
int64_t rt_now_ms(void)
{
    struct timespec ts = read_clock(CLOCK_REALTIME);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic clock in ms (CLOCK_MONOTONIC, arbitrary origin): never goes back;
 * for durations and timers only. Thread-safe. */
int64_t rt_mono_ms(void)
{
    struct timespec ts = read_clock(CLOCK_MONOTONIC);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic clock in ns (CLOCK_MONOTONIC). Thread-safe. */
int64_t rt_mono_ns(void)
{
    struct timespec ts = read_clock(CLOCK_MONOTONIC);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
