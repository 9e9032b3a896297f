/* router.h — the routing table of the HTTP API (DESIGN.md §8): a request
 * method and path become a route, a function name, whether the control-plane
 * token is needed and which body limit applies.  Pure functions, no state.
 */
#ifndef GW_ROUTER_H
#define GW_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/backend.h"

enum gw_method {
	GW_M_OTHER = 0,
	GW_M_GET,
	GW_M_HEAD,
	GW_M_POST,
	GW_M_PUT,
	GW_M_DELETE,
};

enum gw_route {
	GW_ROUTE_NONE = 0,      /* no such path */
	GW_ROUTE_HEALTHZ,       /* GET /healthz */
	GW_ROUTE_READYZ,        /* GET /readyz */
	GW_ROUTE_METRICS,       /* GET /metrics */
	GW_ROUTE_INFO,          /* GET /v1/info */
	GW_ROUTE_FUNCTIONS,     /* GET /v1/functions */
	GW_ROUTE_FUNCTION,      /* GET, PUT, DELETE /v1/functions/{name} */
	GW_ROUTE_POOL,          /* PUT /v1/functions/{name}/pool */
	GW_ROUTE_LOGS,          /* GET /v1/functions/{name}/logs */
	GW_ROUTE_INVOKE,        /* POST /v1/functions/{name}/invoke */
	GW_ROUTE_INVOKE_ALIAS,  /* POST /function/{name} */
	GW_ROUTE_COUNT,
};

enum gw_body_class {
	GW_BODY_CONTROL = 0,    /* gw_config.max_control_body */
	GW_BODY_INVOKE,         /* gw_config.max_invoke_body */
	GW_BODY_DEPLOY,         /* gw_config.max_deploy_body */
};

struct gw_match {
	enum gw_route route;
	int status;             /* 0: matched; 404 no route; 405 wrong method; 400 bad name */
	const char *allow;      /* 405: the Allow header value */
	bool control;           /* needs the control-plane token */
	bool invoke;            /* an invocation (token only with invoke_auth) */
	enum gw_body_class body;
	char name[GW_NAME_MAX + 1];     /* the {name} part, "" when none */
};

/* Match `path` (no query string, not NUL-terminated: len bytes). */
void gw_route_match(enum gw_method method, const char *path, size_t len, struct gw_match *m);

/* [a-z0-9][a-z0-9_-]{0,62} */
bool gw_name_valid(const char *s, size_t len);

/* The route's label in metrics, e.g. "/v1/functions/{name}"; "other" for none. */
const char *gw_route_label(enum gw_route r);
const char *gw_method_name(enum gw_method m);

#endif
