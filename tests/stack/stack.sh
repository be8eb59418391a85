#!/usr/bin/env bash
# The integration-test stack: pcscd with vpcd readers (two per entry,
# MFAKEY_VPCD_ENTRIES entries, default 2: four readers), moto's IAM server and
# the code-validating IAM proxy in front of it.
#
#   tests/stack/stack.sh start    start what is missing, write the state dir
#   tests/stack/stack.sh env      print `export ...` lines for the test env
#   tests/stack/stack.sh stop     stop exactly the processes start started
#   tests/stack/stack.sh status   show what runs
#
# A pcscd that already runs is reused and never stopped. Every process this
# script starts has its pid in $MFAKEY_STACK_DIR/*.pid; stop kills those pids
# only, after checking the pid still is the program it started.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE=${MFAKEY_STACK_DIR:-$REPO/target/stack}
VENV=${MFAKEY_VENV:-$REPO/.venv}
PROXY=${MFAKEY_IAM_PROXY:-$REPO/tests/support/iam_proxy.py}
READER_CONF=$STATE/reader.conf.d
VPCD_LIB=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
READY_TIMEOUT=${MFAKEY_STACK_TIMEOUT:-30}
ENTRIES=${MFAKEY_VPCD_ENTRIES:-2}
LETTERS=(_ B C D E F G H)
case "$ENTRIES" in [1-8]) ;; *) echo "stack: MFAKEY_VPCD_ENTRIES must be 1 to 8" >&2; exit 2 ;; esac

# Entry N's reader name: "Virtual PCD", then " B", " C", ... after the first.
entry_name() { if [ "$1" = 0 ]; then echo "Virtual PCD"; else echo "Virtual PCD ${LETTERS[$1]}"; fi; }
EXPECTED_READERS=()
for ((i = 0; i < ENTRIES; i++)); do
    EXPECTED_READERS+=("$(entry_name "$i") 00 00" "$(entry_name "$i") 00 01")
done

