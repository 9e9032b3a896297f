#!/usr/bin/env bash
# snapshot.sh — VM snapshots against a real guest (build/tests/snap-itest):
# boot, snapshot, restore new VMs (also two at once), talk to their agents
# over vsock, snapshot a restored VM, refuse damaged snapshots.  Run through
# tools/kvm-run.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec build/tests/snap-itest build/guest/vmlinux build/guest/initramfs.cpio "$@"
