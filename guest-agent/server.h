/* server.h — the agent's protocol server: accepts host connections on a
 * listening stream socket (AF_VSOCK in the guest, AF_UNIX in tests), or
 * serves one already-connected stream (the virtio-serial transport,
 * guest-agent/transport_serial.h), greets each with Hello, and answers
 * Init/Invoke/Fixup/Ping through a handler (guest-agent/handler.h) until
 * the host sends Shutdown.
 *
 * Connections are served one request at a time but polled together, so a
 * connection that stalls (or one left over from before a snapshot, which
 * the host side no longer knows) never keeps a new one from being served;
 * past max_conns the oldest connection is closed.  A protocol violation
 * (malformed, oversized, unknown, wrong-version, unexpected frame) gets an
 * Error frame and closes that connection only.  The server never sends a
 * signal-raising write (MSG_NOSIGNAL), so a host vanishing mid-frame costs
 * one connection.  Protocol details: proto/README.md.
 */
#ifndef UF_AGENT_SERVER_H
#define UF_AGENT_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "guest-agent/handler.h"

#define AGENT_SERVER_MAX_CONNS   64  /* the vsock device allows 64 per VM */
#define AGENT_SERVER_IO_TIMEOUT  30000  /* ms to write one frame to a host */

#ifndef AGENT_BUILD_ID
#define AGENT_BUILD_ID "unifork-agent-dev"
#endif

/* The system effects of a Fixup, injectable so tests never reseed the
 * host's RNG or set its clock.  Each returns 0 or -errno; the server runs
 * all three (a failure does not skip the others) and reports each result in
 * the FixupAck. */
struct agent_fixup_ops {
	int (*add_entropy)(void *ctx, const uint8_t *buf, size_t len); /* RNDADDENTROPY */
	int (*reseed)(void *ctx);                                      /* RNDRESEEDCRNG */
	int (*set_clock)(void *ctx, int64_t realtime_ns);              /* CLOCK_REALTIME */
	void *ctx;
};

/* The real effects, on /dev/urandom and CLOCK_REALTIME (needs
 * CAP_SYS_ADMIN / CAP_SYS_TIME: PID 1 in the guest has them). */
extern const struct agent_fixup_ops agent_fixup_system;

struct agent_server_opts {
	const struct agent_handler *handler;    /* required */
	const struct agent_fixup_ops *fixup;    /* NULL: agent_fixup_system */
	const char *build_id;                   /* NULL: AGENT_BUILD_ID */
	unsigned max_conns;                     /* 0: AGENT_SERVER_MAX_CONNS */
	int io_timeout_ms;                      /* 0: AGENT_SERVER_IO_TIMEOUT */
	int quiet;                              /* nonzero: no stderr lines */
	/* Optional: the handler's own state (handler.h), asked before every
	 * Hello, Init and Invoke instead of the server tracking FRESH ->
	 * READY/FAILED itself: Hello carries st.runtime and st.state, an Init
	 * while !accepts_init is refused (UNEXPECTED), an Invoke outside READY
	 * gets NOT_READY.  The state outlives a server run (one virtio-serial
	 * session).  The runtime dispatcher needs agent_runtime_status here. */
	void (*status)(struct agent_handler_status *st);
	/* Optional: runs after a Fixup's system steps, before the FixupAck (the
	 * runtime dispatcher's agent_runtime_after_fixup reseeds user-space
	 * PRNGs that were seeded before the snapshot).  0 or -errno, reported
	 * as FixupAck.runtime_errno (and ok false). */
	int (*after_fixup)(void);
};

/* Create the agent's listener: AF_VSOCK stream, VMADDR_CID_ANY:port,
 * close-on-exec.  Returns the fd (the caller owns it) or -errno. */
int agent_vsock_listen(uint32_t port) __attribute__((warn_unused_result));

/* Serve `listen_fd` (not owned: never closed here; it is switched to
 * O_NONBLOCK) until a Shutdown arrives.  Returns the Shutdown's status
 * (0..255) for the caller to power off with, or -errno when the listener
 * itself fails (or -EINVAL for bad arguments).  Every accepted connection
 * is owned by the server and closed before it returns. */
int agent_server_run(int listen_fd, const struct agent_handler *h)
	__attribute__((warn_unused_result));
int agent_server_run_opts(int listen_fd, const struct agent_server_opts *opts)
	__attribute__((warn_unused_result));

/* Serve one already-connected byte stream `fd` (a virtio-serial port, a
 * socketpair end; not owned: never closed here, and its O_NONBLOCK flag is
 * left as it is): send Hello, then answer requests in order until a
 * Shutdown arrives or the stream ends.  Returns
 *   0..255            the Shutdown's status;
 *   UF_FRAME_CLOSED   the host closed the stream between frames;
 *   -EPIPE            the host vanished inside a frame;
 *   -EPROTO           the host broke the protocol (it got an Error frame);
 *   -ECONNABORTED     the host sent an Error frame;
 *   the -errno of a failed Hello or reply write (-EPIPE, -ETIMEDOUT, ...),
 *   of read or poll, -ENOMEM, or -EINVAL for bad arguments.
 * After a negative return other than -EINVAL the stream may hold the rest
 * of a request: the caller decides how to resynchronise (close it, or wait
 * for the host to go away).  max_conns is ignored. */
int agent_server_serve_fd(int fd, const struct agent_server_opts *opts)
	__attribute__((warn_unused_result));

#endif
