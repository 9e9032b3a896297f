/* handler.h — the interface between the agent's protocol server and a
 * runtime (echo now; native .so, Python and exec later).  The server owns
 * the connection and the wire format; a handler sees plain C structs and
 * never a protobuf type, so runtimes do not depend on the protocol.
 *
 * Calls are made one at a time from the server's thread.  A handler keeps
 * whatever state it needs in its own file (it is a singleton in the agent).
 * The agent in the guest serves agent_handler_runtime (runtime.h), which
 * answers as echo until an Init picks native, python or exec.
 */
#ifndef UF_AGENT_HANDLER_H
#define UF_AGENT_HANDLER_H

#include <stddef.h>
#include <stdint.h>

struct agent_env_kv {
	const char *key;   /* non-empty, no '=' (checked by the decoder) */
	const char *value;
};

/* An Init: install the function.  Every pointer is valid only during the
 * init call; copy what must be kept. */
struct agent_init {
	const uint8_t *package;      /* .tar.gz bytes, may be empty */
	size_t package_len;
	const char *runtime;         /* never NULL (may be "") */
	const char *handler;         /* never NULL (may be "") */
	const struct agent_env_kv *env;
	size_t n_env;
	uint32_t memory_mb;
	uint32_t timeout_ms;
};

/* An Invoke.  Pointers are valid only during the invoke call. */
struct agent_call {
	const char *call_id;         /* never NULL */
	const uint8_t *event;        /* NULL when len == 0 */
	size_t len;
	const char *content_type;    /* never NULL (may be "") */
	uint64_t deadline_ms;        /* budget from receipt, 0 = none */
};

#define AGENT_REPLY_ERROR_MAX 256

/* What a handler answers.  The server presets status 200 and everything
 * else empty.  body and logs are malloc'd by the handler and freed by the
 * server; logs over UF_AGENT_MAX_LOGS keep their tail.  A non-empty `error`
 * marks the call as failed (the host answers 502 "unhandled"). */
struct agent_reply {
	uint32_t status;             /* 100..599; others become 500 */
	uint8_t *body;
	size_t body_len;
	uint8_t *logs;
	size_t logs_len;
	char content_type[256];     /* UF_AGENT_MAX_NAME */
	char error[AGENT_REPLY_ERROR_MAX];
};

/* The states a handler reports through a status callback (numbered as
 * ufagent.AgentState, which the server maps them to). */
enum agent_handler_state {
	AGENT_HANDLER_FRESH = 1,     /* needs an Init before calls */
	AGENT_HANDLER_READY = 2,     /* calls are served */
	AGENT_HANDLER_FAILED = 3,    /* the last Init failed */
};

/* A handler that keeps its own state (the runtime dispatcher,
 * guest-agent/runtime.h: its runtime is chosen by Init, and a runtime-only
 * Init leaves it waiting for a second one) reports it through a status
 * callback given to the server with the handler (agent_server_opts.status
 * in server.h). */
struct agent_handler_status {
	const char *runtime;         /* what Hello reports; never NULL */
	enum agent_handler_state state;
	int accepts_init;            /* nonzero: an Init now is served, else refused */
};

struct agent_handler {
	const char *name;            /* the runtime name reported in Hello */
	/* Install the function (run before the snapshot).  0 or -errno with a
	 * message in err.  NULL: the handler needs no Init; it is ready from the
	 * start and an Init is acknowledged without effect. */
	int (*init)(const struct agent_init *req, char *err, size_t errlen);
	/* Run one call.  0 with *out filled (any status), or -errno when the
	 * handler itself failed: the server then sends status 502 with an error
	 * (out->error if set, else strerror) and frees whatever out holds. */
	int (*invoke)(const struct agent_call *call, struct agent_reply *out);
};

/* handler_echo.c: body = event bytes, status 200, same content type. */
extern const struct agent_handler agent_handler_echo;

/* handler_diag.c: look inside a guest (tests); see that file for the ops. */
#define AGENT_DIAG_CONTENT_TYPE "application/x-unifork-diag"
int agent_diag_invoke(const struct agent_call *call, struct agent_reply *out);
extern const char *agent_diag_dir;     /* where set/get keep values */

#endif
