/* guest_mem.c — allocation of guest RAM. */
#include "vmm/guest_mem.h"

#include <errno.h>
#include <sys/mman.h>

int vmm_mem_init(struct vmm_mem *m, uint64_t size)
{
	if (size < VMM_MEM_MIN || size > VMM_MEM_MAX || (size & ((2u << 20) - 1)))
		return -EINVAL;
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	/* Huge pages would cut EPT faults but defeat per-page CoW later. */
	(void)madvise(p, size, MADV_NOHUGEPAGE);
	m->host = p;
	m->size = size;
	m->fd = -1;
	return 0;
}

void vmm_mem_release(struct vmm_mem *m)
{
	if (m->host)
		munmap(m->host, m->size);
	m->host = NULL;
	m->size = 0;
}
