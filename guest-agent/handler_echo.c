/* handler_echo.c — the echo runtime: answers every call with its own event
 * bytes and status 200.  Needs no Init; used to test the guest end to end.
 * Calls with content type AGENT_DIAG_CONTENT_TYPE go to the diagnostics in
 * handler_diag.c instead. */
#include "guest-agent/handler.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int echo_invoke(const struct agent_call *call, struct agent_reply *out)
{
	if (strcmp(call->content_type, AGENT_DIAG_CONTENT_TYPE) == 0)
		return agent_diag_invoke(call, out);
	out->status = 200;
	if (call->len) {
		out->body = malloc(call->len);
		if (!out->body)
			return -ENOMEM;
		memcpy(out->body, call->event, call->len);
		out->body_len = call->len;
	}
	snprintf(out->content_type, sizeof out->content_type, "%s",
		 call->content_type[0] ? call->content_type : "application/octet-stream");
	return 0;
}

const struct agent_handler agent_handler_echo = {
	.name = "echo",
	.init = NULL,
	.invoke = echo_invoke,
};
