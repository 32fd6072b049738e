/*
 * backoff.c: backoff and jitter maths shared by libretryclient and retryd.
 *
 * Pure code: no I/O, no clock, no global state. The client call loop and the
 * server dispatcher call rt_backoff_delay() after a failed attempt to learn how
 * long to wait before the next one; the formulas are listed in backoff.h.
 *
 * Every delay is kept in [0, RT_BACKOFF_SATURATE] (INT64_MAX / 2), so that a
 * caller may add a delay to a timestamp in ms since the epoch without
 * overflowing int64_t, however large the attempt number or multiplier.
 */
#include "backoff.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Largest delay for a single level in rt_levels_parse(): 24 h, the same bound
 * the wire format puts on policy.levels. */
#define LEVEL_MAX_MS 86400000LL

/* Seeds the generator. Every seed, including 0, gives a full-period stream. */
void rt_rng_seed(rt_rng *rng, uint64_t seed)
{
    rng->state = seed;
}

/* Returns the next 64 random bits: splitmix64, exactly as published by
 * Steele et al. and used by Vigna to seed xoshiro (state advances by the
 * golden-ratio increment, then the output is mixed). */
uint64_t rt_rng_next(rt_rng *rng)
{
    uint64_t z = (rng->state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Uniform integer in [lo, hi] (inclusive); lo when hi <= lo.
 *
 * Exactly unbiased, without 128-bit arithmetic: the span n = hi - lo + 1 is
 * computed in uint64_t (it fits for every int64_t pair), then draws below
 * 2^64 mod n are rejected (OpenBSD arc4random_uniform's method), so the
 * accepted draws cover a whole number of copies of [0, n) and x % n is
 * uniform. At most half the draws can be rejected, and for the delays used
 * here (n far below 2^63) the chance of a rejection is below n / 2^64. */
int64_t rt_rng_range(rt_rng *rng, int64_t lo, int64_t hi)
{
    if (hi <= lo)
        return lo;
    uint64_t span = (uint64_t)hi - (uint64_t)lo; /* hi - lo, no overflow */
    uint64_t r;
    if (span == UINT64_MAX) {
        r = rt_rng_next(rng); /* the whole int64_t range: every draw fits */
    } else {
        uint64_t n = span + 1;
        uint64_t threshold = (0 - n) % n; /* == 2^64 mod n */
        do {
            r = rt_rng_next(rng);
        } while (r < threshold);
        r %= n;
    }
    /* lo + r lies in [lo, hi]; add in uint64_t and convert back, which is
     * exact because the true result is representable. */
    uint64_t u = (uint64_t)lo + r;
    if (u <= (uint64_t)INT64_MAX)
        return (int64_t)u;
    return -(int64_t)(UINT64_MAX - u) - 1;
}

/* Clamps v into [0, RT_BACKOFF_SATURATE]. */
static int64_t sat(int64_t v)
{
    if (v < 0)
        return 0;
    if (v > RT_BACKOFF_SATURATE)
        return RT_BACKOFF_SATURATE;
    return v;
}

/* initial * multiplier^(attempt-1), saturated, in double arithmetic: pow()
 * returns +inf for huge exponents, which the comparison below turns into
 * the saturation value instead of an undefined double-to-int conversion.
 * Multipliers below 1 (and NaN) act as 1. The result is truncated to whole
 * milliseconds, so integral multipliers give exact products. */
static int64_t exponential_base(int64_t initial, double multiplier, unsigned attempt)
{
    if (!(multiplier >= 1.0))
        multiplier = 1.0;
    if (initial == 0)
        return 0;
    double d = (double)initial * pow(multiplier, (double)(attempt - 1));
    if (!(d < (double)RT_BACKOFF_SATURATE))
        return RT_BACKOFF_SATURATE;
    return sat((int64_t)d);
}

/* Delay in ms after failed attempt `attempt` (1-based; 0 is treated as 1);
 * formulas in backoff.h. The delay is capped at max_delay_ms when that is > 0
 * and always lies in [0, RT_BACKOFF_SATURATE]. Decorrelated jitter follows
 * the AWS formula literally and so ignores the kind: its lower bound is
 * initial_delay_ms and its upper bound three times the previous delay. kind
 * levels with nlevels == 0 falls back to initial_delay_ms. A NULL rng is
 * tolerated (randomness is then skipped: random gives initial, full jitter
 * gives 0, equal jitter base/2, decorrelated initial), but callers needing
 * randomness must pass one. Unknown kinds act as fixed, unknown jitters as
 * none. Consumes from rng exactly one rt_rng_range() per random choice. */
int64_t rt_backoff_delay(const rt_backoff *b, unsigned attempt, int64_t prev_delay_ms,
                         rt_rng *rng)
{
    return rt_backoff_delay_ex(b, attempt, prev_delay_ms, NULL, rng);
}

/* A uniform double in [0, 1) from the top 53 bits of one draw (the
 * resolution of .NET's Random.NextDouble() that Polly uses); 0 without rng. */
static double unit_double(rt_rng *rng)
{
    if (rng == NULL)
        return 0.0;
    return (double)(rt_rng_next(rng) >> 11) * 0x1.0p-53;
}

/* Polly's V2 curve: f(t) = 2^t * tanh(sqrt(pFactor * t)), pFactor = 4. */
static double v2_curve(double t)
{
    return pow(2.0, t) * tanh(sqrt(4.0 * t));
}

/* One DecorrelatedJitterBackoffV2 delay (Polly-Contrib/Polly.Contrib.
 * WaitAndRetry, Backoff.DecorrelatedJitterV2.cs): for try i = attempt - 1,
 * t = i + U[0,1), next = f(t), delay = (next - prev) * (1 / 1.4) * mean
 * first delay, prev = next. Polly truncates ticks; we truncate ms. Because
 * t of try i lies in [i, i+1), above t of try i-1, and f is increasing, the
 * difference is never negative. Huge attempts saturate instead of turning
 * inf - inf into NaN. */
static int64_t v2_delay(int64_t initial, unsigned attempt, double *v2_prev, rt_rng *rng)
{
    double t = (double)(attempt - 1) + unit_double(rng);
    double prev;

    if (v2_prev != NULL)
        prev = attempt == 1 ? 0.0 : *v2_prev;
    else
        prev = attempt == 1 ? 0.0 : v2_curve((double)(attempt - 2) + unit_double(rng));
    double next = v2_curve(t);
    if (v2_prev != NULL)
        *v2_prev = next;
    double d = (next - prev) * (1.0 / 1.4) * (double)initial;
    if (!(d < (double)RT_BACKOFF_SATURATE))
        return RT_BACKOFF_SATURATE; /* also NaN: inf - inf for attempts > ~1000 */
    return sat((int64_t)d);
}

int64_t rt_backoff_delay_ex(const rt_backoff *b, unsigned attempt, int64_t prev_delay_ms,
                            double *v2_prev, rt_rng *rng)
{
    if (attempt == 0)
        attempt = 1;
    int64_t initial = sat(b->initial_delay_ms);
    int64_t cap = b->max_delay_ms > 0 ? sat(b->max_delay_ms) : 0;
    int64_t base;

    switch (b->kind) {
    case RT_BACKOFF_EXPONENTIAL:
        base = exponential_base(initial, b->multiplier, attempt);
        if (cap > 0 && base > cap)
            base = cap;
        break;
    case RT_BACKOFF_LEVELS:
        if (b->nlevels == 0) {
            base = initial;
        } else {
            size_t n = b->nlevels > RT_MAX_LEVELS ? RT_MAX_LEVELS : b->nlevels;
            size_t i = attempt < n ? attempt : n;
            base = sat(b->levels[i - 1]);
        }
        break;
    case RT_BACKOFF_RANDOM:
        /* decorrelated_v2 ignores the base: do not consume a draw for it. */
        base = rng && b->jitter != RT_JITTER_DECORRELATED_V2 ? rt_rng_range(rng, initial, cap)
                                                            : initial;
        break;
    case RT_BACKOFF_FIXED:
    default:
        base = initial;
        break;
    }

    int64_t d;
    switch (b->jitter) {
    case RT_JITTER_FULL:
        d = rng ? rt_rng_range(rng, 0, base) : 0;
        break;
    case RT_JITTER_EQUAL: {
        int64_t half = base / 2;
        d = half + (rng ? rt_rng_range(rng, 0, half) : 0);
        break;
    }
    case RT_JITTER_DECORRELATED: {
        int64_t prev = attempt == 1 ? initial : sat(prev_delay_ms);
        int64_t hi = prev > RT_BACKOFF_SATURATE / 3 ? RT_BACKOFF_SATURATE : prev * 3;
        d = rng ? rt_rng_range(rng, initial, hi) : initial;
        break;
    }
    case RT_JITTER_DECORRELATED_V2:
        d = v2_delay(initial, attempt, v2_prev, rng);
        break;
    case RT_JITTER_NONE:
    default:
        d = base;
        break;
    }

    if (cap > 0 && d > cap)
        d = cap;
    return sat(d);
}

static const char *const backoff_names[] = {"fixed", "exponential", "levels", "random"};
static const char *const jitter_names[] = {"none", "full", "equal", "decorrelated",
                                           "decorrelated_v2"};

/* Wire/config name of a backoff kind; "unknown" for a value outside the enum
 * (never NULL, so it is safe in printf). */
const char *rt_backoff_kind_name(rt_backoff_kind k)
{
    if ((unsigned)k < sizeof backoff_names / sizeof backoff_names[0])
        return backoff_names[k];
    return "unknown";
}

/* Wire/config name of a jitter kind; "unknown" outside the enum. */
const char *rt_jitter_kind_name(rt_jitter_kind j)
{
    if ((unsigned)j < sizeof jitter_names / sizeof jitter_names[0])
        return jitter_names[j];
    return "unknown";
}

/* Parses an exact, case-sensitive backoff name. 0, or -1 (s NULL or unknown;
 * *out untouched). */
int rt_backoff_kind_parse(const char *s, rt_backoff_kind *out)
{
    if (s == NULL)
        return -1;
    for (size_t i = 0; i < sizeof backoff_names / sizeof backoff_names[0]; i++) {
        if (strcmp(s, backoff_names[i]) == 0) {
            *out = (rt_backoff_kind)i;
            return 0;
        }
    }
    return -1;
}

/* Parses an exact, case-sensitive jitter name. 0, or -1 (s NULL or unknown;
 * *out untouched). */
int rt_jitter_kind_parse(const char *s, rt_jitter_kind *out)
{
    if (s == NULL)
        return -1;
    for (size_t i = 0; i < sizeof jitter_names / sizeof jitter_names[0]; i++) {
        if (strcmp(s, jitter_names[i]) == 0) {
            *out = (rt_jitter_kind)i;
            return 0;
        }
    }
    return -1;
}

/* snprintf into an optional error buffer; always returns -1. */
static int levels_fail(char *err, size_t errsz, const char *fmt, ...)
{
    if (err != NULL && errsz > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Parses a levels table: items separated by whitespace and/or commas, each a
 * non-negative decimal integer with an optional unit (ms, s, m, h; none means
 * ms), at most 24 h each, 1..RT_MAX_LEVELS items. `levels` must hold
 * RT_MAX_LEVELS entries. On success writes levels/nlevels and returns 0; on
 * error returns -1 with a sentence in err (when err is not NULL) and leaves
 * levels and nlevels untouched. */
int rt_levels_parse(const char *s, int64_t *levels, size_t *nlevels, char *err, size_t errsz)
{
    int64_t tmp[RT_MAX_LEVELS];
    size_t n = 0;

    if (s == NULL)
        return levels_fail(err, errsz, "levels: empty table");
    const char *p = s;
    for (;;) {
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        if (*p == '\0')
            break;
        const char *item = p;
        while (*p != '\0' && *p != ',' && !isspace((unsigned char)*p))
            p++;
        int len = (int)(p - item);
        if (n == RT_MAX_LEVELS)
            return levels_fail(err, errsz, "levels: more than %d items", RT_MAX_LEVELS);

        const char *q = item;
        int64_t v = 0;
        if (!isdigit((unsigned char)*q))
            goto bad_item;
        while (q < p && isdigit((unsigned char)*q)) {
            if (v > LEVEL_MAX_MS) /* keeps v * 10 far from overflow */
                goto too_big;
            v = v * 10 + (*q - '0');
            q++;
        }
        size_t ulen = (size_t)(p - q);
        int64_t unit;
        if (ulen == 0 || (ulen == 2 && memcmp(q, "ms", 2) == 0))
            unit = 1;
        else if (ulen == 1 && *q == 's')
            unit = 1000;
        else if (ulen == 1 && *q == 'm')
            unit = 60000;
        else if (ulen == 1 && *q == 'h')
            unit = 3600000;
        else
            goto bad_item;
        if (v > LEVEL_MAX_MS / unit)
            goto too_big;
        tmp[n++] = v * unit;
        continue;
    bad_item:
        return levels_fail(err, errsz,
                           "levels: invalid item '%.*s' (expected a whole number with an "
                           "optional unit ms, s, m or h)",
                           len > 40 ? 40 : len, item);
    too_big:
        return levels_fail(err, errsz, "levels: item '%.*s' is longer than 24h",
                           len > 40 ? 40 : len, item);
    }
    if (n == 0)
        return levels_fail(err, errsz, "levels: empty table");
    memcpy(levels, tmp, n * sizeof tmp[0]);
    *nlevels = n;
    return 0;
}
