/* auth.h — the control-plane bearer token check (constant time). */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include <stdbool.h>

/* Does the Authorization header value `header` ("" when absent) carry
 * `Bearer <token>`?  The scheme is case-insensitive; the token comparison
 * takes the same time wherever the first difference is.  An empty or NULL
 * token means authentication is off (always true). */
bool gw_auth_ok(const char *token, const char *header);

#endif
