/* parser.h — HTTP/1.1 request parsing (llhttp underneath), without sockets.
 *
 * A gw_parser turns the bytes of one connection into requests, one at a
 * time: gw_parser_feed() consumes bytes until a request is complete (then
 * it stops, leaving any pipelined bytes unconsumed for after the response),
 * more bytes are needed, or the input is refused.  It enforces the header
 * limit (431; 414 when the request target alone is over it), the body limit
 * the headers hook sets (413, counted on the body as it arrives, chunked
 * included), and rejects malformed HTTP (400).  After a refusal the
 * connection must be closed: the parser stays in its error state.
 *
 * The parser owns its llhttp state and the current request's memory; a
 * request stays valid until gw_parser_next().
 */
#ifndef GW_PARSER_H
#define GW_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/buf.h"
#include "gateway/router.h"

#define GW_CONTENT_TYPE_MAX 255
#define GW_AUTH_HEADER_MAX  1024
#define GW_MAX_HEADER_COUNT 100

struct gw_request {
	enum gw_method method;
	char *path;                     /* NUL-terminated, no query */
	size_t path_len;
	char *query;                    /* after '?', NUL-terminated ("" when none) */
	char content_type[GW_CONTENT_TYPE_MAX + 1];     /* "" when absent */
	char authorization[GW_AUTH_HEADER_MAX + 1];     /* "" when absent */
	bool expect_continue;           /* Expect: 100-continue */
	bool chunked;
	bool has_length;
	uint64_t content_length;        /* when has_length */
	bool keep_alive;                /* known from the end of headers */
	bool upgrade;                   /* CONNECT or Upgrade: close after answering */
	size_t body_limit;              /* set by the headers hook */
	struct gw_buf body;
	uint64_t start_ns;              /* first byte (uv_hrtime clock) */
	/* Filled by the headers hook for the session's own use. */
	struct gw_match match;
	int early_status;               /* answer this without a backend call */
	const char *early_code;
	char early_msg[128];
};

/* Called at the end of the headers (request line and headers known, body
 * not yet read).  Returns 0 to go on (with req->body_limit set), or an HTTP
 * status to refuse the request with now (the parser reports it as an
 * error: the body is never read). */
typedef int (*gw_headers_hook)(void *arg, struct gw_request *req);

enum gw_parse {
	GW_PARSE_MORE = 0,      /* everything consumed, request not complete */
	GW_PARSE_DONE,          /* a request is complete: gw_parser_request() */
	GW_PARSE_ERROR,         /* refused: gw_parser_error() */
};

/* Where the current request is (for the connection's timers). */
enum gw_parse_phase {
	GW_PHASE_IDLE = 0,      /* between requests */
	GW_PHASE_HEAD,          /* request line / headers arriving */
	GW_PHASE_BODY,          /* headers done, body arriving */
	GW_PHASE_COMPLETE,      /* request complete, not yet released (gw_parser_next) */
};

struct gw_parser;

int gw_parser_new(struct gw_parser **out, size_t max_header_bytes, gw_headers_hook hook, void *arg)
	__attribute__((warn_unused_result));
void gw_parser_free(struct gw_parser *p);

/* Consume up to len bytes; *consumed says how many.  Stops after a complete
 * request (DONE: the rest is the next request's) or at an error. */
enum gw_parse gw_parser_feed(struct gw_parser *p, const char *data, size_t len, size_t *consumed);
/* The peer closed its side: DONE never happens for a partial request;
 * returns GW_PARSE_ERROR (400: truncated) if one was in progress, else MORE. */
enum gw_parse gw_parser_eof(struct gw_parser *p);

struct gw_request *gw_parser_request(struct gw_parser *p);
/* The refusal: HTTP status, error code, message. */
int gw_parser_error(const struct gw_parser *p, const char **code, const char **message);
enum gw_parse_phase gw_parser_phase(const struct gw_parser *p);
/* Done with the current request: reset for the next one on the connection. */
void gw_parser_next(struct gw_parser *p);

#endif
