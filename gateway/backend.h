/* backend.h — the contract between the HTTP gateway (gateway/) and the
 * daemon that owns functions (runtimed/).
 *
 * The gateway owns HTTP: sockets, parsing, routing, limits, auth, timeouts,
 * JSON error bodies, response headers, HTTP-level metrics.  By the time an
 * op below is called the request has been authenticated, the route and the
 * function name are valid ([a-z0-9][a-z0-9_-]{0,62}), the body is complete
 * and within its limit, and a deploy spec has been parsed, range-checked and
 * base64-decoded.  The backend owns functions: registry, templates, pools,
 * scheduling, invocation.
 *
 * Threads: every op is called on the gateway's libuv loop thread and must
 * not block for long (deploy and invoke are asynchronous for that reason).
 * The two completion calls, gw_invoke_done() and gw_deploy_done(), may be
 * called from ANY thread, including from inside the op that started the
 * call; each must be called exactly once per call.  They copy everything
 * they need from the result before returning (the backend keeps ownership
 * of its result memory) and wake the loop through a uv_async_t; the
 * response is written on the loop thread afterwards.
 *
 * Lifetimes: a `struct gw_call` and the request it came with (name, call
 * id, body, content type, spec: all gateway memory) stay valid from the op
 * until its completion call returns, even if the client disconnects in
 * between (the result is then dropped; a disconnect does not cancel).
 * After the completion call the backend must not touch either.  Graceful
 * stop (gw_server_stop) waits for every started call to be completed, so
 * the backend must complete all of them eventually — its per-function
 * timeout (504) bounds that; a backend that is shutting down completes
 * with 503.
 *
 * Any op may be NULL: the gateway then answers 501 "not_implemented",
 * except `ready` (NULL: always ready) and `metrics` (NULL: only the
 * gateway's own metrics).
 *
 * Synchronous ops return an HTTP status.  2xx: `*out` (where present) is a
 * new jansson reference the gateway takes over and serialises as the body.
 * Otherwise the backend fills `err` (code: a static string, NULL to derive
 * it from the status; message: one line) and leaves `*out` NULL; the gateway
 * answers {"error":{"code":...,"message":...}}.
 *
 * Error codes the gateway uses (the backend should use the same):
 *   400 bad_request, 401 unauthorized, 404 not_found,
 *   405 method_not_allowed, 408 request_timeout, 413 payload_too_large,
 *   422 init_failed, 429 too_many_requests, 431 headers_too_large,
 *   500 internal, 501 not_implemented, 502 unhandled, 503 unavailable,
 *   504 timeout.
 */
#ifndef GW_BACKEND_H
#define GW_BACKEND_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/buf.h"

#define GW_NAME_MAX     63      /* function names: [a-z0-9][a-z0-9_-]{0,62} */
#define GW_CALL_ID_LEN  16      /* lowercase hex characters */

/* Opaque: one started invoke or deploy (gateway memory). */
struct gw_call;

struct gw_error {
	const char *code;           /* static string, or NULL: derived from the status */
	char message[256];          /* NUL-terminated, one line */
};

/* ---- invoke: POST /v1/functions/{name}/invoke, POST /function/{name} ---- */

struct gw_invoke {
	const char *function;                   /* validated name */
	const char *call_id;                    /* GW_CALL_ID_LEN hex chars, also sent as X-Call-Id */
	const uint8_t *body;                    /* the event bytes (may be NULL when body_len == 0) */
	size_t body_len;
	const char *content_type;               /* request's Content-Type, or "application/octet-stream" */
};

enum gw_start_type {
	GW_START_NONE = 0,      /* no instance was used (errors before admission) */
	GW_START_CLONE,         /* a fresh copy-on-write clone */
	GW_START_WARM,          /* a clone that was waiting in the warm pool */
	GW_START_RESET,         /* a clone reset in place after an earlier call */
};

struct gw_invoke_result {
	/* The handler's HTTP status on success (100..599; anything else is
	 * answered 502), or the error status (400/404/429/502/503/504/...). */
	int status;
	/* Error response: when error_code is non-NULL the gateway answers
	 * {"error":{"code":error_code,"message":error_message}} and ignores
	 * body/content_type.  Use it for every failure that is not the
	 * handler's own answer. */
	const char *error_code;
	const char *error_message;              /* may be NULL */
	unsigned retry_after_s;                 /* 429: sent as Retry-After (0: header omitted) */
	bool unhandled;                         /* 502: adds X-Function-Error: unhandled */
	/* The handler's answer (copied by gw_invoke_done). */
	const void *body;
	size_t body_len;
	const char *content_type;               /* NULL: application/octet-stream */
	/* Sent as X-Start-Type / X-Restore-Us / X-Duration-Us (start type
	 * GW_START_NONE: all three omitted). */
	enum gw_start_type start;
	uint64_t restore_us;
	uint64_t duration_us;
};

/* Thread-safe; exactly once per invoke call (see the top comment). */
void gw_invoke_done(struct gw_call *call, const struct gw_invoke_result *res);

/* ---- deploy: PUT /v1/functions/{name} ---- */

enum gw_runtime {
	GW_RUNTIME_NATIVE = 0,
	GW_RUNTIME_PYTHON,
	GW_RUNTIME_EXEC,
};

struct gw_env_var {
	const char *name;           /* [A-Za-z_][A-Za-z0-9_]*, at most 128 bytes */
	const char *value;          /* no NUL inside, at most 4096 bytes */
};

