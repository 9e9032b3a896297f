/* http_parse.h — incremental HTTP/1.1 response parser (no I/O).
 *
 * The server is on the network and therefore hostile: every length is
 * bounded (CLI_HTTP_MAX_HEAD bytes of status line + headers, and the same
 * again of chunked trailers; CLI_HTTP_MAX_HEADERS headers; body up to
 * `max_body`), numbers are parsed strictly with overflow checks, and a
 * malformed response is an error, never a guess.  Framing: 1xx interim
 * responses are skipped; 204/304 have no body; Transfer-Encoding ending in
 * "chunked" is decoded (extensions and trailers skipped); else
 * Content-Length (repeated values must agree); else the body runs to EOF.
 *
 * Life cycle: cli_http_resp_init(), then cli_http_feed() with each block of
 * bytes received and cli_http_eof() when the peer closes; both return 1 once
 * the response is complete (bytes after it are ignored), 0 while more is
 * needed, -EPROTO (malformed) / -EMSGSIZE (over a limit) / -ENOMEM with
 * context in vmm_strerror().  cli_http_resp_free() releases everything.
 */
#ifndef CLI_HTTP_PARSE_H
#define CLI_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "cli/buf.h"

#define CLI_HTTP_MAX_HEAD    (64 * 1024)
#define CLI_HTTP_MAX_HEADERS 128
#define CLI_HTTP_MAX_LINE    (8 * 1024)

struct cli_http_header {
	char *name;  /* as sent; compare case-insensitively */
	char *value; /* leading/trailing blanks removed */
};

struct cli_http_resp {
	int status;   /* 100..999 */
	int minor;    /* HTTP/1.minor */
	char *reason; /* may be "" */
	struct cli_http_header hdrs[CLI_HTTP_MAX_HEADERS];
	size_t nhdrs;
	struct cli_buf body;
	size_t max_body;

	/* parser state */
	int state;
	struct cli_buf raw; /* received, not yet consumed */
	size_t pos;         /* consumed bytes of raw */
	size_t head_bytes;
	uint64_t remaining; /* of a chunk or a Content-Length body */
};

void cli_http_resp_init(struct cli_http_resp *r, size_t max_body);
void cli_http_resp_free(struct cli_http_resp *r);
int cli_http_feed(struct cli_http_resp *r, const void *p, size_t n)
	__attribute__((warn_unused_result));
int cli_http_eof(struct cli_http_resp *r) __attribute__((warn_unused_result));
/* Has the status line + headers been parsed (the body may still be coming)? */
int cli_http_have_head(const struct cli_http_resp *r);

/* The value of the last header called `name` (case-insensitive), or NULL. */
const char *cli_http_header(const struct cli_http_resp *r, const char *name);

#endif
