/* response.c — building responses and writing them in HTTP/1.1 form. */
#include "gateway/response.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void gw_response_init(struct gw_response *r)
{
	r->status = 0;
	r->content_type[0] = 0;
	gw_buf_init(&r->headers);
	gw_buf_init(&r->body);
	r->close = false;
}

void gw_response_free(struct gw_response *r)
{
	gw_buf_free(&r->headers);
	gw_buf_free(&r->body);
	r->status = 0;
}

void gw_response_reset(struct gw_response *r)
{
	r->status = 0;
	r->content_type[0] = 0;
	gw_buf_reset(&r->headers);
	gw_buf_reset(&r->body);
	r->close = false;
}

/* Printable ASCII only: header values and JSON messages never carry
 * control bytes, CR/LF or invalid UTF-8 from hostile input. */
static void sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
}

void gw_response_header(struct gw_response *r, const char *name, const char *fmt, ...)
{
	char value[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	sanitize(value);
	gw_buf_printf(&r->headers, "%s: %s\r\n", name, value);
}

static void set_type(struct gw_response *r, const char *type)
{
	snprintf(r->content_type, sizeof(r->content_type), "%s", type);
	sanitize(r->content_type);
}

void gw_response_body(struct gw_response *r, int status, const char *content_type,
		      const void *body, size_t len)
{
	r->status = status;
	gw_buf_reset(&r->body);
	gw_buf_append(&r->body, body, len);
	set_type(r, content_type ? content_type : "application/octet-stream");
}

static int dump_cb(const char *buf, size_t size, void *data)
{
	gw_buf_append(data, buf, size);
	return gw_buf_error(data) ? -1 : 0;
}

void gw_response_json(struct gw_response *r, int status, const json_t *v)
{
	r->status = status;
	gw_buf_reset(&r->body);
	if (json_dump_callback(v, dump_cb, &r->body, JSON_COMPACT) != 0 || gw_buf_error(&r->body)) {
		gw_response_error(r, 500, "internal", "cannot serialise the response");
		return;
	}
	gw_buf_append(&r->body, "\n", 1);
	set_type(r, "application/json");
}

void gw_error_json(struct gw_buf *out, const char *code, const char *message)
{
	json_t *o = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
	if (!o || json_dump_callback(o, dump_cb, out, JSON_COMPACT) != 0)
		gw_buf_puts(out, "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}");
	gw_buf_append(out, "\n", 1);
	json_decref(o);
}

void gw_response_error(struct gw_response *r, int status, const char *code, const char *fmt, ...)
{
	char msg[512];
	char ccode[64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sanitize(msg);
	snprintf(ccode, sizeof(ccode), "%s", code ? code : gw_status_code_name(status));
	sanitize(ccode);
	r->status = status;
	gw_buf_reset(&r->body);
	gw_error_json(&r->body, ccode, msg);
	set_type(r, "application/json");
}

const char *gw_status_code_name(int status)
{
	switch (status) {
	case 400: return "bad_request";
	case 401: return "unauthorized";
	case 404: return "not_found";
	case 405: return "method_not_allowed";
	case 408: return "request_timeout";
	case 413: return "payload_too_large";
	case 414: return "uri_too_long";
	case 422: return "init_failed";
	case 429: return "too_many_requests";
	case 431: return "headers_too_large";
	case 501: return "not_implemented";
	case 502: return "unhandled";
	case 503: return "unavailable";
	case 504: return "timeout";
	}
	return status >= 400 && status < 500 ? "bad_request" : "internal";
}

const char *gw_status_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	}
	return "Status";
}

static bool no_body(int status)
{
	return (status >= 100 && status < 200) || status == 204 || status == 304;
}

void gw_response_write(const struct gw_response *r, bool keep_alive, struct gw_buf *out)
{
	char date[64];
	struct tm tm;
	time_t now = time(NULL);

	if (!gmtime_r(&now, &tm) || strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
		date[0] = 0;
	gw_buf_printf(out, "HTTP/1.1 %d %s\r\nServer: unifork\r\n", r->status, gw_status_reason(r->status));
	if (date[0])
		gw_buf_printf(out, "Date: %s\r\n", date);
	gw_buf_append(out, r->headers.data, r->headers.len);
	if (!no_body(r->status)) {
		if (r->content_type[0] && r->body.len)
			gw_buf_printf(out, "Content-Type: %s\r\n", r->content_type);
		gw_buf_printf(out, "Content-Length: %zu\r\n", r->body.len);
	}
	if (!keep_alive || r->close)
		gw_buf_puts(out, "Connection: close\r\n");
	gw_buf_puts(out, "\r\n");
	if (!no_body(r->status))
		gw_buf_append(out, r->body.data, r->body.len);
}
