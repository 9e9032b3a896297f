/* worker.h — uf-worker's serve mode: the process runtimed spawns per
 * function.  It owns the function's open template, its clone pool and the
 * connection to runtimed (a socketpair end, proto/worker.proto frames).
 *
 * Threads: the main thread reads runtimed's frames (serve.c) and starts one
 * detached thread per admitted Invoke (call.c); the pool has its own
 * refill/expiry thread (pool.c).  Frames to runtimed are written under
 * `wlock`, one whole frame at a time.
 */
#ifndef UF_WORKER_H
#define UF_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "forker/worker/clone.h"
#include "forker/worker/pool.h"
#include "forker/worker/watch.h"
#include "proto/worker_msg.h"

/* Time past a call's deadline we still wait for the agent's Result (the
 * handler's budget is the deadline; this covers transport only). */
#define WORKER_DEADLINE_GRACE_MS 250u

struct worker_serve {
	int sock;                       /* to runtimed; owned */
	pthread_mutex_t wlock;          /* one frame at a time on sock */
	struct worker_tmpl tmpl;
	struct wpool pool;
	struct wwatch watch;            /* clones serving calls */
	uint32_t default_deadline_ms;   /* the function's timeout_ms */
	atomic_uint_fast64_t invocations, timeouts, crashes;
	atomic_uint threads;            /* call threads alive */
	atomic_bool draining;
	atomic_bool ws_learned;         /* a call's working set was recorded */
};

/* Send one message to runtimed (thread-safe).  A failed send means runtimed
 * is gone: the caller logs it; the main thread sees EOF and exits. */
int worker_send(struct worker_serve *s, uf_wmsg *m) __attribute__((warn_unused_result));

/* Answer an Invoke without running it (no capacity, draining, ...). */
void worker_answer_error(struct worker_serve *s, const char *call_id, uint32_t status,
			 Ufworker__ErrorKind kind, const char *msg);

/* Take ownership of a decoded Invoke message and serve it on a thread of
 * its own (the call was admitted by wpool_admit).  On failure to start the
 * thread the call is answered with an error and the pool slot returned. */
void worker_call_start(struct worker_serve *s, uf_wmsg *invoke);

/* --origin KHEX:IHEX:AHEX: sha256s of kernel, initramfs, agent, each 64
 * hex digits or empty (unknown, not checked).  0 or -EINVAL. */
int worker_parse_origin(const char *s, struct snap_origin *o) __attribute__((warn_unused_result));

/* `uf-worker serve`: returns the process exit status. */
int worker_serve_main(int argc, char **argv);
/* `uf-worker build`: returns the process exit status. */
int worker_build_main(int argc, char **argv);

#endif
