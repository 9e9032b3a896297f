/* vm.c — a VM: assembly of KVM objects, RAM and devices; the vCPU run loop. */
#include "vmm/vm.h"
#include "vmm/cpu.h"
#include "vmm/err.h"
#include "vmm/fileio.h"
#include "vmm/layout.h"
#include "vmm/mptable.h"
#include "vmm/virtio_mmio.h"
#include "vmm/vsock_host.h"
#include "proto/uf_abi.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define I8042_DATA_PORT    0x60
#define I8042_CMD_PORT     0x64
#define I8042_CMD_RESET    0xfe
#define VMM_FILE_MAX       (1ull << 31)

static __thread struct kvm_run *vmm_running_run;

static void vmm_kick_handler(int sig)
{
	(void)sig;
	struct kvm_run *run = vmm_running_run;
	if (run)
		run->immediate_exit = 1;
}

uint64_t vmm_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void serial_irq(void *opaque, int level)
{
	struct vmm_vm *vm = opaque;
	(void)vmm_kvm_irq_line(&vm->kvm, VMM_COM1_IRQ, level);
}

int vmm_vm_create(struct vmm_vm *vm, const struct vmm_vm_config *cfg)
{
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->kvm.kvmfd = vm->kvm.vmfd = vm->vcpu.fd = vm->mem.fd = -1;
	vm->t_create = vmm_now_ns();
	pthread_mutex_init(&vm->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&vm->cond, &ca);
	pthread_condattr_destroy(&ca);

	struct sigaction sa = {.sa_handler = vmm_kick_handler};
	sigemptyset(&sa.sa_mask);
	if (sigaction(VMM_KICK_SIGNAL, &sa, NULL) < 0)
		return vmm_errno(-errno, "sigaction");

	if (cfg->mem_size < VMM_MEM_MIN || cfg->mem_size > VMM_MEM_MAX)
		return vmm_err(-EINVAL, "guest memory of %llu MiB is outside [%llu, %llu] MiB",
			       (unsigned long long)(cfg->mem_size >> 20), VMM_MEM_MIN >> 20,
			       VMM_MEM_MAX >> 20);
	if ((ret = vmm_kvm_vm_create(&vm->kvm, cfg->kvm_path)))
		return ret;
	if ((ret = vmm_mem_init(&vm->mem, cfg->mem_size))) {
		vmm_errno(ret, "guest memory of %llu MiB", (unsigned long long)(cfg->mem_size >> 20));
		goto err;
	}
	if ((ret = vmm_kvm_set_memslot(&vm->kvm, 0, 0, vm->mem.host, vm->mem.size)))
		goto err;
	if ((ret = vmm_vcpu_create(&vm->kvm, &vm->vcpu, 0)))
		goto err;
	vmm_serial_init(&vm->serial, cfg->console_fd, serial_irq, vm);
	vm->serial.out_limit = cfg->console_limit;
	if (cfg->vsock_cid) {
		if ((ret = vsock_host_create(&vm->vsock, &vm->mem, VMM_MMIO_BASE, VMM_VIRTIO_IRQ_BASE,
					     vm->kvm.vmfd, cfg->vsock_cid, NULL))) {
			vmm_errno(ret, "virtio-vsock device");
			goto err;
		}
		if ((ret = vmm_vm_add_mmio(vm, VMM_MMIO_BASE, VIRTIO_MMIO_WINDOW, virtio_mmio_access_fn,
					   vsock_host_mmio(vm->vsock))))
			goto err;
		if ((ret = vsock_host_start(vm->vsock))) {
			vmm_errno(ret, "virtio-vsock device thread");
			goto err;
		}
	}
	return 0;
err:
	vmm_vm_release(vm);
	return ret;
}

