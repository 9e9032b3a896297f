/* restore.c — snap_open() verifies a snapshot directory without mapping
 * anything; snap_restore() turns a fresh VM into the snapshot's VM. */
#include "snapshotter/snapshot.h"
#include "snapshotter/devices.h"
#include "vmm/err.h"
#include "vmm/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t us_since(uint64_t t0)
{
	return (vmm_now_ns() - t0) / 1000;
}

static int read_meta(const char *dir, uint8_t **buf, size_t *len)
{
	char path[PATH_MAX];
	int k = snprintf(path, sizeof(path), "%s/" SNAP_META_FILE, dir);
	if (k < 0 || (size_t)k >= sizeof(path))
		return vmm_err(-ENAMETOOLONG, "%s: path too long", dir);
	int ret = vmm_read_file("snapshot metadata", path, SNAP_META_MAX, buf, len);
	if (ret == -EFBIG || ret == -EIO)
		return -EBADMSG;        /* not a metadata file: the context says why */
	if (ret == 0 && *len == 0) {
		free(*buf);
		*buf = NULL;
		return vmm_err(-EBADMSG, "%s: empty, not a metadata file", path);
	}
	return ret;
}

static int check_hash(const char *what, const uint8_t *want, const uint8_t *have)
{
	if (!snap_hash_known(want) || memcmp(want, have, SNAP_SHA256_LEN) == 0)
		return 0;
	char w[2 * SNAP_SHA256_LEN + 1], h[2 * SNAP_SHA256_LEN + 1];
	snap_hex(want, SNAP_SHA256_LEN, w);
	snap_hex(have, SNAP_SHA256_LEN, h);
	return vmm_err(-ESTALE, "snapshot was made from another %s (sha256 %.16s..., expected %.16s...)",
		       what, snap_hash_known(have) ? h : "unrecorded", w);
}

static int check_cpu(const struct snap_meta *m, const struct snap_expect *exp)
{
	if (exp && exp->skip_cpu_check)
		return 0;
	if (exp && exp->host_cpuid)
		return snap_cpu_check(m, exp->host_cpuid, exp->n_host_cpuid);
	const char *path = exp && exp->kvm_path ? exp->kvm_path : "/dev/kvm";
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return vmm_errno(-errno, "open %s (to check the snapshot's CPU)", path);
	struct kvm_cpuid_entry2 *host = calloc(SNAP_MAX_CPUID, sizeof(*host));
	uint32_t n = 0;
	int ret = host ? snap_supported_cpuid(fd, host, SNAP_MAX_CPUID, &n)
		       : vmm_err(-ENOMEM, "CPU check: out of memory");
	if (!ret)
		ret = snap_cpu_check(m, host, n);
	free(host);
	close(fd);
	return ret;
}

static int open_memory(const char *dir, uint64_t size, struct snap_image *img)
{
	char path[PATH_MAX];
	int k = snprintf(path, sizeof(path), "%s/" SNAP_MEM_FILE, dir);
	if (k < 0 || (size_t)k >= sizeof(path))
		return vmm_err(-ENAMETOOLONG, "%s: path too long", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vmm_errno(-errno, "%s", path);
	struct stat st;
	int ret = 0;
	if (fstat(fd, &st) < 0)
		ret = vmm_errno(-errno, "%s: stat", path);
	else if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != size)
		ret = vmm_err(-EBADMSG, "%s is %lld bytes, the snapshot's memory is %llu (truncated?)",
			      path, (long long)st.st_size, (unsigned long long)size);
	if (ret) {
		close(fd);
		return ret;
	}
	img->mem_fd = fd;
	img->mem_file_alloc = (uint64_t)st.st_blocks * 512;
	return 0;
}

int snap_open(const char *dir, const struct snap_expect *exp, struct snap_image *img)
{
	int ret;
	uint8_t *buf = NULL;
	size_t len = 0;

	img->meta = NULL;
	img->mem_fd = -1;
	img->mem_file_alloc = 0;
	if (!(img->meta = calloc(1, sizeof(*img->meta))))
		return vmm_err(-ENOMEM, "snapshot: out of memory");
	if ((ret = read_meta(dir, &buf, &len)))
		goto err;
	ret = snap_meta_decode(buf, len, img->meta);
	free(buf);
	if (ret)
		goto err;
	const struct snap_meta *m = img->meta;
	if (exp && exp->origin &&
	    ((ret = check_hash("kernel", exp->origin->kernel, m->origin.kernel)) ||
	     (ret = check_hash("initramfs", exp->origin->initrd, m->origin.initrd)) ||
	     (ret = check_hash("agent", exp->origin->agent, m->origin.agent))))
		goto err;
	if ((ret = check_cpu(m, exp)) || (ret = open_memory(dir, m->vm.mem_size, img)))
		goto err;
	return 0;
err:
	snap_image_close(img);
	return ret;
}

void snap_image_close(struct snap_image *img)
{
	free(img->meta);
	if (img->mem_fd >= 0)
		close(img->mem_fd);
	img->meta = NULL;
	img->mem_fd = -1;
}

void snap_vm_config(const struct snap_image *img, struct vmm_vm_config *cfg)
{
	cfg->mem_size = img->meta->vm.mem_size;
	cfg->vsock_cid = img->meta->vm.vsock_cid;
}

