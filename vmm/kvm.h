/* kvm.h — the KVM objects: the /dev/kvm handle, a VM with its in-kernel
 * irqchip and PIT, memory slots, and vCPUs with their kvm_run mapping.
 *
 * Ownership: vmm_kvm_vm_create() opens /dev/kvm and the VM fd, both released
 * by vmm_kvm_vm_release(); vmm_vcpu_create() opens a vCPU fd and maps its
 * kvm_run area, released by vmm_vcpu_release().  Release the vCPUs before
 * the VM.  Nothing here touches guest memory.
 */
#ifndef VMM_KVM_H
#define VMM_KVM_H

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>

struct vmm_kvm_vm {
	int kvmfd;
	int vmfd;
	int vcpu_mmap_size;
};

struct vmm_vcpu {
	int fd;
	int id;
	struct kvm_run *run;
	size_t run_size;
};

/* Open /dev/kvm (path may be NULL for the default), check the API version
 * and the capabilities we rely on, create a VM with an in-kernel irqchip and
 * PIT2 (speaker dummy). */
int vmm_kvm_vm_create(struct vmm_kvm_vm *vm, const char *kvm_path)
	__attribute__((warn_unused_result));
void vmm_kvm_vm_release(struct vmm_kvm_vm *vm);

/* Map host [host, host+size) at guest-physical gpa in `slot`. */
int vmm_kvm_set_memslot(struct vmm_kvm_vm *vm, uint32_t slot, uint64_t gpa,
			void *host, uint64_t size) __attribute__((warn_unused_result));

int vmm_vcpu_create(struct vmm_kvm_vm *vm, struct vmm_vcpu *vcpu, int id)
	__attribute__((warn_unused_result));
void vmm_vcpu_release(struct vmm_vcpu *vcpu);

/* Value of KVM_CHECK_EXTENSION on the VM (or 0 when unsupported). */
int vmm_kvm_cap(const struct vmm_kvm_vm *vm, long cap);

/* Set ISA interrupt line `irq` to `level` on the in-kernel irqchip. */
int vmm_kvm_irq_line(const struct vmm_kvm_vm *vm, uint32_t irq, int level);

#endif
