/* vmstate.c — vCPU and VM-wide KVM state, captured and restored in the
 * order DESIGN.md §5 fixes. */
#include "snapshotter/vmstate.h"
#include "vmm/err.h"
#include "vmm/vm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

/* Hyper-V synthetic MSRs: KVM lists them and reads them host-initiated even
 * for guests that were never shown Hyper-V CPUID leaves; ours are not. */
#define HV_MSR_FIRST 0x40000000u
#define HV_MSR_LAST  0x400001ffu

static int xioctl(int fd, unsigned long req, const void *arg)
{
	int r;
	do
		r = ioctl(fd, req, arg);
	while (r < 0 && errno == EINTR);
	return r;
}

#define GET(fd, req, arg)                                                        \
	do {                                                                     \
		if (xioctl((fd), (req), (arg)) < 0)                              \
			return vmm_errno(-errno, "vCPU/VM state: " #req);        \
	} while (0)
#define SET GET

int snap_supported_cpuid(int kvmfd, struct kvm_cpuid_entry2 *out, uint32_t max, uint32_t *n)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + max * sizeof(*out));
	if (!c)
		return vmm_err(-ENOMEM, "KVM_GET_SUPPORTED_CPUID: out of memory");
	c->nent = max;
	int ret = 0;
	if (xioctl(kvmfd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		ret = vmm_errno(-errno, "KVM_GET_SUPPORTED_CPUID");
	} else {
		memcpy(out, c->entries, c->nent * sizeof(*out));
		*n = c->nent;
	}
	free(c);
	return ret;
}

/* KVM finishes an IN or MMIO read the run loop handled (copies the data into
 * the guest's registers) only when KVM_RUN is entered again: do that with
 * immediate_exit set, so the guest does not run but its state is whole. */
static int complete_pending_io(struct vmm_vcpu *vcpu)
{
	vcpu->run->immediate_exit = 1;
	int r = ioctl(vcpu->fd, KVM_RUN, 0);
	int e = errno;
	vcpu->run->immediate_exit = 0;
	if (r == 0)
		return vmm_err(-EBUSY, "vCPU %d: completing its last I/O exit produced another "
			       "(exit reason %u): run the VM on and pause it again",
			       vcpu->id, vcpu->run->exit_reason);
	if (e != EINTR && e != EAGAIN)
		return vmm_errno(-e, "vCPU %d: KVM_RUN with immediate_exit", vcpu->id);
	return 0;
}

int snap_vcpu_discard_io(struct vmm_vcpu *vcpu)
{
	/* A completion may itself need user space (the next element of a
	 * string I/O): enter again until KVM has nothing left. */
	for (int i = 0; i < 64; i++) {
		vcpu->run->immediate_exit = 1;
		int r = ioctl(vcpu->fd, KVM_RUN, 0);
		int e = errno;
		vcpu->run->immediate_exit = 0;
		if (r < 0 && (e == EINTR || e == EAGAIN))
			return 0;
		if (r < 0)
			return vmm_errno(-e, "vCPU %d: KVM_RUN with immediate_exit", vcpu->id);
	}
	return vmm_err(-EBUSY, "vCPU %d: its pending I/O does not complete", vcpu->id);
}

/* KVM_GET_MSR_INDEX_LIST without Hyper-V MSRs, plus the TSC and kvm-clock
 * MSRs if the list lacks them.  *out is malloc'd. */
