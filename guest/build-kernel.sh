#!/usr/bin/env bash
# build-kernel.sh — build (or fetch from the cache) the unifork guest kernel.
#
#   guest/build-kernel.sh [OUTDIR]        (OUTDIR defaults to build/guest)
#
# The kernel is `make tinyconfig` on Debian's linux-source-6.1 plus the
# fragment guest/kernel.config.  Builds are cached outside the work tree in
#   $UNIFORK_CACHE/kernel/<key>/{vmlinux,bzImage,System.map,config,build.log}
# where <key> hashes the linux-source package version, the compiler version,
# the fragment and this script.  A cache hit does no unpacking and no make:
# it only (re)points OUTDIR/{vmlinux,bzImage,System.map,kernel.config} at the
# entry.  A miss builds in $UNIFORK_CACHE/kernel/.tmp-<key>.*, and the entry
# appears by an atomic rename only when everything (including the check that
# every fragment option reached .config) succeeded.
set -euo pipefail

die() { echo "kernel: $*" >&2; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
frag="$here/kernel.config"
self="$here/$(basename "${BASH_SOURCE[0]}")"
outdir=${1:-build/guest}
cache=${UNIFORK_CACHE:-$HOME/.cache/unifork}
pkg=linux-source-6.1
tarball=/usr/src/linux-source-6.1.tar.xz
karch=x86_64

# Keep the caller's make (command-line variables such as CFLAGS=, -n, -j,
# SAN=1) out of the kernel's own build.
unset MAKEFLAGS MFLAGS MAKEOVERRIDES MAKELEVEL ARCH CROSS_COMPILE LLVM O KBUILD_OUTPUT || true

[ -f "$frag" ] || die "missing config fragment $frag"
pkgver=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || true)
st=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
if [ "$st" != installed ] || [ -z "$pkgver" ] || [ ! -f "$tarball" ]; then
	die "$pkg not installed (need $tarball); run make deps"
fi
ccver=$(gcc -dumpfullversion 2>/dev/null || true)
[ -n "$ccver" ] || die "gcc not found; run make deps"

key=$( {
	printf 'pkg %s %s\n' "$pkg" "$pkgver"
	printf 'gcc %s\n' "$ccver"
	printf 'fragment\n'; cat "$frag"
	printf 'script\n'; cat "$self"
} | sha256sum | cut -c1-20)

kcache="$cache/kernel"
entry="$kcache/$key"

link_outputs() {
	mkdir -p "$outdir"
	local f
	for f in vmlinux bzImage System.map; do
		ln -sfn "$entry/$f" "$outdir/$f"
	done
	ln -sfn "$entry/config" "$outdir/kernel.config"
}

print_sizes() {
	local v b
	v=$(stat -L -c %s "$entry/vmlinux")
	b=$(stat -L -c %s "$entry/bzImage")
	printf 'kernel: %s  vmlinux %d bytes (%.1f MB), bzImage %d bytes (%.2f MB)\n' \
		"$key" "$v" "$(echo "$v/1048576" | bc -l)" "$b" "$(echo "$b/1048576" | bc -l)"
}

is_complete() { [ -f "$entry/vmlinux" ] && [ -f "$entry/bzImage" ] && [ -f "$entry/config" ]; }

if is_complete; then
	link_outputs
	print_sizes
	exit 0
fi

mkdir -p "$kcache"
# One builder per key: a second `make kernel` (another checkout, another
# shell) waits here and then finds the entry.
exec 9>"$kcache/.lock-$key"
if ! flock -n 9; then
	echo "kernel: another build of $key is running; waiting for it"
	flock 9
fi
if is_complete; then
	link_outputs
	print_sizes
	exit 0
fi

# The outputs must not keep pointing at an older kernel while (or if) this
# one fails to build.
rm -f "$outdir/vmlinux" "$outdir/bzImage" "$outdir/System.map" "$outdir/kernel.config"

