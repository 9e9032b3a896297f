/* clone.h — the worker's one way of making and unmaking a Linux clone of a
 * template: restore it (copy-on-write), connect to its agent over vsock,
 * read the Hello and send the post-clone Fixup (fresh entropy, our wall
 * clock).  Everything else in the worker goes through these two calls, so
 * switching clone-making to the forker's shell pool touches this file only.
 *
 * A clone is a forker/vm_clone.h clone on the template's pool of pre-built
 * VM shells, prefetching the template's working set when it has one.
 * A template (struct worker_tmpl) is a verified, open snapshot: any number
 * of threads may clone it at once.  A clone belongs to one thread at a time;
 * worker_clone_destroy() stops its vCPU, joins its thread, closes the agent
 * connection and releases the VM (safe on a clone whose start failed).
 * Errors: 0 or -errno with one line in vmm_strerror().
 */
#ifndef UF_WORKER_CLONE_H
#define UF_WORKER_CLONE_H

#include <stdint.h>

#include "forker/vm_clone.h"
#include "snapshotter/snapshot.h"

#define WORKER_VSOCK_CID   3u
/* How long a fresh clone's agent has for each of connect, Hello and Fixup
 * (milliseconds on hardware; a loaded KVM sandbox needs seconds). */
#define WORKER_CLONE_IO_MS 20000
/* Clones tried at least, however long the first took, before a clone that
 * does not come up (timeout, refused, reset) is an error. */
#define WORKER_CLONE_TRIES 2
/* VM shells a serving worker keeps built ahead of its calls. */
#define WORKER_SHELLS_AHEAD 2

struct worker_clone;

struct worker_tmpl {
	struct fork_vm_template vt;     /* verified snapshot, memory in a sealed memfd */
	struct fork_vm_pool pool;       /* pre-built VM shells for its clones */
	bool pool_on;
	struct vmm_vm_config cfg;       /* memory and CID from the image */
	char dir[4096];
};

/* Open and verify the snapshot in `dir` (origin: expected sha256s, NULL or
 * zeros for unchecked) and start its shell pool (one shell; see
 * worker_tmpl_set_shells).  -ESTALE when it was made from other artifacts.
 * The template must outlive its clones. */
int worker_tmpl_open(struct worker_tmpl *t, const char *dir, const struct snap_origin *origin)
	__attribute__((warn_unused_result));
/* Keep n idle VM shells built ahead (the serving worker's clones never wait
 * for KVM_CREATE_VM). */
void worker_tmpl_set_shells(struct worker_tmpl *t, unsigned n);
/* Record the template's working set: one clone, a Ping round trip (the
 * restore, vsock reset, connect and Fixup path every call takes), the pages
 * it touched saved as DIR/workingset for later opens to prefetch. */
int worker_tmpl_record_ws(struct worker_tmpl *t) __attribute__((warn_unused_result));
/* After a call: the pages the clone `c` touched — restore to answer,
 * handler included — become the template's working set, for the clones
 * started from now on and (DIR/workingset) for later opens.  The clone is
 * paused; destroy it next. */
int worker_tmpl_learn_ws(struct worker_tmpl *t, struct worker_clone *c)
	__attribute__((warn_unused_result));
void worker_tmpl_close(struct worker_tmpl *t);

struct worker_clone {
	struct fork_vm_clone vc;        /* forker/vm_clone.h */
	int fd;                         /* agent connection (= vc.fd), -1 when none */
	bool started;                   /* vc holds a VM */
	uint64_t created_ns;            /* vmm_now_ns() when it became usable */
	uint64_t restore_us;            /* shell + restore + connect + fixup */
	char runtime[64];               /* from the agent's Hello */
	int hello_state;                /* Ufagent__AgentState */
};

int worker_clone_start(struct worker_clone *c, const struct worker_tmpl *t)
	__attribute__((warn_unused_result));
/* Kill the clone (if it still runs) and release everything it holds. */
void worker_clone_destroy(struct worker_clone *c);
/* Stop the clone's vCPU, keeping the VM (for a snapshot of it: see
 * worker_clone_vm); the agent connection is closed first. */
int worker_clone_pause(struct worker_clone *c) __attribute__((warn_unused_result));
/* Has the clone's VM stopped running (guest crash, power off)? */
bool worker_clone_dead(struct worker_clone *c);
/* How a dead clone's guest ended ("" when unknown or still running). */
const char *worker_clone_exit_detail(struct worker_clone *c);
/* The clone's VM (NULL when not started). */
struct vmm_vm *worker_clone_vm(struct worker_clone *c);

#endif
