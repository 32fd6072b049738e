#!/usr/bin/env bash
# A hand-written wire format v1 message, produced with kcat (a client that is
# not ours), against a target that fails twice: retryd ingests it, retries it
# and ends it succeeded after 3 attempts, with one callback; the target sees
# X-Retry-Attempt 1, 2, 3, each with the task's Idempotency-Key.
source "$(dirname "$0")/lib.sh"

start_stack

key="kcat-$RANDOM-$$"
msg=$(v1_task kcat-app kcat.scene "$key" "$PEER/flaky/2/x" null "$PEER/callback")
produce_kcat "kcat-app/$key" "$msg"

wait_for "retryd stores the task from Kafka" 30 task_exists kcat-app "$key"
id=$(task_id_of kcat-app "$key")
ok "task $id created from the kcat message"
wait_for "task $id ends" 60 task_ended "$id"

assert_eq succeeded "$(task_field "$id" status)" "task ends succeeded"
assert_eq 3 "$(task_field "$id" attempts)" "task attempts = 3"
assert_eq 3 "$(sql "SELECT COUNT(*) FROM retry_attempt WHERE task_id = $id")" \
    "3 rows in retry_attempt"
assert_eq "failed failed succeeded" \
    "$(sql "SELECT outcome FROM retry_attempt WHERE task_id = $id ORDER BY attempt" | xargs)" \
    "attempt outcomes failed, failed, succeeded"
assert_eq "1 2 3" \
    "$(sql "SELECT attempt FROM retry_attempt WHERE task_id = $id ORDER BY attempt" | xargs)" \
    "attempt numbers 1, 2, 3"

stats=$(peer_stats)
assert_eq "1 2 3" \
    "$(jq -r --arg k "$key" '[.requests[] | select(.path == "/flaky/2/x" and .key == $k) | .attempt] | join(" ")' <<<"$stats")" \
    "the target saw X-Retry-Attempt 1, 2, 3 with the Idempotency-Key"
assert_eq "503 503 200" \
    "$(jq -r --arg k "$key" '[.requests[] | select(.path == "/flaky/2/x" and .key == $k) | .status] | join(" ")' <<<"$stats")" \
    "the target answered 503, 503, 200"
assert_eq "$id $id $id" \
    "$(jq -r --arg k "$key" '[.requests[] | select(.path == "/flaky/2/x" and .key == $k) | .task_id] | join(" ")' <<<"$stats")" \
    "every request carries X-Retry-Task-Id"

wait_for "the succeeded callback" 15 \
    bash -c "[[ \$(curl -s $PEER/_stats | jq '[.callbacks[] | select(.body.idempotency_key == \"$key\")] | length') -ge 1 ]]"
sleep 1 # a second callback would arrive about now
stats=$(peer_stats)
assert_eq 1 "$(jq --arg k "$key" '[.callbacks[] | select(.body.idempotency_key == $k)] | length' <<<"$stats")" \
    "exactly one callback"
assert_eq succeeded "$(jq -r --arg k "$key" '.callbacks[] | select(.body.idempotency_key == $k) | .event' <<<"$stats")" \
    "callback header X-Retry-Event: succeeded"
assert_eq "succeeded $id kcat-app kcat.scene 3" \
    "$(jq -r --arg k "$key" '.callbacks[] | select(.body.idempotency_key == $k) | .body | "\(.event) \(.id) \(.group) \(.scene) \(.attempts)"' <<<"$stats")" \
    "callback body: event, id, group, scene, attempts"
assert_eq 0 "$(jq '.alerts | length' <<<"$stats")" "no alert for a success"
assert_eq 0 "$(sql "SELECT COUNT(*) FROM retry_poison")" "nothing in retry_poison"
exit 0
