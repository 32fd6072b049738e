/*
 * breaker.h: per-scene circuit breakers (the classic closed / open /
 * half-open machine, as in Nygard's "Release It!" and resilience4j). Pure:
 * time is an argument, no I/O, so the unit tests drive every transition.
 * Flow position: the dispatcher asks before each attempt and reports after;
 * state is per node (each retryd judges what it sees). Loop thread only.
 *
 *   closed    -> open      the scene's last `window` outcomes hold at least
 *                          `min_attempts` results and failed/total >= ratio
 *   open      -> half-open cooldown_ms has passed; the next attempt is a probe
 *   half-open -> closed    the probe did not fail (the ring is cleared)
 *   half-open -> open      the probe failed (another cool-down, no new alert)
 */
#ifndef RD_BREAKER_H
#define RD_BREAKER_H

#include <stdint.h>

typedef struct rd_breaker_conf {
    double failure_ratio;   /* 0 = breakers off */
    int window;             /* 1..1000 */
    int min_attempts;       /* 1..window */
    int64_t cooldown_ms;
} rd_breaker_conf;

typedef struct rd_breakers rd_breakers;

rd_breakers *rd_breakers_new(void);
void rd_breakers_free(rd_breakers *b);

/* Before an attempt of `scene`: 1 = go; 0 = the breaker is open (or a
 * half-open probe is already running) and *retry_at_ms says when to try the
 * task again. */
int rd_breaker_allow(rd_breakers *b, const rd_breaker_conf *conf, const char *scene,
                     int64_t now_ms, int64_t *retry_at_ms);

/* After an attempt of `scene` (failed = error status, timeout, no
 * connection; a success or a stop_on_status answer is not a failure).
 * Returns 1 when this result opened a closed breaker (the caller alerts
 * once), with *open_until_ms and *ratio (failed/total in the window). */
int rd_breaker_record(rd_breakers *b, const rd_breaker_conf *conf, const char *scene,
                      int failed, int64_t now_ms, int64_t *open_until_ms, double *ratio);

/* Number of scenes whose breaker is open or half-open now. */
int rd_breakers_open(const rd_breakers *b, int64_t now_ms);

#endif
