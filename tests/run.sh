#!/usr/bin/env bash
# The one test command: builds everything, starts the test stack (pcscd with
# vpcd readers, moto, the IAM proxy), runs every unit and integration test,
# then the FIDO2 guest scenarios (tests/fido2-vm/run.sh, QEMU), and stops
# what it started. Exits non-zero when anything failed.
#
#   tests/run.sh [extra cargo test args, e.g. --test oath_cli -- --nocapture]
#
# Runs tests/setup.sh first (as root on a fresh machine it installs what is missing).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
export MFAKEY_VENV=${MFAKEY_VENV:-$REPO/.venv}
STACK=$REPO/tests/stack/stack.sh

# A fresh machine gets its Debian packages and the venv here (setup.sh only
# installs what is missing, and says so in a few lines otherwise).
bash "$REPO/tests/setup.sh"

echo "run: cargo build --all-targets"
cargo build --all-targets

trap '"$STACK" stop' EXIT
"$STACK" start
eval "$("$STACK" env)"

status=0
cargo test --no-fail-fast "$@" || status=$?

# The fuzz targets: built and run a few seconds each, so they keep working
# (tests/fuzz.sh SECONDS for real runs; docs/FUZZING.md). With the full
# suite only, like the guest below.
if [ $# -gt 0 ] || [ "${MFAKEY_FUZZ:-}" = skip ]; then
    echo "run: fuzz targets NOT run ($([ $# -gt 0 ] && echo "filtered run" || echo "MFAKEY_FUZZ=skip"))"
else
    echo "run: tests/fuzz.sh ${MFAKEY_FUZZ_SECONDS:-5}"
    bash tests/fuzz.sh "${MFAKEY_FUZZ_SECONDS:-5}" || status=1
fi

# FIDO2 over a real kernel HID path, in a QEMU guest (tests/fido2-vm). Runs
# with the full suite; a filtered run (extra args) leaves it out, and so does
# MFAKEY_FIDO2_VM=skip, said out loud either way.
if [ $# -gt 0 ] || [ "${MFAKEY_FIDO2_VM:-}" = skip ]; then
    echo "run: fido2-vm NOT run ($([ $# -gt 0 ] && echo "filtered run" || echo "MFAKEY_FIDO2_VM=skip"))"
else
    echo "run: tests/fido2-vm/run.sh"
    bash tests/fido2-vm/run.sh || status=1
fi
exit "$status"
