/* vm_debug.c — read a stopped vCPU's position for error reports. */
#include "vmm/vm_debug.h"
#include "vmm/err.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

int vmm_vm_where(struct vmm_vm *vm, struct vmm_cpu_where *w)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_mp_state mp;
	struct kvm_vcpu_events ev;

	memset(w, 0, sizeof(*w));
	if (vmm_vm_is_running(vm))
		return vmm_err(-EBUSY, "describe a running vCPU: stop the VM first");
	if (ioctl(vm->vcpu.fd, KVM_GET_REGS, &regs) < 0)
		return vmm_errno(-errno, "KVM_GET_REGS");
	if (ioctl(vm->vcpu.fd, KVM_GET_SREGS, &sregs) < 0)
		return vmm_errno(-errno, "KVM_GET_SREGS");
	if (ioctl(vm->vcpu.fd, KVM_GET_MP_STATE, &mp) < 0)
		return vmm_errno(-errno, "KVM_GET_MP_STATE");
	if (ioctl(vm->vcpu.fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
		return vmm_errno(-errno, "KVM_GET_VCPU_EVENTS");
	w->rip = regs.rip;
	w->rsp = regs.rsp;
	w->rflags = regs.rflags;
	w->cr3 = sregs.cr3;
	w->cpl = sregs.cs.dpl;
	w->halted = mp.mp_state == KVM_MP_STATE_HALTED;
	w->irq_pending = ev.interrupt.injected || ev.exception.injected || ev.exception.pending ||
			 ev.nmi.injected || ev.nmi.pending;
	for (unsigned i = 0; i < sizeof(sregs.interrupt_bitmap) / sizeof(sregs.interrupt_bitmap[0]); i++)
		w->irq_pending |= sregs.interrupt_bitmap[i] != 0;
	return 0;
}

const char *vmm_vm_describe(struct vmm_vm *vm, char *buf, size_t len)
{
	struct vmm_cpu_where w;
	if (vmm_vm_where(vm, &w)) {
		snprintf(buf, len, "vCPU state unavailable: %s", vmm_strerror());
		return buf;
	}
	snprintf(buf, len,
		 "cpl %u rip 0x%" PRIx64 " rsp 0x%" PRIx64 " rflags 0x%" PRIx64 " (if=%d) cr3 0x%" PRIx64
		 "%s%s, %" PRIu64 " exits",
		 w.cpl, w.rip, w.rsp, w.rflags, (int)((w.rflags >> 9) & 1), w.cr3,
		 w.halted ? " halted" : "", w.irq_pending ? " irq-pending" : "", vm->exits);
	return buf;
}