int vmm_vm_add_mmio(struct vmm_vm *vm, uint64_t base, uint64_t size, vmm_mmio_fn fn, void *opaque)
{
	if (vm->nmmio == VMM_MAX_MMIO)
		return vmm_err(-ENOSPC, "too many MMIO regions (max %d)", VMM_MAX_MMIO);
	vm->mmio[vm->nmmio++] = (struct vmm_mmio_region){base, size, fn, opaque};
	return 0;
}

int vmm_vm_boot(struct vmm_vm *vm, const char *kernel_path, const char *initrd_path,
		const char *cmdline)
{
	int ret;
	uint8_t *k = NULL, *rd = NULL;
	size_t klen = 0, rdlen = 0;

	if ((ret = vmm_read_file("kernel", kernel_path, VMM_FILE_MAX, &k, &klen)))
		return ret;
	if (initrd_path && (ret = vmm_read_file("initrd", initrd_path, VMM_FILE_MAX, &rd, &rdlen)))
		goto out;
	/* Devices on the MMIO window are declared on the command line. */
	char *full = NULL;
	if (vm->vsock) {
		if (asprintf(&full, "%s virtio_mmio.device=4K@0x%llx:%d", cmdline,
			     (unsigned long long)VMM_MMIO_BASE, VMM_VIRTIO_IRQ_BASE) < 0) {
			ret = vmm_err(-ENOMEM, "command line: out of memory");
			goto out;
		}
		cmdline = full;
	}
	ret = vmm_boot_load(&vm->mem, k, klen, rd, rdlen, cmdline, &vm->boot);
	free(full);
	if (ret)
		goto out;
	if ((ret = vmm_mptable_write(&vm->mem, 1)))
		goto out;
	ret = vmm_cpu_setup_boot(&vm->kvm, &vm->vcpu, 1, &vm->boot);
out:
	free(k);
	free(rd);
	return ret;
}

void vmm_vm_release(struct vmm_vm *vm)
{
	vmm_serial_flush(&vm->serial);
	if (vm->vsock)
		vsock_host_release(vm->vsock);     /* unregisters its irqfd/ioeventfds */
	vm->vsock = NULL;
	vmm_vcpu_release(&vm->vcpu);
	vmm_kvm_vm_release(&vm->kvm);
	vmm_mem_release(&vm->mem);
	pthread_cond_destroy(&vm->cond);
	pthread_mutex_destroy(&vm->lock);
}

static void ns_to_timespec(struct timespec *ts, uint64_t ns)
{
	ts->tv_sec = (time_t)(ns / 1000000000ull);
	ts->tv_nsec = (long)(ns % 1000000000ull);
}

int vmm_vm_wait_ready(struct vmm_vm *vm, uint64_t timeout_ns)
{
	struct timespec ts;
	ns_to_timespec(&ts, vmm_now_ns() + timeout_ns);
	int ret = 0;
	pthread_mutex_lock(&vm->lock);
	bool started = vm->running;
	while (!vm->ready) {
		if (started && !vm->running) {
			ret = -ESRCH;
			break;
		}
		if (pthread_cond_timedwait(&vm->cond, &vm->lock, &ts) == ETIMEDOUT) {
			ret = vm->ready ? 0 : vm->running ? -ETIMEDOUT : -ESRCH;
			break;
		}
		started |= vm->running;
	}
	pthread_mutex_unlock(&vm->lock);
	return ret;
}

bool vmm_vm_is_running(struct vmm_vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	bool running = vm->running;
	pthread_mutex_unlock(&vm->lock);
	return running;
}

void vmm_vm_stop(struct vmm_vm *vm)
{
	vm->stop_requested = 1;
	pthread_mutex_lock(&vm->lock);
	if (vm->running)
		pthread_kill(vm->run_thread, VMM_KICK_SIGNAL);
	pthread_mutex_unlock(&vm->lock);
}

/* ---- the run loop ---- */

struct run_state {
	struct vmm_vm *vm;
	struct vmm_exit *ex;
	bool done;
};

