/* shell.c — pre-built VM shells (KVM VM + vCPU + memslot over a reserved
 * range) and the pool that lends them out. */
#include "forker/shell.h"
#include "vmm/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define FORK_PAGE 4096ull

static void *reserve(void *at, uint64_t size)
{
	return mmap(at, size, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | (at ? MAP_FIXED : 0), -1, 0);
}

int fork_shell_create(struct fork_shell *sh, uint64_t mem_size, const char *kvm_path)
{
	int ret;

	memset(sh, 0, sizeof(*sh));
	sh->kvm.kvmfd = sh->kvm.vmfd = sh->vcpu.fd = -1;
	if (mem_size == 0 || mem_size % FORK_PAGE)
		return vmm_err(-EINVAL, "shell: memory size %llu is not a positive multiple of 4 KiB",
			       (unsigned long long)mem_size);
	ret = vmm_kvm_vm_create(&sh->kvm, kvm_path);
	if (ret < 0)
		return ret;
	void *p = reserve(NULL, mem_size);
	if (p == MAP_FAILED) {
		ret = vmm_errno(-errno, "shell: reserve %llu MiB", (unsigned long long)(mem_size >> 20));
		goto err_release_vm;
	}
	sh->mem = p;
	sh->mem_size = mem_size;
	ret = vmm_kvm_set_memslot(&sh->kvm, 0, 0, sh->mem, mem_size);
	if (ret < 0)
		goto err_unmap;
	ret = vmm_vcpu_create(&sh->kvm, &sh->vcpu, 0);
	if (ret < 0)
		goto err_unmap;
	sh->sync_regs = vmm_kvm_cap(&sh->kvm, KVM_CAP_SYNC_REGS);
	return 0;

err_unmap:
	munmap(sh->mem, sh->mem_size);
	sh->mem = NULL;
err_release_vm:
	vmm_kvm_vm_release(&sh->kvm);
	return ret;
}

void fork_shell_destroy(struct fork_shell *sh)
{
	vmm_vcpu_release(&sh->vcpu);
	vmm_kvm_vm_release(&sh->kvm);
	if (sh->mem)
		munmap(sh->mem, sh->mem_size);
	sh->mem = NULL;
}

int fork_shell_clear(struct fork_shell *sh)
{
	if (reserve(sh->mem, sh->mem_size) == MAP_FAILED)
		return vmm_errno(-errno, "shell: reset range to PROT_NONE");
	return 0;
}

int fork_shell_pool_init(struct fork_shell_pool *pool, unsigned n, uint64_t mem_size)
{
	int ret;

	memset(pool, 0, sizeof(*pool));
	if (n == 0)
		return vmm_err(-EINVAL, "shell pool: no shells asked for");
	pool->shells = calloc(n, sizeof(*pool->shells));
	pool->free = calloc(n, sizeof(*pool->free));
	if (!pool->shells || !pool->free) {
		ret = vmm_err(-ENOMEM, "shell pool: out of memory for %u shells", n);
		goto err_free;
	}
	pool->mem_size = mem_size;
	for (; pool->n < n; pool->n++) {
		struct fork_shell *sh = &pool->shells[pool->n];
		ret = fork_shell_create(sh, mem_size, NULL);
		if (ret < 0)
			goto err_destroy;
		pool->free[pool->nfree++] = sh;
	}
	ret = pthread_mutex_init(&pool->lock, NULL);
	if (ret) {
		ret = vmm_err(-ret, "shell pool: mutex");
		goto err_destroy;
	}
	return 0;

err_destroy:
	while (pool->n > 0)
		fork_shell_destroy(&pool->shells[--pool->n]);
err_free:
	free(pool->shells);
	free(pool->free);
	memset(pool, 0, sizeof(*pool));
	return ret;
}

struct fork_shell *fork_shell_take(struct fork_shell_pool *pool)
{
	struct fork_shell *sh = NULL;

	pthread_mutex_lock(&pool->lock);
	if (pool->nfree > 0) {
		sh = pool->free[--pool->nfree];
		sh->lent = true;
	} else {
		pool->misses++;
	}
	pthread_mutex_unlock(&pool->lock);
	return sh;
}

void fork_shell_put(struct fork_shell_pool *pool, struct fork_shell *sh)
{
	/* Unmapping the clone happens here, outside the lock: it is the
	 * expensive part (page-table teardown, freeing private pages). */
	bool ok = fork_shell_clear(sh) == 0;

	pthread_mutex_lock(&pool->lock);
	sh->lent = false;
	if (ok) {
		pool->free[pool->nfree++] = sh;
	} else {
		sh->broken = true;
		pool->broken++;
	}
	pthread_mutex_unlock(&pool->lock);
}

void fork_shell_pool_release(struct fork_shell_pool *pool)
{
	if (!pool->shells)
		return;
	for (unsigned i = 0; i < pool->n; i++)
		fork_shell_destroy(&pool->shells[i]);
	pthread_mutex_destroy(&pool->lock);
	free(pool->shells);
	free(pool->free);
	memset(pool, 0, sizeof(*pool));
}
