/* probe.c — the KVM probe: is /dev/kvm hardware KVM (see probe.h)? */
#include "tools/sandbox/probe.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Guest physical layout of the probe VM (one 2 MiB slot at 0). */
#define G_MEM_SIZE  0x200000u
#define G_GDT       0x0500u
#define G_PML4      0x1000u
#define G_PDPT      0x2000u
#define G_PD        0x3000u
#define G_STACK     0x7000u
#define G_CODE      0x8000u
#define G_PORT      0x10u

/* 64-bit CPL0 code:
 *   mov al,0 ; out 0x10,al        first exit: everything is set up
 *   mov ecx,N
 * 1: dec ecx ; jnz 1b             the timed loop
 *   mov al,1 ; out 0x10,al        second exit: loop done
 *   hlt ; jmp .
 */
static const uint8_t probe_code[] = {
	0xb0, 0x00, 0xe6, G_PORT,
	0xb9, 0, 0, 0, 0, /* imm32 patched with the iteration count */
	0xff, 0xc9,
	0x75, 0xfc,
	0xb0, 0x01, 0xe6, G_PORT,
	0xf4,
	0xeb, 0xfe,
};
#define PROBE_CODE_IMM_OFF 5

/* The run structure the watchdog pokes; one probe at a time per process. */
static struct kvm_run *volatile watchdog_run;
static volatile sig_atomic_t watchdog_fired;

static void watchdog_handler(int sig)
{
	(void)sig;
	watchdog_fired = 1;
	struct kvm_run *run = watchdog_run;
	if (run)
		run->immediate_exit = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

__attribute__((format(printf, 2, 3)))
static void set_what(struct kvm_probe_result *res, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(res->what, sizeof(res->what), fmt, ap);
	va_end(ap);
}

static void seg64(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->dpl = 0;
	s->s = 1;
	s->l = code ? 1 : 0;
	s->db = code ? 0 : 1;
	s->g = 1;
}

/* Lays out page tables, GDT and code in guest memory. */
static void build_guest(uint8_t *mem, unsigned iterations)
{
	uint64_t *pml4 = (uint64_t *)(mem + G_PML4);
	uint64_t *pdpt = (uint64_t *)(mem + G_PDPT);
	uint64_t *pd = (uint64_t *)(mem + G_PD);
	pml4[0] = G_PDPT | 0x3;  /* present, writable */
	pdpt[0] = G_PD | 0x3;
	pd[0] = 0x0 | 0x83;      /* 2 MiB page at 0, present, writable */

	uint64_t *gdt = (uint64_t *)(mem + G_GDT);
	gdt[0] = 0;
	gdt[1] = 0x00af9b000000ffffull; /* 0x08: 64-bit code */
	gdt[2] = 0x00cf93000000ffffull; /* 0x10: data */

	memcpy(mem + G_CODE, probe_code, sizeof(probe_code));
	uint32_t n = iterations;
	memcpy(mem + G_CODE + PROBE_CODE_IMM_OFF, &n, sizeof(n));
}

static int setup_vcpu(int vcpu, struct kvm_probe_result *res)
{
	struct kvm_sregs sregs;
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) {
		set_what(res, "KVM_GET_SREGS: %s", strerror(errno));
		return -1;
	}
	seg64(&sregs.cs, 0x08, 0xb, true);
	seg64(&sregs.ds, 0x10, 0x3, false);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.gdt.base = G_GDT;
	sregs.gdt.limit = 3 * 8 - 1;
	sregs.cr3 = G_PML4;
	sregs.cr4 = 1u << 5;                        /* PAE */
	sregs.cr0 = 0x80000000u | 0x10u | 0x1u;     /* PG | ET | PE */
	sregs.efer = (1u << 8) | (1u << 10);        /* LME | LMA */
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) {
		set_what(res, "KVM_SET_SREGS: %s", strerror(errno));
		return -1;
	}
	struct kvm_regs regs;
	memset(&regs, 0, sizeof(regs));
	regs.rflags = 0x2;
	regs.rip = G_CODE;
	regs.rsp = G_STACK;
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) {
		set_what(res, "KVM_SET_REGS: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Runs until the next exit and checks it is our `out` with `value`.
 * Returns 0 on success, 1 if the watchdog interrupted it, -1 on failure. */
static int run_to_out(int vcpu, struct kvm_run *run, uint8_t value,
		      struct kvm_probe_result *res)
{
	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				if (watchdog_fired)
					return 1;
				continue;
			}
			set_what(res, "KVM_RUN: %s", strerror(errno));
			return -1;
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO: {
			if (run->io.port != G_PORT || run->io.direction != KVM_EXIT_IO_OUT ||
			    run->io.size != 1) {
				set_what(res, "unexpected I/O exit (port 0x%x, dir %u, size %u)",
					 run->io.port, run->io.direction, run->io.size);
				return -1;
			}
			uint8_t got = *((uint8_t *)run + run->io.data_offset);
			if (got != value) {
				set_what(res, "I/O exit with value %u, expected %u", got, value);
				return -1;
			}
			return 0;
		}
		case KVM_EXIT_INTR:
			if (watchdog_fired)
				return 1;
			continue;
		case KVM_EXIT_FAIL_ENTRY:
			set_what(res, "KVM_RUN: entry failed (reason 0x%llx)",
				 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			return -1;
		case KVM_EXIT_INTERNAL_ERROR:
			set_what(res, "KVM_RUN: internal error (suberror %u)",
				 run->internal.suberror);
			return -1;
		case KVM_EXIT_SHUTDOWN:
			set_what(res, "KVM_RUN: guest shut down (triple fault)");
			return -1;
		default:
			set_what(res, "KVM_RUN: unexpected exit reason %u", run->exit_reason);
			return -1;
		}
	}
}

