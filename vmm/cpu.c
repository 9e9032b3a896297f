/* cpu.c — initial vCPU state for the Linux 64-bit boot protocol. */
#include "vmm/cpu.h"
#include "vmm/err.h"
#include "vmm/layout.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define CPUID_MAX_ENTRIES 256

#define KVM_CPUID_SIGNATURE  0x40000000u
#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID_1_ECX_HYPERVISOR   (1u << 31)

#define MSR_IA32_TSC             0x00000010
#define MSR_IA32_SYSENTER_CS     0x00000174
#define MSR_IA32_SYSENTER_ESP    0x00000175
#define MSR_IA32_SYSENTER_EIP    0x00000176
#define MSR_IA32_MISC_ENABLE     0x000001a0
#define MSR_MTRR_DEF_TYPE        0x000002ff
#define MSR_STAR                 0xc0000081
#define MSR_LSTAR                0xc0000082
#define MSR_CSTAR                0xc0000083
#define MSR_SYSCALL_MASK         0xc0000084
#define MSR_KERNEL_GS_BASE       0xc0000102

#define APIC_LVT0                0x350
#define APIC_LVT1                0x360
#define APIC_MODE_NMI            0x4
#define APIC_MODE_EXTINT         0x7

#define X86_CR0_PE  0x1ull
#define X86_CR0_ET  0x10ull
#define X86_CR0_NE  0x20ull
#define X86_CR0_NW  (1ull << 29)
#define X86_CR0_CD  (1ull << 30)
#define X86_CR0_PG  (1ull << 31)
#define X86_CR4_PAE 0x20ull
#define EFER_LME    0x100ull
#define EFER_LMA    0x400ull

static int setup_cpuid(struct vmm_kvm_vm *vm, struct vmm_vcpu *vcpu, int ncpus)
{
	int ret;
	size_t sz = sizeof(struct kvm_cpuid2) + CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *c = calloc(1, sz);
	if (!c)
		return vmm_err(-ENOMEM, "cpuid: out of memory");
	c->nent = CPUID_MAX_ENTRIES;
	if (ioctl(vm->kvmfd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		ret = vmm_errno(-errno, "KVM_GET_SUPPORTED_CPUID");
		goto out;
	}
	int has_kvm_leaf = 0;
	int tsc_deadline = vmm_kvm_cap(vm, KVM_CAP_TSC_DEADLINE_TIMER);
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		switch (e->function) {
		case 1:
			e->ecx |= CPUID_1_ECX_HYPERVISOR;
			if (tsc_deadline)
				e->ecx |= CPUID_1_ECX_TSC_DEADLINE;
			/* APIC id in 31:24, logical processor count in 23:16. */
			e->ebx = (e->ebx & 0x0000ffffu) | ((uint32_t)vcpu->id << 24) |
				 ((uint32_t)ncpus << 16);
			break;
		case 0xb:
		case 0x1f:
			e->edx = (uint32_t)vcpu->id;   /* x2APIC id */
			break;
		case KVM_CPUID_SIGNATURE:
			has_kvm_leaf = 1;
			break;
		}
	}
	if (!has_kvm_leaf) {
		/* Without the KVM leaves the guest finds no kvm-clock and
		 * falls back to calibrating against jiffies. */
		ret = vmm_err(-ENOTSUP, "KVM_GET_SUPPORTED_CPUID has no KVM leaves (0x40000000)");
		goto out;
	}
	if (ioctl(vcpu->fd, KVM_SET_CPUID2, c) < 0) {
		ret = vmm_errno(-errno, "KVM_SET_CPUID2");
		goto out;
	}
	ret = 0;
out:
	free(c);
	return ret;
}

