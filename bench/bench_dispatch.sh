#!/usr/bin/env bash
# bench/bench_dispatch.sh BUILD_DIR [TASKS] [MAX_INFLIGHT]
#
# Dispatch throughput: attempts/s through one retryd node and through two,
# each against the raw capacity of the same HTTP target with the same number
# of concurrent clients.
#
#  1. raw:    bench_target_raw (libcurl multi, like retryd's dispatcher) keeps
#             MAX_INFLIGHT (default 64) requests in flight until TASKS
#             (default 20000) POSTs to http-peer's /ok/raw have completed;
#             then the same with 2 x MAX_INFLIGHT. The target's capacity on
#             this machine with that many clients.
#  2. retryd: TASKS due tasks (target $PEER/ok/<seq>) are inserted with one
#             INSERT ... SELECT FROM seq_1_to_TASKS while the node(s) run
#             with an empty table ([scheduler] max_inflight = MAX_INFLIGHT,
#             scan_interval_ms = 200, batch_size = 500); timed from the first
#             attempt's started_at to the end of the last successful attempt
#             (retry_attempt). First with node-1 alone, then with node-1 and
#             node-2 (same MariaDB, same Kafka group).
# Also prints the CPU time each process used during each retryd phase. Checks
# (not a test: it fails loudly, it does not time anything against a target)
# that every task ended succeeded in exactly one attempt, that no
# (task_id, attempt) repeats and that the target saw each Idempotency-Key
# once. Prints the figures and the ratios.
set -Eeuo pipefail
BUILD=$(cd "${1:?usage: bench/bench_dispatch.sh BUILD_DIR [TASKS] [MAX_INFLIGHT]}" && pwd)
TASKS=${2:-20000}
INFLIGHT=${3:-64}
HERE=$(cd "$(dirname "$0")/.." && pwd)
export RETRYD=$BUILD/server/retryd RETRY_DEVKAFKA=$BUILD/tests/support/retry-devkafka
export HTTP_PEER=$BUILD/tests/support/http-peer RETRY_SQL_DIR=$HERE/sql
export RETRY_TEST_CACHE=${RETRY_TEST_CACHE:-$BUILD/test-cache}
RAW=$BUILD/bench/bench_target_raw
# shellcheck source=../tests/integration/lib.sh
source "$HERE/tests/integration/lib.sh"
need_bin RAW

ms() { echo $(($(date +%s%N) / 1000000)); }
rate() { awk -v n="$1" -v ms="$2" 'BEGIN { printf "%.0f", (ms > 0 ? n * 1000 / ms : 0) }'; }
# CPU time (user + system, in clock ticks) a process has used so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

start_mariadb
start_devkafka
start_peer
for i in 1 2; do
    write_retryd_config "$T/node-$i.ini" "[node]" "id = node-$i" \
        "[scheduler]" "max_inflight = $INFLIGHT" "scan_interval_ms = ${BENCH_SCAN_MS:-200}" "batch_size = 500" \
        "[log]" "level = ${BENCH_LOG_LEVEL:-notice}"
done
"$RETRYD" --migrate -c "$T/node-1.ini" 2>>"$T/retryd-migrate.log"

# ---- raw capacity of the target ---------------------------------------------
raw_run() {
    local out
    peer_reset
    out=$("$RAW" "$PEER/ok/raw" "$1" "$TASKS") || fail "bench_target_raw $1 failed: $out"
    log "raw, $1 clients: $out"
    sed 's/.*rate=//' <<<"$out"
}
raw1=$(raw_run "$INFLIGHT")
raw2=$(raw_run $((2 * INFLIGHT)))

# ---- retryd -----------------------------------------------------------------
insert_tasks() {
    local now
    now=$(ms)
    sql "INSERT INTO retry_task (group_name, scene, idempotency_key, status, attempts, max_attempts,
            priority, next_fire_at, payload, created_at, updated_at)
         SELECT 'bench', 'bench.dispatch', CONCAT('d-', seq), 'pending', 0, 5, 0, $now,
            CONCAT('{\"v\":1,\"group\":\"bench\",\"scene\":\"bench.dispatch\",\"idempotency_key\":\"d-', seq,
                   '\",\"target\":{\"type\":\"http\",\"method\":\"POST\",\"url\":\"$PEER/ok/', seq,
                   '\",\"body\":\"{}\",\"timeout_ms\":10000}}'),
            $now, $now
         FROM seq_1_to_$TASKS"
}

