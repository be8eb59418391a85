#!/usr/bin/env bash
# Enrollment benchmark: N users (default 20) one after another against moto
# (behind the code-checking proxy) and virtual-yubikey through pcscd. Prints
# median and p95 wall time per enrollment, APDUs and IAM calls per enrollment.
# A benchmark, not a test: figures go to docs/PERFORMANCE.md.
#
#   bash tests/bench/enroll.sh [N]
#
# Needs tests/setup.sh to have run once.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
export MFAKEY_VENV=${MFAKEY_VENV:-$REPO/.venv}
TARGET=${CARGO_TARGET_DIR:-$REPO/target}

echo "bench: cargo build --release --bins"
cargo build --release --bins --quiet
STACK=$REPO/tests/stack/stack.sh
trap '"$STACK" stop' EXIT
"$STACK" start
eval "$("$STACK" env)"
export MFAKEY_ALLOW_VIRTUAL_READERS=1 # the benchmark's keys are in vpcd readers
MFAKEY_BIN=$TARGET/release/mfakey VIRTUAL_YUBIKEY_BIN=$TARGET/release/virtual-yubikey \
    "$MFAKEY_VENV/bin/python" "$REPO/tests/bench/enroll.py" "${1:-20}"
