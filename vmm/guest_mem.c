/* guest_mem.c — allocation of guest RAM. */
#include "vmm/guest_mem.h"

#include <errno.h>
#include <sys/mman.h>
#include <sys/stat.h>

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
	m->cow_file = false;
	return 0;
}

static int file_fits(int fd, uint64_t size)
{
	struct stat st;
	if (size < VMM_MEM_MIN || size > VMM_MEM_MAX || (size & ((2u << 20) - 1)))
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return -errno;
	/* Beyond the end of the file the guest would take SIGBUS-class faults. */
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != size)
		return -EINVAL;
	return 0;
}

static void *map_file(void *at, int fd, uint64_t size)
{
	void *p = mmap(at, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_NORESERVE | (at ? MAP_FIXED : 0), fd, 0);
	if (p != MAP_FAILED)
		(void)madvise(p, size, MADV_NOHUGEPAGE);
	return p;
}

int vmm_mem_init_file(struct vmm_mem *m, int fd, uint64_t size)
{
	int r = file_fits(fd, size);
	if (r)
		return r;
	void *p = map_file(NULL, fd, size);
	if (p == MAP_FAILED)
		return -errno;
	m->host = p;
	m->size = size;
	m->fd = -1;
	m->cow_file = true;
	return 0;
}

int vmm_mem_map_file(struct vmm_mem *m, int fd)
{
	if (!m->host)
		return -EINVAL;
	int r = file_fits(fd, m->size);
	if (r)
		return r;
	/* On failure MAP_FIXED may have unmapped the old range: leave the
	 * struct pointing at it so release still munmaps the whole range. */
	if (map_file(m->host, fd, m->size) == MAP_FAILED)
		return -errno;
	m->cow_file = true;
	return 0;
}

void vmm_mem_release(struct vmm_mem *m)
{
	if (m->host)
		munmap(m->host, m->size);
	m->host = NULL;
	m->size = 0;
}
