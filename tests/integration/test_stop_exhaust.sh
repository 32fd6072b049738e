#!/usr/bin/env bash
# Ending badly: a task whose target answers a stop_on_status code is stopped
# after exactly one attempt; a task that keeps failing is exhausted after
# exactly max_attempts attempts. Each sends one alert (to [alerts] webhook_url)
# and one callback with the matching X-Retry-Event. A scene with a
# stop_on_body rule stops a task whose target answers 200 with an error code
# in the body, and lets a 200 with another code succeed.
source "$(dirname "$0")/lib.sh"

start_stack "[scene:body.scene]" "stop_on_body_pointer = /error/code" \
    "stop_on_body_values = E1001, E1002"

post_task() { # KEY URL POLICY -> prints the task id
    local body
    body=$(v1_task stop-app "$4" "$1" "$2" "$3" "$PEER/callback")
    api_call POST /api/v1/tasks "$body"
    [[ $API_STATUS == 201 ]] || fail "POST /api/v1/tasks answered $API_STATUS: $API_BODY"
    jq -r .id <<<"$API_BODY"
}

stop_key="stop-$RANDOM-$$"
exh_key="exhaust-$RANDOM-$$"
stop_id=$(post_task "$stop_key" "$PEER/status/404/order" '{"stop_on_status":[404],"max_attempts":5}' stop.scene)
exh_id=$(post_task "$exh_key" "$PEER/status/503/order" '{"max_attempts":3,"backoff":"fixed","initial_delay_ms":100}' exhaust.scene)
ok "tasks $stop_id (stop) and $exh_id (exhaust) accepted"

wait_for "task $stop_id ends" 30 task_ended "$stop_id"
wait_for "task $exh_id ends" 60 task_ended "$exh_id"

# stop_on_status
assert_eq stopped "$(task_field "$stop_id" status)" "404 with stop_on_status [404]: stopped"
assert_eq 1 "$(task_field "$stop_id" attempts)" "stopped after exactly 1 attempt"
assert_eq 1 "$(sql "SELECT COUNT(*) FROM retry_attempt WHERE task_id = $stop_id")" \
    "one retry_attempt row for the stopped task"
assert_eq "stopped 404" "$(sql "SELECT outcome, http_status FROM retry_attempt WHERE task_id = $stop_id" | xargs)" \
    "the attempt row says stopped, 404"
assert_eq 404 "$(task_field "$stop_id" last_status)" "last_status 404"

# max_attempts
assert_eq exhausted "$(task_field "$exh_id" status)" "503 every time with max_attempts 3: exhausted"
assert_eq 3 "$(task_field "$exh_id" attempts)" "exhausted after exactly 3 attempts"
assert_eq "1 2 3" "$(sql "SELECT attempt FROM retry_attempt WHERE task_id = $exh_id ORDER BY attempt" | xargs)" \
    "attempt rows 1, 2, 3"
assert_eq 3 "$(peer_jq --arg k "$exh_key" '[.requests[] | select(.key == $k)] | length')" \
    "the target got exactly 3 requests"

count_notes() { # LIST KEY EVENT
    peer_jq --arg k "$2" --arg e "$3" "[.$1[] | select(.body.idempotency_key == \$k and .event == \$e)] | length"
}
notes_arrived() { [[ $(count_notes callbacks "$1" "$2") -ge 1 && $(count_notes alerts "$1" "$2") -ge 1 ]]; }
wait_for "alert and callback for $stop_key" 15 notes_arrived "$stop_key" stopped
wait_for "alert and callback for $exh_key" 15 notes_arrived "$exh_key" exhausted
sleep 1 # duplicates would arrive about now

assert_eq 1 "$(count_notes callbacks "$stop_key" stopped)" "one 'stopped' callback"
assert_eq 1 "$(count_notes alerts "$stop_key" stopped)" "one alert for the stopped task"
assert_eq 1 "$(count_notes callbacks "$exh_key" exhausted)" "one 'exhausted' callback"
assert_eq 1 "$(count_notes alerts "$exh_key" exhausted)" "one alert for the exhausted task"
assert_eq 2 "$(peer_jq '.callbacks | length')" "no other callbacks"
assert_eq 2 "$(peer_jq '.alerts | length')" "no other alerts"
assert_eq "stopped $stop_id stop-app stop.scene 1 404" \
    "$(peer_jq --arg k "$stop_key" '.alerts[] | select(.body.idempotency_key == $k) | .body | "\(.event) \(.id) \(.group) \(.scene) \(.attempts) \(.last_status)"')" \
    "alert body: event, id, group, scene, attempts, last_status"
assert_eq "exhausted $exh_id 3 503" \
    "$(peer_jq --arg k "$exh_key" '.callbacks[] | select(.body.idempotency_key == $k) | .body | "\(.event) \(.id) \(.attempts) \(.last_status)"')" \
    "callback body of the exhausted task"
# stop_on_body: 200 {"ok":false,"error":{"code":"E1002"}} stops; E3003 does not match.
body_stop_id=$(post_task "body-stop-$$" "$PEER/errcode/E1002" '{"max_attempts":5}' body.scene)
body_ok_id=$(post_task "body-ok-$$" "$PEER/errcode/E3003" '{"max_attempts":5}' body.scene)
wait_for "task $body_stop_id ends" 30 task_ended "$body_stop_id"
wait_for "task $body_ok_id ends" 30 task_ended "$body_ok_id"
assert_eq stopped "$(task_field "$body_stop_id" status)" "200 with error code E1002 in the body: stopped"
assert_eq 1 "$(task_field "$body_stop_id" attempts)" "after one attempt"
assert_match 'body /error/code matched stop_on_body_values' "$(task_field "$body_stop_id" last_error)" \
    "last_error names the body rule"
assert_eq succeeded "$(task_field "$body_ok_id" status)" "200 with a code not in the list: succeeded"
# A task already past its deadline when claimed ends exhausted without a request.
past=$(( $(date +%s%3N) - 60000 ))
late_id=$(post_task "late-$$" "$PEER/ok/late" "{\"deadline\":$past}" late.scene)
wait_for "task $late_id ends" 30 task_ended "$late_id"
assert_eq exhausted "$(task_field "$late_id" status)" "a task past its deadline is exhausted"
assert_eq 0 "$(sql "SELECT COUNT(*) FROM retry_attempt WHERE task_id = $late_id")" "without an attempt"
assert_eq 0 "$(peer_jq --arg k "late-$$" '[.requests[] | select(.key == $k)] | length')" \
    "the target saw no request"
assert_match '^deadline [0-9]+ passed before attempt' "$(task_field "$late_id" last_error)" \
    "last_error says the deadline passed"
exit 0
