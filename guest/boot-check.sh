#!/usr/bin/env bash
# boot-check.sh — boot the guest kernel under QEMU microvm with a test /init.
#
#   guest/boot-check.sh [GBUILD]          (GBUILD defaults to build)
#
# Builds guest/test/hello-init.c twice (static, and dynamic so that the
# initramfs carries an ldd closure), packs each with guest/mkinitramfs and
# boots $GBUILD/guest/vmlinux through its PVH entry.  Passes when the init
# prints "boot-check: PASSED" and QEMU exits by itself (the init reboots,
# -no-reboot turns that into an exit).  QEMU runs in TCG here when /dev/kvm
# cannot run a Linux guest; that is slow but fine for a functional check.
set -euo pipefail

die() { echo "boot-check: $*" >&2; exit 1; }

gbuild=${1:-build}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kernel="$gbuild/guest/vmlinux"
work="$gbuild/guest/boot-check"
qemu=${QEMU:-qemu-system-x86_64}
timeout_s=${BOOT_CHECK_TIMEOUT:-180}

[ -e "$kernel" ] || die "$kernel missing; run make kernel"
command -v "$qemu" >/dev/null || die "$qemu not found; run make deps"
mkdir -p "$work"

# TCG explicitly: the development hosts' /dev/kvm cannot run a Linux guest
# (DESIGN.md §1), and TCG keeps the check independent of the host.
# shellcheck disable=SC2054  # the commas are QEMU option syntax
qemu_args=(-accel tcg -M microvm,x-option-roms=off,isa-serial=on,rtc=off -cpu max -m 128
	-nodefaults -no-user-config -nographic -serial stdio -no-reboot)
cmdline="console=ttyS0 panic=-1 reboot=t rdinit=/init"

rc=0
for kind in static dynamic; do
	flags=()
	[ "$kind" = static ] && flags=(-static)
	gcc -O2 -Wall -Werror "${flags[@]}" -o "$work/hello-init-$kind" "$here/test/hello-init.c" \
		|| die "cannot compile hello-init ($kind)"
	"$here/mkinitramfs" -o "$work/$kind.cpio" --init "$work/hello-init-$kind" >/dev/null
	log="$work/$kind.log"
	start=$(date +%s%N)
	set +e
	timeout "$timeout_s" "$qemu" "${qemu_args[@]}" -kernel "$kernel" \
		-initrd "$work/$kind.cpio" -append "$cmdline" </dev/null >"$log" 2>&1
	qrc=$?
	set -e
	ms=$(( ($(date +%s%N) - start) / 1000000 ))
	if [ $qrc -eq 0 ] && grep -q '^boot-check: PASSED' "$log"; then
		inside=$(sed -n 's/^hello from init .*, \([0-9.]*\) s after boot)/\1/p' "$log" | tr -d '\r')
		echo "boot-check: $kind init: PASSED, QEMU exited by itself after ${ms} ms wall (guest clock at /init: ${inside:-?} s)"
	else
		[ $qrc -eq 124 ] && echo "boot-check: $kind init: QEMU did not exit within ${timeout_s}s" >&2
		echo "boot-check: $kind init: FAILED (qemu rc $qrc); last lines of $log:" >&2
		tail -n 20 "$log" | tr -d '\r' >&2
		rc=1
	fi
done
exit $rc
