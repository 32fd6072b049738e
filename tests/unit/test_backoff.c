/*
 * test_backoff.c: unit tests for src/backoff.c (splitmix64, uniform ranges,
 * every backoff kind and jitter, saturation, names, levels tables).
 *
 * Expected sequences are obtained two independent ways: derived in the test
 * from a second generator seeded the same way plus the formula from
 * backoff.h (with its own range reduction, not rt_rng_range), and pinned as
 * literals computed once with a separate Python implementation of splitmix64
 * and the same formulas (see the comment over each literal).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "backoff.h"

/* Reference uniform integer in [lo, hi] for small spans: one draw reduced
 * modulo the span. For spans below 2^32 rt_rng_range() rejects a draw with
 * probability under 2^-32, so for the short sequences below both must agree
 * draw for draw. */
static int64_t ref_range(rt_rng *r, int64_t lo, int64_t hi)
{
    if (hi <= lo)
        return lo;
    uint64_t n = (uint64_t)(hi - lo) + 1;
    return lo + (int64_t)(rt_rng_next(r) % n);
}

static rt_backoff make(rt_backoff_kind kind, rt_jitter_kind jitter, int64_t initial,
                       double mult, int64_t max)
{
    rt_backoff b;
    memset(&b, 0, sizeof b);
    b.kind = kind;
    b.jitter = jitter;
    b.initial_delay_ms = initial;
    b.multiplier = mult;
    b.max_delay_ms = max;
    return b;
}

/* Runs n attempts feeding each delay back as prev, like the callers do. */
static void run(const rt_backoff *b, uint64_t seed, int64_t *out, unsigned n)
{
    rt_rng rng;
    rt_rng_seed(&rng, seed);
    int64_t prev = 0;
    for (unsigned a = 1; a <= n; a++) {
        out[a - 1] = rt_backoff_delay(b, a, prev, &rng);
        prev = out[a - 1];
    }
}

static void test_splitmix64_vectors(void **state)
{
    (void)state;
    /* Published splitmix64 outputs for seed 1234567 (also checked with an
     * independent Python implementation). */
    static const uint64_t want[] = {6457827717110365317ULL, 3203168211198807973ULL,
                                    9817491932198370423ULL, 4593380528125082431ULL,
                                    16408922859458223821ULL};
    rt_rng r;
    rt_rng_seed(&r, 1234567);
    for (size_t i = 0; i < 5; i++)
        assert_true(rt_rng_next(&r) == want[i]);
    rt_rng_seed(&r, 0);
    assert_true(rt_rng_next(&r) == 0xe220a8397b1dcdafULL);
    assert_true(rt_rng_next(&r) == 0x6e789e6aa1b965f4ULL);
}

static void test_range_bounds_and_edges(void **state)
{
    (void)state;
    rt_rng r, ref;
    rt_rng_seed(&r, 7);
    assert_int_equal(rt_rng_range(&r, 5, 5), 5);
    assert_int_equal(rt_rng_range(&r, 9, 3), 9);
    assert_int_equal(rt_rng_range(&r, INT64_MAX, INT64_MAX), INT64_MAX);
    /* hi <= lo consumes no randomness. */
    rt_rng_seed(&r, 7);
    rt_rng_seed(&ref, 7);
    (void)rt_rng_range(&r, 4, 4);
    assert_true(rt_rng_next(&r) == rt_rng_next(&ref));

    /* The whole int64 range: no overflow, and r is the raw draw. */
    rt_rng_seed(&r, 99);
    rt_rng_seed(&ref, 99);
    for (int i = 0; i < 100; i++) {
        uint64_t raw = rt_rng_next(&ref);
        int64_t got = rt_rng_range(&r, INT64_MIN, INT64_MAX);
        assert_true((uint64_t)got - (uint64_t)INT64_MIN == raw);
    }
    /* Negative and extreme bounds stay inside. */
    rt_rng_seed(&r, 3);
    for (int i = 0; i < 10000; i++) {
        int64_t v = rt_rng_range(&r, -5, 5);
        assert_true(v >= -5 && v <= 5);
        v = rt_rng_range(&r, INT64_MAX - 3, INT64_MAX);
        assert_true(v >= INT64_MAX - 3);
        v = rt_rng_range(&r, INT64_MIN, INT64_MIN + 1);
        assert_true(v <= INT64_MIN + 1);
        v = rt_rng_range(&r, -1, INT64_MAX); /* span 2^63 + 1: heavy rejection */
        assert_true(v >= -1);
    }
}

