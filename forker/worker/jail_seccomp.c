/* jail_seccomp.c — the jailed worker's seccomp filter (libseccomp): the
 * syscalls and KVM ioctls a VMM worker uses, each with the reason it is on
 * the list (SECURITY.md prints the same tables; tests/unit/test_jail.c
 * checks the two agree).  Contract in jail.h. */
#include "forker/worker/jail.h"
#include "vmm/err.h"

#include <errno.h>
#include <linux/kvm.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define JAIL_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define JAIL_SANITIZED 1
#endif
#endif
#ifndef JAIL_SANITIZED
#define JAIL_SANITIZED 0
#endif

/* Allowed without argument checks.  Entries with checks are listed here
 * too (their "why" says which) and handled in add_rules(). */
const struct jail_sc_entry jail_syscalls[] = {
	{"read", "sockets, eventfds, template and /proc/self files"},
	{"write", "sockets, eventfds, stderr, the working set file"},
	{"readv", "stdio"},
	{"writev", "stdio"},
	{"pread64", "snapshot files, /proc/self/pagemap"},
	{"pwrite64", "writing a template's memory file (build)"},
	{"lseek", "stdio, file sizes"},
	{"access", "does a template file exist"},
	{"faccessat2", "does a template file exist"},
	{"close", "every fd the worker owns"},
	{"openat", "template files, the working set, /dev/kvm, /proc/self (all inside the jail root)"},
	{"newfstatat", "fstat()/stat() of template files"},
	{"fstat", "fstat() on older libcs"},
	{"statx", "file sizes"},
	{"getdents64", "listing a template directory"},
	{"mkdir", "a build's output directory"},
	{"rename", "the working set and a build's output go live by rename"},
	{"renameat2", "a rebuilt template is swapped in (RENAME_EXCHANGE)"},
	{"unlink", "temporary files of a failed save"},
	{"unlinkat", "temporary directories of a failed build"},
	{"rmdir", "temporary directories of a failed build"},
	{"fsync", "durable template and working-set files"},
	{"fdatasync", "durable template files"},
	{"ftruncate", "sizing memfds and memory files"},
	{"fallocate", "sizing memory files"},
	{"copy_file_range", "copying a parent template's memory file"},
	{"flock", "the template build lock"},
	{"fcntl", "memfd seals, O_NONBLOCK, CLOEXEC, file locks"},
	{"dup", "stdio"},
	{"dup3", "stdio"},
	{"mmap", "guest memory, vCPU run areas, thread stacks; never PROT_EXEC"},
	{"mprotect", "guard pages, loader; never PROT_EXEC"},
	{"munmap", "releasing guest memory"},
	{"mremap", "realloc of large buffers"},
	{"madvise", "MADV_DONTNEED/POPULATE_* on guest memory"},
	{"brk", "malloc"},
	{"memfd_create", "the sealed copy of a template's memory"},
	{"eventfd2", "irqfd/ioeventfd and wake-ups"},
	{"poll", "waiting on sockets and eventfds"},
	{"ppoll", "waiting on sockets and eventfds"},
	{"epoll_create1", "the vsock device's event loop"},
	{"epoll_ctl", "the vsock device's event loop"},
	{"epoll_wait", "the vsock device's event loop"},
	{"epoll_pwait", "the vsock device's event loop"},
	{"socketpair", "AF_UNIX only: the vsock device hands out socketpair ends"},
	{"sendmsg", "frames to runtimed, vsock"},
	{"recvmsg", "frames from runtimed, vsock"},
	{"sendto", "frames to runtimed, vsock"},
	{"recvfrom", "frames from runtimed, vsock"},
	{"shutdown", "closing a vsock stream half-way"},
	{"getsockopt", "socket errors"},
	{"setsockopt", "socket buffer sizes"},
	{"clone", "threads only (CLONE_THREAD must be set): no new processes"},
	{"futex", "mutexes and condition variables"},
	{"set_robust_list", "new threads"},
	{"rseq", "new threads"},
	{"sched_yield", "spin-waits"},
	{"sched_getaffinity", "CPU count"},
	{"exit", "a thread ends"},
	{"exit_group", "the process ends"},
	{"getpid", "own pid (1 in the jail)"},
	{"gettid", "vCPU thread ids for kicks"},
	{"tgkill", "signals to its own threads only (vCPU kicks, abort())"},
	{"rt_sigaction", "the vCPU kick signal handler"},
	{"rt_sigprocmask", "blocking the kick signal around KVM_RUN"},
	{"rt_sigreturn", "returning from the kick handler"},
	{"rt_sigtimedwait", "waiting for a signal"},
	{"sigaltstack", "thread set-up"},
	{"timer_create", "the per-run vCPU deadline timer (signals the vCPU thread)"},
	{"timer_settime", "arming the vCPU deadline timer"},
	{"timer_gettime", "the vCPU deadline timer"},
	{"timer_delete", "the vCPU deadline timer"},
	{"nanosleep", "back-off sleeps"},
	{"clock_nanosleep", "back-off sleeps"},
	{"clock_gettime", "deadlines and timings"},
	{"clock_getres", "timings"},
	{"gettimeofday", "timings"},
	{"getrusage", "CPU time of a call"},
	{"getrandom", "hash seeds, guest entropy"},
	{"uname", "the host kernel release in snapshot metadata"},
	{"prctl", "PR_SET_NAME/PR_GET_NAME (thread names) and PR_SET_VMA only"},
	{"prlimit64", "stack size of new threads"},
	{"ioctl", "only the request numbers of the ioctl table"},
};
const size_t jail_n_syscalls = sizeof(jail_syscalls) / sizeof(jail_syscalls[0]);

