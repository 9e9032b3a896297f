#!/usr/bin/env bash
# runtimes.sh — the agent's function runtimes (native, python, exec) in a
# real guest booted with the python initramfs: Init + Invoke per runtime,
# init failures, crashes, and the template chain base -> runtime ->
# function through snapshots (build/tests/runtime-itest).  Run through
# tools/kvm-run:  tools/kvm-run --timeout 900 -- tests/integration/runtimes.sh
# Needs `make all` (kernel, initramfs-python.cpio, build/functions).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec build/tests/runtime-itest build/guest/vmlinux build/guest/initramfs-python.cpio \
	build/functions "$@"