# retryd_run LABEL PID...: one phase with the nodes PID... already running.
retryd_run() {
    local label=$1
    shift
    local pids=("$@") p before=() after=() deadline done_n
    local procs=("$MARIADB_PID" "$PEER_PID" "${pids[@]}")
    sql "TRUNCATE retry_task; TRUNCATE retry_attempt"
    peer_reset
    for p in "${procs[@]}"; do before+=("$(cpu_ticks "$p")"); done
    log "$label: inserting $TASKS due tasks"
    insert_tasks
    deadline=$(($(date +%s) + ${BENCH_TIMEOUT_S:-600}))
    while :; do
        done_n=$(sql "SELECT COUNT(*) FROM retry_task WHERE status = 'succeeded'")
        [[ $done_n == "$TASKS" ]] && break
        (($(date +%s) < deadline)) || fail "$label: only $done_n of $TASKS tasks succeeded in time"
        sleep 0.5
    done
    for p in "${procs[@]}"; do after+=("$(cpu_ticks "$p")"); done
    log "$label: all $TASKS tasks succeeded"

    # Checks: one attempt per task, no (task_id, attempt) repeats, each key sent once.
    local ended attempts distinct peer_total peer_repeats
    ended=$(sql "SELECT COUNT(*) FROM retry_task WHERE status <> 'succeeded'")
    [[ $ended == 0 ]] || fail "$label: $ended tasks did not end succeeded"
    read -r attempts distinct < <(sql "SELECT COUNT(*), COUNT(DISTINCT task_id, attempt) FROM retry_attempt")
    [[ $attempts == "$distinct" ]] || fail "$label: $((attempts - distinct)) repeated (task_id, attempt) rows"
    [[ $attempts == "$TASKS" ]] || fail "$label: $attempts attempt rows for $TASKS tasks (expected one each)"
    read -r peer_total peer_repeats < <(peer_stats | jq -r '[(.requests | length) + .dropped,
        ([.by_key[] | select(. > 1)] | length)] | @tsv')
    [[ $peer_repeats == 0 ]] || fail "$label: the target saw $peer_repeats Idempotency-Keys more than once"
    [[ $peer_total == "$TASKS" ]] || fail "$label: the target saw $peer_total requests for $TASKS tasks"
    ok "$label: $TASKS tasks succeeded, $attempts attempts, no repeats (retry_attempt and target)"

    local first last span
    read -r first last < <(sql "SELECT MIN(started_at), MAX(started_at + duration_ms) FROM retry_attempt WHERE outcome = 'succeeded'")
    span=$((last - first))
    RUN_MS=$span
    RUN_RATE=$(rate "$TASKS" "$span")
    RUN_SPLIT=$(sql "SELECT GROUP_CONCAT(CONCAT(node, '=', n) ORDER BY node SEPARATOR ' ') FROM
                     (SELECT node, COUNT(*) n FROM retry_attempt GROUP BY node) x")
    local names=(mariadbd http-peer) i hz
    for ((i = 0; i < ${#pids[@]}; i++)); do names+=("retryd-$((i + 1))"); done
    hz=$(getconf CLK_TCK)
    RUN_CPU=""
    for ((i = 0; i < ${#procs[@]}; i++)); do
        RUN_CPU+="${names[i]} $(awk -v t=$((after[i] - before[i])) -v hz="$hz" 'BEGIN { printf "%.1f", t / hz }') s, "
    done
    RUN_CPU=${RUN_CPU%, }
}

start_retryd_node node-1 "$T/node-1.ini"
retryd_run "1 node" "${NODE_PID[node-1]}"
one_ms=$RUN_MS one_rate=$RUN_RATE one_split=$RUN_SPLIT one_cpu=$RUN_CPU

start_retryd_node node-2 "$T/node-2.ini"
retryd_run "2 nodes" "${NODE_PID[node-1]}" "${NODE_PID[node-2]}"
two_ms=$RUN_MS two_rate=$RUN_RATE two_split=$RUN_SPLIT two_cpu=$RUN_CPU

echo
echo "tasks: $TASKS, [scheduler] max_inflight = $INFLIGHT per node, target $PEER/ok/..."
echo "raw target, $INFLIGHT clients:            $raw1 requests/s"
echo "retryd, 1 node:                   ${one_ms} ms = ${one_rate} attempts/s ($one_split)"
echo "  CPU during the phase:           $one_cpu"
echo "raw target, $((2 * INFLIGHT)) clients:           $raw2 requests/s"
echo "retryd, 2 nodes:                  ${two_ms} ms = ${two_rate} attempts/s ($two_split)"
echo "  CPU during the phase:           $two_cpu"
awk -v a="$one_rate" -v b="$raw1" -v c="$two_rate" -v d="$raw2" 'BEGIN {
    printf "ratio 1 node / raw %d clients:  %.2f\n", '"$INFLIGHT"', (b > 0 ? a / b : 0)
    printf "ratio 2 nodes / raw %d clients: %.2f\n", '"$((2 * INFLIGHT))"', (d > 0 ? c / d : 0)
    printf "ratio 2 nodes / 1 node:         %.2f\n", (a > 0 ? c / a : 0)
}'
