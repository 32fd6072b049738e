#!/usr/bin/env bash
# bench/bench_ingest.sh BUILD_DIR [COUNT]
#
# Ingest throughput: COUNT tasks (default 100000) from Kafka into MySQL through
# retryd, against a raw batched INSERT of the same rows into the same MariaDB.
#
#  1. raw:    the same rows as multi-row INSERT ... ON DUPLICATE KEY UPDATE
#             statements of 500 rows (retryd's batch size), one transaction
#             each, piped into the mariadb client: the floor of what any
#             ingest path can reach on this MariaDB.
#  2. retryd: the COUNT messages are produced to the dev Kafka first (kcat,
#             not timed), then retryd starts and consumes them; timed from
#             the first stored task to the last (steady state) and from
#             retryd's start to the last (includes start-up and the consumer
#             group join).
# The scan timer is set to one hour so that no task is dispatched during the
# measurement. Prints the figures and the ratio; asserts nothing.
set -Eeuo pipefail
BUILD=$(cd "${1:?usage: bench/bench_ingest.sh BUILD_DIR [COUNT]}" && pwd)
COUNT=${2:-100000}
HERE=$(cd "$(dirname "$0")/.." && pwd)
export RETRYD=$BUILD/server/retryd RETRY_DEVKAFKA=$BUILD/tests/support/retry-devkafka
export HTTP_PEER=$BUILD/tests/support/http-peer RETRY_SQL_DIR=$HERE/sql
export RETRY_TEST_CACHE=${RETRY_TEST_CACHE:-$BUILD/test-cache}
# shellcheck source=../tests/integration/lib.sh
export DEVKAFKA_PARTITIONS=${DEVKAFKA_PARTITIONS:-16}
source "$HERE/tests/integration/lib.sh"

ms() { echo $(($(date +%s%N) / 1000000)); }

start_mariadb
start_devkafka
start_peer
write_retryd_config "$T/retryd.ini" "[scheduler]" "scan_interval_ms = 3600000" "[log]" "level = ${BENCH_LOG_LEVEL:-notice}"
"$RETRYD" --migrate -c "$T/retryd.ini" 2>>"$T/retryd-migrate.log"

log "generating $COUNT messages and the equivalent SQL"
now=$(ms)
awk -v n="$COUNT" -v peer="$PEER" -v now="$now" -v msgs="$T/messages" -v sqlf="$T/raw.sql" 'BEGIN {
    for (i = 1; i <= n; i++) {
        key = sprintf("bench-%08d", i)
        json = sprintf("{\"v\":1,\"group\":\"bench\",\"scene\":\"bench.ingest\",\"idempotency_key\":\"%s\",\"target\":{\"type\":\"http\",\"method\":\"POST\",\"url\":\"%s/ok/%d\",\"body\":\"{\\\"order\\\":%d}\",\"timeout_ms\":10000}}", key, peer, i, i)
        printf "bench/%s|%s\n", key, json > msgs
        sqljson = json; gsub(/\\/, "\\\\", sqljson)
        if ((i - 1) % 500 == 0) {
            if (i > 1) print " ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id);" > sqlf
            printf "INSERT INTO retry_task (group_name, scene, idempotency_key, status, attempts, max_attempts, priority, next_fire_at, deadline, trace_id, payload, created_at, updated_at) VALUES " > sqlf
        } else printf "," > sqlf
        printf "(\x27bench\x27,\x27bench.ingest\x27,\x27%s\x27,\x27pending\x27,0,5,0,%d,NULL,NULL,\x27%s\x27,%d,%d)", key, now, sqljson, now, now > sqlf
    }
    print " ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id);" > sqlf
}'

log "raw batched INSERT of $COUNT rows"
t0=$(ms)
mariadb --no-defaults --socket="$MYSQL_SOCKET" -uroot retry <"$T/raw.sql"
t1=$(ms)
raw_rows=$(sql "SELECT COUNT(*) FROM retry_task")
[[ $raw_rows == "$COUNT" ]] || fail "raw INSERT stored $raw_rows rows, expected $COUNT"
raw_ms=$((t1 - t0))
sql "TRUNCATE retry_task"

log "producing $COUNT messages with kcat (not timed)"
t0=$(ms)
kcat -P -b "$KAFKA_BOOTSTRAP" -t retry.tasks -K'|' -l "$T/messages"
produce_ms=$(($(ms) - t0))

log "starting retryd and waiting for $COUNT tasks"
t0=$(ms)
start_retryd "$T/retryd.ini"
wait_for "retryd to store $COUNT tasks" "${BENCH_TIMEOUT_S:-600}" \
    bash -c "[[ \$(mariadb --no-defaults -N -B --socket='$MYSQL_SOCKET' -uroot retry -e 'SELECT COUNT(*) FROM retry_task') == $COUNT ]]"
t1=$(ms)
read -r first last < <(sql "SELECT MIN(created_at), MAX(created_at) FROM retry_task")
steady_ms=$((last - first))
total_ms=$((t1 - t0))
poison=$(sql "SELECT COUNT(*) FROM retry_poison")
[[ $poison == 0 ]] || fail "$poison poison rows during the benchmark"
stop_retryd

rate() { awk -v n="$1" -v ms="$2" 'BEGIN { printf "%.0f", (ms > 0 ? n * 1000 / ms : 0) }'; }
raw_rate=$(rate "$COUNT" "$raw_ms")
steady_rate=$(rate "$COUNT" "$steady_ms")
total_rate=$(rate "$COUNT" "$total_ms")
echo
echo "tasks:                          $COUNT (kcat produced them in ${produce_ms} ms)"
echo "raw batched INSERT (500/stmt):  ${raw_ms} ms = ${raw_rate} rows/s"
echo "retryd Kafka -> MySQL, steady:  ${steady_ms} ms = ${steady_rate} tasks/s (first to last stored task)"
echo "retryd Kafka -> MySQL, total:   ${total_ms} ms = ${total_rate} tasks/s (from retryd start, incl. group join)"
awk -v a="$steady_rate" -v b="$raw_rate" 'BEGIN { printf "ratio retryd steady / raw INSERT: %.2f\n", (b > 0 ? a / b : 0) }'
