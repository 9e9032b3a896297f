/* test_probe.c — the KVM probe's policy (tools/sandbox/probe.c): which
 * measurements mean hardware, pvm or broken, and the one-line verdicts
 * tools/kvm-run reads. */
#include "tests/unit/ut.h"
#include "tools/sandbox/probe.h"

#include <string.h>
#include <unistd.h>

static struct kvm_probe_result base_result(void)
{
	struct kvm_probe_result r;
	memset(&r, 0, sizeof(r));
	r.verdict = KVM_PROBE_BROKEN;
	r.api_version = 12;
	r.iterations = KVM_PROBE_ITERATIONS;
	return r;
}

UT_TEST(probe_fast_loop_is_hardware)
{
	struct kvm_probe_result r = base_result();
	r.loop_ran = true;
	r.loop_ns = 80 * 1000; /* 0.08 ms */
	kvm_probe_classify(&r);
	UT_EQ(r.verdict, KVM_PROBE_HARDWARE);
	char buf[256];
	kvm_probe_format(&r, buf, sizeof(buf));
	UT_ASSERT(strcmp(buf, "hardware") == 0);
	UT_EQ(kvm_probe_exit_status(&r), 0);
}

UT_TEST(probe_slow_loop_is_pvm_with_figure)
{
	struct kvm_probe_result r = base_result();
	r.loop_ran = true;
	r.loop_ns = 47 * 1000 * 1000; /* kvm-pvm measured ~46 ms */
	kvm_probe_classify(&r);
	UT_EQ(r.verdict, KVM_PROBE_PVM);
	char buf[256];
	kvm_probe_format(&r, buf, sizeof(buf));
	UT_ASSERT(strncmp(buf, "sandbox: pvm (", 14) == 0);
	UT_ASSERT(strstr(buf, "47.000 ms") != NULL);
	UT_EQ(kvm_probe_exit_status(&r), 1);
}

UT_TEST(probe_pvm_module_wins_over_fast_loop)
{
	struct kvm_probe_result r = base_result();
	r.pvm_module = true;
	r.loop_ran = true;
	r.loop_ns = 1000;
	kvm_probe_classify(&r);
	UT_EQ(r.verdict, KVM_PROBE_PVM);
	char buf[256];
	kvm_probe_format(&r, buf, sizeof(buf));
	UT_ASSERT(strstr(buf, "kvm_pvm module loaded") != NULL);
}

UT_TEST(probe_watchdog_means_slow)
{
	struct kvm_probe_result r = base_result();
	r.loop_timed_out = true;
	kvm_probe_classify(&r);
	UT_EQ(r.verdict, KVM_PROBE_PVM);
	char buf[256];
	kvm_probe_format(&r, buf, sizeof(buf));
	UT_ASSERT(strstr(buf, "did not finish") != NULL);
}

UT_TEST(probe_failure_is_broken_with_reason)
{
	struct kvm_probe_result r = base_result();
	snprintf(r.what, sizeof(r.what), "KVM_RUN: Invalid argument");
	kvm_probe_classify(&r);
	UT_EQ(r.verdict, KVM_PROBE_BROKEN);
	char buf[256];
	kvm_probe_format(&r, buf, sizeof(buf));
	UT_ASSERT(strcmp(buf, "sandbox: broken: KVM_RUN: Invalid argument") == 0);
	UT_EQ(kvm_probe_exit_status(&r), 1);
}

UT_TEST(probe_absent_device)
{
	struct kvm_probe_result r;
	kvm_probe_run("/nonexistent/kvm", "/nonexistent", &r);
	UT_EQ(r.verdict, KVM_PROBE_ABSENT);
	char buf[256];
	kvm_probe_format(&r, buf, sizeof(buf));
	UT_ASSERT(strcmp(buf, "sandbox: absent") == 0);
}

UT_TEST(probe_not_a_kvm_device_is_broken)
{
	struct kvm_probe_result r;
	kvm_probe_run("/dev/null", "/nonexistent", &r);
	UT_EQ(r.verdict, KVM_PROBE_BROKEN);
	UT_ASSERT(strstr(r.what, "KVM_GET_API_VERSION") != NULL);
}

UT_TEST(probe_no_permission)
{
	if (geteuid() == 0)
		return; /* root opens anything; covered only as a normal user */
	struct kvm_probe_result r;
	kvm_probe_run("/etc/shadow", "/nonexistent", &r);
	UT_EQ(r.verdict, KVM_PROBE_NO_PERM);
}

UT_TEST(probe_internal_error_exit_2)
{
	struct kvm_probe_result r = base_result();
	r.verdict = KVM_PROBE_INTERNAL;
	snprintf(r.what, sizeof(r.what), "mmap guest memory: Cannot allocate memory");
	kvm_probe_classify(&r);
	UT_EQ(r.verdict, KVM_PROBE_INTERNAL);
	UT_EQ(kvm_probe_exit_status(&r), 2);
}
