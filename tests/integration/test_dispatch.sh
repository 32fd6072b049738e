#!/usr/bin/env bash
# The dispatch target type end to end (docs/wire-format.md, retry/dispatch.h):
# dispatch-app registers a handler that fails its first 3 calls, serves the
# dispatch endpoint with a token, and makes one retry_dispatch_call() with one
# local attempt, which fails and ships the task over Kafka. retryd (with the
# same [dispatch] token) POSTs it to the endpoint until the handler succeeds.
# Then: the endpoint refuses a wrong token (401) and other bad requests, and
# a dispatch task aimed at http-peer shows the exact request retryd sends.
source "$(dirname "$0")/lib.sh"

need_bin DISPATCH_APP
TOKEN=dispatch-secret-$RANDOM$RANDOM
start_stack "[dispatch]" "token = $TOKEN"

group=stock-app
scene=stock.reserve
key=order-42-reserve
args='{"sku":"A-17","qty":3,"price":12.5,"tags":["a","b"]}'
"$DISPATCH_APP" --brokers "$KAFKA_BOOTSTRAP" --group "$group" --scene "$scene" --token "$TOKEN" \
    --key "$key" --args "$args" --fail 3 --calls-file "$T/calls.txt" --port-file "$T/app.port" \
    >"$T/app.out" 2>"$T/app.log" &
APP_PID=$!
track "$APP_PID" dispatch-app
wait_file "$T/app.port" "$APP_PID" dispatch-app
APP_PORT=$(head -n1 "$T/app.port")
ENDPOINT=http://127.0.0.1:$APP_PORT/dispatch
log "dispatch endpoint at $ENDPOINT"
app_reported() { [[ -s $T/app.out ]]; }
wait_for "dispatch-app reports its call" 30 app_reported
result=$(head -n1 "$T/app.out")
log "dispatch-app: $result"
assert_match '^result=RETRY_ERR_EXHAUSTED shipped=1 delivered=1 ' "$result" \
    "the local attempt fails and the call is shipped to Kafka"
assert_contains "url=$ENDPOINT" "$result" "the advertised URL is the bound port"

wait_for "retryd stores the dispatch task" 30 task_exists "$group" "$key"
id=$(task_id_of "$group" "$key")
wait_for "task $id ends" 60 task_ended "$id"
assert_eq succeeded "$(task_field "$id" status)" "task $id ends succeeded after the handler's failures"

payload=$(task_field "$id" payload | jq -c .)
assert_eq dispatch "$(jq -r .target.type <<<"$payload")" "the stored task has target type dispatch"
assert_eq "$ENDPOINT" "$(jq -r .target.url <<<"$payload")" "... aimed at the advertised endpoint"
assert_eq "$(jq -c . <<<"$args")" "$(jq -c .target.args <<<"$payload")" "... carrying the args"
assert_eq "[400,422]" "$(jq -c .policy.stop_on_status <<<"$payload")" \
    "... and stop_on_status 400, 422 (RETRY_DISPATCH_STOP)"
assert_eq 1 "$(jq -r .local_attempts <<<"$payload")" "local_attempts = 1"

calls=$(wc -l <"$T/calls.txt")
rows=$(sql "SELECT COUNT(*) FROM retry_attempt WHERE task_id = $id")
assert_eq 4 "$calls" "the handler ran 4 times: 3 failures, then success"
assert_eq "$((calls - 1))" "$rows" "retry_attempt rows = handler calls through the endpoint"
assert_eq "$rows" "$(task_field "$id" attempts)" "task attempts = $rows"
assert_eq "failed failed succeeded" \
    "$(sql "SELECT outcome FROM retry_attempt WHERE task_id = $id ORDER BY attempt" | tr '\n' ' ' | sed 's/ $//')" \
    "attempt outcomes: failed, failed, succeeded"
assert_eq "503 503 200" \
    "$(sql "SELECT http_status FROM retry_attempt WHERE task_id = $id ORDER BY attempt" | tr '\n' ' ' | sed 's/ $//')" \
    "the endpoint answered 503 for a failure, 200 for success"
assert_contains "dispatch-app fails call 2" \
    "$(sql "SELECT error FROM retry_attempt WHERE task_id = $id AND attempt = 1")" \
    "the handler's error sentence is the attempt's error"
while read -r n seen; do
    assert_eq "$(jq -c . <<<"$args")" "$(jq -c . <<<"$seen")" "handler call $n saw the args"
