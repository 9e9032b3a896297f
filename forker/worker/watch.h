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
 */
#ifndef UF_WORKER_WATCH_H
#define UF_WORKER_WATCH_H

#include <pthread.h>
#include <stdbool.h>

#include "forker/worker/clone.h"

#define WATCH_PERIOD_MS 50
#define WATCH_MAX       4096

struct wwatch {
	pthread_mutex_t lock;
	struct worker_clone *clones[WATCH_MAX];
	unsigned n;
	bool stop;
	pthread_t thread;
	bool started;
};

int wwatch_start(struct wwatch *w) __attribute__((warn_unused_result));
void wwatch_stop(struct wwatch *w);
/* false when the table is full (the call then waits for its deadline). */
bool wwatch_add(struct wwatch *w, struct worker_clone *c);
void wwatch_remove(struct wwatch *w, struct worker_clone *c);

#endif
