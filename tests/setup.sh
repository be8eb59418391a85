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
#           chromium (a real browser for the audit's HTML page, headless).
#           for tests/ship.sh: dpkg-dev (cargo-deb's dpkg-shlibdeps), man-db
#           (`man -w`), binutils (`strings`, `readelf`).
#   venv:   ${MFAKEY_VENV:-<repo>/.venv} with yubikey-manager (ykman, the
#           independent OATH client) and moto[server] (IAM stand-in).
#   fuzzing: the nightly toolchain and cargo-fuzz (tests/fuzz.sh); g++
#           builds libFuzzer.
#
# It also disables the system-wide vpcd reader that vsmartcard-vpcd
# registers (/etc/reader.conf.d/vpcd): with it a system pcscd listens on
# 0.0.0.0:35963 and anyone who reaches that port can present a card. The
# test stack runs its own pcscd with its own reader.conf.d and needs none.
#
# Output stays quiet; when a step fails its log is printed.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${MFAKEY_VENV:-$REPO/.venv}
YKMAN_VERSION=5.9.2
MOTO_VERSION=5.2.5
APT_PACKAGES=(pcscd libpcsclite-dev pkgconf vsmartcard-vpcd libudev-dev python3-venv
    qemu-system-x86 busybox-static cpio python3-fido2 chromium g++ iproute2
    dpkg-dev man-db binutils)
CARGO_FUZZ_VERSION=0.13.2
VPCD_CONF=/etc/reader.conf.d/vpcd
VPCD_CONF_ASIDE=/etc/vsmartcard-vpcd.reader.conf.disabled-by-mfakey
VPCD_PORT=35963

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

# The package's reader entry is diverted out of /etc/reader.conf.d (a
# dpkg diversion: upgrades install it aside too), then checked: no system
# reader configuration loads the vpcd driver, and no pcscd started from the
# system configuration listens on vpcd's port.
disable_system_vpcd() {
    if [ -e "$VPCD_CONF" ] || ! dpkg-divert --list "$VPCD_CONF" | grep -q .; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "setup: $VPCD_CONF enables a system-wide virtual reader; run this script as root to disable it" >&2
            exit 1
        fi
        quiet dpkg-divert --local --rename --divert "$VPCD_CONF_ASIDE" --add "$VPCD_CONF"
        say "system-wide vpcd reader disabled ($VPCD_CONF moved to $VPCD_CONF_ASIDE)"
    fi
    local loaded
    loaded=$(grep -ls 'libifdvpcd' /etc/reader.conf.d/* 2>/dev/null || true)
    if [ -n "$loaded" ]; then
        echo "setup: FAILED: the system pcscd configuration still loads the vpcd driver: $loaded" >&2
        exit 1
    fi
    local pid
    for pid in $(ss -Hltnp "sport = :$VPCD_PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
        # A pcscd given its own configuration (-c), like the test stack's, is not the system's.
        if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -Eq -- '(^| )(-c|--config)( |=)'; then
            continue
        fi
        if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet pcscd.service; then
            quiet systemctl restart pcscd.service
            say "restarted the system pcscd without the vpcd reader"
        else
            echo "setup: FAILED: a pcscd started from the system configuration (pid $pid) listens on port $VPCD_PORT; restart it so it drops the vpcd reader" >&2
            exit 1
        fi
    done
    say "no system-wide virtual reader"
}

# The nightly toolchain and cargo-fuzz, for tests/fuzz.sh (and tests/run.sh's short fuzz runs).
install_fuzz() {
    if ! cargo +nightly --version >/dev/null 2>&1; then
        say "installing the nightly toolchain"
        quiet rustup toolchain install nightly --profile minimal
    fi
    if ! cargo +nightly fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
        say "installing cargo-fuzz $CARGO_FUZZ_VERSION (about 2 minutes)"
        quiet cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
    fi
    say "nightly and cargo-fuzz present"
}

install_apt
disable_system_vpcd
install_venv
install_fuzz
say "done"
