/* vm_thread.c — run a VM's vCPU on its own thread. */
#include "vmm/vm_thread.h"
#include "vmm/err.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static void *run_thread(void *arg)
{
	struct vmm_vm_thread *t = arg;
	t->run_ret = vmm_vm_run(&t->vm, t->ready_timeout_ns, 0, &t->exit);
	return NULL;
}

int vmm_vm_thread_start(struct vmm_vm_thread *t, const struct vmm_vm_config *cfg,
			const char *kernel, const char *initrd, const char *cmdline,
			uint64_t ready_timeout_ns)
{
	int ret;

	memset(t, 0, sizeof(*t));
	t->ready_timeout_ns = ready_timeout_ns;
	if ((ret = vmm_vm_create(&t->vm, cfg)))
		return ret;
	if ((ret = vmm_vm_boot(&t->vm, kernel, initrd, cmdline)))
		goto err_release;
	if ((ret = -pthread_create(&t->thread, NULL, run_thread, t))) {
		vmm_errno(ret, "vCPU thread");
		goto err_release;
	}
	t->thread_started = true;
	if ((ret = vmm_vm_wait_ready(&t->vm, ready_timeout_ns + 1000000000ull))) {
		vmm_vm_thread_join(t, 5000000000ull);
		vmm_err(ret, "agent not ready: %s", t->joined ? t->exit.detail : "still booting");
		goto err_release;
	}
	return 0;
err_release:
	vmm_vm_thread_release(t);
	return ret;
}

int vmm_vm_thread_join(struct vmm_vm_thread *t, uint64_t timeout_ns)
{
	if (!t->thread_started || t->joined)
		return 0;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t ns = (uint64_t)ts.tv_nsec + timeout_ns;
	ts.tv_sec += (time_t)(ns / 1000000000ull);
	ts.tv_nsec = (long)(ns % 1000000000ull);
	int r = pthread_timedjoin_np(t->thread, NULL, &ts);
	if (r)
		return -r;
	t->joined = true;
	return 0;
}

void vmm_vm_thread_release(struct vmm_vm_thread *t)
{
	if (t->thread_started && !t->joined) {
		vmm_vm_stop(&t->vm);
		pthread_join(t->thread, NULL);
		t->joined = true;
	}
	vmm_vm_release(&t->vm);
}