/* Creates the VM, runs the loop, times it.  Fills res; the caller closes
 * kvm.  Returns 0 if the loop ran (or timed out), -1 on failure. */
static int run_loop(int kvm, struct kvm_probe_result *res)
{
	int rc = -1;
	int vm = -1, vcpu = -1;
	uint8_t *mem = MAP_FAILED;
	struct kvm_run *run = MAP_FAILED;
	size_t run_size = 0;
	timer_t timer;
	bool timer_made = false;
	struct sigaction old_sa;
	bool sa_set = false;
	sigset_t old_mask;
	bool mask_set = false;

	uint64_t t0 = now_ns();
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		set_what(res, "KVM_CREATE_VM: %s", strerror(errno));
		goto out;
	}
	mem = mmap(NULL, G_MEM_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED) {
		set_what(res, "mmap guest memory: %s", strerror(errno));
		res->verdict = KVM_PROBE_INTERNAL;
		goto out;
	}
	build_guest(mem, res->iterations);
	struct kvm_userspace_memory_region region = {
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = G_MEM_SIZE,
		.userspace_addr = (uint64_t)(uintptr_t)mem,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
		set_what(res, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
		goto out;
	}
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0) {
		set_what(res, "KVM_CREATE_VCPU: %s", strerror(errno));
		goto out;
	}
	int sz = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (sz < (int)sizeof(struct kvm_run)) {
		set_what(res, "KVM_GET_VCPU_MMAP_SIZE: %s",
			 sz < 0 ? strerror(errno) : "too small");
		goto out;
	}
	run_size = (size_t)sz;
	run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED) {
		set_what(res, "mmap vcpu run area: %s", strerror(errno));
		goto out;
	}
	if (setup_vcpu(vcpu, res) < 0)
		goto out;

	/* Watchdog: a thread-directed SIGALRM interrupts KVM_RUN; the handler
	 * also sets immediate_exit so a signal landing just before KVM_RUN is
	 * not lost. */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = watchdog_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: KVM_RUN must return EINTR */
	watchdog_fired = 0;
	watchdog_run = run;
	if (sigaction(SIGALRM, &sa, &old_sa) < 0) {
		set_what(res, "sigaction: %s", strerror(errno));
		res->verdict = KVM_PROBE_INTERNAL;
		goto out;
	}
	sa_set = true;
	sigset_t unblock;
	sigemptyset(&unblock);
	sigaddset(&unblock, SIGALRM);
	if (pthread_sigmask(SIG_UNBLOCK, &unblock, &old_mask) != 0) {
		set_what(res, "pthread_sigmask failed");
		res->verdict = KVM_PROBE_INTERNAL;
		goto out;
	}
	mask_set = true;
	struct sigevent sev;
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = SIGALRM;
	sev._sigev_un._tid = gettid(); /* sigev_notify_thread_id */
	if (timer_create(CLOCK_MONOTONIC, &sev, &timer) < 0) {
		set_what(res, "timer_create: %s", strerror(errno));
		res->verdict = KVM_PROBE_INTERNAL;
		goto out;
	}
	timer_made = true;
	struct itimerspec its = {
		.it_value = {
			.tv_sec = KVM_PROBE_WATCHDOG_MS / 1000,
			.tv_nsec = (long)(KVM_PROBE_WATCHDOG_MS % 1000) * 1000000L,
		},
	};
	if (timer_settime(timer, 0, &its, NULL) < 0) {
		set_what(res, "timer_settime: %s", strerror(errno));
		res->verdict = KVM_PROBE_INTERNAL;
		goto out;
	}

	int r = run_to_out(vcpu, run, 0, res);
	res->setup_ns = now_ns() - t0;
	if (r == 1) {
		res->loop_timed_out = true;
		rc = 0;
		goto out;
	}
	if (r < 0)
		goto out;
	uint64_t t1 = now_ns();
	r = run_to_out(vcpu, run, 1, res);
	uint64_t t2 = now_ns();
	if (r == 1) {
		res->loop_timed_out = true;
		res->loop_ns = t2 - t1;
		rc = 0;
		goto out;
	}
	if (r < 0)
		goto out;
	res->loop_ns = t2 - t1;
	res->loop_ran = true;
	rc = 0;
