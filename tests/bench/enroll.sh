#!/usr/bin/env bash
# Enrollment benchmark: N users (default 20) one after another against moto
# (behind the code-checking proxy) and virtual-yubikey through pcscd. Prints
# median and p95 per enrollment, the sequential IAM rounds per enrollment
# (counted from a delaying proxy's request log), APDUs and IAM calls.
# A benchmark, not a test: figures go to docs/PERFORMANCE.md.
#
#   bash tests/bench/enroll.sh [N] [--iam-delay-ms D]
#
# --iam-delay-ms D puts tests/bench/delay_proxy.py on loopback in front of the
# IAM proxy: every IAM request waits D ms (a desk far from us-east-1).
# Needs tests/setup.sh to have run once.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
export MFAKEY_VENV=${MFAKEY_VENV:-$REPO/.venv}
TARGET=${CARGO_TARGET_DIR:-$REPO/target}

N=20
ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
    --iam-delay-ms) ARGS+=(--iam-delay-ms "${2:?--iam-delay-ms needs milliseconds}"); shift 2 ;;
    --iam-delay-ms=*) ARGS+=(--iam-delay-ms "${1#*=}"); shift ;;
    [0-9]*) N=$1; shift ;;
    *) echo "usage: $0 [N] [--iam-delay-ms D]" >&2; exit 2 ;;
    esac
done

# mfakey as shipped; the card needs the `testing` feature (a separate build).
echo "bench: cargo build --release (mfakey; virtual-yubikey with --features testing)"
cargo build --release --bin mfakey --quiet
cargo build --release --bin virtual-yubikey --features testing --quiet
STACK=$REPO/tests/stack/stack.sh
trap '"$STACK" stop' EXIT
"$STACK" start
eval "$("$STACK" env)"
export MFAKEY_ALLOW_VIRTUAL_READERS=1 # the benchmark's keys are in vpcd readers
MFAKEY_BIN=$TARGET/release/mfakey VIRTUAL_YUBIKEY_BIN=$TARGET/release/virtual-yubikey \
    "$MFAKEY_VENV/bin/python" "$REPO/tests/bench/enroll.py" "$N" ${ARGS[@]+"${ARGS[@]}"}