static void test_range_matches_reference_and_is_uniform(void **state)
{
    (void)state;
    rt_rng r, ref;
    rt_rng_seed(&r, 2024);
    rt_rng_seed(&ref, 2024);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(rt_rng_range(&r, 10, 1009), ref_range(&ref, 10, 1009));

    /* 100000 draws over 10 buckets: each within 5% of 10000 (about 16
     * standard deviations; a biased reduction of a broken generator fails). */
    unsigned count[10] = {0};
    rt_rng_seed(&r, 1);
    for (int i = 0; i < 100000; i++)
        count[rt_rng_range(&r, 0, 9)]++;
    for (int i = 0; i < 10; i++)
        assert_true(count[i] > 9500 && count[i] < 10500);
}

static void test_fixed(void **state)
{
    (void)state;
    rt_backoff b = make(RT_BACKOFF_FIXED, RT_JITTER_NONE, 1500, 3.0, 0);
    for (unsigned a = 1; a < 50; a++)
        assert_int_equal(rt_backoff_delay(&b, a, 0, NULL), 1500);
    assert_int_equal(rt_backoff_delay(&b, 0, 0, NULL), 1500); /* 0 acts as 1 */
    b.max_delay_ms = 1000;
    assert_int_equal(rt_backoff_delay(&b, 3, 0, NULL), 1000);
    b.initial_delay_ms = -5; /* never negative */
    assert_int_equal(rt_backoff_delay(&b, 1, 0, NULL), 0);
}

