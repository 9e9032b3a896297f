/* memfile.h — guest RAM to and from a snapshot's memory file.
 *
 * The file is sparse: offset = guest-physical address, only non-zero 4 KiB
 * pages are written, zero pages stay holes (and read back as zeros).  Writes
 * go through io_uring in batches; where io_uring_queue_init() fails with
 * ENOSYS or EPERM (kernel without it, io_uring_disabled, seccomp) they fall
 * back to pwrite() and the stats say so.
 *
 * On the anonymous RAM of a booted VM, pages the guest never touched are
 * neither read nor faulted in: /proc/self/pagemap says which pages exist
 * (present or swapped), and only those are checked for zeros.  RAM that is a
 * private mapping of an earlier snapshot (a restored VM) is checked page by
 * page, since its absent pages are the file's.
 *
 * The caller owns the fd; the VM must be paused (nothing writes its RAM).
 */
#ifndef SNAP_MEMFILE_H
#define SNAP_MEMFILE_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/guest_mem.h"

#define SNAP_PAGE_SIZE 4096u

struct snap_mem_stats {
	uint64_t pages;             /* guest RAM in pages */
	uint64_t scanned_pages;     /* pages checked for zeros */
	uint64_t nonzero_pages;     /* pages written */
	uint64_t writes;            /* write requests (runs of pages) */
	bool io_uring;              /* false: pwrite() fallback, see note */
	char note[96];              /* why io_uring was not used */
};

#define SNAP_MEM_PWRITE 0x1u        /* flags: do not try io_uring */

/* Size `fd` (an empty regular file) to mem->size and write every non-zero
 * page at its guest-physical offset, then fdatasync. */
int snap_mem_write(const struct vmm_mem *mem, int fd, unsigned flags, struct snap_mem_stats *st)
	__attribute__((warn_unused_result));

/* True when the 4 KiB page at p is all zeros. */
bool snap_page_is_zero(const void *p);

#endif
