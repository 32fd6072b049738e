#!/usr/bin/env bash
# scripts/demo.sh — the whole system on one machine, in about a minute:
# MariaDB, a dev Kafka (retry-devkafka: librdkafka's mock cluster, NOT
# durable), an HTTP target that fails its first 3 requests per idempotency key
# (http-peer), and retryd. The example client http_notify calls the target,
# gives up after 2 local attempts and ships the call to Kafka; retryd retries
# it until it succeeds and sends the callback. Everything runs in a temporary
# directory and is stopped at the end. Needs Debian 12 (scripts/deps.sh).
#
# Environment: BUILD_DIR (default build), JOBS (default 2), RETRY_KEEP_TMP=1
# keeps the temporary directory with every log. With RETRYD, RETRY_DEVKAFKA,
# HTTP_PEER and HTTP_NOTIFY all set, nothing is built and those are used.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-2}

bash scripts/deps.sh
[[ $BUILD_DIR == /* ]] || BUILD_DIR=$ROOT/$BUILD_DIR
if [[ -n ${RETRYD:-} && -n ${RETRY_DEVKAFKA:-} && -n ${HTTP_PEER:-} && -n ${HTTP_NOTIFY:-} ]]; then
    echo "demo: using the binaries named by RETRYD, RETRY_DEVKAFKA, HTTP_PEER, HTTP_NOTIFY" >&2
else
    echo "demo: building retryd, retry-devkafka, http-peer and http_notify in $BUILD_DIR/" >&2
    cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$BUILD_DIR" -j"$JOBS" --target retryd retry-devkafka http-peer http_notify >/dev/null
    export RETRYD=$BUILD_DIR/server/retryd
    export RETRY_DEVKAFKA=$BUILD_DIR/tests/support/retry-devkafka
    export HTTP_PEER=$BUILD_DIR/tests/support/http-peer
    export HTTP_NOTIFY=$BUILD_DIR/examples/http_notify
fi
export RETRY_SQL_DIR=$ROOT/sql
export RETRY_TEST_CACHE=$BUILD_DIR/test-cache
# lib.sh: process management, MariaDB/Kafka/peer/retryd start-up, cleanup.
source "$ROOT/tests/integration/lib.sh"

if [[ -t 1 ]]; then B=$'\033[1m' N=$'\033[0m'; else B= N=; fi
section() { printf '\n%s== %s ==%s\n' "$B" "$*" "$N"; }

section "starting MariaDB, dev Kafka, http-peer and retryd"
start_stack "[log]" "level = info"
cat <<INFO
MariaDB   socket $MYSQL_SOCKET (port $MYSQL_PORT)
Kafka     $KAFKA_BOOTSTRAP (retry-devkafka, in memory)
target    $PEER/flaky/3/payment (503 for the first 3 requests per key)
retryd    $RETRYD_URL (config $T/retryd.ini)
INFO

section "the client: http_notify, 2 local attempts, then ship to Kafka"
set -x
"$HTTP_NOTIFY" --brokers "$KAFKA_BOOTSTRAP" --group order-service --scene payment.notify \
    --url "$PEER/flaky/3/payment" --body '{"order":1001,"amount":"12.50"}' \
    --attempts 2 --delay-ms 200 --callback-url "$PEER/callback" | tee "$T/http_notify.out"
{ set +x; } 2>/dev/null
key=$(sed -n 's/.* key=\([^ ]*\).*/\1/p' "$T/http_notify.out" | tail -n1)
[[ -n $key ]] || fail "http_notify did not ship a task (see above)"

section "retryd takes over"
wait_for "retryd stores the task" 30 task_exists order-service "$key"
id=$(task_id_of order-service "$key")
echo "task id $id (GET /api/v1/tasks?group=order-service&idempotency_key=$key)"
wait_for "task $id ends" 60 task_ended "$id"
cb_arrived() { [[ $(peer_jq '.callbacks | length') -ge 1 ]]; }
wait_for "the callback" 15 cb_arrived

section "requests the target saw (local attempts have no X-Retry-Task-Id)"
peer_jq '.requests[] | select(.path == "/flaky/3/payment")
    | "\(.method) \(.path)  Idempotency-Key=\(.key[0:16])...  X-Retry-Task-Id=\(.task_id // "-")  X-Retry-Attempt=\(.attempt // "-")  -> \(.status)"'

section "GET /api/v1/tasks/$id"
api GET "/api/v1/tasks/$id" | jq .

section "GET /api/v1/tasks/$id/attempts"
api GET "/api/v1/tasks/$id/attempts" | jq .

section "callbacks received by $PEER/callback"
peer_jq '.callbacks'

section "GET /api/v1/reports/top"
api GET /api/v1/reports/top | jq .

status=$(task_field "$id" status)
section "result: task $id is $status"
[[ $status == succeeded ]] || fail "the task ended $status"
section "stopping everything"
exit 0
