/* test_microguest.c — the kernel-less CPL3 micro-guest (vmm/microguest.c) on
 * this host's /dev/kvm: it answers every request kind, a crash is reported
 * rather than hung, it never writes its own page tables or GDT, and which
 * answer exit works here (MMIO everywhere; port I/O at CPL3 on hardware KVM
 * but not on kvm-pvm, where `out` raises #GP).  No /dev/kvm is a failure. */
#include "tests/unit/ut.h"
#include "vmm/err.h"
#include "vmm/kvm.h"
#include "vmm/microguest.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEM (16ull << 20)

struct mg_vm {
	struct vmm_kvm_vm kvm;
	struct vmm_vcpu vcpu;
	uint8_t *mem;
	enum vmm_mg_answer_mode mode;
};

static bool host_is_pvm(void)
{
	return access("/sys/module/kvm_pvm", F_OK) == 0;
}

static void mg_vm_start(struct mg_vm *g, enum vmm_mg_answer_mode mode)
{
	g->mode = mode;
	if (vmm_kvm_vm_create(&g->kvm, NULL) < 0)
		UT_FAIL("cannot use /dev/kvm: %s (the micro-guest tests need KVM: hardware or kvm-pvm)",
			vmm_strerror());
	g->mem = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	UT_ASSERT(g->mem != MAP_FAILED);
	UT_EQ(vmm_mg_layout(g->mem, MEM, mode), 0);
	if (vmm_kvm_set_memslot(&g->kvm, 0, 0, g->mem, MEM) < 0 ||
	    vmm_vcpu_create(&g->kvm, &g->vcpu, 0) < 0)
		UT_FAIL("%s", vmm_strerror());
	struct kvm_sregs s;
	struct kvm_regs r;
	UT_EQ(ioctl(g->vcpu.fd, KVM_GET_SREGS, &s), 0);
	vmm_mg_cpu_state(mode, &r, &s);
	UT_EQ(ioctl(g->vcpu.fd, KVM_SET_SREGS, &s), 0);
	UT_EQ(ioctl(g->vcpu.fd, KVM_SET_REGS, &r), 0);
}

static void mg_vm_stop(struct mg_vm *g)
{
	vmm_vcpu_release(&g->vcpu);
	vmm_kvm_vm_release(&g->kvm);
	munmap(g->mem, MEM);
}

/* KVM_RUN to the next exit; the answer, or -EIO with vmm_strerror(). */
static int mg_run(struct mg_vm *g, uint64_t *answer)
{
	int r;
	do
		r = ioctl(g->vcpu.fd, KVM_RUN, 0);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		UT_FAIL("KVM_RUN: %s", strerror(errno));
	return vmm_mg_answer(g->vcpu.run, g->mode, answer);
}

static uint64_t mg_ask(struct mg_vm *g, enum vmm_mg_op op, uint64_t arg, uint64_t addr, uint64_t count)
{
	uint64_t a = 0;
	UT_EQ(vmm_mg_request(g->mem, MEM, op, arg, addr, count), 0);
	if (mg_run(g, &a) < 0)
		UT_FAIL("op %d: %s", (int)op, vmm_strerror());
	struct vmm_mg_mbox m;
	memcpy(&m, g->mem + VMM_MG_MBOX, sizeof(m));
	UT_EQ(m.op, VMM_MG_OP_HELLO);       /* the guest consumed the request */
	UT_EQ(m.result, a);
	return a;
}

UT_TEST(mg_layout_rejects_bad_sizes)
{
	static uint8_t buf[8 << 20];
	UT_EQ(vmm_mg_layout(buf, 3ull << 20, VMM_MG_ANSWER_MMIO), -EINVAL);
	UT_EQ(vmm_mg_layout(buf, 2ull << 20, VMM_MG_ANSWER_MMIO), -EINVAL);
	UT_EQ(vmm_mg_layout(buf, 2ull << 30, VMM_MG_ANSWER_MMIO), -EINVAL);
	UT_EQ(vmm_mg_layout(buf, sizeof(buf), VMM_MG_ANSWER_MMIO), 0);
}

UT_TEST(mg_request_checks_addresses)
{
	static uint8_t buf[VMM_MG_MEM_MIN];
	const uint64_t m = sizeof(buf), d = VMM_MG_DATA_BASE;
	UT_EQ(vmm_mg_request(buf, m, VMM_MG_OP_ECHO, 1, 0, 0), 0);
	UT_EQ(vmm_mg_request(buf, m, 6, 1, 0, 0), -EINVAL);
	UT_EQ(vmm_mg_request(buf, m, VMM_MG_OP_READ, 0, VMM_MG_MBOX, 1), -EINVAL);
	UT_EQ(vmm_mg_request(buf, m, VMM_MG_OP_READ, 0, m - 8, 1), 0);
	UT_EQ(vmm_mg_request(buf, m, VMM_MG_OP_READ, 0, m, 1), -EINVAL);
	UT_EQ(vmm_mg_request(buf, m, VMM_MG_OP_WRITE, 0, d + 4, 1), -EINVAL);
	UT_EQ(vmm_mg_request(buf, m, VMM_MG_OP_TOUCH, 0, d, (m - d) / 4096), 0);
	UT_EQ(vmm_mg_request(buf, m, VMM_MG_OP_TOUCH, 0, d, (m - d) / 4096 + 1), -EINVAL);
	UT_EQ(vmm_mg_request(buf, m, VMM_MG_OP_TOUCH, 0, d + 8, (m - d) / 4096), 0);
	UT_EQ(vmm_mg_request(buf, m, VMM_MG_OP_TOUCH, 0, d, UINT64_MAX / 2), -EINVAL);
}

