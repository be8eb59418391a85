#!/usr/bin/env bash
# Benchmark (not a test): `mfakey bulk` enrolls N users (default 50) with
# scripted key swaps in one vpcd reader, and prints the time mfakey itself
# spends per key: from noticing the inserted key to its "remove the key"
# event (the `ms` of each `enrolled` event, which is emitted just before
# `remove_key`), median and p95. Card start-up and pcscd's detection of the
# card are not counted.
#
#   eval "$(tests/stack/stack.sh env)"     # moto + proxy + pcscd running
#   tests/bench/bulk.sh [N]
#
# MFAKEY_BIN / VK_BIN choose the binaries (default: target/release if
# built, else target/debug, under $CARGO_TARGET_DIR or ./target).
# Holds a vpcd slot's lock (as the test harness does) while it runs.
set -euo pipefail

N=${1:-50}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
pick() {
    if [ -x "$TARGET/release/$1" ]; then echo "$TARGET/release/$1"; else echo "$TARGET/debug/$1"; fi
}
MFAKEY_BIN=${MFAKEY_BIN:-$(pick mfakey)}
VK_BIN=${VK_BIN:-$(pick virtual-yubikey)}
PY=${MFAKEY_VENV:?set MFAKEY_VENV (eval tests/stack/stack.sh env)}/bin/python
: "${MFAKEY_TEST_MOTO_ENDPOINT:?eval \"\$(tests/stack/stack.sh env)\" first}"
: "${MFAKEY_TEST_IAM_ENDPOINT:?eval \"\$(tests/stack/stack.sh env)\" first}"

# A free slot: the harness's lock files (tests/common/slot.rs).
SLOTS=("35963:Virtual PCD 00 00" "35964:Virtual PCD 00 01" "35965:Virtual PCD B 00 00" "35966:Virtual PCD B 00 01")
PORT= READER=
for s in "${SLOTS[@]}"; do
    p=${s%%:*}
    exec 9>"${TMPDIR:-/tmp}/mfakey-vpcd-$p.lock"
    if flock -n 9; then PORT=$p; READER=${s#*:}; break; fi
    exec 9>&-
done
[ -n "$PORT" ] || { echo "bench: no free vpcd slot" >&2; exit 1; }

WORK=$(mktemp -d)
VK_PID=
BULK_PID=
cleanup() {
    # mfakey bulk first: left running, it would watch the reader after the
    # slot lock is gone and enroll on the next user's key.
    [ -n "$BULK_PID" ] && kill "$BULK_PID" 2>/dev/null && wait "$BULK_PID" 2>/dev/null || true
    [ -n "$VK_PID" ] && kill "$VK_PID" 2>/dev/null && wait "$VK_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

PREFIX=bench$$x$(date +%s)
"$PY" - "$MFAKEY_TEST_MOTO_ENDPOINT" "$PREFIX" "$N" > "$WORK/manifest.csv" <<'EOF'
import sys, boto3
url, prefix, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
print("user")
for i in range(n):
    name = f"{prefix}-{i}"
    iam.create_user(UserName=name)
    print(name)
EOF

export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
export AWS_ENDPOINT_URL=$MFAKEY_TEST_IAM_ENDPOINT
export MFAKEY_ALLOW_VIRTUAL_READERS=1 # the benchmark's keys are in vpcd readers
export HOME=$WORK
echo "bench: $N users, reader \"$READER\", $MFAKEY_BIN" >&2

mkfifo "$WORK/events"
"$MFAKEY_BIN" --json --reader "$READER" bulk "$WORK/manifest.csv" \
    --journal "$WORK/bulk.jsonl" --report "$WORK/report.csv" >"$WORK/events" 2>"$WORK/stderr" &
BULK_PID=$!
serial=50000000
: > "$WORK/ms"
started=$(date +%s.%N)
while IFS= read -r line; do
    case "$line" in
    *'"event":"next"'*)
        serial=$((serial + 1))
        "$VK_BIN" --vpcd "127.0.0.1:$PORT" --serial "$serial" >/dev/null 2>&1 &
        VK_PID=$!
        ;;
    *'"event":"enrolled"'*)
        sed -E 's/.*"ms":([0-9.]+).*/\1/' <<<"$line" >> "$WORK/ms"
        ;;
    *'"event":"remove_key"'*)
        kill "$VK_PID"; wait "$VK_PID" 2>/dev/null || true; VK_PID=
        ;;
    *'"event":"failed"'*|*'"event":"key_skipped"'*)
        echo "bench: $line" >&2
        ;;
    esac
done < "$WORK/events"
bulk_status=0
wait "$BULK_PID" || bulk_status=$?
BULK_PID= # reaped: cleanup must not signal a pid that may be reused
[ "$bulk_status" = 0 ] || { echo "bench: mfakey bulk failed:" >&2; cat "$WORK/stderr" >&2; exit 1; }
ended=$(date +%s.%N)

"$PY" - "$WORK/ms" "$started" "$ended" <<'EOF'
import sys, statistics
ms = sorted(float(x) for x in open(sys.argv[1]) if x.strip())
n = len(ms)
p95 = ms[min(n - 1, max(0, -(-95 * n // 100) - 1))]
wall = float(sys.argv[3]) - float(sys.argv[2])
print(f"keys enrolled: {n}")
print(f"mfakey per key (inserted -> remove the key): median {statistics.median(ms):.0f} ms, "
      f"p95 {p95:.0f} ms, min {ms[0]:.0f} ms, max {ms[-1]:.0f} ms")
print(f"wall clock incl. card start/stop and pcscd detection: {wall:.1f} s ({wall / n * 1000:.0f} ms per user)")
EOF
