/* api.h — the routes of DESIGN.md §8: policy checks at the end of the
 * headers (route, method, name, token, body limit) and serving a complete
 * request, synchronously into a response or by starting a backend call.
 */
#ifndef GW_API_H
#define GW_API_H

#include "gateway/core.h"
#include "gateway/parser.h"
#include "gateway/response.h"

struct gw_session;

/* At the end of the headers: fill req->match and req->body_limit.  A
 * refusal (404/405/400/401, 413 for a Content-Length over the limit) is
 * recorded in req->early_*; it is returned (to be answered at once, the
 * body unread, the connection closed) when a body follows, else 0 (answered
 * by gw_api_serve, the connection kept). */
int gw_api_precheck(struct gw_core *core, struct gw_request *req);

/* Serve a complete request.  0: `resp` holds the answer.  1: a backend call
 * was started and attached to the session; the answer comes through
 * gw_session_call_done().  May take req->body. */
int gw_api_serve(struct gw_core *core, struct gw_session *s, struct gw_request *req,
		 struct gw_response *resp);

#endif
