#!/usr/bin/env bash
# Per-scene circuit breaker: a scene whose recent attempts mostly fail is not
# dispatched for the cool-down (its due tasks are pushed back, one alert is
# sent); another scene keeps running meanwhile; after the cool-down one probe
# goes and, failing again, reopens the breaker without a second alert.
source "$(dirname "$0")/lib.sh"

start_stack "[scheduler]" "breaker_failure_ratio = 0.8" "breaker_window = 10" \
    "breaker_min_attempts = 4" "breaker_cooldown_ms = 3000" \
    "default_backoff = fixed" "default_initial_delay_ms = 100" "default_jitter = none" \
    "default_max_attempts = 50"

post() { # KEY SCENE URL
    api_call POST /api/v1/tasks "$(v1_task breaker-app "$2" "$1" "$3")" >&2
    [[ $API_STATUS == 201 ]] || fail "task $1 not accepted: $API_STATUS $API_BODY"
    jq -r .id <<<"$API_BODY"
}
for i in 1 2 3 4 5 6; do post "down-$i-$$" down.scene "$PEER/status/503/down" >/dev/null; done

open_alerts() { peer_jq '[.alerts[] | select(.event == "circuit_open")] | length'; }
opened() { [[ $(open_alerts) -ge 1 ]]; }
wait_for "the breaker of down.scene opens" 20 opened
alert=$(peer_jq '[.alerts[] | select(.event == "circuit_open")][0].body')
assert_eq down.scene "$(jq -r .scene <<<"$alert")" "the circuit_open alert names the scene"
until_ms=$(jq -r .until <<<"$alert")
opened_ms=$((until_ms - 3000))

# Meanwhile another scene runs.
up_id=$(post "up-$$" up.scene "$PEER/ok/up")
wait_for "task $up_id of up.scene ends" 10 task_ended "$up_id"
assert_eq succeeded "$(task_field "$up_id" status)" "up.scene is not affected by down.scene's breaker"
deferred() { sql "SELECT COUNT(*) FROM retry_task WHERE scene = 'down.scene' AND last_error LIKE 'circuit breaker open%'"; }
has_deferred() { [[ $(deferred) -ge 1 ]]; }
wait_for "due tasks of down.scene are deferred" 10 has_deferred

# Past the cool-down the probe fails and the breaker reopens, silently.
past() { (($(date +%s%3N) > until_ms + 1500)); }
wait_for "the cool-down and a probe" 15 past
sleep 1
assert_eq 0 "$(sql "SELECT COUNT(*) FROM retry_attempt WHERE scene = 'down.scene' AND started_at > $opened_ms AND started_at < $until_ms")" \
    "no attempt of down.scene started while its breaker was open"
assert_ge 1 "$(sql "SELECT COUNT(*) FROM retry_attempt WHERE scene = 'down.scene' AND started_at >= $until_ms")" \
    "a probe attempt went after the cool-down"
assert_eq 1 "$(open_alerts)" "one circuit_open alert, not one per reopening"
assert_eq 1 "$(curl -s "$RETRYD_URL/metrics" | awk '$1 == "retryd_breaker_opened_total" {print $2}')" \
    "retryd_breaker_opened_total = 1"
assert_ge 1 "$(curl -s "$RETRYD_URL/metrics" | awk '$1 == "retryd_breaker_deferred_total" {print $2}')" \
    "deferred attempts are counted"
exit 0
