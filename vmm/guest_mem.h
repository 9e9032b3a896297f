/* guest_mem.h — guest physical memory: one anonymous (or memfd-backed, or
 * copy-on-write file-backed) mapping covering guest-physical [0, size).
 *
 * Ownership: vmm_mem_init() or vmm_mem_init_file() creates the mapping,
 * vmm_mem_release() unmaps it; the struct itself belongs to the caller.
 *
 * Every access to guest memory from the VMM goes through vmm_mem_ptr(): it is
 * the one place that turns a guest-supplied (address, length) pair into a
 * host pointer, with overflow-checked bounds.  Guest-written addresses are
 * hostile input; nothing else dereferences them.
 */
#ifndef VMM_GUEST_MEM_H
#define VMM_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest guest RAM we map contiguously: below the 32-bit MMIO window. */
#define VMM_MEM_MAX         (3ull << 30)
#define VMM_MEM_MIN         (16ull << 20)

struct vmm_mem {
	uint8_t *host;      /* host address of guest-physical 0 */
	uint64_t size;      /* bytes of guest RAM */
	int fd;             /* backing memfd, or -1 for anonymous memory */
	bool cow_file;      /* a MAP_PRIVATE mapping of a file (a snapshot's
			     * memory): pages never written read as the file's */
};

/* Map `size` bytes (a multiple of 2 MiB) of zeroed guest RAM. 0 or -errno. */
int vmm_mem_init(struct vmm_mem *m, uint64_t size) __attribute__((warn_unused_result));
void vmm_mem_release(struct vmm_mem *m);

/* Copy-on-write guest RAM over a file of exactly `size` bytes (a snapshot's
 * memory): MAP_PRIVATE, so guest writes land in private pages and the file
 * is never written.  The mapping holds its own reference to the file: the
 * caller keeps ownership of fd and may close it at once.  0 or -errno
 * (-EINVAL when the file is not a regular file of `size` bytes). */
int vmm_mem_init_file(struct vmm_mem *m, int fd, uint64_t size) __attribute__((warn_unused_result));
/* The same over RAM that vmm_mem_init() already mapped (and KVM already has
 * in a memory slot): the new mapping replaces the old one at the same
 * address (MAP_FIXED), so the memory slot stays valid and KVM's MMU
 * notifier drops what it had mapped.  m->size must equal the file's size. */
int vmm_mem_map_file(struct vmm_mem *m, int fd) __attribute__((warn_unused_result));

/* Host pointer for guest-physical [gpa, gpa+len), or NULL when any byte of
 * that range lies outside guest RAM or the sum overflows.  len may be 0. */
static inline void *vmm_mem_ptr(const struct vmm_mem *m, uint64_t gpa, uint64_t len)
{
	if (gpa > m->size || len > m->size - gpa)
		return NULL;
	return m->host + gpa;
}

#endif
