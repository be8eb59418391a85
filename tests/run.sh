#!/usr/bin/env bash
# The one test command: builds everything, starts the test stack (pcscd with
# vpcd readers, moto, the IAM proxy), runs every unit and integration test,
# and stops what it started. Exits with cargo test's status.
#
#   tests/run.sh [extra cargo test args, e.g. --test oath_cli -- --nocapture]
#
# Needs tests/setup.sh to have run once (Debian packages and the venv).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
export MFAKEY_VENV=${MFAKEY_VENV:-$REPO/.venv}
STACK=$REPO/tests/stack/stack.sh

if [ ! -x "$MFAKEY_VENV/bin/ykman" ]; then
    echo "run: no venv at $MFAKEY_VENV: run tests/setup.sh first" >&2
    exit 1
fi

echo "run: cargo build --all-targets"
cargo build --all-targets

trap '"$STACK" stop' EXIT
"$STACK" start
eval "$("$STACK" env)"

status=0
cargo test --no-fail-fast "$@" || status=$?
exit "$status"
