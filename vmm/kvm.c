/* kvm.c — /dev/kvm, VM and vCPU file descriptors. */
#include "vmm/kvm.h"
#include "vmm/err.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* Addresses the VMX backend needs for its real-mode TSS and identity map;
 * just below the 4 GiB boundary, far from RAM and our MMIO window. */
#define VMM_TSS_ADDR          0xfffbd000ull
#define VMM_IDENTITY_MAP_ADDR 0xfffbc000ull

static const struct {
	long cap;
	const char *name;
} vmm_required_caps[] = {
	{KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
	{KVM_CAP_PIT2, "KVM_CAP_PIT2"},
	{KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
	{KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
	{KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
	{KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
	{KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
};

int vmm_kvm_cap(const struct vmm_kvm_vm *vm, long cap)
{
	int r = ioctl(vm->vmfd >= 0 ? vm->vmfd : vm->kvmfd, KVM_CHECK_EXTENSION, cap);
	return r < 0 ? 0 : r;
}

int vmm_kvm_vm_create(struct vmm_kvm_vm *vm, const char *kvm_path)
{
	int ret;
	const char *path = kvm_path ? kvm_path : "/dev/kvm";

	vm->vmfd = -1;
	vm->kvmfd = open(path, O_RDWR | O_CLOEXEC);
	if (vm->kvmfd < 0)
		return vmm_errno(-errno, "open %s", path);

	ret = ioctl(vm->kvmfd, KVM_GET_API_VERSION, 0);
	if (ret != KVM_API_VERSION) {
		ret = vmm_err(-ENOTSUP, "%s: KVM API version %d, need %d", path, ret, KVM_API_VERSION);
		goto err_close_kvm;
	}
	for (size_t i = 0; i < sizeof(vmm_required_caps) / sizeof(vmm_required_caps[0]); i++)
		if (ioctl(vm->kvmfd, KVM_CHECK_EXTENSION, vmm_required_caps[i].cap) <= 0) {
			ret = vmm_err(-ENOTSUP, "%s lacks %s", path, vmm_required_caps[i].name);
			goto err_close_kvm;
		}
	vm->vcpu_mmap_size = ioctl(vm->kvmfd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->vcpu_mmap_size < (int)sizeof(struct kvm_run)) {
		ret = vmm_errno(vm->vcpu_mmap_size < 0 ? -errno : -EINVAL, "KVM_GET_VCPU_MMAP_SIZE");
		goto err_close_kvm;
	}

	do
		vm->vmfd = ioctl(vm->kvmfd, KVM_CREATE_VM, 0);
	while (vm->vmfd < 0 && errno == EINTR);
	if (vm->vmfd < 0) {
		ret = vmm_errno(-errno, "KVM_CREATE_VM");
		goto err_close_kvm;
	}
	if (ioctl(vm->vmfd, KVM_SET_TSS_ADDR, VMM_TSS_ADDR) < 0) {
		ret = vmm_errno(-errno, "KVM_SET_TSS_ADDR");
		goto err_close_vm;
	}
	if (vmm_kvm_cap(vm, KVM_CAP_SET_IDENTITY_MAP_ADDR)) {
		uint64_t addr = VMM_IDENTITY_MAP_ADDR;
		if (ioctl(vm->vmfd, KVM_SET_IDENTITY_MAP_ADDR, &addr) < 0) {
			ret = vmm_errno(-errno, "KVM_SET_IDENTITY_MAP_ADDR");
			goto err_close_vm;
		}
	}
	if (ioctl(vm->vmfd, KVM_CREATE_IRQCHIP, 0) < 0) {
		ret = vmm_errno(-errno, "KVM_CREATE_IRQCHIP");
		goto err_close_vm;
	}
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	if (ioctl(vm->vmfd, KVM_CREATE_PIT2, &pit) < 0) {
		ret = vmm_errno(-errno, "KVM_CREATE_PIT2");
		goto err_close_vm;
	}
	return 0;

err_close_vm:
	close(vm->vmfd);
	vm->vmfd = -1;
err_close_kvm:
	close(vm->kvmfd);
	vm->kvmfd = -1;
	return ret;
}

void vmm_kvm_vm_release(struct vmm_kvm_vm *vm)
{
	if (vm->vmfd >= 0)
		close(vm->vmfd);
	if (vm->kvmfd >= 0)
		close(vm->kvmfd);
	vm->vmfd = vm->kvmfd = -1;
}

int vmm_kvm_set_memslot(struct vmm_kvm_vm *vm, uint32_t slot, uint64_t gpa,
			void *host, uint64_t size)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)host,
	};
	if (ioctl(vm->vmfd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return vmm_errno(-errno, "KVM_SET_USER_MEMORY_REGION slot %u at 0x%llx (%llu MiB)",
				 slot, (unsigned long long)gpa, (unsigned long long)(size >> 20));
	return 0;
}

int vmm_vcpu_create(struct vmm_kvm_vm *vm, struct vmm_vcpu *vcpu, int id)
{
	int ret;

	vcpu->id = id;
	vcpu->run = NULL;
	vcpu->fd = ioctl(vm->vmfd, KVM_CREATE_VCPU, id);
	if (vcpu->fd < 0)
		return vmm_errno(-errno, "KVM_CREATE_VCPU %d", id);
	vcpu->run_size = (size_t)vm->vcpu_mmap_size;
	void *p = mmap(NULL, vcpu->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (p == MAP_FAILED) {
		ret = vmm_errno(-errno, "mmap kvm_run of vCPU %d", id);
		close(vcpu->fd);
		vcpu->fd = -1;
		return ret;
	}
	vcpu->run = p;
	return 0;
}

void vmm_vcpu_release(struct vmm_vcpu *vcpu)
{
	if (vcpu->run)
		munmap(vcpu->run, vcpu->run_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
}

int vmm_kvm_irq_line(const struct vmm_kvm_vm *vm, uint32_t irq, int level)
{
	struct kvm_irq_level l = {.irq = irq, .level = level};
	if (ioctl(vm->vmfd, KVM_IRQ_LINE, &l) < 0)
		return vmm_errno(-errno, "KVM_IRQ_LINE %u=%d", irq, level);
	return 0;
}
