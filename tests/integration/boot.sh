#!/usr/bin/env bash
# boot.sh — the VMM boots the unikernelized guest to the agent's ready
# signal and a clean exit, and refuses bad input with one clear line.
# Runs where /dev/kvm runs Linux guests: through tools/kvm-run (the probe's
# choice: hardware KVM, or the sandbox).
. "$(dirname "$0")/lib.sh"

t_boot_to_ready_and_clean_exit() {
	expect_rc 0 "$UFVM" boot --kernel "$KERNEL" --initrd "$INITRD" --append "uf_poweroff=1 uf_report=1" --timeout 120 || return 1
	expect_out 'uf-vm: agent ready after [0-9.]+ ms' || return 1
	expect_out 'exit="guest exited with status 0"' || return 1
	# kvm-clock is what snapshots restore: the guest must have picked it.
	expect_out 'agent: clocksource=kvm-clock' || return 1
}

t_boot_bzimage() {
	expect_rc 0 "$UFVM" boot --kernel "$B/guest/bzImage" --initrd "$INITRD" --append uf_poweroff=1 --timeout 120 || return 1
	expect_out 'agent ready after'
}

t_console_to_file() {
	expect_rc 0 "$UFVM" boot --kernel "$KERNEL" --initrd "$INITRD" --append "uf_poweroff=1 uf_report=1" \
		--console "$WORK/console.log" --timeout 120 || return 1
	grep -q 'agent: clocksource=' "$WORK/console.log" || fail "console file lacks the agent's line"
}

t_invoke_over_vsock() {
	expect_rc 0 "$UFVM" boot --kernel "$KERNEL" --initrd "$INITRD" --invoke "ping-$$-pong" --timeout 120 || return 1
	expect_out "^ping-$$-pong\$" || return 1
	expect_out 'answered 200 with [0-9]+ bytes'
}

t_missing_kernel() {
	expect_rc 1 "$UFVM" boot --kernel "$WORK/nope" --initrd "$INITRD" || return 1
	expect_out "kernel $WORK/nope: No such file or directory"
}

t_corrupt_kernel() {
	head -c 2000000 /dev/urandom >"$WORK/garbage"
	expect_rc 1 "$UFVM" boot --kernel "$WORK/garbage" --initrd "$INITRD" || return 1
	expect_out 'neither an ELF vmlinux nor a bzImage'
}

t_truncated_kernel() {
	head -c 3000000 "$KERNEL" >"$WORK/trunc"
	expect_rc 1 "$UFVM" boot --kernel "$WORK/trunc" --initrd "$INITRD" || return 1
	expect_out 'outside the file \(truncated\?\)'
}

t_initrd_larger_than_memory() {
	truncate -s 100M "$WORK/big.cpio"
	expect_rc 1 "$UFVM" boot --kernel "$KERNEL" --initrd "$WORK/big.cpio" --mem 64 || return 1
	expect_out 'initrd of [0-9]+ KiB does not fit in 64 MiB of guest memory'
}

t_too_little_memory() {
	expect_rc 1 "$UFVM" boot --kernel "$KERNEL" --initrd "$INITRD" --mem 8 || return 1
	expect_out 'guest memory of 8 MiB is outside'
}

t_never_ready_times_out() {
	expect_rc 4 "$UFVM" boot --kernel "$KERNEL" --initrd "$INITRD" --append uf_hang=1 --timeout 20 || return 1
	expect_out 'agent not ready after 20.0 s'
}

t_no_init_is_a_crash_before_ready() {
	expect_rc 3 "$UFVM" boot --kernel "$KERNEL" --initrd "$INITRD" --append "rdinit=/nonexistent init=/nonexistent" --timeout 120 || return 1
	expect_out 'guest reset before the agent was ready'
}

run_tests t_boot_to_ready_and_clean_exit t_boot_bzimage t_console_to_file t_invoke_over_vsock t_missing_kernel \
	t_corrupt_kernel t_truncated_kernel t_initrd_larger_than_memory t_too_little_memory \
	t_never_ready_times_out t_no_init_is_a_crash_before_ready
