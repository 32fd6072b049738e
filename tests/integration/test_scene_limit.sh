#!/usr/bin/env bash
# [scene:NAME] max_inflight: at most that many attempts of the scene run at
# once on a node (checked from the attempt rows' start and duration), all its
# tasks still finish, and another scene is not held up behind it.
source "$(dirname "$0")/lib.sh"

start_stack "[scene:lim.scene]" "max_inflight = 2"

post() { # KEY SCENE URL
    api_call POST /api/v1/tasks "$(v1_task limit-app "$2" "$1" "$3")" >&2
    [[ $API_STATUS == 201 ]] || fail "task $1 not accepted: $API_STATUS $API_BODY"
    jq -r .id <<<"$API_BODY"
}
ids=()
for i in 1 2 3 4 5 6; do ids+=("$(post "lim-$i-$$" lim.scene "$PEER/slow/2000/lim")"); done
sleep 0.3
other=$(post "other-$$" other.scene "$PEER/ok/other")
wait_for "task $other of other.scene ends" 10 task_ended "$other"
assert_eq succeeded "$(task_field "$other" status)" "other.scene runs while lim.scene is saturated"
for id in "${ids[@]}"; do wait_for "task $id ends" 30 task_ended "$id"; done
assert_eq 6 "$(sql "SELECT COUNT(*) FROM retry_task WHERE scene = 'lim.scene' AND status = 'succeeded'")" \
    "all 6 tasks of lim.scene succeed"
assert_eq 6 "$(sql "SELECT COUNT(*) FROM retry_attempt WHERE scene = 'lim.scene'")" "with one attempt each"
# lim.scene needs 3 rounds of 2 s; other.scene's task must not queue behind them.
other_start=$(sql "SELECT started_at FROM retry_attempt WHERE task_id = $other")
last_lim=$(sql "SELECT MAX(started_at) FROM retry_attempt WHERE scene = 'lim.scene'")
assert_le "$last_lim" "$other_start" "other.scene's task started before lim.scene's last round"
# Highest number of lim.scene attempts overlapping at any attempt's start.
overlap=$(sql "SELECT MAX(c) FROM (SELECT a.id, COUNT(*) AS c FROM retry_attempt a
    JOIN retry_attempt b ON b.scene = a.scene AND b.started_at <= a.started_at
     AND b.started_at + b.duration_ms > a.started_at
    WHERE a.scene = 'lim.scene' GROUP BY a.id) x")
assert_le 2 "$overlap" "at most 2 attempts of lim.scene ran at once (max $overlap)"
assert_eq 2 "$overlap" "and the limit was used (2 at once)"
exit 0