static void test_exponential(void **state)
{
    (void)state;
    rt_backoff b = make(RT_BACKOFF_EXPONENTIAL, RT_JITTER_NONE, 1000, 2.0, 0);
    int64_t want = 1000;
    for (unsigned a = 1; a <= 20; a++, want *= 2)
        assert_int_equal(rt_backoff_delay(&b, a, 0, NULL), want);

    b.max_delay_ms = 30000; /* 1000 2000 4000 8000 16000 30000 30000 */
    static const int64_t capped[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
    for (unsigned a = 1; a <= 8; a++)
        assert_int_equal(rt_backoff_delay(&b, a, 0, NULL), capped[a - 1]);

    /* Non-integral multiplier: 100 * 1.5^(n-1) truncated to whole ms. */
    b = make(RT_BACKOFF_EXPONENTIAL, RT_JITTER_NONE, 100, 1.5, 0);
    static const int64_t x15[] = {100, 150, 225, 337, 506, 759};
    for (unsigned a = 1; a <= 6; a++)
        assert_int_equal(rt_backoff_delay(&b, a, 0, NULL), x15[a - 1]);

    /* Multipliers below 1 (and 0, the client's "fixed") act as 1. */
    b.multiplier = 0.5;
    assert_int_equal(rt_backoff_delay(&b, 10, 0, NULL), 100);
    b.multiplier = 0.0;
    assert_int_equal(rt_backoff_delay(&b, 10, 0, NULL), 100);
}

static void test_saturation(void **state)
{
    (void)state;
    rt_backoff b = make(RT_BACKOFF_EXPONENTIAL, RT_JITTER_NONE, 1000, 100.0, 0);
    assert_int_equal(rt_backoff_delay(&b, 100, 0, NULL), RT_BACKOFF_SATURATE);
    assert_int_equal(rt_backoff_delay(&b, UINT32_MAX, 0, NULL), RT_BACKOFF_SATURATE);
    b.max_delay_ms = 604800000;
    assert_int_equal(rt_backoff_delay(&b, UINT32_MAX, 0, NULL), 604800000);
    b = make(RT_BACKOFF_FIXED, RT_JITTER_NONE, INT64_MAX, 1.0, 0);
    assert_int_equal(rt_backoff_delay(&b, 1, 0, NULL), RT_BACKOFF_SATURATE);
    b.max_delay_ms = INT64_MAX;
    assert_int_equal(rt_backoff_delay(&b, 1, 0, NULL), RT_BACKOFF_SATURATE);

    /* Jitters on a saturated base stay in range and do not overflow. */
    rt_rng r;
    rt_rng_seed(&r, 5);
    b = make(RT_BACKOFF_EXPONENTIAL, RT_JITTER_FULL, 1000, 100.0, 0);
    for (int i = 0; i < 100; i++) {
        int64_t d = rt_backoff_delay(&b, 1000, 0, &r);
        assert_true(d >= 0 && d <= RT_BACKOFF_SATURATE);
    }
    b.jitter = RT_JITTER_EQUAL;
    for (int i = 0; i < 100; i++) {
        int64_t d = rt_backoff_delay(&b, 1000, 0, &r);
        assert_true(d >= RT_BACKOFF_SATURATE / 2 && d <= RT_BACKOFF_SATURATE);
    }
    b.jitter = RT_JITTER_DECORRELATED;
    for (int i = 0; i < 100; i++) {
        int64_t d = rt_backoff_delay(&b, 5, INT64_MAX, &r);
        assert_true(d >= 1000 && d <= RT_BACKOFF_SATURATE);
    }
}

static void test_levels(void **state)
{
    (void)state;
    rt_backoff b = make(RT_BACKOFF_LEVELS, RT_JITTER_NONE, 7, 0, 0);
    int64_t lv[] = {1000, 5000, 10000, 30000};
    memcpy(b.levels, lv, sizeof lv);
    b.nlevels = 4;
    assert_int_equal(rt_backoff_delay(&b, 1, 0, NULL), 1000);
    assert_int_equal(rt_backoff_delay(&b, 2, 0, NULL), 5000);
    assert_int_equal(rt_backoff_delay(&b, 4, 0, NULL), 30000);
    assert_int_equal(rt_backoff_delay(&b, 5, 0, NULL), 30000); /* clamps to last */
    assert_int_equal(rt_backoff_delay(&b, 1000000, 0, NULL), 30000);
    b.max_delay_ms = 8000;
    assert_int_equal(rt_backoff_delay(&b, 3, 0, NULL), 8000);
    b.nlevels = 0; /* empty table: initial */
    assert_int_equal(rt_backoff_delay(&b, 3, 0, NULL), 7);
}

static void test_random_kind(void **state)
{
    (void)state;
    rt_backoff b = make(RT_BACKOFF_RANDOM, RT_JITTER_NONE, 100, 0, 5000);
    int64_t got[8];
    run(&b, 42, got, 8);
    /* Pinned: Python reference, seed 42, uniform in [100, 5000]. */
    static const int64_t pinned[] = {1383, 2220, 3893, 3483, 2174, 4813, 3360, 1607};
    rt_rng ref;
    rt_rng_seed(&ref, 42);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(got[i], pinned[i]);
        assert_int_equal(got[i], ref_range(&ref, 100, 5000));
    }
    rt_rng r;
    rt_rng_seed(&r, 9);
    for (int i = 0; i < 10000; i++) {
        int64_t d = rt_backoff_delay(&b, 1, 0, &r);
        assert_true(d >= 100 && d <= 5000);
    }
    b.max_delay_ms = 0; /* no upper bound: degenerates to initial */
    assert_int_equal(rt_backoff_delay(&b, 1, 0, &r), 100);
}

static void test_full_jitter(void **state)
{
    (void)state;
    rt_backoff b = make(RT_BACKOFF_EXPONENTIAL, RT_JITTER_FULL, 100, 2.0, 5000);
    int64_t got[8];
    run(&b, 42, got, 8);
    /* Pinned: Python reference, seed 42: uniform in [0, min(5000, 100*2^(n-1))]. */
    static const int64_t pinned[] = {23, 49, 111, 657, 1036, 2319, 3439, 2648};
    rt_rng ref;
    rt_rng_seed(&ref, 42);
    int64_t base = 100;
    for (int i = 0; i < 8; i++, base = base * 2 > 5000 ? 5000 : base * 2) {
        assert_int_equal(got[i], pinned[i]);
        assert_int_equal(got[i], ref_range(&ref, 0, base));
        assert_true(got[i] >= 0 && got[i] <= base);
    }
}

