#!/usr/bin/env bash
# Developer check: Yubico's ykman (the reference client) against our
# virtual-yubikey. Exits non-zero on the first mismatch.
#
#   tests/ykman_vk_smoke.sh                 # through pcscd + vpcd (default)
#   VK_SMOKE_MODE=direct tests/ykman_vk_smoke.sh   # ykman without pcscd (tests/ykman_direct.py)
#
# Environment: VK_READER (default "Virtual PCD 00 00"), VK_PORT (35963),
# YKMAN (/work/venv/bin/ykman), PYTHON (/work/venv/bin/python), VK_BIN (a
# built virtual-yubikey; default: cargo build, then a private copy, since
# CARGO_TARGET_DIR may be shared). pcscd must already run with the vpcd
# driver; this script never starts or stops it. Codes are checked against an
# independent HMAC computation in Python.
set -euo pipefail

MODE=${VK_SMOKE_MODE:-pcscd}
READER=${VK_READER:-Virtual PCD 00 00}
PORT=${VK_PORT:-35963}
YKMAN=${YKMAN:-/work/venv/bin/ykman}
PY=${PYTHON:-/work/venv/bin/python}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
STATE="$WORK/vk-state.json"
CARD_PID=""

cleanup() {
    if [[ -n "$CARD_PID" ]] && kill -0 "$CARD_PID" 2>/dev/null; then
        kill "$CARD_PID" 2>/dev/null || true
        wait "$CARD_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

if [[ -z "${VK_BIN:-}" ]]; then
    # A target dir shared between worktrees can hold another worktree's build
    # of the same package: touch our sources so cargo rebuilds from them.
    touch "$HERE/../src/lib.rs" "$HERE/../src/bin/virtual-yubikey.rs"
    (cd "$HERE/.." && cargo build --quiet --bin virtual-yubikey)
    cp "${CARGO_TARGET_DIR:-$HERE/../target}/debug/virtual-yubikey" "$WORK/virtual-yubikey"
    VK_BIN="$WORK/virtual-yubikey"
fi
"$VK_BIN" --help | grep -q -- "--vpcd" || fail "$VK_BIN is not a virtual-yubikey build"
export VK_BIN
export HOME="$WORK/home" # ykman keeps history and remembered keys under ~ (after cargo, which needs the real one)
mkdir -p "$HOME"

# Card options for the current phase (touch policy, firmware, ...).
CARD_ARGS=()

start_card() {
    if [[ "$MODE" == direct ]]; then
        return 0 # ykman_direct.py starts a card per command, on the same state file
    fi
    "$VK_BIN" --vpcd "127.0.0.1:$PORT" --state "$STATE" -v "${CARD_ARGS[@]}" \
        >"$WORK/card.out" 2>>"$WORK/card.log" &
    CARD_PID=$!
    for _ in $(seq 100); do
        grep -q "^ready $PORT\$" "$WORK/card.out" 2>/dev/null && break
        kill -0 "$CARD_PID" 2>/dev/null || fail "virtual-yubikey exited: $(cat "$WORK/card.log")"
        sleep 0.05
    done
    grep -q "^ready $PORT\$" "$WORK/card.out" || fail "virtual-yubikey never printed 'ready $PORT'"
    # pcscd polls for new cards every 400 ms.
    for _ in $(seq 50); do
        "$YKMAN" --reader "$READER" info >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    fail "pcscd does not show the card in reader \"$READER\" (is the vpcd slot on port $PORT alive?) $(grep warning "$WORK/card.log" || true)"
}

stop_card() {
    [[ "$MODE" == direct ]] && return 0
    kill -TERM "$CARD_PID"
    local rc=0
    wait "$CARD_PID" || rc=$?
    CARD_PID=""
    [[ $rc -eq 0 ]] || fail "virtual-yubikey exited $rc on SIGTERM (want 0)"
}

# ykman with the reader; stdin closed so a prompt fails instead of hanging.
yk() {
    if [[ "$MODE" == direct ]]; then
        VK_ARGS="--state $STATE ${CARD_ARGS[*]}" timeout 60 "$PY" "$HERE/ykman_direct.py" --reader "$READER" "$@" </dev/null
    else
        timeout 60 "$YKMAN" --reader "$READER" "$@" </dev/null
    fi
}

# otp totp|hotp sha1|sha256 DIGITS BASE32 PERIOD|COUNTER [UNIX_TIME]
otp() {
    "$PY" - "$@" <<'EOF'
import base64, hashlib, hmac, struct, sys
kind, algo, digits, secret, arg = sys.argv[1:6]
key = base64.b32decode(secret + "=" * (-len(secret) % 8))
if kind == "totp":
    msg = struct.pack(">Q", int(sys.argv[6]) // int(arg))
else:
    msg = struct.pack(">Q", int(arg))
mac = hmac.new(key, msg, getattr(hashlib, algo)).digest()
o = mac[-1] & 0x0F
n = (struct.unpack(">I", mac[o:o + 4])[0] & 0x7FFFFFFF) % 10 ** int(digits)
print(str(n).zfill(int(digits)))
EOF
}

# expect_totp LABEL QUERY ALGO DIGITS SECRET PERIOD [ykman options...]
expect_totp() {
    local label=$1 query=$2 algo=$3 digits=$4 secret=$5 period=$6
    shift 6
    local before after got
    before=$(date +%s)
    got=$(yk oath accounts code "$@" -s "$query") || fail "$label: ykman failed"
    after=$(date +%s)
    local want1 want2
    want1=$(otp totp "$algo" "$digits" "$secret" "$period" "$before")
    want2=$(otp totp "$algo" "$digits" "$secret" "$period" "$after")
    [[ "$got" == "$want1" || "$got" == "$want2" ]] || fail "$label: ykman says $got, HMAC says $want1"
    pass "$label code $got matches the independent HMAC"
}

SECRET_A=JBSWY3DPEHPK3PXP
SECRET_B=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ
PASSWORD=correct-horse

echo "mode: $MODE, reader: \"$READER\", port: $PORT"
start_card

out=$(yk info) || fail "ykman info"
grep -q "Serial number: 12345678" <<<"$out" || fail "info has no serial: $out"
grep -q "Firmware version: 5.7.1" <<<"$out" || fail "info has no firmware: $out"
pass "ykman info shows serial 12345678 and firmware 5.7.1"

out=$(yk oath info) || fail "ykman oath info"
grep -q "OATH version: *5.7.1" <<<"$out" || fail "oath info: $out"
grep -q "Password protection: *disabled" <<<"$out" || fail "oath info: $out"
pass "oath info"

yk oath accounts add -f "Example:alice" "$SECRET_A" >/dev/null || fail "add TOTP"
yk oath accounts add -f -o TOTP -a SHA256 -d 8 -P 60 "Wide:bob" "$SECRET_B" >/dev/null || fail "add SHA256/8/60"
yk oath accounts add -f -o HOTP "Counter:carol" "$SECRET_A" >/dev/null || fail "add HOTP"
yk oath accounts add -f --touch "Touchy:dave" "$SECRET_A" >/dev/null || fail "add touch"
pass "four accounts added"

out=$(yk oath accounts list -o | sort)
want=$(printf '%s\n' "60/Wide:bob, TOTP" "Counter:carol, HOTP" "Example:alice, TOTP" "Touchy:dave, TOTP" | sort)
[[ "$out" == "$want" ]] || fail "list: got [$out] want [$want]"
pass "accounts list"

expect_totp "TOTP SHA1/6/30" alice sha1 6 "$SECRET_A" 30
expect_totp "TOTP SHA256/8/60" bob sha256 8 "$SECRET_B" 60
expect_totp "TOTP with touch" dave sha1 6 "$SECRET_A" 30
for counter in 0 1; do
    got=$(yk oath accounts code -s carol) || fail "HOTP code"
    want=$(otp hotp sha1 6 "$SECRET_A" "$counter")
    [[ "$got" == "$want" ]] || fail "HOTP counter $counter: ykman says $got, HMAC says $want"
    pass "HOTP counter $counter code $got"
done

out=$(yk oath accounts code) || fail "code (all)"
grep -q "Counter:carol *\[HOTP Account\]" <<<"$out" || fail "code all, HOTP: $out"
grep -q "Touchy:dave *\[Requires Touch\]" <<<"$out" || fail "code all, touch: $out"
pass "accounts code (CALCULATE ALL) marks HOTP and touch accounts"

yk oath access change -n "$PASSWORD" >/dev/null || fail "set password"
out=$(yk oath info)
grep -q "Password protection: *enabled" <<<"$out" || fail "oath info after password: $out"
if yk oath accounts list >/dev/null 2>&1; then fail "list without password succeeded"; fi
err=$(yk oath accounts list -p wrong-password 2>&1 >/dev/null) && fail "wrong password accepted"
grep -q "Wrong password" <<<"$err" || fail "wrong password message: $err"
out=$(yk oath accounts list -p "$PASSWORD") || fail "list with password"
[[ $(wc -l <<<"$out") -eq 4 ]] || fail "list with password: $out"
expect_totp "TOTP after unlock" alice sha1 6 "$SECRET_A" 30 -p "$PASSWORD"
pass "password set; locked without it, refused when wrong, unlocked with it"

yk oath accounts rename -f -p "$PASSWORD" alice "Renamed:alice2" >/dev/null || fail "rename"
yk oath accounts delete -f -p "$PASSWORD" carol >/dev/null || fail "delete"
out=$(yk oath accounts list -p "$PASSWORD" | sort)
want=$(printf '%s\n' "60/Wide:bob" "Renamed:alice2" "Touchy:dave" | sort)
[[ "$out" == "$want" ]] || fail "after rename+delete: got [$out] want [$want]"
expect_totp "TOTP after rename" alice2 sha1 6 "$SECRET_A" 30 -p "$PASSWORD"
pass "rename and delete"

yk oath access change -p "$PASSWORD" -c >/dev/null || fail "clear password"
yk oath accounts list >/dev/null || fail "list after clearing the password"
pass "password cleared"

# Restart the card (state file keeps the accounts) with touch timing out.
stop_card
CARD_ARGS=(--touch timeout)
start_card
err=$(yk oath accounts code -s dave 2>&1) && fail "touch timeout gave a code: $err"
grep -q "timed out" <<<"$err" || fail "touch timeout message: $err"
out=$(yk oath accounts list)
grep -q "Renamed:alice2" <<<"$out" || fail "state lost across restart: $out"
pass "touch timeout reported by ykman; accounts survived the restart"

yk oath reset -f >/dev/null || fail "reset"
out=$(yk oath accounts list)
[[ -z "$out" ]] || fail "accounts left after reset: $out"
pass "oath reset"

# An older, smaller key: 32 OATH slots before 5.7.0, NFC-less nano, FIDO2 off.
stop_card
CARD_ARGS=(--firmware 5.4.3 --form-factor usb-c-nano --no-fido2 --serial 87654321)
start_card
out=$(yk info) || fail "info (5.4.3)"
grep -q "Device type: YubiKey 5C Nano" <<<"$out" || fail "info (5.4.3): $out"
grep -Eq "FIDO2[[:space:]]+Disabled" <<<"$out" || fail "FIDO2 not disabled: $out"
grep -q "Serial number: 87654321" <<<"$out" || fail "info serial: $out"
for i in $(seq 1 32); do
    yk oath accounts add -f "Issuer $i:user$i@example.com" "$SECRET_A" >/dev/null || fail "add account $i of 32"
done
err=$(yk oath accounts add -f "One:more" "$SECRET_A" 2>&1) && fail "a 33rd account fitted on 5.4.3"
grep -q "No space left" <<<"$err" || fail "full key message: $err"
[[ $(yk oath accounts list | wc -l) -eq 32 ]] || fail "list of a full key"
before=$(date +%s)
out=$(yk oath accounts code) || fail "code on a full key"
after=$(date +%s)
want1=$(otp totp sha1 6 "$SECRET_A" 30 "$before")
want2=$(otp totp sha1 6 "$SECRET_A" 30 "$after")
n=$(grep -Ec " ($want1|$want2)\$" <<<"$out" || true)
[[ $n -eq 32 ]] || fail "code on a full key: $n of 32 codes match the HMAC: $out"
pass "5.4.3 nano: 32 accounts, the 33rd refused (6A84); LIST and CALCULATE ALL (61xx-chained) give 32 correct codes"

stop_card
[[ "$MODE" == direct ]] || pass "virtual-yubikey exits 0 on SIGTERM"
echo "ALL OK ($MODE)"
