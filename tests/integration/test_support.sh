#!/usr/bin/env bash
# The test support programs themselves, without retryd: retry-devkafka serves
# producers (plain and idempotent) and consumer groups with committed offsets
# to kcat; http-peer answers /flaky, /status, /ok, /slow, records callbacks
# and alerts, and resets.
source "$(dirname "$0")/lib.sh"

start_devkafka
start_peer

# ---- retry-devkafka with kcat -----------------------------------------------
assert_match '^bootstrap=127\.0\.0\.1:[0-9]+$' "$(head -n1 "$T/devkafka.out")" \
    "retry-devkafka prints one bootstrap= line"
meta=$(timeout 20 kcat -b "$KAFKA_BOOTSTRAP" -L -t retry.tasks)
assert_contains 'topic "retry.tasks" with 4 partitions' "$meta" "topic retry.tasks has 4 partitions"

for i in 1 2 3; do produce_kcat "k$i" "v$i"; done
consume() { # group consumer, reads what is there and exits; prints key=value lines
    timeout 60 kcat -b "$KAFKA_BOOTSTRAP" -G grp -X session.timeout.ms=6000 \
        -X auto.offset.reset=earliest -e -q -f '%k=%s\n' retry.tasks 2>>"$T/kcat.log" | sort | xargs
}
assert_eq "k1=v1 k2=v2 k3=v3" "$(consume)" "a consumer group reads what was produced"

printf 'k4\tv4\n' | timeout 30 kcat -P -b "$KAFKA_BOOTSTRAP" -t retry.tasks -K $'\t' \
    -X enable.idempotence=true -X message.timeout.ms=15000 || fail "idempotent produce failed"
ok "an idempotent producer (enable.idempotence=true) is accepted"
assert_eq "k4=v4" "$(consume)" "the group resumes from its committed offsets"

# ---- http-peer -------------------------------------------------------------
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
assert_eq "503 503 200 200" \
    "$(for i in 1 2 3 4; do code -H 'Idempotency-Key: a' "$PEER/flaky/2/x"; echo; done | xargs)" \
    "/flaky/2: two 503 then 200 for one key"
assert_eq "503 200" "$(for i in 1 2; do code -H 'Idempotency-Key: b' "$PEER/flaky/1"; echo; done | xargs)" \
    "... counted per Idempotency-Key"
assert_eq "503 200" "$(for i in 1 2; do code -X POST -d x "$PEER/flaky/1/nokey"; echo; done | xargs)" \
    "... and under '-' without one"
assert_eq 404 "$(code "$PEER/status/404/y")" "/status/404 answers 404"
assert_eq 200 "$(code -X PATCH "$PEER/ok/z")" "/ok answers 200 (PATCH too)"
assert_eq 404 "$(code "$PEER/nothing")" "unknown paths answer 404"
t0=$(date +%s%N)
assert_eq 200 "$(code "$PEER/slow/700")" "/slow/700 answers 200"
ms=$((($(date +%s%N) - t0) / 1000000))
assert_ge 690 "$ms" "... after at least 700 ms ($ms ms)"
code "$PEER/slow/1500" >/dev/null &
slow=$!
sleep 0.1
t0=$(date +%s%N)
code "$PEER/ok" >/dev/null
ms=$((($(date +%s%N) - t0) / 1000000))
assert_le 500 "$ms" "a slow request does not block others ($ms ms)"
wait "$slow"
assert_eq 200 "$(code -H 'X-Retry-Event: succeeded' -H 'X-Retry-Attempt: 2' -H 'X-Retry-Task-Id: 7' \
    -d '{"event":"succeeded","id":7}' "$PEER/callback/x")" "/callback answers 200"
code -H 'X-Retry-Event: exhausted' -d '{"event":"exhausted","id":8}' "$PEER/webhook" >/dev/null

s=$(peer_stats)
assert_eq 4 "$(jq '.by_key.a' <<<"$s")" "by_key counts the requests of each key"
assert_eq "succeeded 7" "$(jq -r '.callbacks[0] | "\(.event) \(.body.id)"' <<<"$s")" \
    "/callback records X-Retry-Event and the JSON body"
assert_eq "exhausted 8" "$(jq -r '.alerts[0] | "\(.event) \(.body.id)"' <<<"$s")" \
    "/webhook records alerts"
assert_eq "/callback/x POST 2 7 200" \
    "$(jq -r '.requests[] | select(.path == "/callback/x") | "\(.path) \(.method) \(.attempt) \(.task_id) \(.status)"' <<<"$s")" \
    "requests record path, method, X-Retry-Attempt, X-Retry-Task-Id and status"
assert_eq 0 "$(jq '[.requests[] | select(.path == "/_stats")] | length' <<<"$s")" "/_stats is not recorded"
assert_eq 200 "$(code -X POST "$PEER/_reset")" "POST /_reset answers 200"
assert_eq "0 0 0 0" "$(peer_jq '"\(.requests | length) \(.callbacks | length) \(.alerts | length) \(.by_key | length)"')" \
    "... and forgets everything"
assert_eq 503 "$(code -H 'Idempotency-Key: a' "$PEER/flaky/1")" "... including the /flaky counters"

stop_pid "$PEER_PID" 5 || fail "http-peer did not exit 0 on SIGTERM"
ok "http-peer exits 0 on SIGTERM"
stop_pid "$DEVKAFKA_PID" 5 || fail "retry-devkafka did not exit 0 on SIGTERM"
ok "retry-devkafka exits 0 on SIGTERM"
exit 0
