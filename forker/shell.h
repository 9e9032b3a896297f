/* shell.h — the VM shell pool: VMs built ahead of time so that a clone only
 * maps memory and restores vCPU state (DESIGN.md §6).
 *
 * A shell is a KVM VM (in-kernel irqchip + PIT, as vmm_kvm_vm_create() makes
 * it), one vCPU with its kvm_run mapped, and a PROT_NONE reservation of
 * mem_size bytes of host address space registered as memslot 0 (guest-
 * physical 0) up front: KVM_SET_USER_MEMORY_REGION (~5 ms for 128 MiB on
 * kvm-pvm) stays off the clone path.  A clone maps its memory over the
 * reservation with MAP_FIXED; the memslot stays registered throughout.  KVM
 * resolves a memslot's userspace address through the process's page tables
 * at fault time and its MMU notifier drops what it had mapped when the range
 * is unmapped or replaced, so the guest sees whatever is mapped there now
 * (tests/unit/test_fork.c checks this on the running kernel).
 *
 * Ownership: the pool owns every shell (its VM fd, vCPU fd, kvm_run mapping
 * and reservation); fork_shell_take() lends one out, fork_shell_put() takes
 * it back.  The pool struct itself belongs to the caller.  take/put are
 * thread-safe; init and release are not (no shell may be lent out at
 * release).
 */
#ifndef FORK_SHELL_H
#define FORK_SHELL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/kvm.h"

struct fork_shell {
	struct vmm_kvm_vm kvm;
	struct vmm_vcpu vcpu;
	uint8_t *mem;           /* host address of guest-physical 0 */
	uint64_t mem_size;
	int sync_regs;          /* KVM_CAP_SYNC_REGS: register sets kvm_run can carry */
	bool lent;              /* out of the pool */
	bool broken;            /* its range could not be reset: never lent again */
};

struct fork_shell_pool {
	struct fork_shell *shells;      /* n of them */
	struct fork_shell **free;       /* stack of nfree idle shells */
	unsigned n, nfree;
	uint64_t mem_size;
	pthread_mutex_t lock;
	uint64_t misses;                /* take() found the pool empty */
	uint64_t broken;                /* shells retired by put() */
};

/* Build one shell with mem_size bytes of reserved guest RAM (a multiple of
 * 4 KiB, not 0); kvm_path NULL = /dev/kvm.  0 or -errno (vmm_strerror()). */
int fork_shell_create(struct fork_shell *sh, uint64_t mem_size, const char *kvm_path)
	__attribute__((warn_unused_result));
/* Release the vCPU, the VM and the reservation (or whatever is mapped
 * over it).  Safe after a failed create. */
void fork_shell_destroy(struct fork_shell *sh);
/* Replace whatever is mapped over the shell's range with a fresh PROT_NONE
 * reservation (drops a clone's pages).  The memslot stays. */
int fork_shell_clear(struct fork_shell *sh) __attribute__((warn_unused_result));

/* Build n shells.  On failure nothing is left allocated. */
int fork_shell_pool_init(struct fork_shell_pool *pool, unsigned n, uint64_t mem_size)
	__attribute__((warn_unused_result));
/* An idle shell with PROT_NONE memory, or NULL when none is idle. */
struct fork_shell *fork_shell_take(struct fork_shell_pool *pool);
/* Give a shell back: its range is reset to PROT_NONE (fork_shell_clear());
 * a shell that cannot be reset is retired, not reused. */
void fork_shell_put(struct fork_shell_pool *pool, struct fork_shell *sh);
void fork_shell_pool_release(struct fork_shell_pool *pool);

#endif
