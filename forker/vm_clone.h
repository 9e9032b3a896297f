/* vm_clone.h — copy-on-write clones of a snapshotted Linux guest, on the
 * pre-built shells of forker/vm_pool.h.
 *
 * A template (struct fork_vm_template) is a verified snapshot (snap_open:
 * hashes, CPU, sizes) whose memory has been copied into a sealed memfd
 * (fork_template_from_fd): clones never touch memory.bin again, so a file
 * replaced or truncated on disk cannot fault a running clone, and the
 * template is never written.  It may carry a working set (forker/ws.h)
 * recorded from an earlier clone.
 *
 * Clone (fork_vm_clone_start), each step timed:
 *   take     a shell from the pool (or built now on a miss);
 *   map      the memfd MAP_PRIVATE | MAP_FIXED over the shell's RAM;
 *   restore  vCPU, VM and device state (snap_restore);
 *   prefetch the working set, when asked (FORK_VM_PREFETCH);
 *   run      wake the shell's vCPU thread and wait until the guest took
 *            the vsock transport reset;
 *   connect  to the agent's vsock port, read its Hello;
 *   fixup    send fresh entropy and the host's wall clock (FixupAck must
 *            say ok) — before any handler code runs.
 * The clone is then the caller's: invoke over c->fd (proto/agent_client.h).
 * A clone whose start fails is destroyed and the failure reported; the
 * template is untouched.
 *
 * Reset in place (fork_vm_clone_reset): halt the vCPU, map the memfd over
 * the RAM again (the clone's private pages go with the old mapping), restore
 * the state, run, connect and fix up: the same VM serves a new, clean
 * instance without a shell from the pool.  Destroy gives the shell back to
 * the pool, which tears it down off the caller's thread.
 *
 * Ownership: the caller owns the template (it must outlive its clones) and
 * each clone; a clone owns its shell and its agent connection.  One thread
 * at a time per clone.  Errors: 0 or -errno with vmm_strerror() context.
 */
#ifndef FORK_VM_CLONE_H
#define FORK_VM_CLONE_H

#include <stdint.h>

#include "forker/cow.h"
#include "forker/vm_pool.h"
#include "forker/ws.h"
#include "proto/agent_client.h"
#include "snapshotter/snapshot.h"

struct fork_vm_template {
	struct snap_image img;          /* meta; img.mem_fd is tmpl.memfd's dup */
	struct fork_template mem;       /* the sealed memfd */
	pthread_rwlock_t ws_lock;       /* ws may be replaced while clones start */
	struct fork_ws ws;              /* working set; empty when none recorded */
};

/* Open and verify the snapshot in `dir` (see snap_open for `exp`), copy its
 * memory into a sealed memfd, and load `dir`/workingset if present. */
int fork_vm_template_open(struct fork_vm_template *t, const char *dir, const struct snap_expect *exp)
	__attribute__((warn_unused_result));
void fork_vm_template_close(struct fork_vm_template *t);
/* Replace the template's working set with *ws (taken over: *ws is left
 * empty), for clones started from now on; safe while clones start. */
void fork_vm_template_set_ws(struct fork_vm_template *t, struct fork_ws *ws);
/* The VM configuration clones of t need: cfg with t's memory size and
 * vsock CID (for fork_vm_pool_init). */
void fork_vm_template_config(const struct fork_vm_template *t, struct vmm_vm_config *cfg);

#define FORK_VM_PREFETCH 0x1u   /* prefault the template's working set, if it has one */

/* Where a clone's start went, in ns. */
struct fork_vm_times {
	uint64_t take_ns, map_ns, restore_ns, prefetch_ns, run_ns, connect_ns, fixup_ns;
	uint64_t total_ns;
};

struct fork_vm_clone {
	struct fork_vm *v;              /* the shell; NULL once destroyed */
	const struct fork_vm_template *tmpl;
	int fd;                         /* agent connection, after Fixup; owned */
	struct agent_hello hello;       /* what the agent said on that connection */
	uint64_t starts;                /* 1 + resets */
};

/* Timeouts (ms) for the guest's part of a start: the vsock reset and each
 * exchange.  A guest slower than this is broken, not slow. */
#define FORK_VM_START_TIMEOUT_MS 20000

int fork_vm_clone_start(struct fork_vm_clone *c, struct fork_vm_pool *pool,
			const struct fork_vm_template *t, unsigned flags, struct fork_vm_times *tm)
	__attribute__((warn_unused_result));
/* Reset in place to a fresh instance of the same template.  On failure the
 * clone is destroyed. */
int fork_vm_clone_reset(struct fork_vm_clone *c, unsigned flags, struct fork_vm_times *tm)
	__attribute__((warn_unused_result));
/* Close the agent connection and give the shell back.  Safe twice. */
void fork_vm_clone_destroy(struct fork_vm_clone *c);

/* Whether the guest ended by itself (power-off, crash); *ex says how. */
bool fork_vm_clone_exited(struct fork_vm_clone *c, struct vmm_exit *ex);
/* Memory the clone's RAM mapping costs (its private pages in anon_kib). */
int fork_vm_clone_mem_usage(const struct fork_vm_clone *c, struct fork_mem_usage *u)
	__attribute__((warn_unused_result));

#endif