#define IOC(x, why) {x, #x, why}
const struct jail_ioctl_entry jail_ioctls[] = {
	IOC(KVM_GET_API_VERSION, "checking the KVM API"),
	IOC(KVM_CHECK_EXTENSION, "probing capabilities"),
	IOC(KVM_CREATE_VM, "one VM per clone"),
	IOC(KVM_GET_VCPU_MMAP_SIZE, "mapping the vCPU run area"),
	IOC(KVM_GET_SUPPORTED_CPUID, "the guest's CPUID"),
	IOC(KVM_GET_MSR_INDEX_LIST, "which MSRs a snapshot saves"),
	IOC(KVM_CREATE_IRQCHIP, "in-kernel PIC/IOAPIC/LAPIC"),
	IOC(KVM_CREATE_PIT2, "in-kernel PIT"),
	IOC(KVM_CREATE_VCPU, "the clone's vCPU"),
	IOC(KVM_SET_TSS_ADDR, "VM set-up (Intel)"),
	IOC(KVM_SET_IDENTITY_MAP_ADDR, "VM set-up (Intel)"),
	IOC(KVM_SET_USER_MEMORY_REGION, "mapping guest memory"),
	IOC(KVM_IRQFD, "virtio interrupts"),
	IOC(KVM_IOEVENTFD, "virtio queue notifications"),
	IOC(KVM_IRQ_LINE, "serial interrupts"),
	IOC(KVM_GET_IRQCHIP, "snapshot"),
	IOC(KVM_SET_IRQCHIP, "restore"),
	IOC(KVM_GET_PIT2, "snapshot"),
	IOC(KVM_SET_PIT2, "restore"),
	IOC(KVM_GET_CLOCK, "snapshot"),
	IOC(KVM_SET_CLOCK, "restore"),
	IOC(KVM_RUN, "running the guest"),
	IOC(KVM_GET_REGS, "snapshot, diagnostics"),
	IOC(KVM_SET_REGS, "restore, boot"),
	IOC(KVM_GET_SREGS, "snapshot, diagnostics"),
	IOC(KVM_SET_SREGS, "restore, boot"),
	IOC(KVM_GET_FPU, "snapshot without XSAVE"),
	IOC(KVM_SET_FPU, "restore, boot"),
	IOC(KVM_GET_MSRS, "snapshot"),
	IOC(KVM_SET_MSRS, "restore, boot"),
	IOC(KVM_GET_CPUID2, "snapshot"),
	IOC(KVM_SET_CPUID2, "restore, boot"),
	IOC(KVM_GET_LAPIC, "snapshot"),
	IOC(KVM_SET_LAPIC, "restore"),
	IOC(KVM_GET_MP_STATE, "snapshot"),
	IOC(KVM_SET_MP_STATE, "restore"),
	IOC(KVM_GET_VCPU_EVENTS, "snapshot"),
	IOC(KVM_SET_VCPU_EVENTS, "restore"),
	IOC(KVM_GET_XSAVE, "snapshot"),
#ifdef KVM_GET_XSAVE2
	IOC(KVM_GET_XSAVE2, "snapshot (large XSAVE areas)"),
#endif
	IOC(KVM_SET_XSAVE, "restore"),
	IOC(KVM_GET_XCRS, "snapshot"),
	IOC(KVM_SET_XCRS, "restore"),
	IOC(KVM_GET_DEBUGREGS, "snapshot"),
	IOC(KVM_SET_DEBUGREGS, "restore"),
	IOC(KVM_GET_TSC_KHZ, "snapshot"),
	IOC(KVM_SET_TSC_KHZ, "restore on a host with another TSC rate"),
	IOC(KVM_KVMCLOCK_CTRL, "telling the guest it was paused"),
	IOC(TCGETS, "isatty() when stdio picks its buffering"),
};
const size_t jail_n_ioctls = sizeof(jail_ioctls) / sizeof(jail_ioctls[0]);

