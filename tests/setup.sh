#!/usr/bin/env bash
# Installs what the test stack needs on a fresh Debian machine, as root, and
# nothing else. Safe to run again: it only installs what is missing.
#
#   Debian: pcscd (PC/SC daemon), vsmartcard-vpcd (virtual reader driver),
#           libpcsclite-dev + pkgconf (build of the `pcsc` crate), libudev-dev
#           (hidapi, for FIDO2), python3-venv (venv for the system python);
#           for the FIDO2 guest (tests/fido2-vm): qemu-system-x86,
#           busybox-static, cpio, python3-fido2 (the independent CTAP2
#           client, run by Debian's /usr/bin/python3 inside the guest);
#           for tests/ship.sh: dpkg-dev (cargo-deb's dpkg-shlibdeps), man-db
#           (`man -w`), binutils (`strings`, `readelf`).
#   venv:   ${MFAKEY_VENV:-<repo>/.venv} with yubikey-manager (ykman, the
#           independent OATH client) and moto[server] (IAM stand-in).
#
# Output stays quiet; when a step fails its log is printed.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${MFAKEY_VENV:-$REPO/.venv}
YKMAN_VERSION=5.9.2
MOTO_VERSION=5.2.5
APT_PACKAGES=(pcscd libpcsclite-dev pkgconf vsmartcard-vpcd libudev-dev python3-venv
    qemu-system-x86 busybox-static cpio python3-fido2
    dpkg-dev man-db binutils)

LOG=$(mktemp -t mfakey-setup.XXXXXX)
trap 'rm -f "$LOG"' EXIT

say() { printf 'setup: %s\n' "$*"; }

# Runs a command with its output in $LOG; on failure prints the log and stops.
quiet() {
    if ! "$@" >"$LOG" 2>&1; then
        printf 'setup: FAILED: %s\n' "$*" >&2
        tail -n 60 "$LOG" >&2
        exit 1
    fi
}

missing_packages() {
    local p
    for p in "${APT_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            printf '%s\n' "$p"
        fi
    done
}

install_apt() {
    local missing
    mapfile -t missing < <(missing_packages)
    if [ ${#missing[@]} -eq 0 ]; then
        say "apt packages present"
        return
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: missing Debian packages (${missing[*]}); run this script as root" >&2
        exit 1
    fi
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    quiet apt-get update -qq
    quiet apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

venv_is_current() {
    [ -x "$VENV/bin/python" ] && [ -x "$VENV/bin/ykman" ] && [ -x "$VENV/bin/moto_server" ] &&
        "$VENV/bin/python" - "$YKMAN_VERSION" "$MOTO_VERSION" <<'PY' >/dev/null 2>&1
import sys, importlib.metadata as m
assert m.version("yubikey-manager") == sys.argv[1]
assert m.version("moto") == sys.argv[2]
import flask, ykman, smartcard  # moto's server extra, ykman and its PC/SC binding
PY
}

# The first python3 whose venv module works (pyenv's, else Debian's).
pick_python() {
    local py
    for py in "${PYTHON:-}" python3 /usr/bin/python3; do
        [ -n "$py" ] || continue
        command -v "$py" >/dev/null 2>&1 || continue
        if "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
            printf '%s\n' "$py"
            return
        fi
    done
    echo "setup: no python3 with a working venv module (install python3-venv)" >&2
    exit 1
}

install_venv() {
    if venv_is_current; then
        say "venv current: $VENV"
        return
    fi
    local py
    py=$(pick_python)
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating venv $VENV with $("$py" --version 2>&1)"
        quiet "$py" -m venv "$VENV"
    fi
    say "installing yubikey-manager==$YKMAN_VERSION moto[server]==$MOTO_VERSION (pyscard may build from source)"
    quiet "$VENV/bin/python" -m pip install --disable-pip-version-check -q \
        "yubikey-manager==$YKMAN_VERSION" "moto[server]==$MOTO_VERSION"
    if ! venv_is_current; then
        echo "setup: venv $VENV is incomplete after install" >&2
        exit 1
    fi
}

install_apt
install_venv
say "done"
