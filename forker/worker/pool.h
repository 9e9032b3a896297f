/* pool.h — a worker's clones: the warm pool (clones restored, connected and
 * fixed up ahead of time), the count of invocations in flight, and the
 * thread that keeps the pool at min_warm and recycles warm clones idle for
 * longer than idle_timeout_s (they are replaced by fresh ones).
 *
 * Capacity: busy (clones serving a call) + warm + starting (being made for
 * the pool) never exceeds max_instances; the pool only fills the room the
 * calls leave, and wpool_admit() refuses a call when busy == max_instances.
 * A warm clone taken by a call counts as busy from then on.
 *
 * The pool owns its warm clones; a clone it hands out (wpool_take) belongs to
 * the caller until it gives it back with wpool_finish(), which destroys it
 * (a clone serves one call).  Clones live in heap items that never move
 * (a running VM must stay put).  All calls are thread-safe.
 */
#ifndef UF_WORKER_POOL_H
#define UF_WORKER_POOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "forker/worker/clone.h"

/* Clones a call tries to make before it gives up (503). */
#define WPOOL_CLONE_ATTEMPTS 3

struct wpool_knobs {
	uint32_t min_warm;
	uint32_t max_instances;         /* >= 1 */
	uint32_t idle_timeout_s;        /* 0 = warm clones never expire */
};

struct wpool_stats {
	uint32_t live, warm, busy, starting;
	uint64_t clone_starts, warm_starts, clone_failures, expired;
	struct wpool_knobs knobs;
};

struct wpool_item;

struct wpool {
	const struct worker_tmpl *tmpl;
	pthread_mutex_t lock;
	pthread_cond_t cond;            /* knobs, busy, stop changed */
	struct wpool_knobs knobs;
	struct wpool_item *warm;        /* newest first */
	uint32_t nwarm, busy, starting;
	uint64_t clone_starts, warm_starts, clone_failures, expired;
	uint64_t fail_until_ns;         /* back off refilling after a failure */
	bool stop;
	pthread_t thread;
	bool thread_started;
};

int wpool_init(struct wpool *p, const struct worker_tmpl *t, const struct wpool_knobs *k)
	__attribute__((warn_unused_result));
/* Start the refill/expiry thread. */
int wpool_start(struct wpool *p) __attribute__((warn_unused_result));
/* Stop the thread and destroy every warm clone (no call may be in flight). */
void wpool_release(struct wpool *p);

void wpool_set_knobs(struct wpool *p, const struct wpool_knobs *k);
/* Reserve room for one call: true and busy+1, or false at max_instances. */
bool wpool_admit(struct wpool *p);
/* A clone for an admitted call: a warm one (*warm = true) or a new one
 * made on this thread.  0 with *out set, or -errno (vmm_strerror()) when
 * none could be made (*out NULL; still call wpool_finish(p, NULL)). */
int wpool_take(struct wpool *p, struct worker_clone **out, bool *warm)
	__attribute__((warn_unused_result));
/* The admitted call is over: destroy its clone (may be NULL), busy-1. */
void wpool_finish(struct wpool *p, struct worker_clone *c);
/* Wait until no call is in flight. */
void wpool_wait_idle(struct wpool *p);
void wpool_stats(struct wpool *p, struct wpool_stats *out);
/* Wait (up to timeout_ms) until the pool holds at least n warm clones or
 * stopped trying; returns the number it holds. */
uint32_t wpool_wait_warm(struct wpool *p, uint32_t n, int timeout_ms);

#endif
