#!/usr/bin/env bash
# FIDO2 over a real kernel HID path: boots Debian's own kernel in a small QEMU
# guest (this machine has no USB and no UHID; the guest has both), starts the
# software CTAP2 authenticator on /dev/uhid there, and runs the real mfakey
# binary against the /dev/hidraw node the kernel makes for it
# (tests/fido2-vm/scenarios.py). The guest shares this machine's root
# read-only over 9p, so host-built binaries and Debian's python3-fido2 run
# unchanged. Exits 0 only when the guest reports that every scenario passed.
#
#   tests/fido2-vm/run.sh            build what is missing, boot, run
#
# Needs (tests/setup.sh installs them): qemu-system-x86, busybox-static,
# cpio, python3-fido2, and root (QEMU exports / read-only over 9p).
# Caches the kernel package under $CARGO_TARGET_DIR/fido2-vm (default
# target/fido2-vm). MFAKEY_VM_TIMEOUT (seconds, default 600) bounds QEMU.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
case "$TARGET" in /*) ;; *) TARGET=$REPO/$TARGET ;; esac
WORK=$TARGET/fido2-vm
TIMEOUT=${MFAKEY_VM_TIMEOUT:-600}

say() { echo "fido2-vm: $*" >&2; }
die() { say "$*"; exit 1; }

case "$REPO$TARGET" in *[[:space:]]*) die "the repository and target paths must not contain spaces (they go on the guest kernel's command line)" ;; esac
[ "$(id -u)" = 0 ] || die "run as root (QEMU shares / over 9p and must read all of it; the guest runs as root)"
for tool in qemu-system-x86_64 cpio gzip apt-get dpkg-deb; do
    command -v "$tool" >/dev/null || die "$tool is missing: run tests/setup.sh"
done
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed' \
    || die "busybox-static is missing (the guest's /bin/busybox): run tests/setup.sh"
/usr/bin/python3 -c 'import fido2' 2>/dev/null || die "Debian's python3-fido2 is missing: run tests/setup.sh"
mkdir -p "$WORK"

# --- Debian's kernel and the modules the guest loads ------------------------
# Unpacked from the package in a temp dir (never installed into the host's
# /boot); only vmlinuz and the modules are kept, in $WORK/<package>. The
# package ships no modules.dep; each module's own `depends=` (from its
# .modinfo section) gives the load order.
PKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$PKG" ] || die "apt knows no linux-image-amd64 (apt-get update?)"
KVER=${PKG#linux-image-}
KDIR=$WORK/$PKG
if [ ! -f "$KDIR/modules/order" ]; then
    say "fetching $PKG"
    rm -rf "$KDIR"
    unpack=$(mktemp -d)
    trap 'rm -rf "$unpack"' EXIT
    chmod 755 "$unpack" # apt-get download runs as _apt, which must write here
    (cd "$unpack" && apt-get download -q "$PKG" >/dev/null 2>&1) || die "apt-get download $PKG failed"
    dpkg-deb -x "$unpack"/"$PKG"_*.deb "$unpack/root"
    MODDIR=$unpack/root/lib/modules/$KVER
    declare -A SEEN=()
    ORDER=()
    modfile() { find "$MODDIR/kernel" \( -name "$1.ko" -o -name "${1//_/-}.ko" \) -print -quit; }
    add_module() {
        local name=${1//-/_} file dep
        [ -n "${SEEN[$name]:-}" ] && return 0
        SEEN[$name]=1
        file=$(modfile "$name")
        [ -n "$file" ] || die "module $1 is not in $PKG"
        for dep in $(tr '\0' '\n' <"$file" | sed -n 's/^depends=//p' | tr ',' ' '); do
            add_module "$dep"
        done
        ORDER+=("$name")
    }
    # 9p over virtio for the host root; then hid, hid-generic, uhid in that
    # order (an authenticator that opens /dev/uhid before hid-generic is
    # loaded never gets its device bound).
    for m in virtio_pci 9pnet_virtio 9p hid hid_generic uhid; do add_module "$m"; done
    mkdir -p "$KDIR.new/modules"
    cp "$unpack/root/boot/vmlinuz-$KVER" "$KDIR.new/vmlinuz"
    for m in "${ORDER[@]}"; do cp "$(modfile "$m")" "$KDIR.new/modules/$m.ko"; done
    printf '%s\n' "${ORDER[@]}" >"$KDIR.new/modules/order"
    mv "$KDIR.new" "$KDIR"
    rm -rf "$unpack"
    trap - EXIT
fi

# --- the binaries: mfakey (the program under test) and the authenticator ---
# The authenticator is AGPL (soft-fido2) and a test peer: mfakey never links it.
if cargo tree --quiet --prefix none --edges normal,build 2>/dev/null | grep -q '^soft-fido2'; then
    die "mfakey's dependency tree contains soft-fido2: the test authenticator must stay a separate program"
fi
say "building mfakey and the test authenticator"
cargo build --quiet --bin mfakey
MFAKEY=$TARGET/debug/mfakey
cargo build --quiet --locked --manifest-path tests/fido2-vm/authenticator/Cargo.toml --target-dir "$WORK/authenticator"
AUTH=$WORK/authenticator/debug/mfakey-test-authenticator

# --- initramfs: static busybox, our init, the modules ----------------------
RAMFS=$WORK/initramfs
rm -rf "$RAMFS"
mkdir -p "$RAMFS"/{bin,dev,proc,sys}
cp /bin/busybox "$RAMFS/bin/busybox"
cp tests/fido2-vm/init "$RAMFS/init"
chmod 755 "$RAMFS/init"
cp -r "$KDIR/modules" "$RAMFS/modules"
(cd "$RAMFS" && find . | cpio -o -H newc --quiet | gzip -1) >"$WORK/initramfs.gz"

# --- acceleration: TCG unless real VT-x/AMD-V (the paravirtual kvm_pvm here
# opens /dev/kvm fine and then cannot boot a stock kernel) --------------------
ACCEL=tcg
if [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo && [ ! -d /sys/module/kvm_pvm ]; then
    ACCEL=kvm
fi

LOG=$WORK/console.log
say "booting $KVER under $ACCEL (timeout ${TIMEOUT} s; console in $LOG)"
start=$(date +%s%N)
set +e
timeout --kill-after=10 "$TIMEOUT" qemu-system-x86_64 \
    -accel "$ACCEL" -m 1024 -smp 2 \
    -display none -monitor none -serial stdio -no-reboot \
    -kernel "$KDIR/vmlinuz" -initrd "$WORK/initramfs.gz" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 mfakey.repo=$REPO mfakey.bin=$MFAKEY mfakey.auth=$AUTH" \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
    </dev/null 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
elapsed="$((elapsed / 1000)).$(printf %03d $((elapsed % 1000)))"

case "$status" in
1) say "PASS: every guest scenario passed (${elapsed} s from QEMU start to power-off)"; exit 0 ;;
0) die "the guest powered off without a status (boot or init failure; see $LOG)" ;;
124 | 137) die "QEMU did not finish within ${TIMEOUT} s (see $LOG)" ;;
*)
    if [ $((status % 2)) = 1 ]; then
        die "the guest reported status $(((status - 1) / 2)) (see the scenario lines above)"
    fi
    die "QEMU failed with status $status (see $LOG)"
    ;;
esac