say() { printf 'stack: %s\n' "$*" >&2; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

# Reader names, one a line, from the running pcscd; fails when none answers.
list_readers() {
    "$VENV/bin/python" - <<'PY' 2>/dev/null
from smartcard.System import readers
for r in readers():
    print(r)
PY
}

free_port() {
    "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

http_answers() {
    "$VENV/bin/python" - "$1" <<'PY' >/dev/null 2>&1
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=2)
except urllib.error.HTTPError:
    pass  # any HTTP answer means the server is up
PY
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# pid recorded in $STATE/NAME.pid, if that process still runs MATCH.
recorded_pid() {
    local name=$1 match=$2 pid
    [ -f "$STATE/$name.pid" ] || return 1
    pid=$(cat "$STATE/$name.pid")
    alive "$pid" || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$match" || return 1
    printf '%s\n' "$pid"
}

# Waits until COMMAND succeeds, at most $READY_TIMEOUT s, while PID lives.
wait_for() {
    local what=$1 pid=$2; shift 2
    local deadline=$((SECONDS + READY_TIMEOUT))
    until "$@" >/dev/null; do
        alive "$pid" || die "$what exited while starting (log: $STATE/$what.log)"
        [ $SECONDS -lt $deadline ] || die "$what not ready after ${READY_TIMEOUT}s (log: $STATE/$what.log)"
        sleep 0.1
    done
}

have_all_readers() {
    local have r
    have=$(list_readers) || return 1
    for r in "${EXPECTED_READERS[@]}"; do
        grep -qxF "$r" <<<"$have" || return 1
    done
}

# Our reader list: one entry per two readers, every entry after the first on
# its own copy of the driver (see tests/stack/vpcd.conf.in for why).
render_reader_conf() {
    local i lib channel
    mkdir -p "$READER_CONF"
    : >"$READER_CONF/vpcd"
    for ((i = 0; i < ENTRIES; i++)); do
        lib=$VPCD_LIB
        if [ "$i" -gt 0 ]; then
            lib=$STATE/libifdvpcd-$(tr '[:upper:]' '[:lower:]' <<<"${LETTERS[$i]}").so
            cp "$VPCD_LIB" "$lib"
        fi
        channel=$(printf '0x%X' $((0x8C7B + 2 * i)))
        sed -e "s#@NAME@#$(entry_name "$i")#" -e "s#@CHANNEL@#$channel#g" -e "s#@LIBPATH@#$lib#" \
            "$REPO/tests/stack/vpcd.conf.in" >>"$READER_CONF/vpcd"
    done
}

start_pcscd() {
    local pid
    if pid=$(recorded_pid pcscd pcscd); then
        say "pcscd (ours, pid $pid) runs"
        return
    fi
    rm -f "$STATE/pcscd.pid"
    if list_readers >/dev/null; then
        if have_all_readers; then
            say "reusing the running pcscd (not ours: it will not be stopped)"
        else
            say "warning: reusing a running pcscd that lacks some of: ${EXPECTED_READERS[*]}"
            say "warning: tests use only the readers it has (start it with -c $READER_CONF for all ${#EXPECTED_READERS[@]})"
        fi
        return
    fi
    command -v pcscd >/dev/null || die "pcscd is not installed: run tests/setup.sh"
    [ -f "$VPCD_LIB" ] || die "vsmartcard-vpcd is not installed: run tests/setup.sh"
    render_reader_conf
    say "starting pcscd -f -c $READER_CONF"
    setsid pcscd -f -c "$READER_CONF" >"$STATE/pcscd.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$STATE/pcscd.pid"
    wait_for pcscd "$pid" have_all_readers
}

start_moto() {
    local pid port
    if pid=$(recorded_pid moto moto_server); then
        say "moto_server (pid $pid) runs"
        return
    fi
    port=$(free_port)
    setsid "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$STATE/moto.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$STATE/moto.pid"
    echo "http://127.0.0.1:$port" >"$STATE/moto.endpoint"
    wait_for moto "$pid" http_answers "http://127.0.0.1:$port/"
    say "moto_server on 127.0.0.1:$port (pid $pid)"
}

proxy_port() { sed -n 's/^listening \([0-9][0-9]*\)$/\1/p' "$STATE/iam_proxy.out" 2>/dev/null | head -n 1 | grep .; }

start_proxy() {
    local pid port
    if pid=$(recorded_pid iam_proxy "$(basename "$PROXY")"); then
        say "iam proxy (pid $pid) runs"
        return
    fi
    [ -f "$PROXY" ] || die "IAM proxy $PROXY is missing"
    : >"$STATE/iam_proxy.out"
    setsid "$VENV/bin/python" -u "$PROXY" --listen-port 0 --upstream "$(cat "$STATE/moto.endpoint")" \
        --log "$STATE/iam_proxy.requests.log" >"$STATE/iam_proxy.out" 2>"$STATE/iam_proxy.log" </dev/null &
    pid=$!
    echo "$pid" >"$STATE/iam_proxy.pid"
    wait_for iam_proxy "$pid" proxy_port
    port=$(proxy_port)
    echo "http://127.0.0.1:$port" >"$STATE/iam_proxy.endpoint"
    say "iam proxy on 127.0.0.1:$port (pid $pid)"
}

write_env() {
    {
        echo "export MFAKEY_TEST_STACK=1"
        # The stack's readers are vpcd's: mfakey refuses virtual readers
        # unless told otherwise (README, "Virtual readers").
        echo "export MFAKEY_ALLOW_VIRTUAL_READERS=1"
        echo "export MFAKEY_VENV=$(printf '%q' "$VENV")"
        echo "export MFAKEY_TEST_MOTO_ENDPOINT=$(cat "$STATE/moto.endpoint")"
        echo "export MFAKEY_TEST_IAM_ENDPOINT=$(cat "$STATE/iam_proxy.endpoint")"
        echo "export MFAKEY_TEST_PROXY_CONTROL=$(cat "$STATE/iam_proxy.endpoint")"
        echo "export MFAKEY_TEST_PROXY_LOG=$(printf '%q' "$STATE/iam_proxy.requests.log")"
    } >"$STATE/env"
}

stop_one() {
    local name=$1 match=$2 pid i
    if pid=$(recorded_pid "$name" "$match"); then
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 50); do alive "$pid" || break; sleep 0.1; done
        if alive "$pid"; then
            say "$name (pid $pid) ignored SIGTERM: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        say "stopped $name (pid $pid)"
    fi
    rm -f "$STATE/$name.pid" "$STATE/$name.endpoint"
}

cmd_start() {
    mkdir -p "$STATE"
    [ -x "$VENV/bin/moto_server" ] || die "no venv at $VENV: run tests/setup.sh"
    start_pcscd
    start_moto
    start_proxy
    write_env
}

cmd_stop() {
    [ -d "$STATE" ] || return 0
    stop_one iam_proxy "$(basename "$PROXY")"
    stop_one moto moto_server
    stop_one pcscd pcscd
    rm -f "$STATE/env"
}

cmd_env() {
    [ -f "$STATE/env" ] || die "the stack is not started (tests/stack/stack.sh start)"
    cat "$STATE/env"
}

cmd_status() {
    local name match pid
    for name in pcscd:pcscd moto:moto_server iam_proxy:"$(basename "$PROXY")"; do
        match=${name#*:}; name=${name%%:*}
        if pid=$(recorded_pid "$name" "$match"); then echo "$name: running, pid $pid (ours)"; else echo "$name: not started by us"; fi
    done
    echo "readers:"; list_readers | sed 's/^/  /' || echo "  (no pcscd answers)"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    env) cmd_env ;;
    status) cmd_status ;;
    *) echo "usage: $0 start|stop|env|status" >&2; exit 2 ;;
esac
