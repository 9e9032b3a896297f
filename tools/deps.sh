#!/usr/bin/env bash
# deps.sh — install the Debian packages unifork builds and tests with.
# Idempotent: asks dpkg what is missing, installs only that, and says what.
set -euo pipefail

PKGS=(
	build-essential clang llvm libclang-rt-14-dev   # compilers, libFuzzer, sanitizers
	linux-libc-dev                                  # KVM headers
	libuv1-dev node-llhttp libjansson-dev           # gateway
	liburing-dev protobuf-c-compiler libprotobuf-c-dev
	libseccomp-dev
	linux-source-6.1 bc flex bison libelf-dev libssl-dev xz-utils cpio  # guest kernel
	qemu-system-x86                                 # the KVM sandbox and the QEMU peer
	python3 jq curl                                 # test and bench scripts
	libpython3.11-dev python3.11 zlib1g-dev         # the python runtime (embedded; stdlib packed into the guest); packages
	wrk gnuplot-nox criu                            # benchmarks and their peers
)

missing=()
for p in "${PKGS[@]}"; do
	[ "${p:0:1}" = "#" ] && continue
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = "installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/unifork-deps.log 2>&1; then
	$SUDO apt-get update >>/tmp/unifork-deps.log 2>&1 || true
	$SUDO apt-get install -y --no-install-recommends "${missing[@]}" >>/tmp/unifork-deps.log 2>&1 || {
		echo "deps: apt-get install failed; see /tmp/unifork-deps.log" >&2
		tail -5 /tmp/unifork-deps.log >&2
		exit 1
	}
fi