static void test_equal_jitter(void **state)
{
    (void)state;
    rt_backoff b = make(RT_BACKOFF_EXPONENTIAL, RT_JITTER_EQUAL, 100, 2.0, 5000);
    int64_t got[8];
    run(&b, 42, got, 8);
    /* Pinned: Python reference, seed 42: base/2 + uniform in [0, base/2]. */
    static const int64_t pinned[] = {63, 163, 233, 504, 1509, 2783, 3676, 4268};
    rt_rng ref;
    rt_rng_seed(&ref, 42);
    int64_t base = 100;
    for (int i = 0; i < 8; i++, base = base * 2 > 5000 ? 5000 : base * 2) {
        assert_int_equal(got[i], pinned[i]);
        assert_int_equal(got[i], base / 2 + ref_range(&ref, 0, base / 2));
        assert_true(got[i] >= base / 2 && got[i] <= base);
    }
}

static void test_decorrelated_jitter(void **state)
{
    (void)state;
    rt_backoff b = make(RT_BACKOFF_EXPONENTIAL, RT_JITTER_DECORRELATED, 100, 2.0, 5000);
    int64_t got[8];
    run(&b, 42, got, 8);
    /* Pinned: Python reference, seed 42: min(5000, uniform in [100, prev*3]),
     * prev = 100 for the first attempt. */
    static const int64_t pinned[] = {155, 185, 142, 214, 632, 1096, 233, 408};
    rt_rng ref;
    rt_rng_seed(&ref, 42);
    int64_t prev = 100;
    for (int i = 0; i < 8; i++) {
        int64_t want = ref_range(&ref, 100, prev * 3);
        if (want > 5000)
            want = 5000;
        assert_int_equal(got[i], pinned[i]);
        assert_int_equal(got[i], want);
        assert_true(got[i] >= 100 && got[i] <= 5000);
        prev = got[i];
    }

    /* It really uses prev: attempt 1 ignores it, later attempts do not. */
    rt_rng r1, r2;
    rt_rng_seed(&r1, 8);
    rt_rng_seed(&r2, 8);
    assert_int_equal(rt_backoff_delay(&b, 1, 4000, &r1), rt_backoff_delay(&b, 1, 0, &r2));
    rt_rng_seed(&r1, 8);
    rt_rng_seed(&ref, 8);
    assert_int_equal(rt_backoff_delay(&b, 2, 1000, &r1), ref_range(&ref, 100, 3000));
    /* prev below initial: hi <= lo gives initial. */
    assert_int_equal(rt_backoff_delay(&b, 3, 10, &r1), 100);
    /* The cap applies. */
    for (int i = 0; i < 1000; i++)
        assert_true(rt_backoff_delay(&b, 3, 4900, &r1) <= 5000);
}

/* Polly's DecorrelatedJitterBackoffV2 (Polly.Contrib.WaitAndRetry,
 * Backoff.DecorrelatedJitterV2.cs), mean first delay 100 ms. */
