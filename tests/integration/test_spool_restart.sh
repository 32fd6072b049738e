#!/usr/bin/env bash
# The client's spool across a process restart: a first http_notify process
# exhausts its call while Kafka is unreachable, so the task goes to its spool
# file (fsync'd) instead of being lost; the process exits. A second process
# with the same spool and a reachable Kafka re-produces the task at start,
# retryd stores it, and the spool is empty again. Nothing is sent twice.
source "$(dirname "$0")/lib.sh"

need_bin HTTP_NOTIFY
start_stack
spool=$T/client.spool
dead_broker=127.0.0.1:$(free_port)

# 1. Kafka unreachable: the task is spooled.
out1=$("$HTTP_NOTIFY" --brokers "$dead_broker" --group spool-app --scene spool.scene \
    --url "$PEER/status/503/first" --attempts 1 --spool "$spool" \
    --kafka-prop message.timeout.ms=1500 2>>"$T/http_notify.log") || true
echo "$out1" >>"$T/http_notify.log"
result1=$(grep '^result=' <<<"$out1" || true)
assert_match '^result=exhausted .* shipped=1 delivered=0 ' "$result1" \
    "the call is exhausted and shipped, but Kafka did not take it"
assert_match 'spool: spooled=1 replayed=0 records=1' "$out1" "the task is in the spool"
key=$(sed -n 's/.* key=\([^ ]*\).*/\1/p' <<<"$result1")
assert_ne "" "$key" "the idempotency key is printed ($key)"
assert_ge 17 "$(stat -c %s "$spool")" "the spool file holds a record beyond its 16-byte header"
assert_eq "" "$(task_id_of spool-app "$key")" "retryd has not seen the task"

# 2. A new process, Kafka reachable: the spool is replayed at start.
out2=$("$HTTP_NOTIFY" --brokers "$KAFKA_BOOTSTRAP" --group spool-app --scene spool.scene \
    --url "$PEER/ok/second" --attempts 1 --spool "$spool" 2>>"$T/http_notify.log") ||
    fail "the second http_notify failed: $out2"
echo "$out2" >>"$T/http_notify.log"
assert_match 'spool: spooled=0 replayed=1 records=0' "$out2" "the restarted client re-produced the task"
assert_eq 16 "$(stat -c %s "$spool")" "the spool is back to its header"
wait_for "retryd stores the replayed task" 30 task_exists spool-app "$key"
id=$(task_id_of spool-app "$key")
assert_eq "$PEER/status/503/first" "$(task_field "$id" payload | jq -r .target.url)" \
    "it is the task of the first process"

# 3. A third run re-sends nothing.
out3=$("$HTTP_NOTIFY" --brokers "$KAFKA_BOOTSTRAP" --group spool-app --scene spool.scene \
    --url "$PEER/ok/third" --attempts 1 --spool "$spool" 2>>"$T/http_notify.log") ||
    fail "the third http_notify failed: $out3"
assert_match 'spool: spooled=0 replayed=0 records=0' "$out3" "nothing is replayed twice"
exit 0
