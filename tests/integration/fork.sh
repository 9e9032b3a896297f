#!/usr/bin/env bash
# fork.sh — copy-on-write clones of a snapshotted guest (build/tests/fork-itest).
# Run through tools/kvm-run.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec build/tests/fork-itest build/guest/vmlinux build/guest/initramfs.cpio "$@"
