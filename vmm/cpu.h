/* cpu.h — vCPU state for a fresh boot: CPUID, boot MSRs, LAPIC LVT0/LVT1,
 * FPU, and long-mode segment/control/general registers that enter the
 * kernel's 64-bit boot protocol.  Call vmm_cpu_setup_boot() once per vCPU
 * after it is created and before its first KVM_RUN.
 */
#ifndef VMM_CPU_H
#define VMM_CPU_H

#include "vmm/boot.h"
#include "vmm/kvm.h"

/* Program CPUID (KVM_GET_SUPPORTED_CPUID + KVM leaves + hypervisor bit +
 * TSC deadline), MSRs, LAPIC, FPU and registers.  Only vCPU 0 gets the
 * boot entry state; others (later, SMP) wait for INIT/SIPI. */
int vmm_cpu_setup_boot(struct vmm_kvm_vm *vm, struct vmm_vcpu *vcpu, int ncpus,
		       const struct vmm_boot_info *bi) __attribute__((warn_unused_result));

#endif
