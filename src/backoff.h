/*
 * backoff.h: backoff and jitter maths shared by libretryclient and retryd.
 *
 * Pure code: no I/O, no clock, no global state. The random source is an
 * explicit, seedable generator so that tests can pin exact sequences.
 * Flow position: used by the client call loop and by the server dispatcher
 * when a failed attempt needs its next delay.
 *
 * Formulas (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015):
 *   base(n)      fixed:        initial
 *                exponential:  min(max, initial * multiplier^(n-1))
 *                levels:       levels[min(n, nlevels) - 1]
 *                random:       uniform in [initial, max]
 *   jitter       none:         base
 *                full:         uniform in [0, base]
 *                equal:        base/2 + uniform in [0, base/2]
 *                decorrelated: min(max, uniform in [initial, prev * 3]),
 *                              prev = the previous delay (initial for n = 1)
 *                decorrelated_v2: Polly's DecorrelatedJitterBackoffV2, with
 *                              initial as its mean first delay (kind ignored):
 *                              t = (n-1) + U[0,1),
 *                              f(t) = 2^t * tanh(sqrt(4 t)),
 *                              delay = (f(t) - f(t_prev)) / 1.4 * initial,
 *                              f(t_prev) = 0 for n = 1. Source: Polly-Contrib/
 *                              Polly.Contrib.WaitAndRetry, src/Polly.Contrib.
 *                              WaitAndRetry/Backoff.DecorrelatedJitterV2.cs
 *                              (pFactor = 4, rpScalingFactor = 1/1.4; formula
 *                              by George Polevoy, Polly issue #530).
 *   The result is finally capped at max_delay_ms when max_delay_ms > 0.
 */
#ifndef RT_BACKOFF_H
#define RT_BACKOFF_H

#include <stddef.h>
#include <stdint.h>

/* splitmix64 (Steele, Lea, Flood, "Fast splittable pseudorandom number
 * generators", OOPSLA 2014). Not for cryptography. Not thread-safe: one
 * generator per thread or per call. */
typedef struct rt_rng {
    uint64_t state;
} rt_rng;

void rt_rng_seed(rt_rng *rng, uint64_t seed);
uint64_t rt_rng_next(rt_rng *rng);
/* Uniform integer in [lo, hi] (inclusive). Returns lo when hi <= lo. */
int64_t rt_rng_range(rt_rng *rng, int64_t lo, int64_t hi);

typedef enum rt_backoff_kind {
    RT_BACKOFF_FIXED = 0,
    RT_BACKOFF_EXPONENTIAL = 1,
    RT_BACKOFF_LEVELS = 2,
    RT_BACKOFF_RANDOM = 3
} rt_backoff_kind;

typedef enum rt_jitter_kind {
    RT_JITTER_NONE = 0,
    RT_JITTER_FULL = 1,
    RT_JITTER_EQUAL = 2,
    RT_JITTER_DECORRELATED = 3,
    RT_JITTER_DECORRELATED_V2 = 4
} rt_jitter_kind;

#define RT_MAX_LEVELS 32

/* Every delay from rt_backoff_delay() is at most this many ms, so that
 * now_ms + delay never overflows int64_t. */
#define RT_BACKOFF_SATURATE (INT64_MAX / 2)

typedef struct rt_backoff {
    rt_backoff_kind kind;
    rt_jitter_kind jitter;
    int64_t initial_delay_ms;   /* >= 0 */
    double multiplier;          /* exponential only; values < 1 act as 1 */
    int64_t max_delay_ms;       /* cap; 0 = no cap (random: upper bound) */
    int64_t levels[RT_MAX_LEVELS]; /* levels only, ms */
    size_t nlevels;
} rt_backoff;

/* Delay in ms to wait after failed attempt number `attempt` (1-based) before
 * the next one. `prev_delay_ms` is the delay returned for the previous attempt
 * (ignored unless jitter is decorrelated; pass 0 for attempt 1). `rng` may be
 * NULL only when no randomness is needed (jitter none and kind != random).
 * Never negative; never overflows (saturates at INT64_MAX / 2). */
int64_t rt_backoff_delay(const rt_backoff *b, unsigned attempt, int64_t prev_delay_ms,
                         rt_rng *rng);

/* rt_backoff_delay() with the state decorrelated_v2 needs: *v2_prev holds
 * f(t) of the previous attempt (set it to 0 before attempt 1; it is updated
 * here). Other jitters ignore v2_prev. With v2_prev NULL (a caller that keeps
 * no per-call state, e.g. retryd), f(t_prev) is computed from a second draw
 * t_prev = (n-2) + U[0,1): every delay is still > 0 and follows the same
 * curve, but consecutive delays are drawn independently. decorrelated_v2
 * consumes one rt_rng_next() per delay (two when v2_prev is NULL and n > 1). */
int64_t rt_backoff_delay_ex(const rt_backoff *b, unsigned attempt, int64_t prev_delay_ms,
                            double *v2_prev, rt_rng *rng);

/* Names as they appear in the wire format and config ("fixed", "full", ...).
 * parse functions return 0 on success, -1 for an unknown name. */
const char *rt_backoff_kind_name(rt_backoff_kind k);
const char *rt_jitter_kind_name(rt_jitter_kind j);
int rt_backoff_kind_parse(const char *s, rt_backoff_kind *out);
int rt_jitter_kind_parse(const char *s, rt_jitter_kind *out);
/* Parses a levels table such as "1s 5s 10s 30s 1m 2m 5m 10m 30m 1h" or
 * "1000,5000" (plain numbers are ms; units ms s m h). Returns 0, or -1 with a
 * sentence in err. */
int rt_levels_parse(const char *s, int64_t *levels, size_t *nlevels, char *err, size_t errsz);

#endif
