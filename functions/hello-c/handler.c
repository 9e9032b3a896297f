/* hello-c — a native function: greets whoever the request body names.
 * The greeting comes from the function's env (GREETING) and is read once,
 * in uf_init(), before the snapshot. */
#include <stdio.h>
#include <stdlib.h>

#include "unifork.h"

static char greeting[64] = "hello";

int uf_init(void)
{
	const char *g = getenv("GREETING");
	if (g)
		snprintf(greeting, sizeof greeting, "%s", g);
	return 0;
}

int uf_handle(const struct uf_request *req, struct uf_response *resp)
{
	fprintf(stderr, "hello-c: call %s, %zu bytes\n", req->call_id, req->len);
	uf_set_content_type(resp, "text/plain; charset=utf-8");
	if (req->len == 0)
		return uf_printf(resp, "%s, world!\n", greeting);
	return uf_printf(resp, "%s, %.*s!\n", greeting, (int)req->len, (const char *)req->event);
}
