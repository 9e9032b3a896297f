/* vm_pool.h — pre-built Linux VM shells: everything a clone of a snapshot
 * needs that does not depend on the snapshot, built before it is asked for
 * (DESIGN.md §6).
 *
 * A shell is a vmm_vm_create()d VM — KVM VM with in-kernel irqchip and
 * PIT, guest RAM registered as memslot 0, the vCPU with its CPUID, the
 * 8250, the virtio-vsock device with its thread — plus a vCPU thread that
 * is parked until the shell is told to run.  A clone then only maps the
 * template's memory over the RAM (MAP_FIXED: the memslot stays), restores
 * state and wakes the parked thread (forker/vm_clone.h): no KVM_CREATE_VM,
 * no memslot, no thread creation on the request path.
 *
 * The pool keeps `target` idle shells ready with a filler thread of its
 * own, which also destroys the shells given back (a VM teardown takes
 * milliseconds; it never runs on the caller's thread).  take() on an empty
 * pool builds a shell on the spot and counts a miss.
 *
 * Ownership: the pool owns every shell it holds; fork_vm_take() hands one
 * to the caller, who owns it until fork_vm_put() (destroyed in the
 * background); in between the caller may halt it and restore it again
 * (a reset in place, forker/vm_clone.h).  A shell belongs to one thread
 * at a time.  The pool struct is the caller's; release it after every
 * shell is back.
 */
#ifndef FORK_VM_POOL_H
#define FORK_VM_POOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/vm.h"

struct fork_vm_pool;

enum fork_vm_cmd { FORK_VM_PARK, FORK_VM_RUN, FORK_VM_QUIT };

struct fork_vm {
	struct vmm_vm vm;
	struct fork_vm_pool *pool;
	struct fork_vm *next;           /* pool lists */

	/* The vCPU thread and what it is told, under lock. */
	pthread_t thread;
	bool thread_on;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum fork_vm_cmd cmd;
	bool in_run;                    /* inside vmm_vm_run() */
	uint64_t runs;                  /* completed vmm_vm_run() calls */
	struct vmm_exit exit;           /* of the last run */
	int run_ret;
};

struct fork_vm_pool_stats {
	uint64_t built, taken, misses, destroyed, build_errors;
	unsigned idle;
};

struct fork_vm_pool {
	struct vmm_vm_config cfg;
	unsigned target;                /* idle shells to keep */
	pthread_mutex_t lock;
	pthread_cond_t cond;            /* filler: work to do / idle shell added */
	struct fork_vm *idle;           /* stack of ready shells */
	unsigned nidle;
	struct fork_vm *dead;           /* given back: to destroy */
	pthread_t filler;
	bool filler_on, stop;
	int last_error;                 /* filler's last build failure, -errno */
	struct fork_vm_pool_stats st;
};

/* Start a pool of shells for VMs configured as `cfg` (memory size, vsock
 * CID, console; copied) keeping `target` idle (0: build on demand only).
 * The first shells are built before it returns, so a failure to build one
 * (no /dev/kvm, memory) is reported here. */
int fork_vm_pool_init(struct fork_vm_pool *pool, const struct vmm_vm_config *cfg, unsigned target)
	__attribute__((warn_unused_result));
/* Change how many idle shells the filler keeps. */
void fork_vm_pool_set_target(struct fork_vm_pool *pool, unsigned target);
/* A ready shell (never run).  Builds one now when none is idle.  NULL with
 * *err = -errno (vmm_strerror()) when that fails. */
struct fork_vm *fork_vm_take(struct fork_vm_pool *pool, int *err);
/* Give a shell back for destruction (in the background).  Stops its run. */
void fork_vm_put(struct fork_vm *v);
void fork_vm_pool_get_stats(struct fork_vm_pool *pool, struct fork_vm_pool_stats *out);
/* Stop the filler and destroy every idle and dead shell. */
void fork_vm_pool_release(struct fork_vm_pool *pool);

/* Let the parked vCPU thread run the VM (vmm_vm_run without deadlines:
 * the caller enforces its own) until it exits or fork_vm_halt(). */
void fork_vm_run(struct fork_vm *v);
/* Stop the run and wait until the vCPU thread is parked again; the VM's
 * state can then be read or restored.  0, or -ETIMEDOUT. */
int fork_vm_halt(struct fork_vm *v, int timeout_ms) __attribute__((warn_unused_result));
/* Whether the VM ended by itself (guest exit, crash) since fork_vm_run();
 * *ex gets how, when ex is not NULL. */
bool fork_vm_exited(struct fork_vm *v, struct vmm_exit *ex);

#endif
