/* agent_client.h — host side of the agent protocol: one call per exchange on
 * a connected stream fd (vsock, a socketpair to the VMM's vsock device, an
 * AF_UNIX socket in tests).  The caller owns the fd, connects it and closes
 * it; these functions never close it.
 *
 * Every call takes timeout_ms (-1: wait forever) bounding the whole exchange.
 * Return values: 0 when the expected answer arrived, else a negative errno:
 *   frame/decode errors of uf_msg_recv (-ETIMEDOUT, -EPIPE, UF_FRAME_CLOSED,
 *   -EBADMSG, -EPROTONOSUPPORT, ...): the agent misbehaved or went away; an
 *   Error frame has been sent to it where the protocol asks for one;
 *   -EPROTO: a valid message of the wrong type or call id;
 *   uf_msg_errno(code): the agent answered Error{code} (it closes next).
 * After any error the connection is unusable: close it.
 */
#ifndef UF_PROTO_AGENT_CLIENT_H
#define UF_PROTO_AGENT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/agent_msg.h"

/* Extra time the client waits past an Invoke's deadline for the Result. */
#define AGENT_CLIENT_GRACE_MS 2000

struct agent_hello {
	uint32_t version;
	char build[UF_AGENT_MAX_NAME + 1];
	char runtime[UF_AGENT_MAX_NAME + 1];
	Ufagent__AgentState state;
};

/* Read the Hello the agent sends first on every connection.  A Hello with
 * another protocol version is answered with Error{VERSION_MISMATCH} and
 * gives -EPROTONOSUPPORT. */
int agent_client_hello(int fd, struct agent_hello *out, int timeout_ms) UF_WUR;

struct agent_init_req {
	const void *package;        /* .tar.gz bytes */
	size_t package_len;
	const char *runtime;
	const char *handler;
	const char *const *env;     /* "KEY=VALUE" strings */
	size_t n_env;
	uint32_t memory_mb;
	uint32_t timeout_ms;
};

struct agent_init_result {
	bool ok;
	char error[UF_AGENT_MAX_TEXT + 1];
	uint64_t duration_us;
};

/* Send Init, wait for InitResult.  0 means the agent answered: look at
 * out->ok.  -EINVAL: the request breaks a documented limit (nothing sent). */
int agent_client_init(int fd, const struct agent_init_req *req,
		      struct agent_init_result *out, int timeout_ms) UF_WUR;

struct agent_invoke {
	const char *call_id;        /* <= UF_AGENT_MAX_ID bytes */
	const void *event;
	size_t len;
	uint64_t deadline_ms;       /* handler budget; 0 = none */
	const char *content_type;   /* may be NULL */
	int timeout_ms;             /* wait for Result; -1 = deadline + grace */
};

/* A Result.  body/logs/content_type/error point into memory the struct
 * owns; release with agent_result_free().  error is "" unless the handler
 * failed (the gateway's 502 "unhandled"). */
struct agent_result {
	const char *call_id;
	uint32_t status;
	const uint8_t *body;
	size_t body_len;
	const uint8_t *logs;
	size_t logs_len;
	const char *content_type;
	const char *error;
	uint64_t handler_us;
	uf_env *env_;               /* private: the decoded envelope */
};

void agent_result_free(struct agent_result *r);

/* Send Invoke, wait for the Result with the same call id.  The wait is
 * deadline_ms + AGENT_CLIENT_GRACE_MS (forever when deadline_ms is 0). */
int agent_client_invoke(int fd, const char *call_id, const void *event, size_t len,
			uint64_t deadline_ms, struct agent_result *out) UF_WUR;
int agent_client_invoke_req(int fd, const struct agent_invoke *req,
			    struct agent_result *out) UF_WUR;

struct agent_fixup_ack {
	bool ok;
	int entropy_errno;          /* 0 or a positive errno, per step */
	int reseed_errno;
	int clock_errno;
};

/* Send Fixup (entropy: UF_AGENT_ENTROPY_MIN..MAX bytes; realtime_ns > 0),
 * wait for FixupAck.  0 means the agent answered: look at ack->ok. */
int agent_client_fixup(int fd, const void *entropy, size_t len, int64_t realtime_ns,
		       struct agent_fixup_ack *ack, int timeout_ms) UF_WUR;

/* Ping with a fresh nonce; 0 when the matching Pong came back. */
int agent_client_ping(int fd, int timeout_ms) UF_WUR;

/* Ask the agent to power off with `status` (0..255).  No answer comes: the
 * agent closes every connection and returns from agent_server_run(). */
int agent_client_shutdown(int fd, uint32_t status, int timeout_ms) UF_WUR;

/* Lower level: read one envelope, answering decode failures with an Error
 * frame as the protocol asks.  Used by the calls above. */
int agent_client_recv(int fd, uf_env **out, int timeout_ms) UF_WUR;

#endif
