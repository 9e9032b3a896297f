/* http.h — one HTTP/1.1 exchange over a fresh TCP connection.
 *
 * cli_http_do() resolves and connects to the target, sends the request with
 * `Connection: close`, and reads the response into `resp` (http_parse.h),
 * all under one deadline.  The request body is sent while watching for an
 * early answer: a server that replies (e.g. 413) before reading everything
 * is heard instead of ending in a broken pipe.  SIGPIPE is never raised.
 *
 * Returns 0 with a complete response (any status), or -errno with context
 * in vmm_strerror(); `*connected` says whether the TCP connection was made
 * (to tell "cannot reach the server" from "the exchange failed").  The
 * caller initialises `resp` (cli_http_resp_init) and frees it either way.
 */
#ifndef CLI_HTTP_H
#define CLI_HTTP_H

#include <stddef.h>

#include "cli/config.h"
#include "cli/http_parse.h"

struct cli_http_req {
	const char *method;
	const char *path;   /* absolute path, already percent-encoded */
	const char *token;  /* Authorization: Bearer, or NULL */
	const char *ctype;  /* Content-Type, or NULL */
	const char *accept; /* Accept, or NULL */
	const void *body;
	size_t body_len;
	int has_body;       /* send Content-Length (even 0) */
};

int cli_http_do(const struct cli_target *t, const struct cli_http_req *req, double timeout_s,
		struct cli_http_resp *resp, int *connected) __attribute__((warn_unused_result));

/* Append `s` to `out`, percent-encoding all but RFC 3986 unreserved bytes,
 * so a function name can never change the path's shape. */
int cli_http_path_escape(struct cli_buf *out, const char *s) __attribute__((warn_unused_result));

#endif