static int msr_candidates(int kvmfd, uint32_t **out, uint32_t *n)
{
	static const uint32_t must[] = {SNAP_MSR_IA32_TSC, SNAP_MSR_KVM_WALL_CLOCK_NEW,
					SNAP_MSR_KVM_SYSTEM_TIME_NEW};
	struct kvm_msr_list probe = {.nmsrs = 0};
	if (xioctl(kvmfd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return vmm_errno(-errno, "KVM_GET_MSR_INDEX_LIST");
	uint32_t cap = probe.nmsrs + 3;
	struct kvm_msr_list *l = calloc(1, sizeof(*l) + cap * sizeof(uint32_t));
	uint32_t *idx = calloc(cap, sizeof(uint32_t));
	if (!l || !idx) {
		free(l);
		free(idx);
		return vmm_err(-ENOMEM, "MSR list: out of memory");
	}
	l->nmsrs = probe.nmsrs;
	if (xioctl(kvmfd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
		int ret = vmm_errno(-errno, "KVM_GET_MSR_INDEX_LIST (%u MSRs)", probe.nmsrs);
		free(l);
		free(idx);
		return ret;
	}
	uint32_t k = 0;
	for (uint32_t i = 0; i < l->nmsrs && i < probe.nmsrs; i++)
		if (l->indices[i] < HV_MSR_FIRST || l->indices[i] > HV_MSR_LAST)
			idx[k++] = l->indices[i];
	for (size_t m = 0; m < sizeof(must) / sizeof(must[0]); m++) {
		bool have = false;
		for (uint32_t i = 0; i < k && !have; i++)
			have = idx[i] == must[m];
		if (!have)
			idx[k++] = must[m];
	}
	free(l);
	*out = idx;
	*n = k;
	return 0;
}

/* KVM_GET_MSRS stops at the first MSR it cannot read for this vCPU and
 * returns how many it read: keep those, skip the refused one, go on. */
static int capture_msrs(struct vmm_vm *vm, struct snap_vcpu_state *s)
{
	uint32_t *idx = NULL, n = 0;
	int ret = msr_candidates(vm->kvm.kvmfd, &idx, &n);
	if (ret)
		return ret;
	struct kvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(struct kvm_msr_entry));
	if (!m) {
		free(idx);
		return vmm_err(-ENOMEM, "MSRs: out of memory");
	}
	s->nmsrs = 0;
	for (uint32_t i = 0; i < n;) {
		uint32_t k = n - i;
		m->nmsrs = k;
		for (uint32_t j = 0; j < k; j++)
			m->entries[j] = (struct kvm_msr_entry){.index = idx[i + j]};
		int r = xioctl(vm->vcpu.fd, KVM_GET_MSRS, m);
		if (r < 0) {
			ret = vmm_errno(-errno, "KVM_GET_MSRS (%u MSRs from 0x%x)", k, idx[i]);
			break;
		}
		if (s->nmsrs + (uint32_t)r > SNAP_MAX_MSRS) {
			ret = vmm_err(-E2BIG, "KVM_GET_MSRS: more than %u MSRs", SNAP_MAX_MSRS);
			break;
		}
		memcpy(&s->msrs[s->nmsrs], m->entries, (size_t)r * sizeof(m->entries[0]));
		s->nmsrs += (uint32_t)r;
		i += (uint32_t)r + 1;
	}
	free(m);
	free(idx);
	return ret;
}

static int capture_vcpu(struct vmm_vm *vm, struct snap_vcpu_state *s)
{
	int fd = vm->vcpu.fd, ret;

	GET(fd, KVM_GET_MP_STATE, &s->mp_state);
	GET(fd, KVM_GET_REGS, &s->regs);
	GET(fd, KVM_GET_SREGS, &s->sregs);
	int xsave2 = vmm_kvm_cap(&vm->kvm, KVM_CAP_XSAVE2);
	if (xsave2 > 0) {
		if ((uint32_t)xsave2 > SNAP_XSAVE_MAX)
			return vmm_err(-E2BIG, "KVM_CAP_XSAVE2: XSAVE image of %d bytes, over %u",
				       xsave2, SNAP_XSAVE_MAX);
		GET(fd, KVM_GET_XSAVE2, s->xsave);
		s->xsave_len = (uint32_t)xsave2;
	} else if (vmm_kvm_cap(&vm->kvm, KVM_CAP_XSAVE)) {
		GET(fd, KVM_GET_XSAVE, s->xsave);
		s->xsave_len = sizeof(struct kvm_xsave);
	} else {
		GET(fd, KVM_GET_FPU, &s->fpu);
		s->xsave_len = 0;
	}
	s->has_xcrs = vmm_kvm_cap(&vm->kvm, KVM_CAP_XCRS) > 0;
	if (s->has_xcrs)
		GET(fd, KVM_GET_XCRS, &s->xcrs);
	GET(fd, KVM_GET_DEBUGREGS, &s->debugregs);
	GET(fd, KVM_GET_LAPIC, &s->lapic);
	int khz = xioctl(fd, KVM_GET_TSC_KHZ, NULL);
	if (khz < 0)
		return vmm_errno(-errno, "vCPU state: KVM_GET_TSC_KHZ");
	s->tsc_khz = (uint32_t)khz;

	/* KVM_GET_CPUID2 (6.1) copies the vCPU's entries but reports their
	 * number neither on success nor on E2BIG: fill the buffer with a
	 * pattern no entry has (KVM zeroes the padding) and count up to it. */
	struct kvm_cpuid2 *c = malloc(sizeof(*c) + SNAP_MAX_CPUID * sizeof(c->entries[0]));
	if (!c)
		return vmm_err(-ENOMEM, "KVM_GET_CPUID2: out of memory");
	memset(c->entries, 0xff, SNAP_MAX_CPUID * sizeof(c->entries[0]));
	c->nent = SNAP_MAX_CPUID;
	if (xioctl(fd, KVM_GET_CPUID2, c) < 0) {
		ret = vmm_errno(-errno, "vCPU state: KVM_GET_CPUID2");
		free(c);
		return ret;
	}
	struct kvm_cpuid_entry2 unused;
	memset(&unused, 0xff, sizeof(unused));
	s->ncpuid = 0;
	while (s->ncpuid < c->nent && s->ncpuid < SNAP_MAX_CPUID &&
	       memcmp(&c->entries[s->ncpuid], &unused, sizeof(unused)) != 0)
		s->ncpuid++;
	memcpy(s->cpuid, c->entries, s->ncpuid * sizeof(c->entries[0]));
	free(c);
	if (s->ncpuid == 0)
		return vmm_err(-EINVAL, "vCPU has no CPUID: was the VM booted?");

	if ((ret = capture_msrs(vm, s)))
		return ret;
	GET(fd, KVM_GET_VCPU_EVENTS, &s->events);
	return 0;
}

int snap_vmstate_capture(struct vmm_vm *vm, struct snap_vm_state *st)
{
	int ret;
	int vmfd = vm->kvm.vmfd;

	if ((ret = complete_pending_io(&vm->vcpu)))
		return ret;
	/* Tell the guest it was paused (its watchdogs then forgive the gap);
	 * EINVAL: the guest never enabled kvm-clock. */
	if (xioctl(vm->vcpu.fd, KVM_KVMCLOCK_CTRL, NULL) < 0 && errno != EINVAL)
		return vmm_errno(-errno, "KVM_KVMCLOCK_CTRL");
	st->mem_size = vm->mem.size;
	if ((ret = capture_vcpu(vm, &st->vcpu)))
		return ret;
	GET(vmfd, KVM_GET_PIT2, &st->pit2);
	GET(vmfd, KVM_GET_CLOCK, &st->clock);
	for (uint32_t i = 0; i < SNAP_NIRQCHIPS; i++) {
		memset(&st->irqchip[i], 0, sizeof(st->irqchip[i]));
		st->irqchip[i].chip_id = i;
		if (xioctl(vmfd, KVM_GET_IRQCHIP, &st->irqchip[i]) < 0)
			return vmm_errno(-errno, "VM state: KVM_GET_IRQCHIP %u", i);
	}
	return 0;
}

static int set_msrs(int fd, const struct kvm_msr_entry *e, uint32_t n)
{
	if (n == 0)
		return 0;
	struct kvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(*e));
	if (!m)
		return vmm_err(-ENOMEM, "KVM_SET_MSRS: out of memory");
	m->nmsrs = n;
	memcpy(m->entries, e, n * sizeof(*e));
	int ret = 0, r = xioctl(fd, KVM_SET_MSRS, m);
	if (r < 0)
		ret = vmm_errno(-errno, "KVM_SET_MSRS (%u MSRs)", n);
	else if ((uint32_t)r != n)
		ret = vmm_err(-EINVAL, "KVM_SET_MSRS: MSR 0x%x = 0x%llx refused", e[r].index,
			      (unsigned long long)e[r].data);
	free(m);
	return ret;
}

/* Everything but TSC_DEADLINE first (the TSC among them), then the deadline,
 * which KVM interprets against the restored TSC. */
static int restore_msrs(int fd, const struct snap_vcpu_state *s)
{
	struct kvm_msr_entry *rest = calloc(s->nmsrs ? s->nmsrs : 1, sizeof(*rest));
	if (!rest)
		return vmm_err(-ENOMEM, "MSRs: out of memory");
	uint32_t n = 0;
	const struct kvm_msr_entry *deadline = NULL;
	for (uint32_t i = 0; i < s->nmsrs; i++) {
		if (s->msrs[i].index == SNAP_MSR_IA32_TSC_DEADLINE)
			deadline = &s->msrs[i];
		else
			rest[n++] = s->msrs[i];
	}
	int ret = set_msrs(fd, rest, n);
	free(rest);
	if (!ret && deadline)
		ret = set_msrs(fd, deadline, 1);
	return ret;
}

static int set_cpuid(int fd, const struct snap_vcpu_state *s)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + s->ncpuid * sizeof(c->entries[0]));
	if (!c)
		return vmm_err(-ENOMEM, "KVM_SET_CPUID2: out of memory");
	c->nent = s->ncpuid;
	memcpy(c->entries, s->cpuid, s->ncpuid * sizeof(c->entries[0]));
	int ret = 0;
	if (xioctl(fd, KVM_SET_CPUID2, c) < 0)
		ret = vmm_errno(-errno, "KVM_SET_CPUID2 (%u entries)", s->ncpuid);
	free(c);
	return ret;
}

