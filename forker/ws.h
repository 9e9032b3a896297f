/* ws.h — working sets: the guest pages an invocation touches, recorded
 * from one clone and prefaulted into later clones (REAP, FaaSnap).
 *
 * Record: after a clone served a first invocation, /proc/self/pagemap over
 * its RAM mapping says which pages are mapped in the host's page tables —
 * the ones the guest (through KVM's faults) or the VMM touched — and which
 * of those the clone wrote (a private anonymous copy, no longer the
 * template's file page).  Runs of such pages become ranges.
 * Store: a small binary file next to the snapshot ("workingset"): magic,
 * version, memory size, count, then (first page, pages, written) per range;
 * written with a temporary file and rename().  Load checks every field
 * against the template it is loaded for: a file that does not fit is
 * refused (-EBADMSG) and the template simply has no working set.
 * Prefetch: MADV_POPULATE_READ for ranges only read, MADV_POPULATE_WRITE
 * for ranges written (the copy the guest's first write would make, made in
 * one call instead of one fault per page).
 *
 * Ownership: struct fork_ws owns its range array (fork_ws_free).
 */
#ifndef FORK_WS_H
#define FORK_WS_H

#include <stddef.h>
#include <stdint.h>

#define FORK_WS_FILE      "workingset"
#define FORK_WS_MAX_RANGES (1u << 20)

struct fork_ws_range {
	uint32_t first;         /* first page (4 KiB) */
	uint32_t pages;
	uint32_t written;       /* 1: the clone wrote these pages */
};

struct fork_ws {
	struct fork_ws_range *r;
	size_t n;
	uint64_t mem_size;      /* of the guest RAM it was recorded from */
	uint64_t pages, written_pages;
};

/* The pages of [mem, mem + size) mapped in this process now. */
int fork_ws_record(struct fork_ws *ws, const uint8_t *mem, uint64_t size)
	__attribute__((warn_unused_result));
int fork_ws_save(const struct fork_ws *ws, const char *path) __attribute__((warn_unused_result));
/* -ENOENT when there is no file (not an error for callers: no working set). */
int fork_ws_load(struct fork_ws *ws, const char *path, uint64_t mem_size)
	__attribute__((warn_unused_result));
/* Prefault the working set into guest RAM at mem (mem_size must match). */
int fork_ws_prefetch(const struct fork_ws *ws, uint8_t *mem, uint64_t mem_size)
	__attribute__((warn_unused_result));
void fork_ws_free(struct fork_ws *ws);

#endif
