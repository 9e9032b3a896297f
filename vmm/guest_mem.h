/* guest_mem.h — guest physical memory: one anonymous (or memfd-backed)
 * mapping covering guest-physical [0, size).
 *
 * Ownership: vmm_mem_init() creates the mapping, vmm_mem_release() unmaps it;
 * the struct itself belongs to the caller.
 *
 * Every access to guest memory from the VMM goes through vmm_mem_ptr(): it is
 * the one place that turns a guest-supplied (address, length) pair into a
 * host pointer, with overflow-checked bounds.  Guest-written addresses are
 * hostile input; nothing else dereferences them.
 */
#ifndef VMM_GUEST_MEM_H
#define VMM_GUEST_MEM_H

#include <stddef.h>
#include <stdint.h>

/* Largest guest RAM we map contiguously: below the 32-bit MMIO window. */
#define VMM_MEM_MAX         (3ull << 30)
#define VMM_MEM_MIN         (16ull << 20)

struct vmm_mem {
	uint8_t *host;      /* host address of guest-physical 0 */
	uint64_t size;      /* bytes of guest RAM */
	int fd;             /* backing memfd, or -1 for anonymous memory */
};

/* Map `size` bytes (a multiple of 2 MiB) of zeroed guest RAM. 0 or -errno. */
int vmm_mem_init(struct vmm_mem *m, uint64_t size) __attribute__((warn_unused_result));
void vmm_mem_release(struct vmm_mem *m);

/* Host pointer for guest-physical [gpa, gpa+len), or NULL when any byte of
 * that range lies outside guest RAM or the sum overflows.  len may be 0. */
static inline void *vmm_mem_ptr(const struct vmm_mem *m, uint64_t gpa, uint64_t len)
{
	if (gpa > m->size || len > m->size - gpa)
		return NULL;
	return m->host + gpa;
}

#endif
