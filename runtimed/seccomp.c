/* seccomp.c — runtimed's deny-list filter (contract in seccomp.h). */
#include "runtimed/seccomp.h"
#include "forker/worker/jail.h"
#include "vmm/err.h"

#include <errno.h>
#include <seccomp.h>
#include <string.h>

/* ASan/UBSan builds: LeakSanitizer stops threads with ptrace at exit. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define RT_SANITIZED 1
#else
#define RT_SANITIZED 0
#endif

const struct rt_seccomp_entry rt_seccomp_denied[] = {
	{"ptrace", false, "reading or steering another process (a worker) from runtimed"},
	{"process_vm_readv", false, "reading another process's memory"},
	{"process_vm_writev", false, "writing another process's memory"},
	{"kcmp", false, "probing other processes' kernel objects"},
	{"kexec_load", false, "replacing the kernel"},
	{"kexec_file_load", false, "replacing the kernel"},
	{"init_module", false, "loading kernel code"},
	{"finit_module", false, "loading kernel code"},
	{"delete_module", false, "unloading kernel code"},
	{"bpf", false, "kernel programs and maps"},
	{"perf_event_open", false, "kernel profiling, a frequent exploit path"},
	{"userfaultfd", false, "stretching kernel races, a frequent exploit path"},
	{"keyctl", false, "kernel keyrings"},
	{"add_key", false, "kernel keyrings"},
	{"request_key", false, "kernel keyrings"},
	{"reboot", false, "the host's power"},
	{"swapon", false, "host memory configuration"},
	{"swapoff", false, "host memory configuration"},
	{"acct", false, "host process accounting"},
	{"syslog", false, "the kernel log"},
	{"settimeofday", false, "the host clock"},
	{"clock_settime", false, "the host clock"},
	{"clock_adjtime", false, "the host clock"},
	{"adjtimex", false, "the host clock"},
	{"iopl", false, "raw port I/O"},
	{"ioperm", false, "raw port I/O"},
	{"open_by_handle_at", false, "opening files outside any mount (container escapes)"},
	{"name_to_handle_at", false, "file handles for open_by_handle_at"},
	{"quotactl", false, "filesystem quotas"},
	{"setns", false, "joining another process's namespaces"},
	{"chroot", false, "the jail uses pivot_root, nothing uses chroot"},
	{"fsopen", false, "the new mount API (the jail uses mount(2))"},
	{"fsmount", false, "the new mount API"},
	{"move_mount", false, "the new mount API"},
	{"open_tree", false, "the new mount API"},
	{"setdomainname", false, "host identity"},
	{"personality", false, "execution domains (disabling ASLR)"},
	{"mount", true, "the jail's bind mounts, tmpfs root and procfs"},
	{"umount2", true, "the jail detaches the old root"},
	{"pivot_root", true, "the jail's root switch"},
	{"unshare", true, "the jail's namespaces"},
	{"sethostname", true, "the jail's UTS namespace name"},
};
const size_t rt_seccomp_n_denied = sizeof(rt_seccomp_denied) / sizeof(rt_seccomp_denied[0]);

int rt_seccomp_install(bool jail_on)
{
	enum jail_seccomp mode = jail_seccomp_mode();
	if (mode == JAIL_SECCOMP_LOG && jail_sigsys_log())
		return -1;
	uint32_t deny = mode == JAIL_SECCOMP_LOG ? SCMP_ACT_TRAP : SCMP_ACT_KILL_PROCESS;
	scmp_filter_ctx c = seccomp_init(SCMP_ACT_ALLOW);
	if (!c)
		return vmm_err(-ENOMEM, "seccomp: init");
	int r = seccomp_attr_set(c, SCMP_FLTATR_CTL_TSYNC, 1);
	if (r)
		r = vmm_errno(r, "seccomp: thread sync");
	for (size_t i = 0; !r && i < rt_seccomp_n_denied; i++) {
		if (jail_on && rt_seccomp_denied[i].jail_needs)
			continue;
		if (RT_SANITIZED && strcmp(rt_seccomp_denied[i].name, "ptrace") == 0)
			continue;
		int nr = seccomp_syscall_resolve_name(rt_seccomp_denied[i].name);
		if (nr == __NR_SCMP_ERROR)
			r = vmm_err(-EINVAL, "seccomp: unknown syscall %s", rt_seccomp_denied[i].name);
		else if ((r = seccomp_rule_add(c, deny, nr, 0)))
			r = vmm_errno(r, "seccomp: rule for %s", rt_seccomp_denied[i].name);
	}
	if (!r && (r = seccomp_load(c)))
		r = vmm_errno(r, "seccomp: load");
	seccomp_release(c);
	return r;
}
