#!/usr/bin/env bash
# Precise firing: the scan interval is only a safety net. With
# scan_interval_ms = 20000, a new task is attempted at once and its retries
# (fixed 300 ms backoff) fire at their due time, not at the next scan: each
# attempt's lateness (started_at - the next_fire_at set by the attempt before)
# stays far below the scan interval.
source "$(dirname "$0")/lib.sh"

start_stack "[scheduler]" "scan_interval_ms = 20000" "default_initial_delay_ms = 300" \
    "default_backoff = fixed" "default_jitter = none"

# Let the start-up scan pass, so that what follows can only be woken early.
sleep 1
api_call POST /api/v1/tasks "$(v1_task precise-app precise.scene "p-$$" "$PEER/flaky/3/p")"
assert_eq 201 "$API_STATUS" "task accepted"
id=$(jq -r .id <<<"$API_BODY")
wait_for "task $id ends" 15 task_ended "$id"
assert_eq succeeded "$(task_field "$id" status)" "the task succeeds"
assert_eq 4 "$(sql "SELECT COUNT(*) FROM retry_attempt WHERE task_id = $id")" "in 4 attempts"

created=$(task_field "$id" created_at)
mapfile -t starts < <(sql "SELECT started_at FROM retry_attempt WHERE task_id = $id ORDER BY attempt")
assert_le 5000 "$((starts[0] - created))" "the first attempt starts well before the 20 s scan"
for i in 1 2 3; do
    gap=$((starts[i] - starts[i - 1]))
    assert_ge 300 "$gap" "attempt $((i + 1)) waits its 300 ms backoff"
    assert_le 5000 "$gap" "attempt $((i + 1)) fires at its due time, not at the 20 s scan"
done
count=$(curl -s "$RETRYD_URL/metrics" | awk '$1 == "retryd_fire_lateness_ms_count" {print $2}')
assert_eq 4 "$count" "the lateness histogram counted the 4 fires"
exit 0
