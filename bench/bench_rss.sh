#!/usr/bin/env bash
# bench/bench_rss.sh BUILD_DIR [TASKS] [SECONDS]
#
# retryd's resident memory with a large backlog in MySQL: does RSS grow with
# the number of pending tasks? (It should not: tasks wait in MySQL and a node
# holds at most max_inflight of them.)
#
#  1. idle:    retryd starts with an empty retry_task table; VmRSS is sampled
#              every second for 5 s; then it is stopped.
#  2. backlog: TASKS (default 1,000,000) pending tasks, due now, target
#              $PEER/ok/<seq>, are inserted with INSERT ... SELECT FROM the
#              Sequence engine (chunks of 100,000 rows); a fresh retryd starts
#              and works through them for SECONDS (default 30) while its
#              VmRSS is sampled every second (/proc/PID/status); VmHWM (the
#              kernel's peak) is read at the end.
# Default config otherwise (max_inflight 256, batch_size 500), scan_interval_ms
# 200, log level notice. Prints the idle RSS, the RSS samples and maximum
# during the run, the attempts done, and MariaDB's size for scale. Asserts
# nothing about memory.
set -Eeuo pipefail
BUILD=$(cd "${1:?usage: bench/bench_rss.sh BUILD_DIR [TASKS] [SECONDS]}" && pwd)
TASKS=${2:-1000000}
SECS=${3:-30}
HERE=$(cd "$(dirname "$0")/.." && pwd)
export RETRYD=$BUILD/server/retryd RETRY_DEVKAFKA=$BUILD/tests/support/retry-devkafka
export HTTP_PEER=$BUILD/tests/support/http-peer RETRY_SQL_DIR=$HERE/sql
export RETRY_TEST_CACHE=${RETRY_TEST_CACHE:-$BUILD/test-cache}
# shellcheck source=../tests/integration/lib.sh
source "$HERE/tests/integration/lib.sh"

ms() { echo $(($(date +%s%N) / 1000000)); }
# status_kb PID FIELD: a field of /proc/PID/status in kB (VmRSS, VmHWM).
status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

start_mariadb
start_devkafka
start_peer
cfg=("[scheduler]" "scan_interval_ms = 200" "[log]" "level = ${BENCH_LOG_LEVEL:-notice}")
write_retryd_config "$T/idle.ini" "[node]" "id = rss-idle" "${cfg[@]}"
write_retryd_config "$T/run.ini" "[node]" "id = rss-run" "${cfg[@]}"
"$RETRYD" --migrate -c "$T/idle.ini" 2>>"$T/retryd-migrate.log"

# ---- idle ---------------------------------------------------------------------
start_retryd_node idle "$T/idle.ini"
idle_max=0
for ((i = 0; i < 5; i++)); do
    sleep 1
    r=$(status_kb "${NODE_PID[idle]}" VmRSS)
    ((r > idle_max)) && idle_max=$r
done
stop_pid "${NODE_PID[idle]}" 20 || true
log "idle RSS (max of 5 samples): $idle_max kB"

# ---- backlog -------------------------------------------------------------------
log "inserting $TASKS pending tasks"
t0=$(ms)
now=$t0
for ((lo = 1; lo <= TASKS; lo += 100000)); do
    hi=$((lo + 99999))
    ((hi <= TASKS)) || hi=$TASKS
    sql "INSERT INTO retry_task (group_name, scene, idempotency_key, status, attempts, max_attempts,
            priority, next_fire_at, payload, created_at, updated_at)
         SELECT 'bench', 'bench.rss', CONCAT('r-', seq), 'pending', 0, 5, 0, $now,
            CONCAT('{\"v\":1,\"group\":\"bench\",\"scene\":\"bench.rss\",\"idempotency_key\":\"r-', seq,
                   '\",\"target\":{\"type\":\"http\",\"method\":\"POST\",\"url\":\"$PEER/ok/', seq,
                   '\",\"body\":\"{}\",\"timeout_ms\":10000}}'),
            $now, $now
         FROM seq_1_to_$TASKS WHERE seq BETWEEN $lo AND $hi"
done
insert_ms=$(($(ms) - t0))
read -r rows data_mb index_mb < <(sql "SELECT table_rows, ROUND(data_length / 1048576),
    ROUND(index_length / 1048576) FROM information_schema.tables
    WHERE table_schema = 'retry' AND table_name = 'retry_task'")
datadir_mb=$(du -sm "$T/db" | awk '{ print $1 }')
log "inserted $TASKS rows in $insert_ms ms"

start_retryd_node run "$T/run.ini"
pid=${NODE_PID[run]}
samples=()
run_max=0
t0=$(ms)
for ((i = 1; i <= SECS; i++)); do
    sleep 1
    r=$(status_kb "$pid" VmRSS)
    samples+=("$r")
    ((r > run_max)) && run_max=$r
done
hwm=$(status_kb "$pid" VmHWM)
run_ms=$(($(ms) - t0))
read -r attempts succeeded < <(sql "SELECT COUNT(*), SUM(outcome = 'succeeded') FROM retry_attempt")
pending=$(sql "SELECT COUNT(*) FROM retry_task WHERE status = 'pending'")
stop_pid "$pid" 20 || true

echo
echo "tasks in MySQL:          $TASKS pending, due now (inserted in $insert_ms ms)"
echo "MariaDB retry_task:      ~$rows rows, data $data_mb MiB + indexes $index_mb MiB; datadir $datadir_mb MiB (buffer pool 64 MiB)"
echo "retryd idle RSS:         $idle_max kB ($(mib "$idle_max")), empty table"
echo "retryd RSS per second:   ${samples[*]} (kB)"
echo "retryd max RSS:          $run_max kB ($(mib "$run_max")) sampled; VmHWM $hwm kB ($(mib "$hwm"))"
echo "attempts in ${run_ms} ms:  $attempts ($succeeded succeeded); $pending tasks still pending"
awk -v a="$run_max" -v b="$idle_max" 'BEGIN { printf "max RSS / idle RSS:      %.2f\n", (b > 0 ? a / b : 0) }'
