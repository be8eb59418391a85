#!/usr/bin/env bash
# The README's first command: sets up this machine (Debian packages, the test
# venv), builds mfakey, starts the local stack (pcscd with the vpcd virtual
# reader, moto's IAM server behind the code-checking proxy), inserts a virtual
# YubiKey, creates the IAM user alice, and enrolls her MFA onto the key exactly
# as an administrator would. Stops everything it started.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
command -v cargo >/dev/null 2>&1 || export PATH="$HOME/.cargo/bin:$PATH"
export MFAKEY_VENV=${MFAKEY_VENV:-$REPO/.venv}
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
PORT=35963
READER="Virtual PCD 00 00"

bash tests/setup.sh
echo "demo: cargo build --bin mfakey; --features testing --bin virtual-yubikey"
cargo build --quiet --bin mfakey
# The virtual card is a test double: only the `testing` feature builds it.
cargo build --quiet --features testing --bin virtual-yubikey

STACK=$REPO/tests/stack/stack.sh
WORK=$(mktemp -d -t mfakey-demo.XXXXXX)
CARD_PID=
cleanup() {
    [ -n "$CARD_PID" ] && kill "$CARD_PID" 2>/dev/null && wait "$CARD_PID" 2>/dev/null
    "$STACK" stop
    rm -rf "$WORK"
}
trap cleanup EXIT
"$STACK" start
eval "$("$STACK" env)"
# The demo's key sits in a vpcd virtual reader, which mfakey refuses unless
# told otherwise (the stack's env says so too; said here for the reader).
export MFAKEY_ALLOW_VIRTUAL_READERS=1

# The reader slot, under the same lock the tests take.
exec 9>"${TMPDIR:-/tmp}/mfakey-vpcd-$PORT.lock"
flock 9
"$TARGET/debug/virtual-yubikey" --vpcd "127.0.0.1:$PORT" --serial 12345678 >"$WORK/card.out" 2>"$WORK/card.err" &
CARD_PID=$!
for _ in $(seq 100); do grep -q ready "$WORK/card.out" 2>/dev/null && break; sleep 0.05; done
sleep 0.3

# The administrator's environment: credentials and the (local) IAM endpoint.
export HOME=$WORK XDG_STATE_HOME=$WORK/state
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1
export AWS_ENDPOINT_URL=$MFAKEY_TEST_IAM_ENDPOINT
"$MFAKEY_VENV/bin/python" - <<'PY'
import os, boto3
boto3.client("iam", endpoint_url=os.environ["MFAKEY_TEST_MOTO_ENDPOINT"], region_name="us-east-1").create_user(UserName="alice")
PY

mfakey() { "$TARGET/debug/mfakey" "$@"; }
show() { printf '\n$ %s\n' "$*"; }

show mfakey keys
mfakey keys
show mfakey enroll user alice --reader "\"$READER\""
mfakey enroll user alice --reader "$READER"
show ykman --reader "\"$READER\"" oath accounts list
"$MFAKEY_VENV/bin/ykman" --reader "$READER" oath accounts list
show mfakey oath code alice --reader "\"$READER\""
mfakey oath code alice --reader "$READER"
printf '\nThe IAM proxy checked the two codes mfakey sent against the seed moto issued:\n'
"$MFAKEY_VENV/bin/python" - <<'PY'
import json, os, urllib.request
for e in json.load(urllib.request.urlopen(os.environ["MFAKEY_TEST_IAM_ENDPOINT"] + "/__proxy__/enables")):
    print(f'  EnableMFADevice {e["serial"]} for {e["user"]}: {"accepted" if e["accepted"] else "REFUSED"}')
PY
