/* vm_thread.h — a VM whose vCPU runs on a thread of its own, for callers
 * (tests, benchmarks, later the forker) that talk to the guest while it runs.
 *
 * vmm_vm_thread_start() creates and boots the VM, starts the run thread and
 * waits for the agent's ready signal; vmm_vm_thread_join() waits for the
 * guest to exit by itself (e.g. after an agent Shutdown); vmm_vm_thread_release()
 * stops the VM if it still runs, joins the thread and releases everything.
 * The struct is the caller's and must stay put while the thread runs.
 */
#ifndef VMM_VM_THREAD_H
#define VMM_VM_THREAD_H

#include "vmm/vm.h"

struct vmm_vm_thread {
	struct vmm_vm vm;
	pthread_t thread;
	bool thread_started, joined;
	uint64_t ready_timeout_ns;
	struct vmm_exit exit;       /* valid once joined */
	int run_ret;
};

int vmm_vm_thread_start(struct vmm_vm_thread *t, const struct vmm_vm_config *cfg,
			const char *kernel, const char *initrd, const char *cmdline,
			uint64_t ready_timeout_ns) __attribute__((warn_unused_result));
/* Wait up to timeout_ns for the guest to exit; 0 once joined, -ETIMEDOUT. */
int vmm_vm_thread_join(struct vmm_vm_thread *t, uint64_t timeout_ns);
void vmm_vm_thread_release(struct vmm_vm_thread *t);

#endif
