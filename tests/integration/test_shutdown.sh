#!/usr/bin/env bash
# Graceful shutdown: SIGTERM while attempts are in flight. Task A's target
# takes 3 s (it can finish inside the drain), task B's takes 12 s (longer than
# retryd's 10 s drain, so it is aborted and released). retryd exits 0 within
# a bound; both tasks are pending or succeeded, never stuck running; after a
# restart both end succeeded.
source "$(dirname "$0")/lib.sh"

start_stack

post() { # KEY PATH -> task id
    api_call POST /api/v1/tasks "$(v1_task shut-app shut.scene "$1" "$PEER$2" '{"backoff":"fixed","initial_delay_ms":100}' |
        jq -c '.target.timeout_ms = 20000')"
    [[ $API_STATUS == 201 ]] || fail "POST /api/v1/tasks answered $API_STATUS: $API_BODY"
    jq -r .id <<<"$API_BODY"
}
a=$(post "shutdown-a-$RANDOM-$$" /slow/3000/a)
b=$(post "shutdown-b-$RANDOM-$$" /slow/12000/b)
ok "tasks $a (3 s target) and $b (12 s target) accepted"

seen() { [[ $(peer_jq --arg p "$1" '[.requests[] | select(.path == $p)] | length') -ge 1 ]]; }
wait_for "the attempt of task $a reaches the target" 30 seen /slow/3000/a
wait_for "the attempt of task $b reaches the target" 30 seen /slow/12000/b
assert_eq "running running" "$(sql "SELECT status FROM retry_task WHERE id IN ($a, $b) ORDER BY id" | xargs)" \
    "both tasks are running"

stop_retryd 30
assert_eq 0 "$RETRYD_EXIT" "retryd exits 0 after SIGTERM"
assert_le 20000 "$RETRYD_STOP_MS" "... within 20 s (took $RETRYD_STOP_MS ms)"

for id in "$a" "$b"; do
    st=$(sql "SELECT status FROM retry_task WHERE id = $id")
    [[ $st == pending || $st == succeeded ]] || fail "after shutdown task $id is '$st', expected pending or succeeded"
    ok "after shutdown task $id is $st (not running)"
done
assert_eq 0 "$(sql "SELECT COUNT(*) FROM retry_task WHERE status = 'running'")" "no task left running"
assert_eq 0 "$(sql "SELECT COUNT(*) FROM retry_attempt WHERE outcome = 'failed'")" \
    "an interrupted attempt is not counted as a target failure"

start_retryd "$T/retryd.ini"
ok "retryd restarted"
wait_for "task $a ends after the restart" 40 task_ended "$a"
wait_for "task $b ends after the restart" 40 task_ended "$b"
assert_eq succeeded "$(task_field "$a" status)" "task $a ends succeeded"
assert_eq succeeded "$(task_field "$b" status)" "task $b ends succeeded"

stop_retryd 30
assert_eq 0 "$RETRYD_EXIT" "the restarted retryd also exits 0"
exit 0
