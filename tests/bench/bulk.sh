#!/usr/bin/env bash
# Bulk benchmark (not a test): `mfakey bulk` enrolls N users (default 24) while
# a simulated operator swaps virtual-yubikey cards as its events ask, one key
# at a time in one reader, then (--parallel) a tray of --readers N keys at
# once. Prints mfakey's own time per key and per tray, and keys per hour for
# both with the operator's time included (tests/bench/bulk.py says how).
#
#   bash tests/bench/bulk.sh [N] [--readers R] [--swap-ms S] [--per-key-ms K]
#                            [--one-only | --parallel]
#
#   --readers R     tray size (default 8; the stack gets ceil(R/2) vpcd entries)
#   --swap-ms S     the operator's time per swap: one key one at a time, one
#                   whole tray in tray mode (default 5000)
#   --per-key-ms K  the operator's time per key besides (default 0)
#   --parallel      tray mode only;  --one-only  one at a time only
#
# Builds the release binaries and starts its own stack (pcscd with enough vpcd
# readers, moto, the IAM proxy); stops it on exit. Figures go to
# docs/PERFORMANCE.md.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
export MFAKEY_VENV=${MFAKEY_VENV:-$REPO/.venv}
TARGET=${CARGO_TARGET_DIR:-$REPO/target}

N=24 READERS=8 ARGS=() MODE=both
while [ $# -gt 0 ]; do
    case "$1" in
    --readers) READERS=${2:?}; shift 2 ;;
    --swap-ms|--per-key-ms) ARGS+=("$1" "${2:?$1 needs milliseconds}"); shift 2 ;;
    --parallel) MODE=tray; shift ;;
    --one-only) MODE=one; shift ;;
    [0-9]*) N=$1; shift ;;
    *) echo "usage: $0 [N] [--readers R] [--swap-ms S] [--per-key-ms K] [--one-only | --parallel]" >&2; exit 2 ;;
    esac
done
case "$READERS" in [1-9]|1[0-6]) ;; *) echo "bench: --readers must be 1 to 16" >&2; exit 2 ;; esac

# mfakey as shipped; the card needs the `testing` feature (a separate build).
echo "bench: cargo build --release (mfakey; virtual-yubikey with --features testing)"
cargo build --release --bin mfakey --quiet
cargo build --release --bin virtual-yubikey --features testing --quiet
export MFAKEY_VPCD_ENTRIES=$(((READERS + 1) / 2))
[ "$MFAKEY_VPCD_ENTRIES" -ge 2 ] || MFAKEY_VPCD_ENTRIES=2
STACK=$REPO/tests/stack/stack.sh
trap '"$STACK" stop' EXIT
"$STACK" start
eval "$("$STACK" env)"
export MFAKEY_ALLOW_VIRTUAL_READERS=1 # the benchmark's keys are in vpcd readers
MFAKEY_BIN=$TARGET/release/mfakey VIRTUAL_YUBIKEY_BIN=$TARGET/release/virtual-yubikey \
    "$MFAKEY_VENV/bin/python" "$REPO/tests/bench/bulk.py" "$N" --readers "$READERS" --mode "$MODE" \
    ${ARGS[@]+"${ARGS[@]}"}
