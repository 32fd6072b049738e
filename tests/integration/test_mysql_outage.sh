#!/usr/bin/env bash
# MySQL goes away while retryd runs (DESIGN.md: keep running where safe, lose
# nothing). MariaDB is stopped, tasks are produced to Kafka during the outage,
# then MariaDB comes back on the same datadir:
#  - /healthz answers 503 while MySQL is down, and retryd keeps running;
#  - ingest does not commit offsets for what it could not store, so every
#    message produced during the outage becomes a task once MySQL is back;
#  - /healthz is 200 again and those tasks are retried to success.
source "$(dirname "$0")/lib.sh"

start_stack

# Restarts mariadbd on the same datadir, socket and port as start_mariadb.
restart_mariadb() {
    local user=()
    lib_as_root && user=(--user=root)
    mariadbd --no-defaults --datadir="$T/db" --socket="$MYSQL_SOCKET" --port="$MYSQL_PORT" \
        --bind-address=127.0.0.1 --pid-file="$T/mariadb.pid" --log-error="$T/mariadb.err" \
        "${user[@]}" "${MARIADB_OPTS[@]}" >>"$T/mariadb.out" 2>&1 &
    MARIADB_PID=$!
    track "$MARIADB_PID" mariadbd
}
health() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$RETRYD_URL/healthz"; }
health_is() { [[ $(health) == "$1" ]]; }

# Before: one task goes through.
api_call POST /api/v1/tasks "$(v1_task outage-app outage.scene "before-$$" "$PEER/ok/before")"
assert_eq 201 "$API_STATUS" "a task is accepted before the outage"
before_id=$(jq -r .id <<<"$API_BODY")
wait_for "task $before_id ends" 30 task_ended "$before_id"

log "stopping MariaDB (pid $MARIADB_PID)"
stop_pid "$MARIADB_PID" 20 || true
wait_for "/healthz answers 503 while MySQL is down" 15 health_is 503
assert_contains '"mysql":"down"' "$(curl -s --max-time 5 "$RETRYD_URL/healthz")" "/healthz says MySQL is down"

for i in 1 2 3; do
    produce_kcat "outage-app/during-$$-$i" "$(v1_task outage-app outage.scene "during-$$-$i" "$PEER/flaky/1/during")"
done
dbdown_logged() { grep -q 'not stored, offsets not committed' "$T/retryd.log"; }
wait_for "ingest reports the batch it cannot store" 30 dbdown_logged
alive "$RETRYD_PID" || fail "retryd died while MySQL was down"
ok "retryd keeps running while MySQL is down"

log "starting MariaDB again on the same datadir"
restart_mariadb
wait_for "MariaDB answers again" 60 sql "SELECT 1"
wait_for "/healthz answers 200 again" 30 health_is 200
ok "/healthz recovers by itself"

during_done() {
    [[ $(sql "SELECT COUNT(*) FROM retry_task WHERE idempotency_key LIKE 'during-$$-%' AND status = 'succeeded'") == 3 ]]
}
wait_for "the 3 tasks produced during the outage end succeeded" 60 during_done
assert_eq 3 "$(sql "SELECT COUNT(*) FROM retry_task WHERE idempotency_key LIKE 'during-$$-%'")" \
    "each message produced during the outage is one task"
assert_eq 0 "$(sql "SELECT COUNT(*) FROM retry_poison")" "nothing was taken for poison"
assert_eq 6 "$(sql "SELECT COUNT(*) FROM retry_attempt a JOIN retry_task t ON t.id = a.task_id WHERE t.idempotency_key LIKE 'during-$$-%'")" \
    "each of them took 2 attempts (the target fails once per key)"
exit 0
