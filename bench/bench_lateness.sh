#!/usr/bin/env bash
# bench/bench_lateness.sh BUILD_DIR [SECONDS] [RATE]
#
# Fire lateness at RATE (default 1000) due tasks per second for SECONDS
# (default 20): lateness = retry_attempt.started_at - due_at (due_at is the
# next_fire_at the claim saw), p50 and p99 by nearest rank, computed in SQL,
# plus the maximum. One retryd node, default max_inflight (256) and
# batch_size (500), target http-peer on loopback. Two scenarios:
#
#  (a) scan:    SECONDS x RATE tasks against $PEER/ok/<seq>, inserted with one
#               INSERT ... SELECT FROM seq_1_to_N before they fall due, with
#               next_fire_at = t0 + seq * 1000 / RATE. retryd does not know
#               about rows written behind its back, so only the scan finds
#               them: run with scan_interval_ms = 1000 (the default), then 100.
#  (b) precise: the same number of tasks against $PEER/flaky/1/<seq> (503
#               once, then 200) with a fixed 500 ms backoff and no jitter,
#               produced to Kafka by one kcat fed at RATE messages/s (10
#               messages every 10 ms). Attempt 1 is claimed when ingest
#               stores the task; attempt 2 is the retry retryd schedules
#               itself (precise firing): its lateness is the figure.
#               scan_interval_ms = 1000; circuit breakers off (every first
#               attempt fails by design).
# BENCH_SCANS (default "1000 100") lists the scan intervals of (a); empty
# skips (a). Prints the figures; asserts only that every task ended
# succeeded (and, in (b), in exactly two attempts).
set -Eeuo pipefail
BUILD=$(cd "${1:?usage: bench/bench_lateness.sh BUILD_DIR [SECONDS] [RATE]}" && pwd)
SECS=${2:-20}
RATE=${3:-1000}
N=$((SECS * RATE))
HERE=$(cd "$(dirname "$0")/.." && pwd)
export RETRYD=$BUILD/server/retryd RETRY_DEVKAFKA=$BUILD/tests/support/retry-devkafka
export HTTP_PEER=$BUILD/tests/support/http-peer RETRY_SQL_DIR=$HERE/sql
export RETRY_TEST_CACHE=${RETRY_TEST_CACHE:-$BUILD/test-cache}
export DEVKAFKA_PARTITIONS=${DEVKAFKA_PARTITIONS:-8}
# shellcheck source=../tests/integration/lib.sh
source "$HERE/tests/integration/lib.sh"
command -v perl >/dev/null || fail "perl not found (paces kcat)"

ms() { echo $(($(date +%s%N) / 1000000)); }

# pct P WHERE: the P-th percentile (nearest rank) of started_at - due_at over
# the retry_attempt rows matching WHERE.
pct() {
    local n rank
    n=$(sql "SELECT COUNT(*) FROM retry_attempt WHERE $2")
    rank=$(((n * $1 + 99) / 100))
    ((rank >= 1)) || rank=1
    sql "SELECT started_at - due_at AS lateness FROM retry_attempt WHERE $2
         ORDER BY lateness LIMIT 1 OFFSET $((rank - 1))"
}
# lateness_line WHERE: "n=... p50=... p99=... max=..." in ms.
lateness_line() {
    local n mx
    read -r n mx < <(sql "SELECT COUNT(*), MAX(started_at - due_at) FROM retry_attempt WHERE $1")
    echo "n=$n p50=$(pct 50 "$1") ms p99=$(pct 99 "$1") ms max=$mx ms"
}

wait_all_succeeded() {
    local label=$1 deadline done_n
    deadline=$(($(date +%s) + SECS + ${BENCH_TIMEOUT_S:-120}))
    while :; do
        done_n=$(sql "SELECT COUNT(*) FROM retry_task WHERE status = 'succeeded'")
        [[ $done_n == "$N" ]] && break
        (($(date +%s) < deadline)) || fail "$label: only $done_n of $N tasks succeeded in time"
        sleep 1
    done
    local other
    other=$(sql "SELECT COUNT(*) FROM retry_task WHERE status <> 'succeeded'")
    [[ $other == 0 ]] || fail "$label: $other tasks did not succeed"
    ok "$label: all $N tasks succeeded"
}

start_mariadb
start_devkafka
start_peer
write_retryd_config "$T/migrate.ini"
"$RETRYD" --migrate -c "$T/migrate.ini" 2>>"$T/retryd-migrate.log"

