#!/usr/bin/env bash
# What ships, checked as a user gets it (CI runs it after tests/run.sh, as
# root on a fresh Debian machine):
#   1. the Debian package builds (packaging/build-deb.sh: release binary,
#      man pages, completions, cargo-deb);
#   2. the release binary is at most 15 MiB and holds no test double
#      (tests/shipped-symbols.sh, against controls that do);
#   3. the package installs with `dpkg -i`: `mfakey --version`, `man -w`,
#      the completion files, the udev rule's and the policies' paths, pcscd
#      as a dependency; then it is purged again (when this script installed it);
#   4. `cargo install --path .` installs a working mfakey;
#   5. the OATH-only build (`--no-default-features`) builds without
#      ctap-hid-fido2 and its `fido2` commands say how to get them.
# Prints each step's time. Exits non-zero on the first failure.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
command -v cargo >/dev/null 2>&1 || export PATH="$HOME/.cargo/bin:$PATH"
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
# 15 MB read as 15 MiB, as `ls -h` and `du -h` count (docs/PERFORMANCE.md).
MAX_BYTES=15728640
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
TMP=$(mktemp -d -t mfakey-ship.XXXXXX)
INSTALLED_HERE=
cleanup() {
    if [ -n "$INSTALLED_HERE" ]; then dpkg --purge mfakey >/dev/null 2>&1 || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT

say() { printf 'ship: %s\n' "$*"; }
fail() { printf 'ship: FAIL: %s\n' "$*" >&2; exit 1; }
step_start=$(date +%s)
step() {
    local now
    now=$(date +%s)
    say "($((now - step_start)) s) $*"
    step_start=$now
}

# 1. The package.
bash packaging/build-deb.sh
DEB=$(ls -t "$TARGET"/debian/mfakey_"$VERSION"*.deb | head -n 1)
step "package built: $DEB"

# 2. Size and test doubles.
size=$(stat -c %s "$TARGET/release/mfakey")
say "target/release/mfakey: $size bytes (at most $MAX_BYTES)"
[ "$size" -le "$MAX_BYTES" ] || fail "the release binary is $size bytes, over $MAX_BYTES"
# Controls: the release virtual-yubikey (the `testing` feature, same
# profile; only the mfakey crate is rebuilt) and the unit-test binary.
cargo build --release --locked --features testing --bin virtual-yubikey
LIBTEST=$(cargo test --lib --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | head -n 1)
[ -n "$LIBTEST" ] || fail "no unit-test binary"
bash tests/shipped-symbols.sh "$TARGET/release/mfakey" "$TARGET/release/virtual-yubikey" "$LIBTEST"
step "size and test doubles checked"

# 3. Install it as a user would.
if dpkg-query -W -f='${Status}' mfakey 2>/dev/null | grep -q 'install ok installed'; then
    fail "mfakey is already installed from a package here; remove it first"
fi
INSTALLED_HERE=1
dpkg -i "$DEB" >"$TMP/dpkg.log" 2>&1 || { cat "$TMP/dpkg.log" >&2; fail "dpkg -i $DEB"; }
[ "$(/usr/bin/mfakey --version)" = "mfakey $VERSION" ] || fail "mfakey --version: $(/usr/bin/mfakey --version)"
for page in mfakey mfakey-enroll-user mfakey-code mfakey-completions mfakey-fido2-register; do
    where=$(man -w "$page") || fail "man -w $page"
    [ "$where" = "/usr/share/man/man1/$page.1.gz" ] || fail "man -w $page: $where"
done
man mfakey-code 2>/dev/null | grep -q -- "--profile" || fail "man mfakey-code does not render --profile"
check_file() { [ -s "$1" ] || fail "missing or empty: $1"; }
check_file /usr/share/bash-completion/completions/mfakey
check_file /usr/share/zsh/vendor-completions/_mfakey
check_file /usr/share/fish/vendor_completions.d/mfakey.fish
bash -c 'source /usr/share/bash-completion/completions/mfakey && complete -p mfakey' >/dev/null ||
    fail "the bash completion does not register for mfakey"
head -n 1 /usr/share/zsh/vendor-completions/_mfakey | grep -q '^#compdef mfakey' || fail "zsh completion header"
grep -q '^complete -c mfakey' /usr/share/fish/vendor_completions.d/mfakey.fish || fail "fish completion"
cmp -s udev/70-mfakey-yubikey.rules /usr/lib/udev/rules.d/70-mfakey-yubikey.rules ||
    fail "the udev rule is not at /usr/lib/udev/rules.d/70-mfakey-yubikey.rules"
for doc in README.md aws.md iam-policy.json audit-policy.json udev.md; do
    check_file "/usr/share/doc/mfakey/$doc"
done
dpkg-query -W -f='${Depends}\n' mfakey | grep -qw pcscd || fail "pcscd is not a dependency"
dpkg --purge mfakey >/dev/null
INSTALLED_HERE=
[ ! -e /usr/bin/mfakey ] && [ ! -e /usr/lib/udev/rules.d/70-mfakey-yubikey.rules ] || fail "purge left files"
step "package installed, checked and purged"

# 4. cargo install --path . (uses this tree's target/, so no second build).
cargo install --path . --locked --quiet --root "$TMP/root"
[ "$("$TMP/root/bin/mfakey" --version)" = "mfakey $VERSION" ] || fail "cargo install --path ."
[ ! -e "$TMP/root/bin/virtual-yubikey" ] || fail "cargo install installed the test card"
step "cargo install --path . works"

# 5. OATH only.
# In the tests' own target dir: only the crates whose features differ are
# built again (a target dir of its own would build every dependency anew).
OATH=$TARGET
cargo build --locked --no-default-features --bin mfakey
if cargo tree --locked --no-default-features -e normal --prefix none | grep -qE '^(ctap-hid-fido2|hidapi) '; then
    fail "--no-default-features still depends on ctap-hid-fido2 or hidapi"
fi
if strings -a "$OATH/debug/mfakey" | grep -qE 'ctap-hid-fido2|hidapi-[0-9]'; then
    fail "the OATH-only binary contains ctap-hid-fido2 or hidapi code"
fi
set +e
out=$("$OATH/debug/mfakey" --json fido2 info 2>"$TMP/err")
code=$?
set -e
[ "$code" -eq 2 ] || fail "OATH-only fido2 info exited $code"
echo "$out" | grep -q '"kind":"not_built"' || fail "OATH-only fido2 info: $out"
grep -q "cargo install --path ." "$TMP/err" || fail "OATH-only fido2 info does not say how: $(cat "$TMP/err")"
"$OATH/debug/mfakey" oath --help >/dev/null || fail "OATH-only oath --help"
step "OATH-only build checked"
say "ok"
