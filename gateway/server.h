/* server.h — the HTTP gateway's public face: configuration, start on a
 * libuv loop, graceful stop.  runtimed creates one server with its
 * struct gw_ops (gateway/backend.h) and runs the loop.
 *
 * The server owns its listening socket, every connection, their timers and
 * buffers, and one uv_async_t for completions from other threads; all of
 * them live on the loop given to gw_server_start() and are only touched on
 * that loop's thread (except gw_invoke_done/gw_deploy_done, which are
 * thread-safe).  Lifetime: start → (serve) → stop → done callback →
 * gw_server_free().  The loop must keep running until the done callback.
 */
#ifndef GW_SERVER_H
#define GW_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "gateway/backend.h"

/* Zero sizes and timeouts (and a NULL listen) take the defaults below. */
struct gw_config {
	const char *listen;             /* "host:port" (IPv4, or [v6]:port); port 0 = ephemeral */
	const char *token;              /* bearer token for the control plane; NULL or "" = no auth */
	bool invoke_auth;               /* invocations need the token too (default: open) */
	size_t max_header_bytes;        /* request line + headers; over it: 431 */
	size_t max_invoke_body;         /* over it: 413 before the backend is called */
	size_t max_deploy_body;         /* PUT /v1/functions/{name} (base64 code inside) */
	size_t max_control_body;        /* every other request with a body */
	unsigned header_timeout_ms;     /* first byte of a request to end of headers: 408 */
	unsigned body_timeout_ms;       /* end of headers to end of body: 408 */
	unsigned idle_timeout_ms;       /* keep-alive connection without a request: closed */
	unsigned max_connections;       /* more are answered 503 and closed */
};

/* The defaults: 127.0.0.1:8080, no token, 16 KiB headers, 6 MiB invoke
 * bodies, 64 MiB deploy bodies, 1 MiB other bodies, 10 s header timeout,
 * 60 s body timeout, 60 s idle timeout, 1024 connections. */
void gw_config_defaults(struct gw_config *cfg);

struct gw_server;

/* Bind, listen and start serving on `loop` (must be called on its thread).
 * Sets SIGPIPE to SIG_IGN if it is at its default (libuv writes with
 * write(2); a peer gone mid-response must not kill the daemon).
 * cfg is copied (strings too); ops and ctx must outlive the server.
 * Returns 0 or -errno with vmm_err() context (bad address, bind failure);
 * on failure the memory is released on the loop's next turn. */
int gw_server_start(uv_loop_t *loop, const struct gw_config *cfg, const struct gw_ops *ops,
		    void *ctx, struct gw_server **out) __attribute__((warn_unused_result));

/* The bound port (useful with port 0). */
int gw_server_port(const struct gw_server *s);

/* Graceful stop, on the loop thread: stop accepting at once, answer /readyz
 * 503, let requests in flight finish and be written, close idle
 * connections; at `deadline_ms` close the rest.  `done` runs on the loop
 * thread once every handle is closed and every started backend call has
 * been completed (see backend.h); then call gw_server_free().  Calling it
 * twice is harmless (the second call is ignored). */
void gw_server_stop(struct gw_server *s, unsigned deadline_ms,
		    void (*done)(struct gw_server *s, void *arg), void *arg);

/* Release the server's memory; only after the done callback (or if
 * gw_server_start failed, never: it frees on failure). */
void gw_server_free(struct gw_server *s);

#endif