out:
	if (timer_made)
		timer_delete(timer);
	watchdog_run = NULL;
	if (mask_set)
		pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	if (sa_set)
		sigaction(SIGALRM, &old_sa, NULL);
	if (run != MAP_FAILED)
		munmap(run, run_size);
	if (vcpu >= 0)
		close(vcpu);
	if (vm >= 0)
		close(vm);
	if (mem != MAP_FAILED)
		munmap(mem, G_MEM_SIZE);
	return rc;
}

void kvm_probe_classify(struct kvm_probe_result *res)
{
	if (res->verdict == KVM_PROBE_INTERNAL || res->verdict == KVM_PROBE_ABSENT ||
	    res->verdict == KVM_PROBE_NO_PERM)
		return;
	if (res->pvm_module || res->loop_timed_out) {
		res->verdict = KVM_PROBE_PVM;
		return;
	}
	if (res->what[0] || !res->loop_ran) {
		if (!res->what[0])
			set_what(res, "the probe loop did not run");
		res->verdict = KVM_PROBE_BROKEN;
		return;
	}
	res->verdict = res->loop_ns > KVM_PROBE_SLOW_NS ? KVM_PROBE_PVM : KVM_PROBE_HARDWARE;
}

enum kvm_probe_verdict kvm_probe_run(const char *dev, const char *sysmod,
				     struct kvm_probe_result *res)
{
	memset(res, 0, sizeof(*res));
	res->verdict = KVM_PROBE_BROKEN;
	res->api_version = -1;
	res->iterations = KVM_PROBE_ITERATIONS;

	char path[512];
	struct stat st;
	snprintf(path, sizeof(path), "%s/kvm_pvm", sysmod);
	res->pvm_module = stat(path, &st) == 0;

	int kvm = open(dev, O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		int e = errno;
		if (e == ENOENT || e == ENODEV || e == ENXIO) {
			res->verdict = KVM_PROBE_ABSENT;
		} else if (e == EACCES || e == EPERM) {
			res->verdict = KVM_PROBE_NO_PERM;
		} else {
			set_what(res, "open %s: %s", dev, strerror(e));
			res->verdict = KVM_PROBE_BROKEN;
		}
		kvm_probe_classify(res);
		return res->verdict;
	}
	res->api_version = ioctl(kvm, KVM_GET_API_VERSION, 0);
	if (res->api_version != KVM_API_VERSION) {
		if (res->api_version < 0)
			set_what(res, "KVM_GET_API_VERSION: %s", strerror(errno));
		else
			set_what(res, "KVM API version %d, expected %d",
				 res->api_version, KVM_API_VERSION);
	} else if (ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_IMMEDIATE_EXIT) <= 0) {
		set_what(res, "KVM_CAP_IMMEDIATE_EXIT missing");
	} else {
		run_loop(kvm, res);
	}
	close(kvm);
	kvm_probe_classify(res);
	return res->verdict;
}

int kvm_probe_format(const struct kvm_probe_result *res, char *buf, size_t len)
{
	char loop[256];
	if (res->loop_timed_out)
		snprintf(loop, sizeof(loop),
			 "CPL0 loop of %u iterations did not finish within %u ms",
			 res->iterations, KVM_PROBE_WATCHDOG_MS);
	else if (res->loop_ran)
		snprintf(loop, sizeof(loop), "CPL0 loop of %u iterations took %.3f ms",
			 res->iterations, (double)res->loop_ns / 1e6);
	else
		snprintf(loop, sizeof(loop), "CPL0 loop failed: %s",
			 res->what[0] ? res->what : "did not run");

	switch (res->verdict) {
	case KVM_PROBE_HARDWARE:
		return snprintf(buf, len, "hardware");
	case KVM_PROBE_ABSENT:
		return snprintf(buf, len, "sandbox: absent");
	case KVM_PROBE_NO_PERM:
		return snprintf(buf, len, "sandbox: no permission");
	case KVM_PROBE_PVM:
		if (res->pvm_module)
			return snprintf(buf, len, "sandbox: pvm (kvm_pvm module loaded; %s)", loop);
		return snprintf(buf, len, "sandbox: pvm (%s, limit %.0f ms)", loop,
				(double)KVM_PROBE_SLOW_NS / 1e6);
	case KVM_PROBE_BROKEN:
		return snprintf(buf, len, "sandbox: broken: %s",
				res->what[0] ? res->what : "unknown failure");
	case KVM_PROBE_INTERNAL:
		return snprintf(buf, len, "internal error: %s",
				res->what[0] ? res->what : "unknown");
	}
	return snprintf(buf, len, "internal error: bad verdict %d", (int)res->verdict);
}

int kvm_probe_exit_status(const struct kvm_probe_result *res)
{
	switch (res->verdict) {
	case KVM_PROBE_HARDWARE:
		return 0;
	case KVM_PROBE_INTERNAL:
		return 2;
	default:
		return 1;
	}
}