int snap_restore(struct vmm_vm *vm, const struct snap_image *img, struct snap_restore_stats *st)
{
	int ret;
	struct snap_restore_stats local;
	const struct snap_vm_state *s = &img->meta->vm;
	uint64_t t0 = vmm_now_ns(), t;

	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	if (vmm_vm_is_running(vm))
		return vmm_err(-EBUSY, "restore into a running VM: stop it first");
	if (vm->mem.size != s->mem_size)
		return vmm_err(-EINVAL, "snapshot of %llu MiB into a VM of %llu MiB",
			       (unsigned long long)(s->mem_size >> 20),
			       (unsigned long long)(vm->mem.size >> 20));
	if (!s->vsock_cid != !vm->vsock)
		return vmm_err(-EINVAL, "the snapshot %s a vsock device, the VM %s",
			       s->vsock_cid ? "has" : "has no", vm->vsock ? "has one" : "has none");
	/* No device may touch guest RAM between the new memory and the
	 * device state that matches it: in a VM that ran before (reset in
	 * place), the vsock thread would otherwise serve the new rings with
	 * the old instance's queue positions.  snap_devices_restore() starts
	 * it again. */
	snap_devices_quiesce(vm);
	if (vm->exits && (ret = snap_vcpu_discard_io(&vm->vcpu)))
		goto err_resume;
	if ((ret = vmm_mem_map_file(&vm->mem, img->mem_fd))) {
		vmm_errno(ret, "map the snapshot's memory over guest RAM");
		goto err_resume;
	}
	st->memory_us = us_since(t0);
	t = vmm_now_ns();
	if ((ret = snap_vmstate_restore(vm, s)))
		goto err_resume;
	st->state_us = us_since(t);
	t = vmm_now_ns();
	if ((ret = snap_devices_restore(vm, s)))
		return ret;
	pthread_mutex_lock(&vm->lock);
	vm->t_first_run = 0;            /* the restored instance has not run yet */
	vm->ready = s->agent_ready;
	vm->t_ready = s->agent_ready ? vmm_now_ns() : 0;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	st->devices_us = us_since(t);
	st->total_us = us_since(t0);
	return 0;
err_resume:
	/* The VM is in no state to run; the device thread comes back only so
	 * that the VM can be released the usual way. */
	{
		char why[256];
		snprintf(why, sizeof(why), "%s", vmm_strerror());
		if (snap_devices_resume(vm))
			vmm_err(ret, "%s; then the vsock device thread did not restart", why);
	}
	return ret;
}

int snap_wait_vsock_reset(struct vmm_vm *vm, const struct snap_image *img, int timeout_ms)
{
	uint64_t gpa = snap_vsock_evq_avail_idx_gpa(&img->meta->vm);
	if (!gpa)
		return 0;
	/* avail->idx as the snapshot left it; the guest bumps it when it
	 * hands the event buffer back after handling the reset. */
	uint16_t before = 0;
	if (pread(img->mem_fd, &before, sizeof(before), (off_t)gpa) < 0)
		return vmm_errno(-errno, "read the vsock event ring from memory.bin");
	const volatile uint16_t *idx = vmm_mem_ptr(&vm->mem, gpa, sizeof(uint16_t));
	if (!idx || (gpa & 1))
		return vmm_err(-EINVAL, "vsock event ring at 0x%llx outside guest RAM",
			       (unsigned long long)gpa);
	uint64_t deadline = vmm_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	while (*idx == before) {
		pthread_mutex_lock(&vm->lock);
		bool running = vm->running || !vm->t_first_run;
		pthread_mutex_unlock(&vm->lock);
		if (!running)
			return vmm_err(-ESRCH, "the restored VM stopped before it took the vsock reset");
		if (vmm_now_ns() > deadline)
			return vmm_err(-ETIMEDOUT, "the guest did not take the vsock transport reset "
				       "within %d ms", timeout_ms);
		usleep(50);
	}
	return 0;
}

static void *restored_run(void *arg)
{
	struct vmm_vm_thread *t = arg;
	t->run_ret = vmm_vm_run(&t->vm, 0, 0, &t->exit);
	return NULL;
}

int snap_vm_thread_start(struct vmm_vm_thread *t, const struct vmm_vm_config *base,
			 const struct snap_image *img, struct snap_restore_stats *st,
			 uint64_t *create_us)
{
	int ret;
	struct vmm_vm_config cfg = *base;
	snap_vm_config(img, &cfg);
	memset(t, 0, sizeof(*t));
	uint64_t t0 = vmm_now_ns();
	if ((ret = vmm_vm_create(&t->vm, &cfg)))
		return ret;
	if (create_us)
		*create_us = us_since(t0);
	if ((ret = snap_restore(&t->vm, img, st)))
		goto err_release;
	if ((ret = -pthread_create(&t->thread, NULL, restored_run, t))) {
		vmm_errno(ret, "vCPU thread");
		goto err_release;
	}
	t->thread_started = true;
	uint64_t t1 = vmm_now_ns();
	if ((ret = snap_wait_vsock_reset(&t->vm, img, 30000)))
		goto err_release;
	if (st)
		st->reset_ack_us = us_since(t1);
	return 0;
err_release:
	vmm_vm_thread_release(t);
	return ret;
}
