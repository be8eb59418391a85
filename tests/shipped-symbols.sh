#!/usr/bin/env bash
# Proves that a shipped mfakey binary holds no test double (the virtual
# YubiKey behind the `testing` feature, the cfg(test) fakes and test files).
#
#   tests/shipped-symbols.sh BINARY CONTROL...
#
# BINARY is the very file that ships: `target/release/mfakey`, stripped
# (the release profile's `strip = true`), as the Debian package and
# `cargo install` have it. CONTROLs are binaries known to contain the
# doubles: the release `virtual-yubikey` (built with `--features testing`,
# same profile) and the library's unit-test binary (cfg(test)).
#
# How, and why this way: a stripped binary has no symbol table, so `nm`
# cannot be asked. Building a second copy with symbols kept
# (CARGO_PROFILE_RELEASE_STRIP=false) would check another file than the one
# that ships and costs a second full release build. What a stripped Rust
# binary does keep are its panic locations: the source path of every
# function that can panic (an unwrap, an index, an overflow check, an
# expect) is a string in .rodata, `src/virtual_key/oath.rs` and the like.
# So the check reads the shipped file's strings, and it is only trusted
# when it can see:
#   1. in BINARY itself, the paths of at least 10 of mfakey's own shipped
#      source files (the strings survived stripping and link-time
#      optimisation, so absence means something; a file whose every panic
#      the optimiser removed shows nothing, so not every file can be asked
#      for), and that BINARY is indeed stripped;
#   2. in a CONTROL, the path of every double it looks for (a double whose
#      code could not panic would leave no path; then this check cannot
#      speak for it and says so, exit 1, rather than pass).
# Then none of the doubles' paths may be in BINARY.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 BINARY CONTROL..." >&2
    exit 2
fi
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BINARY=$1
shift
for f in "$BINARY" "$@"; do
    [ -f "$f" ] || { echo "shipped-symbols: no such file: $f" >&2; exit 2; }
done

TMP=$(mktemp -d -t mfakey-symbols.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
strings -a "$BINARY" >"$TMP/binary"
for c in "$@"; do strings -a "$c"; done >"$TMP/controls"

fail=0
say() { printf 'shipped-symbols: %s\n' "$*"; }
# Whether FILE shows mfakey's own PATH: not preceded by `/`, as a
# dependency's `…/registry/src/<crate>/src/…` would be (seen: strict).
shows() { grep -qE "(^|[^/])${2//./\\.}" "$1"; }

# The doubles: the virtual key's files, the fakes and transcripts that are
# cfg(test), and the files that hold only tests. (src/bin/virtual-yubikey.rs
# is another binary target: nothing of it can be linked into mfakey.)
cd "$REPO"
mapfile -t DOUBLES < <(
    { ls src/virtual_key/*.rs \
         src/aws/fake.rs src/aws/totp.rs src/fido2/fake.rs src/oath/script.rs
      find src -name '*tests.rs'; } | sort -u
)
# The files that ship: every other source file of the package.
mapfile -t SHIPPED < <(find src -name '*.rs' | sort | grep -vxF -f <(printf '%s\n' "${DOUBLES[@]}"))
MIN_SEEN=10

if readelf -S "$BINARY" | grep -q '\.symtab'; then
    say "FAIL: $BINARY has a symbol table: not the stripped file that ships"
    fail=1
fi
seen=0
for p in "${SHIPPED[@]}"; do
    if shows "$TMP/binary" "$p"; then seen=$((seen + 1)); fi
done
if [ "$seen" -lt "$MIN_SEEN" ]; then
    say "FAIL: $BINARY shows only $seen of mfakey's ${#SHIPPED[@]} shipped source files (at least $MIN_SEEN expected): its panic locations are gone, this check cannot see anything"
    fail=1
fi
for p in "${DOUBLES[@]}"; do
    if ! shows "$TMP/controls" "$p"; then
        say "FAIL: no control binary shows $p: this check cannot prove it absent"
        fail=1
    # Absent: no occurrence at all, however it is preceded (strict the other way).
    elif grep -qF "$p" "$TMP/binary"; then
        say "FAIL: $BINARY contains $p (a test double or test code ships)"
        fail=1
    fi
done
if [ $fail -ne 0 ]; then
    exit 1
fi
say "ok: $BINARY is stripped, shows $seen of ${#SHIPPED[@]} shipped source files in its panic locations, and none of ${#DOUBLES[@]} test-double and test files (each seen in a control)"