/* UNIFORK_SECCOMP=log: say which syscall was refused, fail it, go on. */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	char msg[96];
	int n = snprintf(msg, sizeof(msg), "unifork: seccomp: syscall %d refused (arg1 %#llx)\n",
			 si->si_syscall,
			 (unsigned long long)((ucontext_t *)uc)->uc_mcontext.gregs[REG_RSI]);
	if (write(STDERR_FILENO, msg, (size_t)n) < 0) {
		/* nothing left to report with */
	}
	((ucontext_t *)uc)->uc_mcontext.gregs[REG_RAX] = -ENOSYS;
}

static int rule(scmp_filter_ctx c, uint32_t act, const char *name, unsigned n,
		const struct scmp_arg_cmp *a)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR)
		return vmm_err(-EINVAL, "seccomp: unknown syscall %s", name);
	int r = seccomp_rule_add_array(c, act, nr, n, a);
	return r ? vmm_errno(r, "seccomp: rule for %s", name) : 0;
}

static int add_rules(scmp_filter_ctx c)
{
	int r = 0;
	for (size_t i = 0; !r && i < jail_n_syscalls; i++) {
		const char *n = jail_syscalls[i].name;
		struct scmp_arg_cmp a[1];
		if (!JAIL_SANITIZED && strcmp(n, "clone") == 0) {
			a[0] = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD);
			r = rule(c, SCMP_ACT_ALLOW, n, 1, a);
		} else if (strcmp(n, "mmap") == 0 || strcmp(n, "mprotect") == 0) {
			a[0] = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
			r = rule(c, SCMP_ACT_ALLOW, n, 1, a);
		} else if (strcmp(n, "socketpair") == 0) {
			a[0] = SCMP_A0(SCMP_CMP_EQ, AF_UNIX);
			r = rule(c, SCMP_ACT_ALLOW, n, 1, a);
		} else if (strcmp(n, "tgkill") == 0) {
			a[0] = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid());
			r = rule(c, SCMP_ACT_ALLOW, n, 1, a);
		} else if (!JAIL_SANITIZED && strcmp(n, "prctl") == 0) {
			static const int ok[] = {PR_SET_NAME, PR_GET_NAME, 0x53564d41 /* PR_SET_VMA */};
			for (size_t k = 0; !r && k < sizeof(ok) / sizeof(ok[0]); k++) {
				a[0] = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)ok[k]);
				r = rule(c, SCMP_ACT_ALLOW, n, 1, a);
			}
		} else if (strcmp(n, "ioctl") == 0) {
			for (size_t k = 0; !r && k < jail_n_ioctls; k++) {
				a[0] = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, jail_ioctls[k].req);
				r = rule(c, SCMP_ACT_ALLOW, n, 1, a);
			}
		} else {
			r = rule(c, SCMP_ACT_ALLOW, n, 0, NULL);
		}
	}
	/* io_uring bypasses seccomp for the operations it runs: refused
	 * softly, the memory-file writer falls back to pwrite.  clone3's
	 * flags sit in memory seccomp cannot read: ENOSYS makes glibc fall
	 * back to clone, whose flags are checked above. */
	static const char *const soft[] = {"io_uring_setup", "io_uring_enter", "io_uring_register",
					   "clone3"};
	for (size_t i = 0; !r && i < sizeof(soft) / sizeof(soft[0]); i++)
		r = rule(c, SCMP_ACT_ERRNO(ENOSYS), soft[i], 0, NULL);
#if JAIL_SANITIZED
	/* ASan/UBSan builds only: the sanitizer runtime's own needs (leak
	 * checking at exit stops threads with ptrace from a helper clone,
	 * which lists /proc/PID/task with the old getdents: without it the
	 * helper was killed and the worker spun forever waiting for it). */
	static const char *const san[] = {"ptrace", "wait4", "open", "readlink",
					  "getppid", "kill", "pipe2", "pipe", "getdents"};
	for (size_t i = 0; !r && i < sizeof(san) / sizeof(san[0]); i++)
		r = rule(c, SCMP_ACT_ALLOW, san[i], 0, NULL);
#endif
	return r;
}

int jail_sigsys_log(void)
{
	struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO};
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		return vmm_errno(-errno, "seccomp: SIGSYS handler");
	return 0;
}

int jail_seccomp_install(enum jail_seccomp mode)
{
	if (mode == JAIL_SECCOMP_LOG && jail_sigsys_log())
		return -1;
	scmp_filter_ctx c = seccomp_init(mode == JAIL_SECCOMP_LOG ? SCMP_ACT_TRAP
								   : SCMP_ACT_KILL_PROCESS);
	if (!c)
		return vmm_err(-ENOMEM, "seccomp: init");
	int r = add_rules(c);
	if (!r) {
		r = seccomp_load(c);
		if (r)
			r = vmm_errno(r, "seccomp: load");
	}
	seccomp_release(c);
	return r;
}
