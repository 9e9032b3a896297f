/* probe.h — decide whether /dev/kvm is hardware KVM or something slower.
 *
 * The probe opens /dev/kvm, builds a one-page 64-bit guest whose CPL0 code
 * counts a register down and then writes to an I/O port, and times KVM_RUN
 * up to that exit.  Hardware (or nested hardware) KVM runs the loop natively
 * in microseconds; kvm-pvm emulates CPL0 code at ~1 MIPS and needs hundreds
 * of milliseconds.  A watchdog bounds every run, so the probe never hangs.
 *
 * Used by build/bin/kvm-probe (tools/kvm-run's decision) and by anything
 * that wants to report the KVM mode (e.g. runtimed's /v1/info).
 */
#ifndef UNIFORK_TOOLS_SANDBOX_PROBE_H
#define UNIFORK_TOOLS_SANDBOX_PROBE_H

#include <stdbool.h>
#include <stddef.h>

/* Iterations of the CPL0 count-down loop. */
#define KVM_PROBE_ITERATIONS 100000u
/* Loop times above this (in ns for the whole loop) are "slow": hardware
 * finishes 100000 iterations in well under 1 ms (the nested KVM inside the
 * TCG sandbox in ~0.5 ms), kvm-pvm in ~46 ms (measured). */
#define KVM_PROBE_SLOW_NS (10u * 1000u * 1000u)
/* The whole guest run is interrupted after this long. */
#define KVM_PROBE_WATCHDOG_MS 1500u

enum kvm_probe_verdict {
	KVM_PROBE_HARDWARE = 0,
	KVM_PROBE_ABSENT,     /* no /dev/kvm */
	KVM_PROBE_NO_PERM,    /* /dev/kvm exists but may not be opened */
	KVM_PROBE_PVM,        /* kvm_pvm loaded, or CPL0 loop slow */
	KVM_PROBE_BROKEN,     /* an ioctl or the guest misbehaved */
	KVM_PROBE_INTERNAL,   /* the probe itself failed (mmap, signals) */
};

struct kvm_probe_result {
	enum kvm_probe_verdict verdict;
	bool pvm_module;          /* /sys/module/kvm_pvm exists */
	int api_version;          /* KVM_GET_API_VERSION, -1 if unknown */
	bool loop_ran;            /* loop_ns is valid */
	bool loop_timed_out;      /* the watchdog fired before the loop ended */
	unsigned long long loop_ns;   /* KVM_RUN time for the counted loop */
	unsigned long long setup_ns;  /* create VM .. first exit */
	unsigned iterations;
	char what[192];           /* for BROKEN/INTERNAL: what failed */
};

/* Runs the probe on `dev` (normally "/dev/kvm"); `sysmod` is the directory
 * in which a kvm_pvm entry marks kvm-pvm (normally "/sys/module").  Always
 * fills *res; returns res->verdict. */
enum kvm_probe_verdict kvm_probe_run(const char *dev, const char *sysmod,
				     struct kvm_probe_result *res);

/* Fills res->verdict from the other fields (no I/O): the policy part of
 * kvm_probe_run, separate so it can be tested. */
void kvm_probe_classify(struct kvm_probe_result *res);

/* Writes the one-line verdict ("hardware", "sandbox: pvm (...)", ...)
 * without a newline.  Returns the snprintf-style length. */
int kvm_probe_format(const struct kvm_probe_result *res, char *buf, size_t len);

/* The exit status kvm-probe uses: 0 hardware, 2 internal, else 1. */
int kvm_probe_exit_status(const struct kvm_probe_result *res);

#endif
