#!/usr/bin/env bash
# A fleet of three retryd nodes on one MariaDB and one dev Kafka (same
# consumer group), 5,000 tasks against targets that fail once then succeed
# or answer after 300 ms (so that many requests are in flight at the kill),
# a short lease (2 s), and one node killed with SIGKILL mid-run:
#  - every task ends succeeded; retry_attempt has no duplicate (task, attempt);
#  - the target saw each (Idempotency-Key, X-Retry-Attempt) at most once:
#    a takeover skips the attempt number the dead node may have sent, so a
#    re-sent attempt (at-least-once) carries a new number; requests with no
#    attempt row (the dead node's in flight) are at most the leases it held;
#  - the survivors took those leases over (retryd_lease_takeovers_total);
#  - GET /api/v1/nodes lists the three nodes, the killed one stale; the
#    survivors mark themselves 'stopped' on SIGTERM.
# Half of the tasks are produced after the kill, so the dead node's Kafka
# partitions must move to the survivors too (session.timeout.ms = 6 s).
# Bounded waits only; no speed is asserted.
source "$(dirname "$0")/lib.sh"

N=${MULTINODE_TASKS:-5000}
export DEVKAFKA_PARTITIONS=${DEVKAFKA_PARTITIONS:-8}
t_start=$(date +%s%N)

start_mariadb
start_devkafka
start_peer

common=("[scheduler]" "lease_ms = 2000" "scan_interval_ms = 200" "default_initial_delay_ms = 100"
        "[log]" "level = info")
for i in 1 2 3; do
    write_retryd_config "$T/node-$i.ini" "[node]" "id = node-$i" "${common[@]}"
done
for i in 1 2; do # twice: --migrate is idempotent
    "$RETRYD" --migrate -c "$T/node-1.ini" >>"$T/retryd-migrate.log" 2>&1 ||
        fail "retryd --migrate (run $i) failed (see $T/retryd-migrate.log)"
done
ok "retryd --migrate twice (idempotent)"
assert_eq 1 "$(sql "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'retry' AND table_name = 'retry_node'")" \
    "--migrate creates retry_node"

for i in 1 2 3; do start_retryd_node "node-$i" "$T/node-$i.ini"; done
RETRYD_URL=${NODE_URL[node-1]}
wait_for "three nodes registered" 10 \
    bash -c "[[ \$(curl -s ${NODE_URL[node-2]}/api/v1/nodes | jq '[.nodes[] | select(.status == \"up\" and .stale == false)] | length') == 3 ]]"

log "generating $N messages"
awk -v n="$N" -v peer="$PEER" -v out="$T/messages" 'BEGIN {
    for (i = 1; i <= n; i++) {
        key = sprintf("mn-%05d", i)
        printf "fleet/%s|{\"v\":1,\"group\":\"fleet\",\"scene\":\"fleet.kill\",\"idempotency_key\":\"%s\",\"target\":{\"type\":\"http\",\"method\":\"POST\",\"url\":\"%s/%s/%d\",\"body\":\"{}\",\"timeout_ms\":10000}}\n", key, key, peer, (i % 2 ? "flaky/1" : "slow/300"), i > out
    }
}'
# Half now, half after the kill: the kill is mid-run by construction (at most
# N/2 tasks can have succeeded), whatever the speed of the machine, and the
# second half also needs the dead node's partitions to move to the survivors.
half=$((N / 2))
head -n "$half" "$T/messages" >"$T/messages.1"
tail -n +"$((half + 1))" "$T/messages" >"$T/messages.2"
produce_file() {
    timeout 60 kcat -P -b "$KAFKA_BOOTSTRAP" -t retry.tasks -K'|' -X message.timeout.ms=30000 \
        -l "$1" || fail "kcat could not produce $1"
    log "produced $(wc -l <"$1") messages from $1"
}
produce_file "$T/messages.1"

succeeded() { sql "SELECT COUNT(*) FROM retry_task WHERE status = 'succeeded'"; }
# Mid-run: some tasks done, most not. The victim is the node holding the most
# leases right now.
wait_for "$((N / 10)) tasks succeeded" 60 bash -c "(( \$(mariadb --no-defaults -N -B --socket='$MYSQL_SOCKET' -uroot retry -e \"SELECT COUNT(*) FROM retry_task WHERE status = 'succeeded'\") >= $((N / 10)) ))"
victim=$(sql "SELECT owner_node FROM retry_task WHERE status = 'running' GROUP BY owner_node ORDER BY COUNT(*) DESC LIMIT 1")
[[ -n $victim ]] || victim=node-2
done_before=$(succeeded)
log "kill -9 $victim (pid ${NODE_PID[$victim]}); $done_before of $N succeeded"
kill -KILL "${NODE_PID[$victim]}"
wait "${NODE_PID[$victim]}" 2>/dev/null || true
alive "${NODE_PID[$victim]}" && fail "$victim survived SIGKILL"
# Its MySQL sessions are gone with it; what it held is frozen until taken over
# (lease 2 s), so this count is what it held when it died.
held=$(sql "SELECT COUNT(*) FROM retry_task WHERE status = 'running' AND owner_node = '$victim'")
log "$victim held $held lease(s) when it died"
assert_le "$half" "$done_before" "killed mid-run ($done_before of $N tasks had succeeded)"
produce_file "$T/messages.2"
survivors=()
for i in 1 2 3; do [[ node-$i == "$victim" ]] || survivors+=("node-$i"); done
RETRYD_URL=${NODE_URL[${survivors[0]}]}

