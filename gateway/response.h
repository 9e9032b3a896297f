/* response.h — one HTTP response being built, and its wire form.
 *
 * A gw_response owns its header block and body (gw_buf each); the session
 * serialises it with gw_response_write(), which adds the status line, Date,
 * Content-Length (none for 1xx/204/304) and Connection.  Error responses
 * carry the API's JSON body {"error":{"code":...,"message":...}}; messages
 * are reduced to printable ASCII so hostile bytes never reach the JSON.
 */
#ifndef GW_RESPONSE_H
#define GW_RESPONSE_H

#include <jansson.h>
#include <stdbool.h>

#include "gateway/buf.h"

struct gw_response {
	int status;                     /* 0: not filled yet */
	char content_type[128];         /* "" with an empty body */
	struct gw_buf headers;          /* extra "Name: value\r\n" lines */
	struct gw_buf body;
	bool close;                     /* answer with Connection: close */
};

void gw_response_init(struct gw_response *r);
void gw_response_free(struct gw_response *r);
/* Forget everything (keeps the memory). */
void gw_response_reset(struct gw_response *r);

/* Add a header line; the value is printf-formatted, CR/LF/controls replaced. */
void gw_response_header(struct gw_response *r, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Status + body bytes + content type (NULL: application/octet-stream). */
void gw_response_body(struct gw_response *r, int status, const char *content_type,
		      const void *body, size_t len);
/* Status + the JSON serialisation of `v` (borrowed). */
void gw_response_json(struct gw_response *r, int status, const json_t *v);
/* Status + {"error":{"code":code,"message":...}}; code NULL: derived from status. */
void gw_response_error(struct gw_response *r, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* The default error code for a status ("not_found" for 404, ...). */
const char *gw_status_code_name(int status);
const char *gw_status_reason(int status);

/* Append the wire form to `out`.  keep_alive false (or r->close) adds
 * Connection: close. */
void gw_response_write(const struct gw_response *r, bool keep_alive, struct gw_buf *out);

/* The body of an error response, as text (for tests and logs). */
void gw_error_json(struct gw_buf *out, const char *code, const char *message);

#endif
