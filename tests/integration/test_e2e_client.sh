#!/usr/bin/env bash
# End to end through the client library: the example http_notify calls a
# target that fails its first 3 requests per Idempotency-Key, gives up after
# 1 local attempt and ships the call over Kafka; retryd retries it to success.
# Then the same message is delivered again (kcat): still one task, no extra
# request to the target.
source "$(dirname "$0")/lib.sh"

need_bin HTTP_NOTIFY
start_stack

url="$PEER/flaky/3/pay"
out=$("$HTTP_NOTIFY" --brokers "$KAFKA_BOOTSTRAP" --group client-app --scene payment.notify \
    --url "$url" --attempts 1 --callback-url "$PEER/callback" --body '{"order":42}' \
    2> >(tee -a "$T/http_notify.log" >&2)) || fail "http_notify failed: $out"
echo "$out" >>"$T/http_notify.log"
result=$(tail -n1 <<<"$out")
log "http_notify: $result"
assert_match '^result=exhausted ' "$result" "http_notify exhausts its local attempts"
assert_match ' shipped=1 delivered=1 ' "$result" "... and ships the task to Kafka"
key=$(sed -n 's/.* key=\([^ ]*\).*/\1/p' <<<"$result")
local_attempts=$(sed -n 's/.* local_attempts=\([0-9]*\).*/\1/p' <<<"$result")
assert_eq 1 "$local_attempts" "one local attempt"
assert_ne "" "$key" "the idempotency key is printed ($key)"

wait_for "retryd stores the shipped task" 30 task_exists client-app "$key"
id=$(task_id_of client-app "$key")
wait_for "task $id ends" 60 task_ended "$id"
assert_eq succeeded "$(task_field "$id" status)" "task $id ends succeeded"

# The peer fails the first 3 requests per Idempotency-Key. Requests with
# X-Retry-Task-Id come from retryd; the others are the client's own.
stats=$(peer_stats)
total=$(jq --arg k "$key" '[.requests[] | select(.path == "/flaky/3/pay" and .key == $k)] | length' <<<"$stats")
server=$(jq --arg id "$id" '[.requests[] | select(.path == "/flaky/3/pay" and .task_id == $id)] | length' <<<"$stats")
client=$(jq '[.requests[] | select(.path == "/flaky/3/pay" and .task_id == null)] | length' <<<"$stats")
log "target requests: $total with the key, $server from retryd, $client from the client"
assert_eq "$local_attempts" "$client" "the target saw the client's local attempt"
# The client's local attempt carries the same Idempotency-Key, so it used up
# one of the 3 failures: 4 requests on the key, 3 of them from retryd.
assert_eq 4 "$total" "the key saw 3 failures and 1 success in total"
assert_eq "$((server + client))" "$total" "every request on the key came from the client or retryd"
assert_eq 3 "$server" "so retryd needed 3 attempts"
assert_eq "$server" "$(sql "SELECT COUNT(*) FROM retry_attempt WHERE task_id = $id")" \
    "retry_attempt rows = requests retryd made ($server)"
assert_eq "$server" "$(task_field "$id" attempts)" "task attempts = $server"
assert_eq succeeded "$(sql "SELECT outcome FROM retry_attempt WHERE task_id = $id ORDER BY attempt DESC LIMIT 1")" \
    "the last attempt succeeded"
assert_eq "$(seq -s ' ' 1 "$server")" \
    "$(jq -r --arg id "$id" '[.requests[] | select(.task_id == $id) | .attempt] | join(" ")' <<<"$stats")" \
    "X-Retry-Attempt counts retryd's attempts from 1"
assert_eq '{"order":42}' "$(jq -r --arg id "$id" '[.requests[] | select(.task_id == $id)][-1].body' <<<"$stats")" \
    "retryd sends the original body"

callbacks_for() { peer_jq --arg k "$key" '[.callbacks[] | select(.body.idempotency_key == $k)] | length'; }
has_callback() { [[ $(callbacks_for) -ge 1 ]]; }
wait_for "the succeeded callback" 15 has_callback
sleep 1
assert_eq 1 "$(callbacks_for)" "exactly one callback"
assert_eq succeeded "$(peer_jq --arg k "$key" '.callbacks[] | select(.body.idempotency_key == $k) | .event')" \
    "the callback is 'succeeded'"

# Duplicate delivery: the very message again, rebuilt from the stored payload.
payload=$(task_field "$id" payload | jq -c .)
assert_eq "$key" "$(jq -r .idempotency_key <<<"$payload")" "the stored payload carries the key"
before=$(peer_jq '.requests | length')
produce_kcat "client-app/$key" "$payload"
dup_counted() {
    [[ $(curl -s "$RETRYD_URL/metrics" | awk '$1 == "retryd_tasks_duplicate_total" {print $2}') -ge 1 ]]
}
wait_for "retryd sees the duplicate delivery" 30 dup_counted
sleep 1 # five scan intervals
assert_eq 1 "$(sql "SELECT COUNT(*) FROM retry_task WHERE group_name = 'client-app' AND idempotency_key = '$key'")" \
    "still one task for the key"
assert_eq succeeded "$(task_field "$id" status)" "the task is still succeeded"
assert_eq "$server" "$(task_field "$id" attempts)" "its attempts did not change"
assert_eq "$before" "$(peer_jq '.requests | length')" "no extra request to the target or callback"
exit 0
