#!/usr/bin/env bash
# Retention ("remove history"): succeeded tasks older than
# [retention] succeeded_max_age_ms are deleted with their attempt rows, in
# batches of batch_size; tasks that did not succeed stay, and so does a task
# that succeeded too recently. "Old" is made deterministic: the cutoff is one
# hour, and the old tasks' ended_at is moved two hours back in SQL.
source "$(dirname "$0")/lib.sh"

start_stack "[retention]" "succeeded_max_age_ms = 3600000" "attempt_max_age_ms = 0" \
    "batch_size = 2" "interval_ms = 1000"

post() { # KEY URL [POLICY]
    api_call POST /api/v1/tasks "$(v1_task keep-app keep.scene "$1" "$2" "${3:-null}")" >&2
    [[ $API_STATUS == 201 ]] || fail "task $1 not accepted: $API_STATUS $API_BODY"
    jq -r .id <<<"$API_BODY"
}
ok_ids=()
for i in 1 2 3 4 5; do ok_ids+=("$(post "old-$i-$$" "$PEER/flaky/1/old")"); done
bad_id=$(post "bad-$$" "$PEER/status/503/bad" '{"max_attempts":1}')
for id in "${ok_ids[@]}" "$bad_id"; do wait_for "task $id ends" 30 task_ended "$id"; done
assert_eq 10 "$(sql "SELECT COUNT(*) FROM retry_attempt WHERE task_id IN ($(IFS=,; echo "${ok_ids[*]}"))")" \
    "the 5 succeeded tasks have 2 attempt rows each"

new_id=$(post "new-$$" "$PEER/ok/new")
wait_for "task $new_id ends" 30 task_ended "$new_id"
sql "UPDATE retry_task SET ended_at = ended_at - 7200000 WHERE id IN ($(IFS=,; echo "${ok_ids[*]}"), $bad_id)"

purged() { [[ $(sql "SELECT COUNT(*) FROM retry_task WHERE idempotency_key LIKE 'old-%-$$'") == 0 ]]; }
wait_for "the 5 old succeeded tasks are purged (batches of 2)" 30 purged
assert_eq 0 "$(sql "SELECT COUNT(*) FROM retry_attempt WHERE task_id IN ($(IFS=,; echo "${ok_ids[*]}"))")" \
    "their attempt rows are gone too"
assert_eq exhausted "$(sql "SELECT status FROM retry_task WHERE id = $bad_id")" "the exhausted task stays"
assert_eq 1 "$(sql "SELECT COUNT(*) FROM retry_attempt WHERE task_id = $bad_id")" "with its attempt row"
assert_eq succeeded "$(sql "SELECT status FROM retry_task WHERE id = $new_id")" \
    "a task that succeeded within the hour stays"
assert_ge 5 "$(curl -s "$RETRYD_URL/metrics" | awk '$1 == "retryd_purged_tasks_total" {print $2}')" \
    "retryd_purged_tasks_total counts them"
runs=$(grep -c 'retention: purged' "$T/retryd.log" || true)
assert_ge 3 "$runs" "the purge ran in batches of at most 2 ($runs runs)"
exit 0
