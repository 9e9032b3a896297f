/* vm_debug.h — where a stopped guest is: one line for error reports.
 *
 * When a guest stops answering (a clone past its deadline, a test that
 * times out), the caller stops the VM (vmm_vm_stop() + join, so no
 * KVM_RUN is in flight on the vCPU) and asks vmm_vm_describe() what the
 * vCPU was doing: privilege level, RIP/RSP/RFLAGS, CR3, whether interrupts
 * were enabled and an interrupt or exception pending, the run-loop exit
 * count.  Reads only; the VM is untouched.
 */
#ifndef VMM_VM_DEBUG_H
#define VMM_VM_DEBUG_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/vm.h"

struct vmm_cpu_where {
	uint64_t rip, rsp, rflags, cr3;
	unsigned cpl;           /* CS.DPL */
	bool halted;            /* MP_STATE is HALTED */
	bool irq_pending;       /* an interrupt is injected or pending */
};

/* 0 or -errno (vmm_strerror()).  The VM must not be running. */
int vmm_vm_where(struct vmm_vm *vm, struct vmm_cpu_where *w) __attribute__((warn_unused_result));
/* The same as one line into buf ("cpl 0 rip 0x... rsp ... if=1 halted ...,
 * N exits"), or the error.  Returns buf. */
const char *vmm_vm_describe(struct vmm_vm *vm, char *buf, size_t len);

#endif