static void test_decorrelated_v2_jitter(void **state)
{
    (void)state;
    rt_backoff b = make(RT_BACKOFF_EXPONENTIAL, RT_JITTER_DECORRELATED_V2, 100, 2.0, 0);
    /* Pinned: Python reference, seed 42: t = i + (next() >> 11) * 2^-53,
     * f = 2^t * tanh(sqrt(4 t)), delay = int((f - f_prev) / 1.4 * 100). */
    static const int64_t pinned[] = {112, 43, 189, 379, 448, 2999, 1146, 10607};
    rt_rng rng;
    double st = 0.0;
    rt_rng_seed(&rng, 42);
    for (unsigned a = 1; a <= 8; a++)
        assert_int_equal(rt_backoff_delay_ex(&b, a, 0, &st, &rng), pinned[a - 1]);

    /* The cap applies, and the multiplier and prev_delay_ms play no part. */
    b.max_delay_ms = 1000;
    b.multiplier = 7.0;
    rt_rng_seed(&rng, 42);
    st = 0.0;
    for (unsigned a = 1; a <= 8; a++) {
        int64_t want = pinned[a - 1] > 1000 ? 1000 : pinned[a - 1];
        assert_int_equal(rt_backoff_delay_ex(&b, a, 123456, &st, &rng), want);
    }

    /* Stateless (v2_prev NULL): two draws after the first attempt, always
     * >= 0 and, uncapped, below the bound of the curve f(n) / 1.4 * 100. */
    b.max_delay_ms = 0;
    rt_rng_seed(&rng, 7);
    for (int i = 0; i < 1000; i++) {
        unsigned a = 1 + (unsigned)(i % 10);
        int64_t d = rt_backoff_delay(&b, a, 0, &rng);
        assert_true(d >= 0);
        assert_true((double)d <= 100.0 / 1.4 * pow(2.0, (double)a) + 1.0);
    }
    /* Huge attempts saturate instead of overflowing. */
    st = 0.0;
    assert_int_equal(rt_backoff_delay_ex(&b, 5000, 0, &st, &rng), RT_BACKOFF_SATURATE);
    assert_int_equal(rt_backoff_delay(&b, 5000, 0, &rng), RT_BACKOFF_SATURATE);
}

static void test_levels_with_full_jitter(void **state)
{
    (void)state;
    rt_backoff b = make(RT_BACKOFF_LEVELS, RT_JITTER_FULL, 0, 0, 0);
    b.levels[0] = 1000;
    b.levels[1] = 5000;
    b.levels[2] = 10000;
    b.nlevels = 3;
    int64_t got[5];
    run(&b, 42, got, 5);
    /* Pinned: Python reference, seed 42, uniform in [0, level]. */
    static const int64_t pinned[] = {152, 1708, 6297, 1978, 5453};
    for (int i = 0; i < 5; i++)
        assert_int_equal(got[i], pinned[i]);
}

static void test_names(void **state)
{
    (void)state;
    static const char *const kinds[] = {"fixed", "exponential", "levels", "random"};
    static const char *const jitters[] = {"none", "full", "equal", "decorrelated",
                                          "decorrelated_v2"};
    for (int i = 0; i < 5; i++) {
        rt_backoff_kind k;
        rt_jitter_kind j;
        if (i < 4) {
            assert_string_equal(rt_backoff_kind_name((rt_backoff_kind)i), kinds[i]);
            assert_int_equal(rt_backoff_kind_parse(kinds[i], &k), 0);
            assert_int_equal(k, i);
        }
        assert_string_equal(rt_jitter_kind_name((rt_jitter_kind)i), jitters[i]);
        assert_int_equal(rt_jitter_kind_parse(jitters[i], &j), 0);
        assert_int_equal(j, i);
    }
    rt_backoff_kind k = RT_BACKOFF_LEVELS;
    rt_jitter_kind j = RT_JITTER_EQUAL;
    assert_int_equal(rt_backoff_kind_parse("Exponential", &k), -1);
    assert_int_equal(rt_backoff_kind_parse("", &k), -1);
    assert_int_equal(rt_backoff_kind_parse(NULL, &k), -1);
    assert_int_equal(k, RT_BACKOFF_LEVELS); /* untouched on error */
    assert_int_equal(rt_jitter_kind_parse("fullx", &j), -1);
    assert_int_equal(rt_jitter_kind_parse(NULL, &j), -1);
    assert_int_equal(j, RT_JITTER_EQUAL);
    assert_string_equal(rt_backoff_kind_name((rt_backoff_kind)9), "unknown");
    assert_string_equal(rt_jitter_kind_name((rt_jitter_kind)-1), "unknown");
}