/* Pool knobs.  Ranges checked by the gateway (GW_SPEC_* below); in a full
 * spec min_warm <= max_instances is checked too. */
struct gw_pool_spec {
	uint32_t min_warm;          /* default 0 */
	uint32_t max_instances;     /* default 64 */
	uint32_t idle_timeout_s;    /* default 300 */
};

/* The whole function as sent: PUT replaces, so omitted fields carry their
 * defaults, not the previous values. */
struct gw_function_spec {
	const char *name;
	enum gw_runtime runtime;
	const char *runtime_name;   /* "native", "python", "exec" */
	const char *handler;        /* default per runtime: handler.so, handler.handle, handler */
	const uint8_t *code;        /* decoded .tar.gz bytes (not inspected by the gateway) */
	size_t code_len;            /* >= 1 */
	uint32_t memory_mb;         /* default 128 */
	uint32_t timeout_ms;        /* default 3000 */
	const struct gw_env_var *env;
	size_t n_env;
	struct gw_pool_spec pool;
	/* Scheduling: the share of the CPUs against other groups (1..1000,
	 * default 1) and the group (tenant) it is scheduled in: NULL = its own
	 * name.  A group's weight is the max of its functions' weights. */
	uint32_t weight;
	const char *tenant;         /* [a-z0-9][a-z0-9_-]{0,62} or NULL */
};

#define GW_SPEC_WEIGHT_MAX        1000u         /* min 1 */
#define GW_SPEC_MEMORY_MB_MIN     16u
#define GW_SPEC_MEMORY_MB_MAX     16384u
#define GW_SPEC_TIMEOUT_MS_MIN    1u
#define GW_SPEC_TIMEOUT_MS_MAX    900000u      /* 15 min */
#define GW_SPEC_MAX_INSTANCES_MAX 4096u         /* min 1 */
#define GW_SPEC_IDLE_TIMEOUT_MAX  86400u        /* min 0 */
#define GW_SPEC_ENV_MAX           256u          /* variables */
#define GW_SPEC_HANDLER_MAX       255u          /* bytes, printable ASCII */

struct gw_deploy_result {
	/* 201 created, 200 updated; 422 init failed; 400 spec refused by the
	 * backend; 503/500 ... (then error_code/error_message are used). */
	int status;
	const char *error_code;     /* NULL for 200/201 */
	const char *error_message;
	/* 200/201 body: a jansson object describing the function, or NULL
	 * (then {"name":...,"status":"created"|"updated"}).  gw_deploy_done()
	 * serialises it before returning and keeps no reference: the caller
	 * still owns it (and must not change it during the call). */
	json_t *function;
};

/* Thread-safe; exactly once per deploy call.  The spec memory is invalid
 * once this returns. */
void gw_deploy_done(struct gw_call *call, const struct gw_deploy_result *res);

/* ---- PUT /v1/functions/{name}/pool: only the fields present change ---- */

struct gw_pool_update {
	bool has_min_warm, has_max_instances, has_idle_timeout_s, has_weight;
	struct gw_pool_spec pool;   /* values of the fields present (range-checked) */
	uint32_t weight;            /* when has_weight: 1..GW_SPEC_WEIGHT_MAX */
};

/* ---- GET /v1/functions/{name}/logs?tail=N ---- */

#define GW_LOGS_TAIL_DEFAULT 100u
#define GW_LOGS_TAIL_MAX     10000u

struct gw_ops {
	/* Asynchronous: complete with gw_invoke_done(call, ...). */
	void (*invoke)(void *ctx, struct gw_call *call, const struct gw_invoke *req);
	/* Asynchronous: complete with gw_deploy_done(call, ...) once the
	 * function template is ready (or failed: 422). */
	void (*deploy)(void *ctx, struct gw_call *call, const struct gw_function_spec *spec);

	/* GET /v1/functions: 200 with e.g. {"functions":[{...}, ...]}. */
	int (*list)(void *ctx, json_t **out, struct gw_error *err);
	/* GET /v1/functions/{name}: 200 with the function (state, template
	 * size, pool counts, latency summary), or 404. */
	int (*get)(void *ctx, const char *name, json_t **out, struct gw_error *err);
	/* DELETE /v1/functions/{name}: 204 (no body), or 404. */
	int (*remove)(void *ctx, const char *name, struct gw_error *err);
	/* PUT /v1/functions/{name}/pool: 200 with the new pool, 404, or 400
	 * (e.g. min_warm > max_instances after the update). */
	int (*set_pool)(void *ctx, const char *name, const struct gw_pool_update *upd,
			json_t **out, struct gw_error *err);
	/* GET /v1/functions/{name}/logs: 200 with NDJSON text (one JSON object a
	 * line, newest last, at most `tail` lines) in *ndjson (malloc'd; the
	 * gateway frees it) of *len bytes, or 404. */
	int (*logs)(void *ctx, const char *name, unsigned tail, char **ndjson, size_t *len,
		    struct gw_error *err);
	/* GET /v1/info: 200 with e.g. {"version":...,"kvm_mode":...}. */
	int (*info)(void *ctx, json_t **out, struct gw_error *err);
	/* GET /readyz: 200 when invocations can be served, else 503 with a
	 * reason in err.  (The gateway answers 503 itself while stopping.) */
	int (*ready)(void *ctx, struct gw_error *err);
	/* GET /metrics: append the backend's metrics in Prometheus text
	 * exposition format (HELP/TYPE lines included, names prefixed uf_).
	 * The gateway adds its own uf_http_* metrics. */
	void (*metrics)(void *ctx, struct gw_buf *out);
};

#endif
