#!/usr/bin/env bash
# Regression tests for three ways a task could get stuck or run twice:
#  - an attempt longer than the lease: the lease is renewed while it runs, so
#    the target sees exactly one request (no takeover by the node's own scan);
#  - replay of a succeeded task: the new attempt is numbered after the old
#    ones (retry_attempt rows never collide) and the task succeeds again;
#  - a target whose error body is not UTF-8: the attempt is still recorded
#    (the text is sanitized) and the task reaches exhausted;
#  - a 503 with Retry-After: 2 is not tried again before 2 s, although the
#    policy's backoff is 100 ms (read from the stored next_fire_at).
source "$(dirname "$0")/lib.sh"

start_stack "[scheduler]" "lease_ms = 1500"

post_task() { # KEY URL [POLICY]
    api_call POST /api/v1/tasks "$(v1_task lease-app lease.scene "$1" "$2" "${3:-null}")"
    assert_eq 201 "$API_STATUS" "task $1 accepted" >&2
    jq -r .id <<<"$API_BODY"
}
requests_for() { peer_jq --arg k "$1" '[.requests[] | select(.key == $k)] | length'; }

# 1. A 4 s attempt under a 1.5 s lease.
slow_id=$(post_task "slow-$$" "$PEER/slow/4000/long")
wait_for "task $slow_id ends" 30 task_ended "$slow_id"
assert_eq succeeded "$(task_field "$slow_id" status)" "the 4 s attempt ends succeeded"
assert_eq 1 "$(requests_for "slow-$$")" "the target saw exactly one request"
assert_eq 0 "$(curl -s "$RETRYD_URL/metrics" | awk '$1 == "retryd_fence_conflicts_total" {print $2}')" \
    "no result was discarded by a fence conflict"
assert_eq 1 "$(sql "SELECT COUNT(*) FROM retry_attempt WHERE task_id = $slow_id")" "one attempt row"

# 2. Replay the succeeded task: one more request, attempt number 2.
api_call POST "/api/v1/tasks/$slow_id/replay"
assert_eq 200 "$API_STATUS" "replay answers 200"
assert_eq pending "$(jq -r .status <<<"$API_BODY")" "the replayed task is pending"
wait_for "replayed task $slow_id ends" 30 task_ended "$slow_id"
assert_eq succeeded "$(task_field "$slow_id" status)" "the replayed task succeeds again"
assert_eq "1 2" "$(sql "SELECT attempt FROM retry_attempt WHERE task_id = $slow_id ORDER BY attempt" | xargs)" \
    "attempt rows are numbered 1 and 2 across the replay"
assert_eq 1 "$(task_field "$slow_id" attempts)" "attempts counts since the replay"
assert_eq 2 "$(requests_for "slow-$$")" "the target saw one more request"
api_call POST "/api/v1/tasks/$slow_id/pause"
assert_eq 409 "$API_STATUS" "pausing a succeeded task is a conflict"

# 3. A Latin-1 error body.
lat_id=$(post_task "latin1-$$" "$PEER/latin1/503/legacy" '{"max_attempts":2}')
wait_for "task $lat_id ends" 30 task_ended "$lat_id"
assert_eq exhausted "$(task_field "$lat_id" status)" "the task reaches exhausted"
assert_eq 2 "$(sql "SELECT COUNT(*) FROM retry_attempt WHERE task_id = $lat_id")" "two attempt rows"
assert_match '^HTTP 503: d\?faillance' "$(task_field "$lat_id" last_error)" \
    "last_error keeps the text, invalid bytes replaced"
assert_eq 0 "$(grep -c 'Incorrect string value' "$T/retryd.log" || true)" "MySQL refused no write"

# 4. Retry-After: 2 on a 503, backoff 100 ms: the next fire is >= 2 s later.
ra_id=$(post_task "ra-$$" "$PEER/retry-after/2/x")
wait_for "task $ra_id has its first attempt" 15 \
    bash -c "[[ \$(mariadb --no-defaults -N -B --socket='$MYSQL_SOCKET' -uroot retry -e 'SELECT COUNT(*) FROM retry_attempt WHERE task_id = $ra_id') -ge 1 ]]"
read -r first_start next_fire < <(sql "SELECT a.started_at, t.next_fire_at FROM retry_attempt a JOIN retry_task t ON t.id = a.task_id WHERE a.task_id = $ra_id AND a.attempt = 1")
assert_ge 2000 "$((next_fire - first_start))" "the second attempt is due >= 2000 ms after the first (Retry-After: 2)"
assert_le 10000 "$((next_fire - first_start))" "... and not the policy max_delay (300 s)"
wait_for "task $ra_id ends" 15 task_ended "$ra_id"
assert_eq succeeded "$(task_field "$ra_id" status)" "the task succeeds on the second attempt"
assert_eq "503 200" "$(sql "SELECT http_status FROM retry_attempt WHERE task_id = $ra_id ORDER BY attempt" | xargs)" \
    "attempts answered 503 then 200"

exit 0
