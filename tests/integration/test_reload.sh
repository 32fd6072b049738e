#!/usr/bin/env bash
# SIGHUP reloads the config without dropping work: a scene's policy changes
# for tasks that arrive afterwards, a task running during the reload still
# finishes, a key that cannot change while running (here [http] listen) keeps
# its value and is named in the log, and a broken file is refused while the
# running config stays.
source "$(dirname "$0")/lib.sh"

start_stack "[scene:reload.scene]" "max_attempts = 1"
ini=$T/retryd.ini

post() { # KEY URL
    api_call POST /api/v1/tasks "$(v1_task reload-app reload.scene "$1" "$2")" >&2
    [[ $API_STATUS == 201 ]] || fail "task $1 not accepted: $API_STATUS $API_BODY"
    jq -r .id <<<"$API_BODY"
}
attempts_of() { sql "SELECT COUNT(*) FROM retry_attempt WHERE task_id = $1"; }

before=$(post "before-$$" "$PEER/status/503/x")
wait_for "task $before ends" 20 task_ended "$before"
assert_eq "exhausted 1" "$(task_field "$before" status) $(attempts_of "$before")" \
    "with max_attempts = 1 the task is exhausted after 1 attempt"

slow=$(post "slow-$$" "$PEER/slow/2500/x")
wait_for "the slow attempt is running" 10 \
    bash -c "[[ \$(curl -s '$RETRYD_URL/metrics' | awk '\$1 == \"retryd_inflight\" {print \$2}') -ge 1 ]]"

sed -i 's/^max_attempts = 1$/max_attempts = 3/' "$ini"
old_listen=$(sed -n 's/^listen = //p' "$ini")
sed -i "s/^listen = .*/listen = 127.0.0.1:$(free_port)/" "$ini"
kill -HUP "$RETRYD_PID"
reloaded() { grep -q 'SIGHUP: config reloaded' "$T/retryd.log"; }
wait_for "retryd logs the reload" 10 reloaded
assert_match 'changed but kept until a restart: \[http\] listen' "$(grep 'SIGHUP: config reloaded' "$T/retryd.log")" \
    "the log names the key that needs a restart"
healthz_ok || fail "the API still answers on $old_listen"
ok "the API keeps its address ($old_listen)"

after=$(post "after-$$" "$PEER/status/503/x")
wait_for "task $after ends" 20 task_ended "$after"
assert_eq "exhausted 3" "$(task_field "$after" status) $(attempts_of "$after")" \
    "after the reload max_attempts = 3 applies"
wait_for "the task running during the reload ends" 20 task_ended "$slow"
assert_eq succeeded "$(task_field "$slow" status)" "the attempt in flight during the reload finished"

echo "this is not INI" >>"$ini"
kill -HUP "$RETRYD_PID"
refused() { grep -q 'SIGHUP: config not reloaded, keeping the running one' "$T/retryd.log"; }
wait_for "retryd refuses the broken file" 10 refused
alive "$RETRYD_PID" || fail "retryd died on a broken config"
again=$(post "again-$$" "$PEER/status/503/x")
wait_for "task $again ends" 20 task_ended "$again"
assert_eq 3 "$(attempts_of "$again")" "the running config (max_attempts = 3) stays"
exit 0