UT_TEST(mg_answers_every_request_over_mmio)
{
	struct mg_vm g;
	uint64_t a = 0;
	mg_vm_start(&g, VMM_MG_ANSWER_MMIO);

	if (mg_run(&g, &a) < 0)
		UT_FAIL("first answer: %s", vmm_strerror());
	UT_EQ(a, VMM_MG_HELLO);
	UT_EQ(mg_run(&g, &a), 0);                 /* idle mailbox: hello again */
	UT_EQ(a, VMM_MG_HELLO);
	UT_EQ(mg_ask(&g, VMM_MG_OP_ECHO, 41, 0, 0), vmm_mg_echo(41));
	const uint64_t x = VMM_MG_DATA_BASE + 0x123458;
	UT_EQ(mg_ask(&g, VMM_MG_OP_WRITE, 0xfeedf00dcafeull, x, 1), 0xfeedf00dcafeull);
	uint64_t host;
	memcpy(&host, g.mem + x, 8);
	UT_EQ(host, 0xfeedf00dcafeull);           /* the guest wrote host memory */
	host = 77;
	memcpy(g.mem + x, &host, 8);
	UT_EQ(mg_ask(&g, VMM_MG_OP_READ, 0, x, 1), 77);
	UT_EQ(mg_ask(&g, VMM_MG_OP_TOUCH, 5, VMM_MG_DATA_BASE, 100), 100);
	for (int i = 0; i < 100; i++) {
		memcpy(&host, g.mem + VMM_MG_DATA_BASE + i * 4096ull, 8);
		UT_EQ(host, 5);
	}
	UT_EQ(mg_ask(&g, VMM_MG_OP_READ_PAGES, 0, VMM_MG_DATA_BASE, 100), 500);
	/* An op the guest does not know (posted past vmm_mg_request's check). */
	UT_EQ(vmm_mg_request(g.mem, MEM, 99, 0, 0, 0), -EINVAL);
	struct vmm_mg_mbox m = {.op = 99};
	memcpy(g.mem + VMM_MG_MBOX, &m, sizeof(m));
	UT_EQ(mg_run(&g, &a), 0);
	UT_EQ(a, VMM_MG_BAD_OP);
	mg_vm_stop(&g);
}

UT_TEST(mg_never_writes_its_tables)
{
	struct mg_vm g;
	uint64_t a;
	static uint8_t before[0x6000];
	mg_vm_start(&g, VMM_MG_ANSWER_MMIO);
	memcpy(before, g.mem, sizeof(before));      /* page tables, GDT, TSS */
	UT_EQ(mg_run(&g, &a), 0);
	(void)mg_ask(&g, VMM_MG_OP_TOUCH, 1, VMM_MG_DATA_BASE, 600);
	(void)mg_ask(&g, VMM_MG_OP_READ_PAGES, 1, VMM_MG_DATA_BASE, 600);
	/* Accessed/dirty bits are preset: no clone ever copies these pages. */
	UT_ASSERT(memcmp(before, g.mem, sizeof(before)) == 0);
	mg_vm_stop(&g);
}

UT_TEST(mg_crash_is_reported_not_hung)
{
	struct mg_vm g;
	uint64_t a;
	mg_vm_start(&g, VMM_MG_ANSWER_MMIO);
	UT_EQ(mg_run(&g, &a), 0);
	/* Bypass vmm_mg_request's checks: read the unmapped page 0. */
	struct vmm_mg_mbox m = {.op = VMM_MG_OP_READ, .addr = 0};
	memcpy(g.mem + VMM_MG_MBOX, &m, sizeof(m));
	UT_EQ(mg_run(&g, &a), -EIO);
	UT_EQ(g.vcpu.run->exit_reason, KVM_EXIT_SHUTDOWN);
	UT_ASSERT(strstr(vmm_strerror(), "triple fault") != NULL);
	mg_vm_stop(&g);
}

/* Port I/O at CPL3 with IOPL=3: answers on hardware KVM; on kvm-pvm the
 * `out` faults with #GP (guest user code runs in host ring 3 under the
 * host's IOPL), and with no IDT that is a triple fault.  If pvm ever starts
 * delivering it, this test fails and the default can be revisited. */
UT_TEST(mg_port_io_answer_on_this_host)
{
	struct mg_vm g;
	uint64_t a = 0;
	mg_vm_start(&g, VMM_MG_ANSWER_PIO);
	struct kvm_regs r;
	UT_EQ(ioctl(g.vcpu.fd, KVM_GET_REGS, &r), 0);
	UT_EQ(r.rflags & 0x3000, 0x3000);           /* KVM kept IOPL = 3 */
	int ret = mg_run(&g, &a);
	if (!host_is_pvm()) {
		if (ret < 0)
			UT_FAIL("port I/O answer on hardware KVM: %s", vmm_strerror());
		UT_EQ(a, VMM_MG_HELLO);
		UT_EQ(mg_ask(&g, VMM_MG_OP_ECHO, 7, 0, 0), vmm_mg_echo(7));
	} else {
		UT_EQ(ret, -EIO);
		UT_EQ(g.vcpu.run->exit_reason, KVM_EXIT_SHUTDOWN);
		struct kvm_vcpu_events ev;
		UT_EQ(ioctl(g.vcpu.fd, KVM_GET_VCPU_EVENTS, &ev), 0);
		UT_EQ(ev.exception.nr, 13);             /* #GP */
		UT_EQ(r.rip + 0, VMM_MG_CODE);
		UT_EQ(ioctl(g.vcpu.fd, KVM_GET_REGS, &r), 0);
		UT_ASSERT(r.rip > VMM_MG_CODE && r.rip < VMM_MG_CODE + 0x40);  /* at the `out` */
	}
	mg_vm_stop(&g);
}