all_succeeded() { [[ $(succeeded) == "$N" ]]; }
wait_for "all $N tasks succeeded" 150 all_succeeded
assert_eq "$N" "$(sql "SELECT COUNT(*) FROM retry_task")" "$N tasks stored (no duplicate from Kafka redelivery)"
assert_eq "$N" "$(succeeded)" "every task ends succeeded"
assert_eq 0 "$(sql "SELECT COUNT(*) - COUNT(DISTINCT task_id, attempt) FROM retry_attempt")" \
    "retry_attempt has no duplicate (task_id, attempt)"
assert_eq 0 "$(sql "SELECT COUNT(*) FROM retry_task t WHERE NOT EXISTS (SELECT 1 FROM retry_attempt a WHERE a.task_id = t.id AND a.attempt = t.attempt_seq AND a.outcome = 'succeeded')")" \
    "every task's last attempt row is its success"
nodes_used=$(sql "SELECT COUNT(DISTINCT node) FROM retry_attempt")
assert_eq 3 "$nodes_used" "all three nodes made attempts"

# What the target saw: (key, attempt) pairs sent more than once.
peer_stats >"$T/peer-stats.json"
read -r seen repeats keys dropped < <(jq -r '[.requests[] | select(.path | startswith("/flaky/1/") or startswith("/slow/300/"))] as $r
    | ($r | group_by([.key, .attempt]) | map(length - 1) | add // 0) as $rep
    | "\($r | length) \($rep) \($r | map(.key) | unique | length) \(.dropped // 0)"' "$T/peer-stats.json")
log "the target saw $seen requests for $keys keys; $repeats repeated (key, attempt); $dropped dropped"
assert_eq 0 "$dropped" "http-peer recorded every request"
assert_eq "$N" "$keys" "the target saw every task"
assert_eq 0 "$repeats" "no (Idempotency-Key, X-Retry-Attempt) pair reached the target twice"
rows=$(sql "SELECT COUNT(*) FROM retry_attempt")
assert_le "$seen" "$rows" "every retry_attempt row is a request the target saw"
assert_le "$held" "$((seen - rows))" \
    "requests without an attempt row ($((seen - rows))) <= leases the dead node held ($held)"

takeovers=0
for s in "${survivors[@]}"; do
    v=$(node_metric "$s" retryd_lease_takeovers_total)
    log "$s: retryd_lease_takeovers_total $v, retryd_fence_conflicts_total $(node_metric "$s" retryd_fence_conflicts_total)"
    takeovers=$((takeovers + ${v:-0}))
done
if ((held > 0)); then
    assert_ge "$held" "$takeovers" "survivors took over the $held lease(s) of $victim (retryd_lease_takeovers_total = $takeovers)"
    logged=0
    for s in "${survivors[@]}"; do
        logged=$((logged + $(grep -c 'whose lease had expired' "$T/retryd-$s.log" || true)))
    done
    assert_ge 1 "$logged" "the takeover is logged ('took over N task(s) whose lease had expired')"
else
    ok "# skip takeover checks: $victim held no lease when it died"
fi

# The registry: three nodes, the dead one stale and still 'up'.
victim_stale() {
    [[ $(api GET /api/v1/nodes | jq -r --arg v "$victim" '.nodes[] | select(.id == $v) | .stale') == true ]]
}
wait_for "$victim reported stale" 20 victim_stale
nodes=$(api GET /api/v1/nodes)
log "GET /api/v1/nodes: $nodes"
assert_eq "node-1 node-2 node-3" "$(jq -r '[.nodes[].id] | join(" ")' <<<"$nodes")" "GET /api/v1/nodes lists the three nodes"
assert_eq "up true 0" "$(jq -r --arg v "$victim" '.nodes[] | select(.id == $v) | "\(.status) \(.stale) \(.leases)"' <<<"$nodes")" \
    "$victim: status up, stale, no lease left"
assert_eq "up false up false" \
    "$(jq -r --arg v "$victim" '[.nodes[] | select(.id != $v) | "\(.status) \(.stale)"] | join(" ")' <<<"$nodes")" \
    "the survivors are up and fresh"
assert_eq 6000 "$(jq -r .stale_after_ms <<<"$nodes")" "stale after 3 heartbeat intervals"
assert_eq "${NODE_URL[node-3]#http://}" "$(jq -r '.nodes[] | select(.id == "node-3") | .http_listen' <<<"$nodes")" \
    "each node shows its [http] listen"

# Graceful exit marks a node 'stopped'.
for s in "${survivors[@]}"; do
    st=0
    stop_pid "${NODE_PID[$s]}" 20 || st=$?
    assert_eq 0 "$st" "$s exits 0 on SIGTERM"
done
assert_eq "stopped stopped" \
    "$(sql "SELECT status FROM retry_node WHERE node_id <> '$victim' ORDER BY node_id" | xargs)" \
    "the survivors are 'stopped' in retry_node"
assert_eq up "$(sql "SELECT status FROM retry_node WHERE node_id = '$victim'")" "the killed node stays 'up' (stale)"
log "test took $((($(date +%s%N) - t_start) / 1000000)) ms"
exit 0
