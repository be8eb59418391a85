#!/usr/bin/env bash
# Runs each fuzz target of fuzz/ (cargo-fuzz, libFuzzer, nightly) for
# SECONDS (default 60), one after another, and prints one line per target:
# executions, coverage (libFuzzer's cov and ft), corpus size, crashes.
#
#   tests/fuzz.sh [SECONDS] [TARGET...]
#
# Seeds come from fuzz/seeds.py (the yubikit vectors and the test fixtures);
# the growing corpus lives in target/fuzz/corpus/TARGET, crash inputs in
# target/fuzz/artifacts/TARGET. MFAKEY_FUZZ_DEV=1 builds without
# optimisation (a faster build, far slower runs).
# Exits non-zero when a target crashed or did not build.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
SECS=${1:-60}
[ $# -gt 0 ] && shift
OUT=$REPO/target/fuzz
PROFILE=()
[ "${MFAKEY_FUZZ_DEV:-}" = 1 ] && PROFILE=(--dev)

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: no nightly toolchain (rustup toolchain install nightly): run tests/setup.sh" >&2
    exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz: cargo-fuzz is not installed (cargo install cargo-fuzz): run tests/setup.sh" >&2
    exit 1
fi

mapfile -t ALL < <(cargo +nightly fuzz list)
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL[@]}")

python3 fuzz/seeds.py "$OUT/seeds"
echo "fuzz: building ${#ALL[@]} targets${PROFILE:+ (dev profile)}"
cargo +nightly fuzz build "${PROFILE[@]}"

status=0
for t in "${TARGETS[@]}"; do
    mkdir -p "$OUT/corpus/$t" "$OUT/artifacts/$t" "$OUT/logs"
    log=$OUT/logs/$t.log
    rc=0
    cargo +nightly fuzz run "${PROFILE[@]}" "$t" "$OUT/corpus/$t" "$OUT/seeds/$t" -- \
        -max_total_time="$SECS" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$OUT/artifacts/$t/" >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    corpus=$(find "$OUT/corpus/$t" -type f | wc -l)
    crashes=$(find "$OUT/artifacts/$t" -type f | wc -l)
    printf 'fuzz: %-20s %ss  execs %s  cov %s  ft %s  corpus %s  crash files %s  exit %s\n' \
        "$t" "$SECS" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$corpus" "$crashes" "$rc"
    if [ "$rc" -ne 0 ]; then
        status=1
        echo "fuzz: $t failed; its log ($log) ends:" >&2
        tail -n 40 "$log" >&2
    fi
done
exit "$status"