# ---- (a) found by the scan ----------------------------------------------------
declare -A SCAN_RESULT=()
for scan in ${BENCH_SCANS-1000 100}; do
    sql "TRUNCATE retry_task; TRUNCATE retry_attempt"
    peer_reset
    write_retryd_config "$T/scan-$scan.ini" "[node]" "id = scan-$scan" \
        "[scheduler]" "scan_interval_ms = $scan" "[log]" "level = ${BENCH_LOG_LEVEL:-notice}"
    start_retryd_node "scan-$scan" "$T/scan-$scan.ini"
    now=$(ms)
    t0=$((now + 3000))
    log "(a) scan $scan ms: inserting $N tasks due from t0 = now + 3 s at $RATE/s"
    sql "INSERT INTO retry_task (group_name, scene, idempotency_key, status, attempts, max_attempts,
            priority, next_fire_at, payload, created_at, updated_at)
         SELECT 'bench', 'bench.late', CONCAT('s-', seq), 'pending', 0, 5, 0,
            $t0 + FLOOR(seq * 1000 / $RATE),
            CONCAT('{\"v\":1,\"group\":\"bench\",\"scene\":\"bench.late\",\"idempotency_key\":\"s-', seq,
                   '\",\"target\":{\"type\":\"http\",\"method\":\"POST\",\"url\":\"$PEER/ok/', seq,
                   '\",\"body\":\"{}\",\"timeout_ms\":10000}}'),
            $now, $now
         FROM seq_1_to_$N"
    (($(ms) < t0)) || log "WARNING: the INSERT ended after t0 ($(($(ms) - t0)) ms late)"
    wait_all_succeeded "(a) scan $scan ms"
    SCAN_RESULT[$scan]=$(lateness_line "attempt = 1")
    log "(a) scan $scan ms: ${SCAN_RESULT[$scan]}"
    stop_pid "${NODE_PID[scan-$scan]}" 20 || true
done

# ---- (b) retries scheduled by retryd -------------------------------------------
sql "TRUNCATE retry_task; TRUNCATE retry_attempt"
peer_reset
write_retryd_config "$T/precise.ini" "[node]" "id = precise" \
    "[scheduler]" "scan_interval_ms = 1000" "default_initial_delay_ms = 500" \
    "default_backoff = fixed" "default_jitter = none" "breaker_failure_ratio = 0" \
    "[log]" "level = ${BENCH_LOG_LEVEL:-notice}"
start_retryd_node precise "$T/precise.ini"
log "(b) producing $N messages to Kafka at $RATE/s"
t0=$(ms)
perl -e '
    use Time::HiRes qw(time sleep);
    my ($n, $rate, $peer) = @ARGV;
    $| = 1;
    my $t0 = time;
    for my $i (1 .. $n) {
        my $k = sprintf("p-%06d", $i);
        print "bench/$k|{\"v\":1,\"group\":\"bench\",\"scene\":\"bench.precise\",\"idempotency_key\":\"$k\","
            . "\"target\":{\"type\":\"http\",\"method\":\"POST\",\"url\":\"$peer/flaky/1/$i\",\"body\":\"{}\",\"timeout_ms\":10000},"
            . "\"policy\":{\"max_attempts\":5,\"backoff\":\"fixed\",\"initial_delay_ms\":500,\"jitter\":\"none\"}}\n";
        if ($i % 10 == 0) { my $d = $t0 + $i / $rate - time; sleep($d) if $d > 0; }
    }' "$N" "$RATE" "$PEER" |
    kcat -P -b "$KAFKA_BOOTSTRAP" -t retry.tasks -K'|' -X linger.ms=5 -X message.timeout.ms=60000
produce_ms=$(($(ms) - t0))
log "(b) produced $N messages in $produce_ms ms"
wait_all_succeeded "(b) precise"
a1=$(lateness_line "attempt = 1")
a2=$(lateness_line "attempt = 2")
attempts=$(sql "SELECT COUNT(*) FROM retry_attempt")
[[ $attempts == $((2 * N)) ]] || fail "(b): $attempts attempts for $N tasks, expected 2 each"
metrics=$(curl -sS --max-time 10 "${NODE_URL[precise]}/metrics" | grep -E '^retryd_fire_lateness_ms_(count|sum)' | tr '\n' ' ')

echo
echo "due rate: $RATE tasks/s for $SECS s ($N tasks), one node, max_inflight 256, batch_size 500"
for scan in ${BENCH_SCANS-1000 100}; do
    printf "(a) SQL-inserted, found by the scan, scan_interval_ms = %-4s %s\n" "$scan:" "${SCAN_RESULT[$scan]}"
done
echo "(b) Kafka-fed at $RATE/s (kcat took $produce_ms ms), scan_interval_ms = 1000:"
echo "    attempt 1 (claimed after ingest):      $a1"
echo "    attempt 2 (500 ms retry, precise path): $a2"
echo "    retryd /metrics: $metrics"
