/* call.h — one backend call in flight (invoke or deploy) and the queue that
 * brings its completion back to the loop thread.
 *
 * A call owns the request data the backend reads (name, call id, body,
 * content type, parsed spec) and the response its completion produces.
 * Lifetime: gw_call_new() on the loop thread → the backend op → the
 * backend's gw_invoke_done()/gw_deploy_done() (any thread) turns the result
 * into call->resp and queues the call → gw_calls_drain() on the loop thread
 * hands it to its session (if the connection still exists) and frees it.
 * The session pointer is only read and written on the loop thread.
 */
#ifndef GW_CALL_H
#define GW_CALL_H

#include "gateway/backend.h"
#include "gateway/buf.h"
#include "gateway/core.h"
#include "gateway/response.h"
#include "gateway/spec.h"

struct gw_session;

enum gw_call_kind {
	GW_CALL_INVOKE,
	GW_CALL_DEPLOY,
};

struct gw_call {
	struct gw_call *next;           /* completion queue */
	struct gw_core *core;
	struct gw_session *session;     /* NULL once the connection is gone */
	enum gw_call_kind kind;
	char name[GW_NAME_MAX + 1];
	char call_id[GW_CALL_ID_LEN + 1];
	char content_type[256];         /* invoke: request Content-Type */
	struct gw_buf body;             /* invoke: the event bytes */
	struct gw_invoke invoke;        /* what the backend reads (points into this call) */
	struct gw_spec spec;            /* deploy: the parsed spec */
	struct gw_response resp;        /* filled by the completion */
};

/* NULL on allocation failure.  The caller fills the request fields. */
struct gw_call *gw_call_new(struct gw_core *core, enum gw_call_kind kind);
/* Count the call as started (loop thread; before the backend op). */
void gw_call_started(struct gw_call *call);

/* Loop thread: deliver every completed call to its session, free them. */
void gw_calls_drain(struct gw_core *core);
/* Free queued completions without delivering them (teardown). */
void gw_calls_discard(struct gw_core *core);

#endif