static int setup_msrs(struct vmm_vcpu *vcpu)
{
	static const struct { uint32_t index; uint64_t data; } boot_msrs[] = {
		{MSR_IA32_SYSENTER_CS, 0}, {MSR_IA32_SYSENTER_ESP, 0}, {MSR_IA32_SYSENTER_EIP, 0},
		{MSR_STAR, 0}, {MSR_CSTAR, 0}, {MSR_KERNEL_GS_BASE, 0}, {MSR_SYSCALL_MASK, 0},
		{MSR_LSTAR, 0}, {MSR_IA32_TSC, 0},
		{MSR_IA32_MISC_ENABLE, 1 /* fast strings */},
		{MSR_MTRR_DEF_TYPE, (1u << 11) | 6 /* enabled, write-back */},
	};
	enum { N = sizeof(boot_msrs) / sizeof(boot_msrs[0]) };
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[N];
	} m;
	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = N;
	for (int i = 0; i < N; i++) {
		m.e[i].index = boot_msrs[i].index;
		m.e[i].data = boot_msrs[i].data;
	}
	int r = ioctl(vcpu->fd, KVM_SET_MSRS, &m);
	if (r < 0)
		return vmm_errno(-errno, "KVM_SET_MSRS");
	if (r != N)
		return vmm_err(-EINVAL, "KVM_SET_MSRS: MSR 0x%x refused", boot_msrs[r].index);
	return 0;
}

static int setup_lapic(struct vmm_vcpu *vcpu)
{
	struct kvm_lapic_state l;
	if (ioctl(vcpu->fd, KVM_GET_LAPIC, &l) < 0)
		return vmm_errno(-errno, "KVM_GET_LAPIC");
	uint32_t v;
	memcpy(&v, &l.regs[APIC_LVT0], 4);
	v = (v & ~0x700u) | (APIC_MODE_EXTINT << 8);
	memcpy(&l.regs[APIC_LVT0], &v, 4);
	memcpy(&v, &l.regs[APIC_LVT1], 4);
	v = (v & ~0x700u) | (APIC_MODE_NMI << 8);
	memcpy(&l.regs[APIC_LVT1], &v, 4);
	if (ioctl(vcpu->fd, KVM_SET_LAPIC, &l) < 0)
		return vmm_errno(-errno, "KVM_SET_LAPIC");
	return 0;
}

static int setup_fpu(struct vmm_vcpu *vcpu)
{
	struct kvm_fpu fpu;
	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	if (ioctl(vcpu->fd, KVM_SET_FPU, &fpu) < 0)
		return vmm_errno(-errno, "KVM_SET_FPU");
	return 0;
}

static int setup_regs(struct vmm_vcpu *vcpu, const struct vmm_boot_info *bi)
{
	struct kvm_sregs s;
	if (ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0)
		return vmm_errno(-errno, "KVM_GET_SREGS");

	struct kvm_segment code = {
		.base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 11,
		.present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1,
	};
	struct kvm_segment data = code;
	data.selector = 0x18;
	data.type = 3;
	data.db = 1;
	data.l = 0;
	s.cs = code;
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	s.tr = (struct kvm_segment){.base = 0, .limit = 0xffff, .selector = 0x20, .type = 11,
				    .present = 1, .s = 0};
	s.gdt.base = bi->gdt_base;
	s.gdt.limit = bi->gdt_limit;
	s.idt.base = 0;
	s.idt.limit = 0;
	s.cr0 = (s.cr0 | X86_CR0_PE | X86_CR0_PG | X86_CR0_ET | X86_CR0_NE) &
		~(X86_CR0_CD | X86_CR0_NW);
	s.cr3 = bi->cr3;
	s.cr4 |= X86_CR4_PAE;
	s.efer |= EFER_LME | EFER_LMA;
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &s) < 0)
		return vmm_errno(-errno, "KVM_SET_SREGS");

	struct kvm_regs r;
	memset(&r, 0, sizeof(r));
	r.rflags = 0x2;
	r.rip = bi->entry;
	r.rsi = bi->zero_page;
	r.rsp = r.rbp = bi->stack;
	if (ioctl(vcpu->fd, KVM_SET_REGS, &r) < 0)
		return vmm_errno(-errno, "KVM_SET_REGS");
	return 0;
}

int vmm_cpu_setup_boot(struct vmm_kvm_vm *vm, struct vmm_vcpu *vcpu, int ncpus,
		       const struct vmm_boot_info *bi)
{
	int ret;
	if ((ret = setup_cpuid(vm, vcpu, ncpus)) ||
	    (ret = setup_msrs(vcpu)) ||
	    (ret = setup_lapic(vcpu)) ||
	    (ret = setup_fpu(vcpu)))
		return ret;
	if (vcpu->id == 0)
		return setup_regs(vcpu, bi);
	return 0;
}
