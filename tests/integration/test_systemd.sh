#!/usr/bin/env bash
# systemd integration (Type=notify): retryd tells the service manager it is
# ready once it serves, pings the watchdog from its event loop, says
# RELOADING/READY around a SIGHUP and STOPPING when it drains. The service
# manager is played by socat receiving the datagrams on NOTIFY_SOCKET.
# retryd is built with sd_notify when libsystemd-dev is installed
# (scripts/deps.sh installs it), which this test requires.
source "$(dirname "$0")/lib.sh"

start_mariadb
start_devkafka
start_peer
write_retryd_config "$T/retryd.ini"

sock=$T/notify.sock
socat -u "UNIX-RECV:$sock" "OPEN:$T/notify.log,creat,append" &
track $! socat
wait_file_exists() { [[ -S $sock ]]; }
wait_for "socat listens on $sock" 10 wait_file_exists

export NOTIFY_SOCKET=$sock WATCHDOG_USEC=400000
start_retryd "$T/retryd.ini"
unset NOTIFY_SOCKET WATCHDOG_USEC
notified() { grep -qa "$1" "$T/notify.log" 2>/dev/null; }
# Before the first datagram of a kind grep finds nothing: that counts 0 and
# must not trip the harness's ERR trap (pipefail in a command substitution).
count_of() { { grep -ao "$1" "$T/notify.log" 2>/dev/null || true; } | wc -l; }

wait_for "READY=1" 10 notified 'READY=1'
assert_match 'STATUS=node node-1: consuming retry.tasks' "$(tr '\0' '\n' <"$T/notify.log")" \
    "STATUS says what the node does"
three_pings() { (($(count_of 'WATCHDOG=1') >= 3)); }
wait_for "watchdog pings every 200 ms" 10 three_pings

kill -HUP "$RETRYD_PID"
wait_for "RELOADING=1 around SIGHUP" 10 notified 'RELOADING=1'
two_ready() { (($(count_of 'READY=1') >= 2)); }
wait_for "READY=1 again after the reload" 10 two_ready

stop_retryd
assert_eq 0 "$RETRYD_EXIT" "retryd exits 0"
notified 'STOPPING=1' || fail "no STOPPING=1 on SIGTERM"
ok "STOPPING=1 on SIGTERM"
exit 0
