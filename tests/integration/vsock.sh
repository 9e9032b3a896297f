#!/usr/bin/env bash
# vsock.sh — the virtio-vsock device and agent protocol against a real guest
# (build/tests/vsock-itest).  Run through tools/kvm-run.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec build/tests/vsock-itest build/guest/vmlinux build/guest/initramfs.cpio "$@"
