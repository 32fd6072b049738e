# shellcheck shell=bash
# tests/integration/lib.sh — the integration harness, sourced by the
# tests/integration/test_*.sh scripts and by scripts/demo.sh.
#
# It starts real processes — MariaDB (a private datadir, socket and port),
# retry-devkafka (librdkafka's mock cluster), http-peer and retryd — all inside
# one `mktemp -d` directory $T, and stops them from an EXIT trap. On failure
# (or with RETRY_KEEP_TMP=1) $T is kept and the tail of every log is printed.
#
# Binaries come from the environment (CTest sets them): RETRYD, RETRY_DEVKAFKA,
# HTTP_PEER, HTTP_NOTIFY, and optionally RETRY_SQL_DIR. RETRY_TEST_CACHE names a
# directory (CTest: <build>/test-cache) where an initialised MariaDB datadir
# is cached, so each test only copies it (~0.1 s) instead of running
# mariadb-install-db (~2 s).
#
# A test prints "ok - <what>" per check and exits 0, or prints
# "not ok - <what>" and exits 1 (see assert_* and fail).

set -Eeuo pipefail
# mariadbd lives in /usr/sbin, which is not on every user's PATH.
export PATH=$PATH:/usr/sbin:/sbin

# MariaDB's socket path must fit in sockaddr_un (108 bytes): keep $T short.
lib_tmp=${TMPDIR:-/tmp}
((${#lib_tmp} <= 60)) || lib_tmp=/tmp
T=$(mktemp -d "$lib_tmp/retryd-it.XXXXXX")
unset lib_tmp
export T
LIB_PIDS=()        # every background process we started
LIB_PID_NAMES=()   # and what it is, for the logs
LIB_FAILED=0
LIB_START_NS=$(date +%s%N)

log() {
    local ms=$((($(date +%s%N) - LIB_START_NS) / 1000000))
    printf '[%4d.%03ds] %s\n' $((ms / 1000)) $((ms % 1000)) "$*" >&2
}

dump_logs() {
    local f
    shopt -s nullglob
    for f in "$T"/*.log "$T"/*.err "$T"/*.out; do
        [[ -s $f ]] || continue
        printf '\n===== %s (last 150 lines) =====\n' "$f" >&2
        tail -n 150 "$f" >&2 || true
    done
    shopt -u nullglob
}

fail() {
    echo "not ok - $*"
    log "FAIL: $*"
    LIB_FAILED=1
    exit 1
}

# Stops one process we started: SIGTERM, then SIGKILL after $2 seconds (5).
# Returns the exit status it ended with (137 when it had to be killed).
stop_pid() {
    local pid=$1 grace=${2:-5} rc=0 i
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < grace * 10; i++)); do
            alive "$pid" || break
            sleep 0.1
        done
        alive "$pid" && kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null || rc=$?
    return $rc
}

lib_cleanup() {
    local rc=$? i
    trap - EXIT ERR
    set +e
    [[ $LIB_FAILED -eq 1 ]] && rc=1
    local t0 st
    for ((i = ${#LIB_PIDS[@]} - 1; i >= 0; i--)); do
        alive "${LIB_PIDS[i]}" || continue
        t0=$(date +%s%N)
        st=0
        stop_pid "${LIB_PIDS[i]}" 10 2>/dev/null || st=$?
        log "stopped ${LIB_PID_NAMES[i]} (pid ${LIB_PIDS[i]}): exit $st after $((($(date +%s%N) - t0) / 1000000)) ms"
    done
    if [[ $rc -ne 0 ]]; then
        log "FAILED (exit $rc); logs follow; files kept in $T"
        dump_logs
    elif [[ ${RETRY_KEEP_TMP:-0} == 1 ]]; then
        log "passed; files kept in $T (RETRY_KEEP_TMP=1)"
    else
        rm -rf "$T"
    fi
    exit "$rc"
}
trap lib_cleanup EXIT
trap 'echo "not ok - command failed (exit $?) at ${BASH_SOURCE[0]##*/}:${LINENO}: ${BASH_COMMAND}"; LIB_FAILED=1' ERR
trap 'exit 130' INT TERM

# Remembers a background process for the cleanup.
track() { LIB_PIDS+=("$1"); LIB_PID_NAMES+=("$2"); }

need_bin() {
    local var=$1
    [[ -n ${!var:-} && -x ${!var} ]] || fail "environment variable $var must name an executable (got '${!var:-}')"
}

# Prints a TCP port on 127.0.0.1 that nothing listens on now, below Linux's
# ephemeral range (32768-60999) so no outgoing connection holds it. Tests run
# one at a time (CTest RESOURCE_LOCK), so the window before use is acceptable.
free_port() {
    local p i
    for ((i = 0; i < 100; i++)); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    fail "no free TCP port found"
}

# wait_for "description" TIMEOUT_S command [args...]: runs the command every
# 0.1 s until it succeeds; after TIMEOUT_S seconds the test fails with the
# description and all logs.
wait_for() {
    local desc=$1 timeout=$2
    shift 2
    local deadline=$(($(date +%s%N) + timeout * 1000000000))
    log "waiting (up to ${timeout}s) for: $desc"
    while ! "$@" >/dev/null 2>&1; do
        if (($(date +%s%N) > deadline)); then
            fail "timed out after ${timeout}s waiting for: $desc"
        fi
        sleep 0.1
    done
    log "done: $desc"
}

# Fails unless the process is still running (it may have died at start-up).
alive() {
    local st
    kill -0 "$1" 2>/dev/null || return 1
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ ${st:0:1} != Z ]]
}

# ---- MariaDB ----------------------------------------------------------------

MARIADB_OPTS=(--innodb-buffer-pool-size=64M --innodb-log-file-size=16M --skip-log-bin
              --skip-name-resolve --character-set-server=utf8mb4
              --innodb-flush-log-at-trx-commit=2 --innodb-doublewrite=0
              --performance-schema=OFF --max-connections=300 --open-files-limit=4096)

lib_as_root() { [[ $(id -u) -eq 0 ]]; }

# Makes (once per cache directory and MariaDB version) an initialised datadir
# and prints its path. Concurrent callers are serialised with flock.
mariadb_template() {
    local cache=${RETRY_TEST_CACHE:-${TMPDIR:-/tmp}/retryd-test-cache-$(id -u)}
    local ver user=() dir lockfd
    ver=$(mariadbd --version 2>/dev/null | awk '{print $3}' | tr -c 'A-Za-z0-9.\n-' _)
    dir=$cache/mariadb-$ver
    mkdir -p "$cache"
    lib_as_root && user=(--user=root)
    exec {lockfd}>"$cache/.lock"
    flock "$lockfd"
    if [[ ! -f $dir/ready ]]; then
        log "initialising a MariaDB datadir template in $dir (once per cache)"
        rm -rf "$dir.tmp"
        mkdir -p "$dir.tmp"
        if ! mariadb-install-db --no-defaults --datadir="$dir.tmp/db" \
                --auth-root-authentication-method=normal --skip-test-db "${user[@]}" \
                "${MARIADB_OPTS[@]}" >"$T/mariadb-install.log" 2>&1; then
            exec {lockfd}>&-
            fail "mariadb-install-db failed (see $T/mariadb-install.log)"
        fi
        rm -rf "$dir"
        mv "$dir.tmp" "$dir"
        touch "$dir/ready"
    fi
    exec {lockfd}>&-
    echo "$dir/db"
}

start_mariadb() {
    local t0 tmpl user=() pid
    t0=$(date +%s%N)
    command -v mariadbd >/dev/null || fail "mariadbd not found (install mariadb-server)"
    tmpl=$(mariadb_template)
    cp -a "$tmpl" "$T/db"
    MYSQL_SOCKET=$T/mysql.sock
    MYSQL_PORT=$(free_port)
    export MYSQL_SOCKET MYSQL_PORT
    lib_as_root && user=(--user=root)
    log "starting MariaDB: datadir $T/db, socket $MYSQL_SOCKET, port $MYSQL_PORT"
    mariadbd --no-defaults --datadir="$T/db" --socket="$MYSQL_SOCKET" --port="$MYSQL_PORT" \
        --bind-address=127.0.0.1 --pid-file="$T/mariadb.pid" --log-error="$T/mariadb.err" \
        "${user[@]}" "${MARIADB_OPTS[@]}" >"$T/mariadb.out" 2>&1 &
    pid=$!
    track "$pid" mariadbd
    MARIADB_PID=$pid # for tests that stop or kill MariaDB
    export MARIADB_PID
    local deadline=$(($(date +%s) + 60))
    until mariadb --no-defaults --socket="$MYSQL_SOCKET" -uroot -e 'select 1' >/dev/null 2>&1; do
        alive "$pid" || fail "mariadbd exited during start-up (see $T/mariadb.err)"
        (($(date +%s) < deadline)) || fail "MariaDB did not answer within 60 s"
        sleep 0.1
    done
    mariadb --no-defaults --socket="$MYSQL_SOCKET" -uroot -e "
        CREATE DATABASE IF NOT EXISTS retry CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
        CREATE USER IF NOT EXISTS 'retry'@'localhost' IDENTIFIED BY 'retry';
        CREATE USER IF NOT EXISTS 'retry'@'127.0.0.1' IDENTIFIED BY 'retry';
        GRANT ALL ON retry.* TO 'retry'@'localhost';
        GRANT ALL ON retry.* TO 'retry'@'127.0.0.1';" ||
        fail "creating database/user retry failed"
    log "MariaDB up in $((($(date +%s%N) - t0) / 1000000)) ms"
}

# sql "SELECT ...": runs SQL as root in database retry; tab-separated, no headers.
sql() {
    mariadb --no-defaults -N -B --socket="$MYSQL_SOCKET" -uroot retry -e "$1"
}

# ---- dev Kafka and the HTTP peer --------------------------------------------

# Waits up to 10 s for a file written by a process we started.
wait_file() {
    local file=$1 pid=$2 what=$3 i
    for ((i = 0; i < 100; i++)); do
        [[ -s $file ]] && return 0
        alive "$pid" || fail "$what exited during start-up"
        sleep 0.1
    done
    fail "$what did not start within 10 s"
}

# DEVKAFKA_PARTITIONS (4): partitions of retry.tasks. librdkafka's mock
# cluster keeps at most 5 MiB (or 100,000 message sets) per partition and
# deletes older messages, so a large unconsumed backlog needs more partitions.
start_devkafka() {
    need_bin RETRY_DEVKAFKA
    log "starting retry-devkafka"
    "$RETRY_DEVKAFKA" --topic "retry.tasks:${DEVKAFKA_PARTITIONS:-4}" --bootstrap-file "$T/kafka.bootstrap" \
        >"$T/devkafka.out" 2>"$T/devkafka.log" &
    DEVKAFKA_PID=$!
    track "$DEVKAFKA_PID" retry-devkafka
    wait_file "$T/kafka.bootstrap" "$DEVKAFKA_PID" retry-devkafka
    KAFKA_BOOTSTRAP=$(head -n1 "$T/kafka.bootstrap")
    export KAFKA_BOOTSTRAP
    log "dev Kafka at $KAFKA_BOOTSTRAP"
}

start_peer() {
    need_bin HTTP_PEER
    log "starting http-peer"
    "$HTTP_PEER" --listen 127.0.0.1:0 --port-file "$T/peer.port" >"$T/peer.out" 2>"$T/peer.log" &
    PEER_PID=$!
    track "$PEER_PID" http-peer
    wait_file "$T/peer.port" "$PEER_PID" http-peer
    PEER=http://127.0.0.1:$(head -n1 "$T/peer.port")
    export PEER
    log "http-peer at $PEER"
}

# The peer's /_stats, or a jq filter applied to it: peer_jq '.by_key["k"]'.
peer_stats() { curl -sS --max-time 10 "$PEER/_stats"; }
peer_jq() { peer_stats | jq -r "$@"; }
peer_reset() { curl -sS --max-time 10 -X POST "$PEER/_reset" >/dev/null; }

# ---- retryd -----------------------------------------------------------------

# write_retryd_config FILE [extra INI lines...]: the test configuration. Extra
# lines are read as INI: a "[section]" line switches section, "key = value"
# replaces that key of the base configuration or adds it to that section.
write_retryd_config() {
    local file=$1
    shift
    local http_port
    http_port=$(free_port)
    RETRYD_URL=http://127.0.0.1:$http_port
    export RETRYD_URL
    local -a order=()        # section names, in first-seen order
    local -A keys=()         # section -> "key1 key2 ..."
    local -A vals=()         # "section|key" -> value
    _cfg_set() {
        local s=$1 k=$2 v=$3
        if [[ -z ${keys[$s]+x} ]]; then
            order+=("$s")
            keys[$s]=""
        fi
        [[ -n ${vals["$s|$k"]+x} ]] || keys[$s]+="$k "
        vals["$s|$k"]=$v
    }
    _cfg_set node id node-1
    _cfg_set mysql socket "$MYSQL_SOCKET"
    _cfg_set mysql user retry
    _cfg_set mysql password retry
    _cfg_set mysql database retry
    _cfg_set kafka brokers "$KAFKA_BOOTSTRAP"
    _cfg_set kafka topic retry.tasks
    _cfg_set kafka group_id retryd
    # The mock cluster makes a rejoining group wait for the previous member's
    # session timeout; a short one keeps a retryd restart quick.
    _cfg_set kafka session.timeout.ms 6000
    _cfg_set http listen "127.0.0.1:$http_port"
    _cfg_set scheduler scan_interval_ms 200
    _cfg_set scheduler default_initial_delay_ms 100
    _cfg_set scheduler default_backoff fixed
    _cfg_set scheduler default_max_attempts 5
    _cfg_set alerts webhook_url "$PEER/webhook"
    _cfg_set log level debug
    local line sec="" k v
    for line in "$@"; do
        if [[ $line =~ ^[[:space:]]*\[(.+)\][[:space:]]*$ ]]; then
            sec=${BASH_REMATCH[1]}
        elif [[ $line =~ ^[[:space:]]*([^=[:space:]]+)[[:space:]]*=[[:space:]]*(.*)$ ]]; then
            [[ -n $sec ]] || fail "write_retryd_config: '$line' before any [section]"
            k=${BASH_REMATCH[1]}
            v=${BASH_REMATCH[2]}
            _cfg_set "$sec" "$k" "$v"
        elif [[ -n ${line//[[:space:]]/} ]]; then
            fail "write_retryd_config: cannot read '$line'"
        fi
    done
    {
        echo "; retryd configuration written by tests/integration/lib.sh"
        local s
        for s in "${order[@]}"; do
            printf '\n[%s]\n' "$s"
            for k in ${keys[$s]}; do
                printf '%s = %s\n' "$k" "${vals["$s|$k"]}"
            done
        done
    } >"$file"
    unset -f _cfg_set
    log "wrote $file (retryd API at $RETRYD_URL)"
}

healthz_ok() {
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$RETRYD_URL/healthz") == 200 ]]
}

# start_retryd FILE: migrates, starts retryd in the background (log in
# $T/retryd.log) and waits up to 30 s for GET /healthz to answer 200.
start_retryd() {
    local file=$1
    need_bin RETRYD
    log "retryd --migrate -c $file"
    "$RETRYD" --migrate -c "$file" >>"$T/retryd-migrate.log" 2>&1 ||
        fail "retryd --migrate failed (see $T/retryd-migrate.log)"
    log "starting retryd -c $file"
    echo "----- retryd started $(date '+%F %T') -----" >>"$T/retryd.log"
    "$RETRYD" -c "$file" >>"$T/retryd.log" 2>&1 &
    RETRYD_PID=$!
    track "$RETRYD_PID" retryd
    local deadline=$(($(date +%s) + 30))
    until healthz_ok; do
        alive "$RETRYD_PID" || fail "retryd exited during start-up (see $T/retryd.log)"
        (($(date +%s) < deadline)) || fail "retryd /healthz did not answer 200 within 30 s"
        sleep 0.1
    done
    log "retryd up (pid $RETRYD_PID)"
}

# stop_retryd [GRACE_S]: SIGTERM, SIGKILL after GRACE_S (20) seconds; sets
# RETRYD_EXIT to its exit status (137 when it had to be killed) and
# RETRYD_STOP_MS to how long it took.
stop_retryd() {
    local grace=${1:-20} t0
    t0=$(date +%s%N)
    log "stopping retryd (pid $RETRYD_PID) with SIGTERM"
    RETRYD_EXIT=0
    stop_pid "$RETRYD_PID" "$grace" || RETRYD_EXIT=$?
    RETRYD_STOP_MS=$((($(date +%s%N) - t0) / 1000000))
    log "retryd exited with status $RETRYD_EXIT after $RETRYD_STOP_MS ms"
}

# start_stack [extra INI lines...]: MariaDB, dev Kafka, http-peer and retryd
# with the test configuration in $T/retryd.ini.
start_stack() {
    start_mariadb
    start_devkafka
    start_peer
    write_retryd_config "$T/retryd.ini" "$@"
    start_retryd "$T/retryd.ini"
}

# ---- talking to retryd and Kafka --------------------------------------------

# api METHOD PATH [BODY]: prints the response body (whatever the status).
api() {
    local method=$1 path=$2
    local args=(-sS --max-time 15 -X "$method")
    (($# >= 3)) && args+=(-H 'Content-Type: application/json' --data-binary "$3")
    curl "${args[@]}" "$RETRYD_URL$path"
}

# api_status METHOD PATH [BODY]: prints only the HTTP status code.
api_status() {
    local method=$1 path=$2
    local args=(-sS --max-time 15 -o /dev/null -w '%{http_code}' -X "$method")
    (($# >= 3)) && args+=(-H 'Content-Type: application/json' --data-binary "$3")
    curl "${args[@]}" "$RETRYD_URL$path"
}

# api_call METHOD PATH [BODY]: one request; sets API_STATUS and API_BODY.
api_call() {
    local method=$1 path=$2
    local args=(-sS --max-time 15 -o "$T/api.body" -w '%{http_code}' -X "$method")
    (($# >= 3)) && args+=(-H 'Content-Type: application/json' --data-binary "$3")
    API_STATUS=$(curl "${args[@]}" "$RETRYD_URL$path")
    API_BODY=$(cat "$T/api.body")
    log "$method $path -> $API_STATUS $API_BODY"
}

# The task id of GROUP/KEY, or nothing when retryd has no such task yet.
task_id_of() {
    api GET "/api/v1/tasks?group=$1&idempotency_key=$2" 2>/dev/null |
        jq -r '.tasks[0].id // empty' 2>/dev/null
}
# A field of task ID as retryd's API shows it: task_field 7 status.
task_field() { api GET "/api/v1/tasks/$1" | jq -r ".$2"; }
task_status_is() { [[ $(task_field "$1" status 2>/dev/null) == "$2" ]]; }
task_ended() {
    local st
    st=$(task_field "$1" status 2>/dev/null) || return 1
    [[ $st == succeeded || $st == exhausted || $st == stopped || $st == cancelled ]]
}
task_exists() { [[ -n $(task_id_of "$1" "$2") ]]; }

# produce_kcat KEY VALUE: one message to retry.tasks with kcat (VALUE on one
# line; the key must not contain a tab).
produce_kcat() {
    log "kcat -P key '$1' value '${2:0:200}'"
    printf '%s\t%s\n' "$1" "$2" |
        timeout 30 kcat -P -b "$KAFKA_BOOTSTRAP" -t retry.tasks -K $'\t' \
            -X message.timeout.ms=15000 ||
        fail "kcat could not produce to $KAFKA_BOOTSTRAP"
}

# A wire format v1 task (compact JSON) for tests: v1_task GROUP SCENE KEY URL
# [POLICY_JSON [CALLBACK_URL]].
v1_task() {
    local policy=${5:-null} cb=${6:-}
    jq -cn --arg g "$1" --arg s "$2" --arg k "$3" --arg u "$4" --argjson p "$policy" \
        --arg cb "$cb" '{v:1, group:$g, scene:$s, idempotency_key:$k,
            target:{type:"http", method:"POST", url:$u, body:"{\"hello\":1}",
                    headers:{"Content-Type":"application/json"}},
            local_attempts:1, created_at:(now*1000|floor)}
          + (if $p == null then {} else {policy:$p} end)
          + (if $cb == "" then {} else {callback:{url:$cb}} end)'
}

# ---- assertions -------------------------------------------------------------

ok() { echo "ok - $*"; }

assert_eq() {
    [[ $1 == "$2" ]] || fail "$3: expected '$1', got '$2'"
    ok "$3"
}
assert_ne() {
    [[ $1 != "$2" ]] || fail "$3: did not expect '$2'"
    ok "$3"
}
assert_ge() {
    [[ $2 =~ ^-?[0-9]+$ ]] && (($2 >= $1)) || fail "$3: expected >= $1, got '$2'"
    ok "$3"
}
assert_le() {
    [[ $2 =~ ^-?[0-9]+$ ]] && (($2 <= $1)) || fail "$3: expected <= $1, got '$2'"
    ok "$3"
}
assert_contains() {
    [[ $2 == *"$1"* ]] || fail "$3: '$1' not found in '${2:0:500}'"
    ok "$3"
}
assert_match() {
    [[ $2 =~ $1 ]] || fail "$3: '${2:0:500}' does not match /$1/"
    ok "$3"
}

# Every test needs these; the demo too.
for lib_tool in curl jq kcat mariadb mariadbd mariadb-install-db flock; do
    command -v "$lib_tool" >/dev/null || fail "$lib_tool not found (run scripts/deps.sh)"
done
unset lib_tool
log "test directory $T"

# ---- more retryd nodes (test_multinode.sh) ----------------------------------

declare -gA NODE_PID=() NODE_URL=()

# start_retryd_node NAME FILE: starts one more retryd with configuration FILE
# (from write_retryd_config, with its own "[node] id" and [http] listen; the
# schema already migrated), logging to $T/retryd-NAME.log, and waits up to
# 30 s for its /healthz. Sets NODE_PID[NAME] and NODE_URL[NAME]; RETRYD_PID
# and RETRYD_URL are left alone.
start_retryd_node() {
    local name=$1 file=$2 listen url pid deadline
    need_bin RETRYD
    listen=$(sed -n 's/^listen = //p' "$file" | head -n1)
    [[ -n $listen ]] || fail "start_retryd_node: no 'listen = ' line in $file"
    url=http://$listen
    log "starting retryd node $name -c $file"
    echo "----- retryd $name started $(date '+%F %T') -----" >>"$T/retryd-$name.log"
    "$RETRYD" -c "$file" >>"$T/retryd-$name.log" 2>&1 &
    pid=$!
    track "$pid" "retryd $name"
    NODE_PID[$name]=$pid
    NODE_URL[$name]=$url
    deadline=$(($(date +%s) + 30))
    until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url/healthz") == 200 ]]; do
        alive "$pid" || fail "retryd $name exited during start-up (see $T/retryd-$name.log)"
        (($(date +%s) < deadline)) || fail "retryd $name /healthz did not answer 200 within 30 s"
        sleep 0.1
    done
    log "retryd $name up (pid $pid, $url)"
}

# node_metric NAME METRIC: the value of one /metrics line of node NAME.
node_metric() {
    curl -sS --max-time 10 "${NODE_URL[$1]}/metrics" | awk -v m="$2" '$1 == m { print $2 }'
}
