/* vmstate.h — the KVM state of a VM: one vCPU (the VMM runs UP guests) and
 * the VM-wide in-kernel devices (PIT, kvm-clock, PIC and IOAPIC).
 *
 * Capture: the VM must be paused — its run thread stopped and joined (or
 * never started), so no thread is inside KVM_RUN — and its devices quiet
 * (the vsock device thread stopped: snapshot.c does that).  Capture first
 * re-enters KVM_RUN once with immediate_exit set, which completes an I/O
 * exit the run loop handled but did not resume (KVM applies the result of an
 * IN or MMIO read only on the next KVM_RUN), then calls KVM_KVMCLOCK_CTRL
 * and reads, in DESIGN.md §5 order: per vCPU MP_STATE, REGS, SREGS, XSAVE
 * (FPU without KVM_CAP_XSAVE), XCRS, DEBUGREGS, LAPIC, TSC_KHZ, CPUID, MSRs,
 * VCPU_EVENTS; then PIT2, CLOCK, IRQCHIP x3.
 *
 * Restore: into a VM made by vmm_vm_create() with the same memory size that
 * has never run and was not booted (its vCPU has no CPUID yet), with guest
 * RAM already holding the snapshot's memory.  Order: CPUID, MP_STATE, REGS,
 * SREGS, XSAVE, XCRS, DEBUGREGS, LAPIC (after SREGS: the APIC base), TSC_KHZ,
 * MSRs (after LAPIC; MSR_IA32_TSC_DEADLINE alone in a last chunk, once the
 * TSC is back), VCPU_EVENTS; then PIT2, CLOCK, IRQCHIP.  Devices follow
 * (snapshot.c).  On failure the VM is half-restored: release it.
 *
 * Every failure returns -errno with one line of context (vmm_strerror()).
 */
#ifndef SNAP_VMSTATE_H
#define SNAP_VMSTATE_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/kvm.h"

#include "vmm/virtio_mmio.h"

struct vmm_vm;

#define SNAP_MAX_CPUID   256
#define SNAP_MAX_MSRS    512
#define SNAP_XSAVE_MAX   (16u << 10)    /* KVM_GET_XSAVE2 images up to 16 KiB */
#define SNAP_NIRQCHIPS   3              /* PIC master, PIC slave, IOAPIC */

#define SNAP_MSR_IA32_TSC          0x00000010u
#define SNAP_MSR_IA32_TSC_DEADLINE 0x000006e0u
#define SNAP_MSR_KVM_WALL_CLOCK_NEW  0x4b564d00u
#define SNAP_MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01u

struct snap_vcpu_state {
	struct kvm_mp_state mp_state;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	uint32_t xsave_len;             /* 0: no XSAVE, `fpu` holds the FPU */
	uint8_t xsave[SNAP_XSAVE_MAX];
	struct kvm_fpu fpu;
	bool has_xcrs;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs debugregs;
	struct kvm_lapic_state lapic;
	uint32_t tsc_khz;
	uint32_t ncpuid;
	struct kvm_cpuid_entry2 cpuid[SNAP_MAX_CPUID];
	uint32_t nmsrs;
	struct kvm_msr_entry msrs[SNAP_MAX_MSRS];
	struct kvm_vcpu_events events;
};

struct snap_serial_state {
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	bool thre_pending;
	bool irq_level;
};

/* Everything a VM is besides its memory.  Large (~60 KiB): allocate it. */
struct snap_vm_state {
	uint64_t mem_size;
	struct snap_vcpu_state vcpu;
	struct kvm_pit_state2 pit2;
	struct kvm_clock_data clock;
	struct kvm_irqchip irqchip[SNAP_NIRQCHIPS];
	struct snap_serial_state serial;
	uint64_t vsock_cid;             /* 0: the VM has no vsock device */
	struct virtio_mmio_state vsock_mmio;
	uint32_t vsock_next_port;       /* the device's next ephemeral host port */
	bool agent_ready;
};

/* vCPU 0 and the VM-wide KVM state (no devices, no memory). */
int snap_vmstate_capture(struct vmm_vm *vm, struct snap_vm_state *st)
	__attribute__((warn_unused_result));
/* Before restoring state into a vCPU that has run: KVM finishes an I/O or
 * MMIO exit the run loop already handled on the next KVM_RUN (writing the
 * old instance's data into registers and moving RIP on), so finish it now,
 * with immediate_exit set (no guest instruction runs), and let the restore
 * overwrite the result. */
int snap_vcpu_discard_io(struct vmm_vcpu *vcpu) __attribute__((warn_unused_result));
int snap_vmstate_restore(struct vmm_vm *vm, const struct snap_vm_state *st)
	__attribute__((warn_unused_result));

/* The host's KVM_GET_SUPPORTED_CPUID through an open /dev/kvm fd. */
int snap_supported_cpuid(int kvmfd, struct kvm_cpuid_entry2 *out, uint32_t max, uint32_t *n)
	__attribute__((warn_unused_result));

#endif