done <"$T/calls.txt"
# The endpoint logs each request with the X-Retry-* and Idempotency-Key headers.
for a in 1 2 3; do
    assert_contains "task $id attempt $a key $key:" "$(cat "$T/app.log")" \
        "retryd's attempt $a arrived with X-Retry-Task-Id, X-Retry-Attempt, Idempotency-Key"
done

# The endpoint's guards; none of these runs the handler.
code() { curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "$@"; }
body='{"task_id":1,"group":"g","scene":"stock.reserve","idempotency_key":"x","attempt":1,"args":{}}'
assert_eq 401 "$(code -X POST -H 'Authorization: Bearer wrong-token' --data-binary "$body" "$ENDPOINT")" \
    "a wrong token is refused (401)"
assert_eq 401 "$(code -X POST -H "Authorization: Bearer ${TOKEN}x" --data-binary "$body" "$ENDPOINT")" \
    "a token with an extra byte is refused (401)"
assert_eq 401 "$(code -X POST --data-binary "$body" "$ENDPOINT")" "no token is refused (401)"
assert_eq 404 "$(code -X POST -H "Authorization: Bearer $TOKEN" \
    --data-binary '{"scene":"nope","args":1}' "$ENDPOINT")" "an unknown scene is 404"
assert_eq 400 "$(code -X POST -H "Authorization: Bearer $TOKEN" --data-binary '{"scene":' "$ENDPOINT")" \
    "a body that is not JSON is 400"
assert_eq 405 "$(code -H "Authorization: Bearer $TOKEN" "$ENDPOINT")" "GET is 405"
assert_eq 404 "$(code -X POST -H "Authorization: Bearer $TOKEN" --data-binary "$body" \
    "http://127.0.0.1:$APP_PORT/other")" "another path is 404"
assert_eq 4 "$(wc -l <"$T/calls.txt")" "refused requests never ran the handler"
assert_eq 200 "$(code -X POST -H "Authorization: Bearer $TOKEN" --data-binary "$body" "$ENDPOINT")" \
    "the right token runs the handler (200)"

# The exact request retryd sends, seen by http-peer: a dispatch task whose
# url is the peer's /flaky/1 (503 once, then 200).
pkey=peer-dispatch-1
task=$(jq -cn --arg u "$PEER/flaky/1/dispatch" --arg k "$pkey" \
    '{v:1, group:"stock-app", scene:"stock.peer", idempotency_key:$k, trace_id:"trace-77",
      target:{type:"dispatch", url:$u, args:{n:[1,2.5,"x"]}}}')
produce_kcat "stock-app/$pkey" "$task"
wait_for "the peer dispatch task exists" 30 task_exists stock-app "$pkey"
pid=$(task_id_of stock-app "$pkey")
wait_for "task $pid ends" 60 task_ended "$pid"
assert_eq succeeded "$(task_field "$pid" status)" "the peer dispatch task succeeds on attempt 2"
reqs=$(peer_jq --arg id "$pid" '[.requests[] | select(.task_id == $id)]')
assert_eq 2 "$(jq length <<<"$reqs")" "the peer saw 2 requests"
assert_eq "POST POST" "$(jq -r '[.[].method] | join(" ")' <<<"$reqs")" "dispatch requests are POSTs"
assert_eq "$pkey $pkey" "$(jq -r '[.[].key] | join(" ")' <<<"$reqs")" "with Idempotency-Key"
assert_eq "1 2" "$(jq -r '[.[].attempt] | join(" ")' <<<"$reqs")" "with X-Retry-Attempt 1, 2"
assert_eq "trace-77" "$(jq -r '.[0].trace_id' <<<"$reqs")" "with X-Retry-Trace-Id"
want=$(jq -cn --argjson id "$pid" --arg k "$pkey" \
    '{task_id:$id, group:"stock-app", scene:"stock.peer", idempotency_key:$k, attempt:2, args:{n:[1,2.5,"x"]}}')
assert_eq "$want" "$(jq -c '.[1].body | fromjson' <<<"$reqs")" \
    "the body is {task_id, group, scene, idempotency_key, attempt, args}"

stop_pid "$APP_PID" 10 || fail "dispatch-app exited with status $? on SIGTERM"
ok "dispatch-app exits 0 on SIGTERM"
exit 0
