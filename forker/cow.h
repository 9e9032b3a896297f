/* cow.h — copy-on-write clones of a template VM.
 *
 * A template is a memfd holding a guest memory image, sealed against writes
 * (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK), plus the vCPU state to start
 * a clone in.  For now that state is the micro-guest's (regs + sregs, see
 * vmm/microguest.h); the full Linux vCPU/irqchip/clock restore lives in
 * snapshotter/ and will replace struct fork_vcpu_state.
 *
 * A clone borrows a shell (forker/shell.h), maps the template memfd
 * MAP_PRIVATE | MAP_FIXED over the shell's memslot range (the template is
 * never written: the clone's writes, KVM's included, land in private copies
 * made on first write), restores the vCPU state and runs to its first answer
 * exit.  Reset-in-place drops the clone's private pages (MADV_DONTNEED: the
 * template's pages show through again) and restores the state.  Destroy
 * gives the shell back, which unmaps the clone.
 *
 * Lifetimes: a template (memfd included) outlives its clones: they read its
 * state on reset, and fork_template_from_clone() reads its memfd.
 * A clone belongs to one thread at a time.  Every call returns 0 or -errno
 * with vmm_err() context.
 */
#ifndef FORK_COW_H
#define FORK_COW_H

#include <linux/kvm.h>
#include <stdint.h>

#include "forker/shell.h"
#include "vmm/microguest.h"

/* The vCPU state a clone starts in (micro-guest only, see above). */
struct fork_vcpu_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	enum vmm_mg_answer_mode answer;     /* how its answer exits look */
};

struct fork_template {
	int memfd;
	uint64_t mem_size;
	struct fork_vcpu_state state;
};

/* Restore the vCPU state with KVM_SET_SREGS + KVM_SET_REGS (default), or
 * hand it to the first KVM_RUN through kvm_run's sync_regs area
 * (KVM_CAP_SYNC_REGS): one vCPU ioctl instead of three. */
#define FORK_SYNC_REGS 0x1u

/* Where the time of a clone (or a reset) went, in ns. */
struct fork_times {
	uint64_t take_ns;       /* shell from the pool */
	uint64_t map_ns;        /* mmap of the template (reset: MADV_DONTNEED) */
	uint64_t restore_ns;    /* state restore ioctls (0 with FORK_SYNC_REGS) */
	uint64_t run_ns;        /* KVM_RUN to the first answer exit */
	uint64_t total_ns;
};

struct fork_clone {
	struct fork_shell_pool *pool;
	struct fork_shell *shell;
	const struct fork_template *tmpl;
	uint8_t *mem;           /* host view of the clone's guest-physical 0 */
	uint64_t mem_size;
	uint64_t exits;         /* answer exits so far */
};

/* Memory a clone costs, from /proc/self/smaps for its mapping, in KiB. */
struct fork_mem_usage {
	uint64_t rss_kib;           /* pages mapped: template pages + private copies */
	uint64_t anon_kib;          /* the clone's own copies ("Anonymous"; not
				     * Private_Dirty, which also counts template
				     * pages only this process maps) */
};

/* An empty template of mem_size bytes (multiple of 4 KiB): the memfd is
 * created and mapped shared at *image for the caller to fill; then
 * fork_template_seal().  On failure nothing is left. */
int fork_template_create(struct fork_template *t, uint64_t mem_size, uint8_t **image)
	__attribute__((warn_unused_result));
/* Unmap the image and seal the memfd.  The template is usable after this;
 * on failure release it. */
int fork_template_seal(struct fork_template *t, uint8_t *image)
	__attribute__((warn_unused_result));
/* Lay the micro-guest out in a fresh template's image and set its entry
 * state; the baseline sregs come from `sh` (KVM_GET_SREGS).  The caller may
 * still write the image before sealing. */
int fork_template_microguest(struct fork_template *t, uint8_t *image, struct fork_shell *sh,
			     enum vmm_mg_answer_mode mode) __attribute__((warn_unused_result));
/* A template from a running clone: its memory as the clone sees it now (the
 * parent template's pages plus the clone's private ones, copied into a new
 * sealed memfd) and its vCPU state after completing the pending exit.  The
 * clone keeps running independently. */
int fork_template_from_clone(struct fork_template *t, struct fork_clone *c)
	__attribute__((warn_unused_result));
/* A template image from the first `size` bytes of a file (a snapshot's
 * memory.bin): copied into a new sealed memfd, holes kept as holes, so the
 * clones never depend on the file again (truncating or replacing it cannot
 * fault them).  Only memfd and mem_size are set. */
int fork_template_from_fd(struct fork_template *t, int fd, uint64_t size)
	__attribute__((warn_unused_result));
void fork_template_release(struct fork_template *t);

/* Clone `t` into a shell from `pool` and run it to its first answer. */
int fork_clone(struct fork_clone *c, struct fork_shell_pool *pool, const struct fork_template *t,
	       unsigned flags, uint64_t *answer, struct fork_times *times)
	__attribute__((warn_unused_result));
/* Run the clone to its next answer exit. */
int fork_clone_run(struct fork_clone *c, uint64_t *answer) __attribute__((warn_unused_result));
/* Post a micro-guest request and run to its answer. */
int fork_clone_request(struct fork_clone *c, enum vmm_mg_op op, uint64_t arg, uint64_t addr,
		       uint64_t count, uint64_t *answer) __attribute__((warn_unused_result));
/* Reset in place to the template's view and run to the first answer.  On
 * failure the clone is in an unknown state: destroy it. */
int fork_clone_reset(struct fork_clone *c, unsigned flags, uint64_t *answer,
		     struct fork_times *times) __attribute__((warn_unused_result));
/* Give the shell back (unmapping the clone's memory). */
void fork_clone_destroy(struct fork_clone *c);

int fork_clone_mem_usage(const struct fork_clone *c, struct fork_mem_usage *u)
	__attribute__((warn_unused_result));
/* The same for any guest RAM mapping [mem, mem + size) (a Linux clone's). */
int fork_range_mem_usage(const void *mem, uint64_t size, struct fork_mem_usage *u)
	__attribute__((warn_unused_result));

#endif