static void finish(struct run_state *rs, enum vmm_exit_kind kind, int status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void finish(struct run_state *rs, enum vmm_exit_kind kind, int status, const char *fmt, ...)
{
	va_list ap;
	rs->ex->kind = kind;
	rs->ex->status = status;
	va_start(ap, fmt);
	vsnprintf(rs->ex->detail, sizeof(rs->ex->detail), fmt, ap);
	va_end(ap);
	rs->done = true;
}

static void port_io(struct run_state *rs, uint16_t port, uint8_t *data, unsigned size, bool is_write)
{
	struct vmm_vm *vm = rs->vm;

	if (port >= VMM_COM1_PORT && port < VMM_COM1_PORT + 8) {
		if (size == 1)
			vmm_serial_io(&vm->serial, port - VMM_COM1_PORT, data, is_write);
		return;
	}
	switch (port) {
	case I8042_CMD_PORT:
		if (is_write && size == 1 && *data == I8042_CMD_RESET)
			finish(rs, VMM_EXIT_RESET, 0, "guest reset (i8042)");
		else if (!is_write)
			memset(data, 0, size);   /* buffers empty */
		return;
	case I8042_DATA_PORT:
		if (!is_write)
			memset(data, 0, size);
		return;
	case UF_PORT_EXIT:
		if (is_write) {
			finish(rs, VMM_EXIT_STATUS, data[0], "guest exited with status %u", data[0]);
			return;
		}
		break;
	case UF_PORT_READY:
		if (is_write && size == 4) {
			uint32_t v;
			memcpy(&v, data, 4);
			if (v == UF_READY_MAGIC && !vm->ready) {
				pthread_mutex_lock(&vm->lock);
				vm->ready = true;
				vm->t_ready = vmm_now_ns();
				pthread_cond_broadcast(&vm->cond);
				pthread_mutex_unlock(&vm->lock);
			}
			return;
		}
		break;
	}
	vm->unknown_io++;
	if (!is_write)
		memset(data, 0, size);
}

static void mmio(struct run_state *rs, struct kvm_run *run)
{
	struct vmm_vm *vm = rs->vm;
	uint64_t gpa = run->mmio.phys_addr;
	uint32_t len = run->mmio.len > 8 ? 8 : run->mmio.len;

	for (int i = 0; i < vm->nmmio; i++) {
		struct vmm_mmio_region *r = &vm->mmio[i];
		if (gpa >= r->base && gpa - r->base < r->size) {
			r->access(r->opaque, gpa, run->mmio.data, len, run->mmio.is_write);
			return;
		}
	}
	vm->unknown_io++;
	if (!run->mmio.is_write)
		memset(run->mmio.data, 0xff, len);
}

static void handle_exit(struct run_state *rs, struct kvm_run *run)
{
	switch (run->exit_reason) {
	case KVM_EXIT_IO: {
		uint8_t *p = (uint8_t *)run + run->io.data_offset;
		for (uint32_t i = 0; i < run->io.count && !rs->done; i++, p += run->io.size)
			port_io(rs, run->io.port, p, run->io.size, run->io.direction == KVM_EXIT_IO_OUT);
		break;
	}
	case KVM_EXIT_MMIO:
		mmio(rs, run);
		break;
	case KVM_EXIT_INTR:
		break;
	case KVM_EXIT_HLT:
		finish(rs, VMM_EXIT_CRASH, 0, "guest halted with interrupts off");
		break;
	case KVM_EXIT_SHUTDOWN:
		finish(rs, VMM_EXIT_CRASH, 0, "guest triple fault (shutdown)");
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_CRASH)
			finish(rs, VMM_EXIT_CRASH, 0, "guest reported a crash");
		else
			finish(rs, VMM_EXIT_RESET, 0, "guest system event %u", run->system_event.type);
		break;
	case KVM_EXIT_FAIL_ENTRY:
		finish(rs, VMM_EXIT_CRASH, 0, "VM entry failed: hardware reason 0x%llx",
		       (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		finish(rs, VMM_EXIT_CRASH, 0, "KVM internal error, suberror %u", run->internal.suberror);
		break;
	default:
		finish(rs, VMM_EXIT_CRASH, 0, "unhandled KVM exit reason %u", run->exit_reason);
	}
}

static int arm_timer(timer_t t, uint64_t deadline_ns)
{
	struct itimerspec its = {0};
	if (deadline_ns) {
		ns_to_timespec(&its.it_value, deadline_ns);
		/* Re-fire in case the first signal lands between two KVM_RUNs. */
		its.it_interval.tv_nsec = 10 * 1000 * 1000;
	}
	if (timer_settime(t, TIMER_ABSTIME, &its, NULL) < 0)
		return vmm_errno(-errno, "timer_settime");
	return 0;
}

int vmm_vm_run(struct vmm_vm *vm, uint64_t ready_timeout_ns, uint64_t total_timeout_ns,
	       struct vmm_exit *ex)
{
	int ret = 0;
	struct kvm_run *run = vm->vcpu.run;
	struct run_state rs = {.vm = vm, .ex = ex};
	uint64_t start = vmm_now_ns();
	uint64_t ready_deadline = ready_timeout_ns ? start + ready_timeout_ns : 0;
	uint64_t total_deadline = total_timeout_ns ? start + total_timeout_ns : 0;

	memset(ex, 0, sizeof(*ex));
	struct sigevent sev = {.sigev_notify = SIGEV_THREAD_ID, .sigev_signo = VMM_KICK_SIGNAL};
	sev._sigev_un._tid = gettid();
	timer_t timer;
	if (timer_create(CLOCK_MONOTONIC, &sev, &timer) < 0) {
		ret = vmm_errno(-errno, "timer_create");
		finish(&rs, VMM_EXIT_ERROR, 0, "%s", vmm_strerror());
		return ret;
	}
	uint64_t armed = 0;

	vmm_running_run = run;
	run->immediate_exit = 0;
	pthread_mutex_lock(&vm->lock);
	vm->running = true;
	vm->run_thread = pthread_self();
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	if (!vm->t_first_run)
		vm->t_first_run = vmm_now_ns();
	while (!rs.done) {
		if (vm->stop_requested) {
			finish(&rs, VMM_EXIT_STOPPED, 0, "stopped by the VMM");
			break;
		}
		uint64_t want = !vm->ready && ready_deadline ? ready_deadline : total_deadline;
		if (total_deadline && total_deadline < want)
			want = total_deadline;
		if (want != armed) {
			if ((ret = arm_timer(timer, want))) {
				finish(&rs, VMM_EXIT_ERROR, 0, "%s", vmm_strerror());
				break;
			}
			armed = want;
		}

		int r = ioctl(vm->vcpu.fd, KVM_RUN, 0);
		vm->exits++;
		if (r < 0 && errno != EINTR && errno != EAGAIN) {
			ret = vmm_errno(-errno, "KVM_RUN");
			finish(&rs, VMM_EXIT_ERROR, 0, "%s", vmm_strerror());
			break;
		}
		if (r == 0)
			handle_exit(&rs, run);
		run->immediate_exit = 0;
		if (rs.done)
			break;

		uint64_t now = vmm_now_ns();
		if (!vm->ready && ready_deadline && now >= ready_deadline)
			finish(&rs, VMM_EXIT_TIMEOUT, 0, "agent not ready after %.1f s",
			       (double)ready_timeout_ns / 1e9);
		else if (total_deadline && now >= total_deadline)
			finish(&rs, VMM_EXIT_TIMEOUT, 0, "guest still running after %.1f s",
			       (double)total_timeout_ns / 1e9);
	}
	vmm_running_run = NULL;
	pthread_mutex_lock(&vm->lock);
	vm->running = false;
	vm->stop_requested = 0;     /* a stop ends one run; the VM may run again */
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	timer_delete(timer);
	vmm_serial_flush(&vm->serial);
	return ret;
}
