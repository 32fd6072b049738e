#!/usr/bin/env bash
# The HTTP API: ingest (201, duplicate 200 with the same id, 400 for bad
# input), task and attempt queries, 404 for an unknown id, the "top" report
# ranking scenes by failed attempts, and /healthz.
source "$(dirname "$0")/lib.sh"

start_stack

assert_eq 200 "$(api_status GET /healthz)" "GET /healthz answers 200"
assert_eq ok "$(api GET /healthz | jq -r .status)" "/healthz says status ok"

key="api-$RANDOM-$$"
task=$(v1_task api-app api.scene "$key" "$PEER/flaky/1/api" '{"backoff":"fixed","initial_delay_ms":100}')
api_call POST /api/v1/tasks "$task"
assert_eq 201 "$API_STATUS" "POST /api/v1/tasks answers 201 for a new task"
id=$(jq -r .id <<<"$API_BODY")
assert_match '^[0-9]+$' "$id" "the answer carries the task id ($id)"

api_call POST /api/v1/tasks "$task"
assert_eq 200 "$API_STATUS" "the same task again answers 200"
assert_eq true "$(jq -r .duplicate <<<"$API_BODY")" "... with duplicate: true"
assert_eq "$id" "$(jq -r .id <<<"$API_BODY")" "... and the same id"
assert_eq 1 "$(sql "SELECT COUNT(*) FROM retry_task WHERE idempotency_key = '$key'")" \
    "still one row in retry_task"

api_call POST /api/v1/tasks '{"v":1,"group":'
assert_eq 400 "$API_STATUS" "malformed JSON answers 400"
assert_eq invalid_task "$(jq -r .error <<<"$API_BODY")" "... error invalid_task"
assert_ne "" "$(jq -r '.detail // ""' <<<"$API_BODY")" "... with a detail"

api_call POST /api/v1/tasks "$(jq -c '.v = 2' <<<"$task")"
assert_eq 400 "$API_STATUS" "wire format version 2 answers 400"
assert_contains "'v'" "$(jq -r .detail <<<"$API_BODY")" "... and the detail names field 'v'"

api_call POST /api/v1/tasks "$(jq -c 'del(.target)' <<<"$task")"
assert_eq 400 "$API_STATUS" "a task without target answers 400"
assert_contains target "$(jq -r .detail <<<"$API_BODY")" "... and the detail names 'target'"

assert_eq 404 "$(api_status GET /api/v1/tasks/987654321)" "GET of an unknown task id answers 404"
assert_eq 404 "$(api_status GET /api/v1/tasks/987654321/attempts)" "attempts of an unknown task answer 404"

# A second scene that fails more, for the report.
bad_key="api-bad-$RANDOM-$$"
api_call POST /api/v1/tasks "$(v1_task api-app api.bad "$bad_key" "$PEER/status/503" '{"max_attempts":3,"backoff":"fixed","initial_delay_ms":100}')"
assert_eq 201 "$API_STATUS" "a second task accepted"
bad_id=$(jq -r .id <<<"$API_BODY")

wait_for "task $id ends" 30 task_ended "$id"
wait_for "task $bad_id ends" 30 task_ended "$bad_id"

t=$(api GET "/api/v1/tasks/$id")
assert_eq "$id succeeded 2 api-app api.scene $key" \
    "$(jq -r '"\(.id) \(.status) \(.attempts) \(.group) \(.scene) \(.idempotency_key)"' <<<"$t")" \
    "GET /api/v1/tasks/$id: id, status, attempts, group, scene, idempotency_key"
assert_eq "$key" "$(jq -r .payload.idempotency_key <<<"$t")" "the stored payload is the task"

a=$(api GET "/api/v1/tasks/$id/attempts")
assert_eq "1:failed:503 2:succeeded:200" \
    "$(jq -r '[.attempts[] | "\(.attempt):\(.outcome):\(.http_status)"] | join(" ")' <<<"$a")" \
    "GET /api/v1/tasks/$id/attempts lists both attempts"

l=$(api GET "/api/v1/tasks?idempotency_key=$key&group=api-app")
assert_eq "$id" "$(jq -r '[.tasks[].id] | join(" ")' <<<"$l")" "list by idempotency_key finds the task"
assert_eq "$bad_id" "$(api GET "/api/v1/tasks?status=exhausted" | jq -r '[.tasks[].id] | join(" ")')" \
    "list by status=exhausted"
assert_eq 400 "$(api_status GET "/api/v1/tasks?status=bogus")" "an unknown status filter answers 400"

top=$(api GET "/api/v1/reports/top?limit=10")
scenes=$(jq -c '.scenes' <<<"$top")
assert_eq "api.bad api.scene" "$(jq -r '[.[] | .scene] | join(" ")' <<<"$scenes")" \
    "/api/v1/reports/top ranks api.bad before api.scene"
assert_eq "3 1" "$(jq -r '[.[] | .failed_attempts] | map(tostring) | join(" ")' <<<"$scenes")" \
    "... by failed attempts (3, 1)"
assert_eq "api-app" "$(jq -r '.[0].group' <<<"$scenes")" "... with the group"
assert_eq 1 "$(jq -r '.[0].tasks.exhausted // 0' <<<"$scenes")" "... and task counts by status"
exit 0
