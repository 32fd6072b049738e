/*
 * clock.h: time sources. Pure modules take times as arguments; these helpers
 * are the thin shell that reads the real clocks.
 */
#ifndef RT_CLOCK_H
#define RT_CLOCK_H

#include <stdint.h>

/* Wall clock, ms since the Unix epoch (CLOCK_REALTIME). */
int64_t rt_now_ms(void);
/* Monotonic clock, ms (CLOCK_MONOTONIC); for durations only. */
int64_t rt_mono_ms(void);
/* Monotonic clock, ns. */
int64_t rt_mono_ns(void);

#endif
