#!/usr/bin/env bash
# Poison messages: bytes that are not JSON, and JSON that breaks wire format v1
# (no "group"), are kept in retry_poison with the raw bytes, a reason and the
# Kafka source, and never stop the consumer: the next good message is
# processed to the end.
source "$(dirname "$0")/lib.sh"

start_stack

produce_kcat "bad/1" "not json"
bad=$(v1_task x poison.scene "poison-nogroup-$$" "$PEER/ok" | jq -c 'del(.group)')
produce_kcat "bad/2" "$bad"
good_key="poison-good-$RANDOM-$$"
produce_kcat "poison-app/$good_key" "$(v1_task poison-app poison.scene "$good_key" "$PEER/flaky/1/p")"

kafka_poison() { sql "SELECT COUNT(*) FROM retry_poison WHERE source LIKE 'kafka%'"; }
two_poison() { [[ $(kafka_poison) -ge 2 ]]; }
wait_for "2 rows in retry_poison" 30 two_poison
wait_for "the good message becomes a task" 30 task_exists poison-app "$good_key"
id=$(task_id_of poison-app "$good_key")
wait_for "task $id ends" 30 task_ended "$id"
assert_eq succeeded "$(task_field "$id" status)" "the good message after two poison ones ends succeeded"
assert_eq 2 "$(task_field "$id" attempts)" "it took 2 attempts (flaky/1)"

assert_eq 2 "$(kafka_poison)" "exactly 2 rows in retry_poison from Kafka"
assert_eq "not json" "$(sql "SELECT raw FROM retry_poison WHERE CAST(raw AS CHAR) = 'not json'")" \
    "the raw bytes of 'not json' are kept"
reason1=$(sql "SELECT reason FROM retry_poison WHERE CAST(raw AS CHAR) = 'not json'")
assert_match '[Jj][Ss][Oo][Nn]' "$reason1" "reason for 'not json' mentions JSON ($reason1)"
reason2=$(sql "SELECT reason FROM retry_poison WHERE CAST(raw AS CHAR) LIKE '%poison-nogroup%'")
assert_contains group "$reason2" "reason for the message without group mentions 'group' ($reason2)"
assert_eq "$(printf '%s' "$bad" | od -An -tx1 -v | tr -d ' \n' | tr a-f A-F)" \
    "$(sql "SELECT HEX(raw) FROM retry_poison WHERE CAST(raw AS CHAR) LIKE '%poison-nogroup%'")" \
    "the raw bytes of the message without group are kept exactly"
assert_match '^kafka' "$(sql "SELECT source FROM retry_poison ORDER BY id LIMIT 1")" \
    "source names the Kafka topic/partition/offset"
assert_eq 0 "$(sql "SELECT COUNT(*) FROM retry_task WHERE scene = 'poison.scene' AND group_name <> 'poison-app'")" \
    "no task was made from a poison message"
metric=$(curl -s "$RETRYD_URL/metrics" | awk '$1 == "retryd_poison_total" {print $2}')
assert_eq 2 "$metric" "retryd_poison_total counts them"
exit 0