static int set_tsc_khz(int fd, uint32_t khz)
{
	int cur = xioctl(fd, KVM_GET_TSC_KHZ, NULL);
	if (cur < 0)
		return vmm_errno(-errno, "KVM_GET_TSC_KHZ");
	if (khz == 0 || (uint32_t)cur == khz)
		return 0;
	if (xioctl(fd, KVM_SET_TSC_KHZ, (void *)(uintptr_t)khz) < 0)
		return vmm_errno(-ENOTSUP, "the snapshot's TSC runs at %u kHz, this host's at %d kHz, "
				 "and KVM_SET_TSC_KHZ failed (%s)", khz, cur, strerror(errno));
	return 0;
}

static bool amd_vcpu(const struct snap_vcpu_state *s)
{
	for (uint32_t i = 0; i < s->ncpuid; i++)
		if (s->cpuid[i].function == 0)
			return memcmp(&s->cpuid[i].ebx, "Auth", 4) == 0 ||
			       memcmp(&s->cpuid[i].ebx, "Hygo", 4) == 0;
	return false;
}

static int restore_vcpu(struct vmm_vm *vm, const struct snap_vcpu_state *s)
{
	int fd = vm->vcpu.fd, ret;

	if ((ret = set_cpuid(fd, s)))
		return ret;
	SET(fd, KVM_SET_MP_STATE, &s->mp_state);
	SET(fd, KVM_SET_REGS, &s->regs);
	/* KVM_GET_SREGS on SVM reports TR as busy (type 11) although the VMCB
	 * holds what AMD hardware stores there, an available TSS (type 9).
	 * Hardware takes either; QEMU's emulated SVM (the KVM sandbox) checks
	 * port permissions only against a type-9 TR, so a restored guest's
	 * ioperm()ed OUT raises #GP.  Give the VMCB back the AMD value. */
	struct kvm_sregs sregs = s->sregs;
	if (amd_vcpu(s) && sregs.tr.type == 11)
		sregs.tr.type = 9;
	SET(fd, KVM_SET_SREGS, &sregs);
	if (s->xsave_len) {
		if (!vmm_kvm_cap(&vm->kvm, KVM_CAP_XSAVE))
			return vmm_err(-ENOTSUP, "the snapshot has XSAVE state; this KVM lacks KVM_CAP_XSAVE");
		int need = vmm_kvm_cap(&vm->kvm, KVM_CAP_XSAVE2);
		if (need > (int)SNAP_XSAVE_MAX)
			return vmm_err(-E2BIG, "KVM_SET_XSAVE wants %d bytes, over %u", need, SNAP_XSAVE_MAX);
		/* s->xsave is SNAP_XSAVE_MAX bytes, zero past xsave_len. */
		SET(fd, KVM_SET_XSAVE, s->xsave);
	} else {
		SET(fd, KVM_SET_FPU, &s->fpu);
	}
	if (s->has_xcrs) {
		if (!vmm_kvm_cap(&vm->kvm, KVM_CAP_XCRS))
			return vmm_err(-ENOTSUP, "the snapshot has XCRs; this KVM lacks KVM_CAP_XCRS");
		SET(fd, KVM_SET_XCRS, &s->xcrs);
	}
	SET(fd, KVM_SET_DEBUGREGS, &s->debugregs);
	SET(fd, KVM_SET_LAPIC, &s->lapic);
	if ((ret = set_tsc_khz(fd, s->tsc_khz)))
		return ret;
	if ((ret = restore_msrs(fd, s)))
		return ret;
	SET(fd, KVM_SET_VCPU_EVENTS, &s->events);
	return 0;
}

int snap_vmstate_restore(struct vmm_vm *vm, const struct snap_vm_state *st)
{
	int ret;
	int vmfd = vm->kvm.vmfd;

	if (st->mem_size != vm->mem.size)
		return vmm_err(-EINVAL, "snapshot of %llu MiB restored into a VM of %llu MiB",
			       (unsigned long long)(st->mem_size >> 20),
			       (unsigned long long)(vm->mem.size >> 20));
	if ((ret = restore_vcpu(vm, &st->vcpu)))
		return ret;
	SET(vmfd, KVM_SET_PIT2, &st->pit2);
	/* The clock continues from the snapshot's value: a clone's uptime
	 * does not jump by the time the snapshot sat on disk. */
	struct kvm_clock_data clock = {.clock = st->clock.clock};
	SET(vmfd, KVM_SET_CLOCK, &clock);
	for (uint32_t i = 0; i < SNAP_NIRQCHIPS; i++)
		if (xioctl(vmfd, KVM_SET_IRQCHIP, &st->irqchip[i]) < 0)
			return vmm_errno(-errno, "VM state: KVM_SET_IRQCHIP %u", st->irqchip[i].chip_id);
	return 0;
}
