/* watch.h — notices clones that die while a call waits on them.  A guest
 * whose handler crashes the kernel (a native handler's SIGSEGV takes PID 1
 * down) stops its VM, but the host end of its vsock connection stays open
 * until the VM is released, so the call would wait for its whole deadline.
 * The watch thread looks at every clone registered with it every
 * WATCH_PERIOD_MS and shuts the agent connection of a stopped one down
 * (shutdown(2), not close: the fd stays the call's), so the waiting call
 * sees EOF at once and answers "crashed".
 *
 * A call registers its clone before the Invoke and unregisters it before
 * destroying it; the watch never touches a clone after unregister returns.
 *
 * The table is also the worker's index of calls by id for runtimed's
 * scheduler: wwatch_pause parks a call's vCPU (fork_vm_halt; the VM, its
 * agent connection and the call's deadline stay), wwatch_resume runs it
 * again.  A paused clone is not taken for dead.  Pause and resume hold the
 * table's lock, so a clone cannot be unregistered (and destroyed) under
 * them.
 */
#ifndef UF_WORKER_WATCH_H
#define UF_WORKER_WATCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "forker/worker/clone.h"

#define WATCH_PERIOD_MS 50
#define WATCH_MAX       4096
#define WATCH_ID_MAX    128             /* = UF_WORKER_MAX_ID */
#define WATCH_HALT_MS   1000            /* a vCPU slower than this to park: not paused */

struct wwatch_entry {
	struct worker_clone *c;
	char call_id[WATCH_ID_MAX + 1];
	bool paused;
	uint64_t run_from_ns;           /* registered or last resumed */
};

struct wwatch {
	pthread_mutex_t lock;
	struct wwatch_entry e[WATCH_MAX];
	unsigned n;
	bool stop;
	pthread_t thread;
	bool started;
};

int wwatch_start(struct wwatch *w) __attribute__((warn_unused_result));
void wwatch_stop(struct wwatch *w);
/* false when the table is full (the call then waits for its deadline and
 * cannot be preempted). */
bool wwatch_add(struct wwatch *w, struct worker_clone *c, const char *call_id);
void wwatch_remove(struct wwatch *w, struct worker_clone *c);
/* Park the vCPU of the call's clone: 0 with the time it ran since it was
 * registered or resumed in *ran_us, or -ENOENT (no such call: not started
 * yet, or over), -ESRCH (its VM stopped), -ETIMEDOUT (did not park; it runs
 * on).  Pausing a paused call is 0. */
int wwatch_pause(struct wwatch *w, const char *call_id, uint64_t *ran_us)
	__attribute__((warn_unused_result));
/* Run a paused call's vCPU again: true, or false when there is no such
 * paused call (it ended meanwhile). */
bool wwatch_resume(struct wwatch *w, const char *call_id);
/* Resume every paused call (drain: they must finish). */
void wwatch_resume_all(struct wwatch *w);

#endif