for tool in make bc flex bison xz perl; do
	command -v "$tool" >/dev/null || die "$tool not found; run make deps"
done

# A directory without the three files is debris (e.g. removed by hand):
# it is not an entry and must not block the rename below.
[ -e "$entry" ] && rm -rf "$entry"
tmp=$(mktemp -d "$kcache/.tmp-$key.XXXXXX")
show_log=1
failed_log="$kcache/$key.failed.log"
cleanup() {
	local rc=$?
	if [ $rc -ne 0 ] && [ -f "$tmp/out/build.log" ]; then
		# Keep the log of a failed build; it is not a cache entry.
		cp "$tmp/out/build.log" "$failed_log" 2>/dev/null || true
		if [ "$show_log" = 1 ]; then
			echo "kernel: build failed; last lines of the log ($failed_log):" >&2
			tail -n 25 "$failed_log" >&2 || true
		fi
	fi
	rm -rf "$tmp"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

src="$tmp/src"
out="$tmp/out"
log="$out/build.log"
mkdir -p "$src" "$out"
jobs=$(nproc)
start=$(date +%s)
echo "kernel: cache miss for $key; building $pkg $pkgver (-j$jobs, log: $log)"
{
	echo "# unifork guest kernel $key"
	echo "# $pkg $pkgver, gcc $ccver, ARCH=$karch, -j$jobs"
} >"$log"

step() { echo "kernel: $*"; echo "### $*" >>"$log"; }

step "unpacking $tarball"
tar -xf "$tarball" -C "$src" --strip-components=1 >>"$log" 2>&1

# Reproducible build metadata: same inputs, same image.
kmake() {
	make -C "$src" ARCH="$karch" CROSS_COMPILE= \
		KBUILD_BUILD_USER=unifork KBUILD_BUILD_HOST=unifork \
		KBUILD_BUILD_TIMESTAMP='Thu Jan  1 00:00:00 UTC 1970' KBUILD_BUILD_VERSION=1 \
		"$@" >>"$log" 2>&1
}

step "configuring: tinyconfig + $(basename "$frag")"
kmake tinyconfig
(cd "$src" && ARCH="$karch" scripts/kconfig/merge_config.sh -m .config "$frag") >>"$log" 2>&1
kmake olddefconfig

# Every line of the fragment must have survived olddefconfig: Kconfig drops
# assignments whose dependencies are unmet without failing.
bad=0
while IFS= read -r line; do
	if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
		sym=${BASH_REMATCH[1]}
		if ! grep -qxF -- "$line" "$src/.config"; then
			got=$(grep -E "^(# )?${sym}[= ]" "$src/.config" || echo "absent")
			echo "kernel: fragment wants $line, .config has: $got" >&2
			bad=1
		fi
	elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
		sym=${BASH_REMATCH[1]}
		if got=$(grep -E "^$sym=" "$src/.config"); then
			echo "kernel: fragment wants $sym off, .config has: $got" >&2
			bad=1
		fi
	fi
done <"$frag"
show_log=0
[ $bad -eq 0 ] || die "config fragment not fully applied (see above); fix guest/kernel.config"
echo "kernel: all $(grep -cE '^(CONFIG_|# CONFIG_.* is not set)' "$frag") fragment options verified"

show_log=1
step "compiling vmlinux + bzImage"
if ! kmake -j"$jobs" vmlinux bzImage; then
	die "make failed"
fi

cp "$src/vmlinux" "$out/vmlinux"
cp "$src/arch/x86/boot/bzImage" "$out/bzImage"
cp "$src/System.map" "$out/System.map"
cp "$src/.config" "$out/config"
end=$(date +%s)
echo "# built in $((end - start)) s" >>"$log"
rm -rf "$src"

# Atomic publish: the entry either does not exist or is complete.
mv -T "$out" "$entry"
rm -f "$failed_log"
echo "kernel: built in $((end - start)) s"
link_outputs
print_sizes
