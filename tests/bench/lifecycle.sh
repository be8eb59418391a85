#!/usr/bin/env bash
# Lifecycle benchmark: N users (default 20) on one key, then `inventory`,
# `replace` onto a second key and `revoke` of it, timed, against moto (behind
# the code-checking proxy) and two virtual-yubikey cards through pcscd.
# A benchmark, not a test: figures go to docs/PERFORMANCE.md.
#
#   bash tests/bench/lifecycle.sh [N]
#
# Needs tests/setup.sh to have run once.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
export MFAKEY_VENV=${MFAKEY_VENV:-$REPO/.venv}
TARGET=${CARGO_TARGET_DIR:-$REPO/target}

echo "bench: cargo build --release (mfakey, then virtual-yubikey with the testing feature)"
cargo build --release --bin mfakey --quiet
cargo build --release --bin virtual-yubikey --features testing --quiet
STACK=$REPO/tests/stack/stack.sh
trap '"$STACK" stop' EXIT
"$STACK" start
eval "$("$STACK" env)"
MFAKEY_BIN=$TARGET/release/mfakey VIRTUAL_YUBIKEY_BIN=$TARGET/release/virtual-yubikey \
    "$MFAKEY_VENV/bin/python" "$REPO/tests/bench/lifecycle.py" "${1:-20}"
