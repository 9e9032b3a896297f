/* wproc.h — a uf-worker child process and its socketpair, on the libuv
 * loop: spawn (the child's end becomes its fd 3, stdout/stderr are
 * runtimed's), framed messages both ways (proto/worker_msg.h), and one exit
 * notification once the process has exited AND its socket is closed.
 *
 * Ownership: the wproc owns the process handle, the socket and every
 * queued write; it frees itself right after on_exit returns, so the owner
 * must forget the pointer there.  Messages handed to on_msg are freed by
 * the wproc when on_msg returns.  A malformed frame from the child kills it
 * (SIGKILL).  Loop thread only.
 */
#ifndef RT_WPROC_H
#define RT_WPROC_H

#include <stdint.h>
#include <uv.h>

#include "proto/worker_msg.h"

struct rt_wproc;

struct rt_wproc_cbs {
	void (*on_msg)(struct rt_wproc *w, uf_wmsg *m, void *arg);
	/* exit_status: the child's, or -1 when a signal killed it (term_signal). */
	void (*on_exit)(struct rt_wproc *w, int64_t exit_status, int term_signal, void *arg);
};

/* argv[0] is the binary; the child finds its socket on fd 3.  0 or -errno
 * (vmm_strerror()); on failure nothing is left. */
int rt_wproc_spawn(uv_loop_t *loop, char **argv, const struct rt_wproc_cbs *cbs, void *arg,
		   struct rt_wproc **out) __attribute__((warn_unused_result));

/* Queue one message (packed now; the caller keeps `m`).  -EPIPE once the
 * socket is closed, or a pack error. */
int rt_wproc_send(struct rt_wproc *w, uf_wmsg *m) __attribute__((warn_unused_result));

/* Signal the child (SIGTERM, SIGKILL); harmless once it exited. */
void rt_wproc_kill(struct rt_wproc *w, int sig);
int rt_wproc_pid(const struct rt_wproc *w);

#endif
