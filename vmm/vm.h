/* vm.h — one virtual machine: KVM objects, guest RAM, the boot CPU, the
 * legacy devices (8250 console, i8042 reset, the unifork exit/ready ports),
 * the virtio-vsock device (optional) and any other MMIO regions, plus the
 * vCPU run loop.
 *
 * Lifetime: vmm_vm_create() → [vmm_vm_add_mmio()...] → vmm_vm_boot() →
 * vmm_vm_run() (on the thread that owns vCPU 0, until the guest exits or a
 * deadline passes) → vmm_vm_release().  The struct is the caller's; every fd,
 * mapping and buffer inside it is released by vmm_vm_release(), which is safe
 * after a failed create.
 *
 * Signals: the run loop is interrupted with VMM_KICK_SIGNAL (installed by
 * vmm_vm_create(); its handler sets immediate_exit on the running vCPU).
 *
 * Threads: vmm_vm_run() may run on a thread of its own while another thread
 * waits for the agent (vmm_vm_wait_ready()), talks to it over vsock
 * (vm->vsock, see vsock_host.h) and finally stops the VM (vmm_vm_stop(), or
 * by asking the agent to shut down).  Join the run thread before release.
 */
#ifndef VMM_VM_H
#define VMM_VM_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/boot.h"
#include "vmm/guest_mem.h"
#include "vmm/kvm.h"
#include "vmm/serial.h"

#define VMM_KICK_SIGNAL   SIGUSR2
#define VMM_MAX_MMIO      8

struct vmm_vm_config {
	uint64_t mem_size;           /* bytes, multiple of 2 MiB */
	const char *kvm_path;        /* NULL = /dev/kvm */
	int console_fd;              /* guest serial output; -1 discards */
	uint64_t console_limit;      /* bytes of console output kept; 0 = all */
	uint64_t vsock_cid;          /* guest CID of a virtio-vsock device; 0 = none */
};

enum vmm_exit_kind {
	VMM_EXIT_STATUS,        /* guest wrote a status to UF_PORT_EXIT */
	VMM_EXIT_RESET,         /* i8042 reset / KVM system event: orderly */
	VMM_EXIT_CRASH,         /* triple fault, internal error, failed entry */
	VMM_EXIT_TIMEOUT,       /* a deadline of vmm_vm_run passed */
	VMM_EXIT_STOPPED,       /* vmm_vm_stop() was called */
	VMM_EXIT_ERROR,         /* the VMM failed (see detail) */
};

struct vmm_exit {
	enum vmm_exit_kind kind;
	int status;             /* for VMM_EXIT_STATUS */
	char detail[160];
};

typedef void (*vmm_mmio_fn)(void *opaque, uint64_t gpa, uint8_t *data, uint32_t len, bool is_write);

struct vmm_mmio_region {
	uint64_t base, size;
	vmm_mmio_fn access;
	void *opaque;
};

struct vsock;

struct vmm_vm {
	struct vmm_kvm_vm kvm;
	struct vmm_mem mem;
	struct vmm_vcpu vcpu;
	struct vmm_serial serial;
	struct vmm_mmio_region mmio[VMM_MAX_MMIO];
	int nmmio;
	struct vmm_boot_info boot;
	struct vsock *vsock;    /* NULL without cfg.vsock_cid */

	/* Run state shared with other threads, under `lock`. */
	pthread_mutex_t lock;
	pthread_cond_t cond;    /* ready or running changed */
	bool running;
	pthread_t run_thread;
	volatile sig_atomic_t stop_requested;

	/* CLOCK_MONOTONIC timestamps in ns; 0 = not reached. */
	uint64_t t_create;      /* vmm_vm_create() entered */
	uint64_t t_first_run;   /* first KVM_RUN */
	uint64_t t_ready;       /* agent's ready signal */
	bool ready;
	uint64_t exits;         /* KVM_RUN returns */
	uint64_t unknown_io;    /* port accesses nothing claimed */
};

uint64_t vmm_now_ns(void);

int vmm_vm_create(struct vmm_vm *vm, const struct vmm_vm_config *cfg)
	__attribute__((warn_unused_result));
/* Register an MMIO region [base, base+size) handled on the vCPU thread. */
int vmm_vm_add_mmio(struct vmm_vm *vm, uint64_t base, uint64_t size, vmm_mmio_fn fn, void *opaque)
	__attribute__((warn_unused_result));
/* Load kernel + initrd files and set the boot CPU's state. */
int vmm_vm_boot(struct vmm_vm *vm, const char *kernel_path, const char *initrd_path,
		const char *cmdline) __attribute__((warn_unused_result));
/* Run vCPU 0 until the guest exits.  `ready_timeout_ns` bounds the time to
 * the agent's ready signal, `total_timeout_ns` the whole run (0 = none).
 * Returns 0 with *ex filled in (also for timeouts and guest crashes), or
 * -errno when the run loop itself failed (ex->kind = VMM_EXIT_ERROR). */
int vmm_vm_run(struct vmm_vm *vm, uint64_t ready_timeout_ns, uint64_t total_timeout_ns,
	       struct vmm_exit *ex);
/* Wait until the agent signalled ready: 0, -ETIMEDOUT, or -ESRCH when the
 * run ended (or never started within the timeout) without it. */
int vmm_vm_wait_ready(struct vmm_vm *vm, uint64_t timeout_ns);
/* Ask a running vmm_vm_run() to return (VMM_EXIT_STOPPED); any thread. */
void vmm_vm_stop(struct vmm_vm *vm);
/* Whether vmm_vm_run() is running the VM now (on any thread). */
bool vmm_vm_is_running(struct vmm_vm *vm);
void vmm_vm_release(struct vmm_vm *vm);

#endif