static void test_levels_parse_ok(void **state)
{
    (void)state;
    int64_t lv[RT_MAX_LEVELS];
    size_t n = 0;
    char err[128] = "";
    assert_int_equal(rt_levels_parse("1s 5s 1m 1h", lv, &n, err, sizeof err), 0);
    assert_int_equal(n, 4);
    assert_int_equal(lv[0], 1000);
    assert_int_equal(lv[1], 5000);
    assert_int_equal(lv[2], 60000);
    assert_int_equal(lv[3], 3600000);

    assert_int_equal(rt_levels_parse("1000,5000", lv, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(lv[0], 1000);
    assert_int_equal(lv[1], 5000);

    assert_int_equal(rt_levels_parse("  250ms,, 0 ,\t24h\n", lv, &n, NULL, 0), 0);
    assert_int_equal(n, 3);
    assert_int_equal(lv[0], 250);
    assert_int_equal(lv[1], 0);
    assert_int_equal(lv[2], 86400000);

    assert_int_equal(rt_levels_parse("1s 5s 10s 30s 1m 2m 5m 10m 30m 1h", lv, &n, err, sizeof err),
                     0);
    assert_int_equal(n, 10);
    assert_int_equal(lv[9], 3600000);

    char buf[256] = "";
    for (int i = 0; i < RT_MAX_LEVELS; i++)
        strcat(buf, "1s ");
    assert_int_equal(rt_levels_parse(buf, lv, &n, err, sizeof err), 0);
    assert_int_equal(n, RT_MAX_LEVELS);
}

static void expect_levels_error(const char *in, const char *want)
{
    int64_t lv[RT_MAX_LEVELS] = {42};
    size_t n = 7;
    char err[160] = "";
    assert_int_equal(rt_levels_parse(in, lv, &n, err, sizeof err), -1);
    assert_string_equal(err, want);
    assert_int_equal(n, 7); /* untouched */
    assert_int_equal(lv[0], 42);
    assert_int_equal(rt_levels_parse(in, lv, &n, NULL, 0), -1);
}

static void test_levels_parse_errors(void **state)
{
    (void)state;
    const char *unit_hint = "(expected a whole number with an optional unit ms, s, m or h)";
    char want[200];
    expect_levels_error("", "levels: empty table");
    expect_levels_error(" , ,", "levels: empty table");
    expect_levels_error(NULL, "levels: empty table");
    snprintf(want, sizeof want, "levels: invalid item 'abc' %s", unit_hint);
    expect_levels_error("1s abc", want);
    snprintf(want, sizeof want, "levels: invalid item '5x' %s", unit_hint);
    expect_levels_error("5x", want);
    snprintf(want, sizeof want, "levels: invalid item '1.5s' %s", unit_hint);
    expect_levels_error("1.5s", want);
    snprintf(want, sizeof want, "levels: invalid item '-1' %s", unit_hint);
    expect_levels_error("-1", want);
    snprintf(want, sizeof want, "levels: invalid item 's' %s", unit_hint);
    expect_levels_error("s", want);
    snprintf(want, sizeof want, "levels: invalid item '1sec' %s", unit_hint);
    expect_levels_error("1sec", want);
    expect_levels_error("25h", "levels: item '25h' is longer than 24h");
    expect_levels_error("86400001", "levels: item '86400001' is longer than 24h");
    expect_levels_error("99999999999999999999999999",
                        "levels: item '99999999999999999999999999' is longer than 24h");
    char buf[256] = "";
    for (int i = 0; i <= RT_MAX_LEVELS; i++)
        strcat(buf, "1s,");
    expect_levels_error(buf, "levels: more than 32 items");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_splitmix64_vectors),
        cmocka_unit_test(test_range_bounds_and_edges),
        cmocka_unit_test(test_range_matches_reference_and_is_uniform),
        cmocka_unit_test(test_fixed),
        cmocka_unit_test(test_exponential),
        cmocka_unit_test(test_saturation),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_random_kind),
        cmocka_unit_test(test_full_jitter),
        cmocka_unit_test(test_equal_jitter),
        cmocka_unit_test(test_decorrelated_jitter),
        cmocka_unit_test(test_decorrelated_v2_jitter),
        cmocka_unit_test(test_levels_with_full_jitter),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_levels_parse_ok),
        cmocka_unit_test(test_levels_parse_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
