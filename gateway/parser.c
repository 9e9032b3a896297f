/* parser.c — llhttp callbacks collecting one bounded request at a time. */
#include "gateway/parser.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "gateway/response.h"
#include "llhttp/llhttp.h"

#define FIELD_MAX 32    /* longer header names are never ones we read */
#define BODY_KEEP_MAX (256 * 1024)

struct gw_parser {
	llhttp_t http;
	llhttp_settings_t settings;
	size_t max_header_bytes;
	gw_headers_hook hook;
	void *hook_arg;

	enum gw_parse_phase phase;
	struct gw_request req;
	struct gw_buf url;
	size_t header_bytes;
	unsigned header_count;
	char field[FIELD_MAX + 1];
	size_t field_len;               /* > FIELD_MAX: not a header we read */
	struct gw_buf value;            /* only for headers we read */
	bool want_value;
	bool seen_auth;

	int err_status;                 /* refusal */
	const char *err_code;
	char err_msg[160];
};

static struct gw_parser *of(llhttp_t *h)
{
	return h->data;
}

/* Record a refusal; returns -1 for llhttp (the callback's error). */
static int refuse(struct gw_parser *p, int status, const char *code, const char *msg)
{
	if (!p->err_status) {
		p->err_status = status;
		p->err_code = code;
		snprintf(p->err_msg, sizeof(p->err_msg), "%s", msg);
	}
	return -1;
}

static int count_header_bytes(struct gw_parser *p, size_t n)
{
	p->header_bytes += n;
	if (p->header_bytes > p->max_header_bytes)
		return refuse(p, 431, "headers_too_large", "request headers over the limit");
	return 0;
}

static int on_message_begin(llhttp_t *h)
{
	struct gw_parser *p = of(h);
	p->phase = GW_PHASE_HEAD;
	p->req.start_ns = uv_hrtime();
	return 0;
}

static int on_url(llhttp_t *h, const char *at, size_t len)
{
	struct gw_parser *p = of(h);
	if (p->url.len + len > p->max_header_bytes)
		return refuse(p, 414, "uri_too_long", "request target over the header limit");
	if (count_header_bytes(p, len))
		return -1;
	gw_buf_append(&p->url, at, len);
	return gw_buf_error(&p->url) ? refuse(p, 500, "internal", "out of memory") : 0;
}

static int on_url_complete(llhttp_t *h)
{
	struct gw_parser *p = of(h);
	gw_buf_append(&p->url, "\0", 1);     /* room for the split below */
	if (gw_buf_error(&p->url))
		return refuse(p, 500, "internal", "out of memory");
	char *u = p->url.data;
	size_t n = p->url.len - 1;
	char *q = memchr(u, '?', n);
	char *frag = memchr(u, '#', n);
	if (frag && (!q || frag < q))
		q = NULL;
	if (frag)
		*frag = 0;
	p->req.path = u;
	if (q) {
		*q = 0;
		p->req.query = q + 1;
	} else {
		p->req.query = u + n;   /* the terminating NUL: "" */
	}
	p->req.path_len = strlen(u);
	return 0;
}

static int on_header_field(llhttp_t *h, const char *at, size_t len)
{
	struct gw_parser *p = of(h);
	if (count_header_bytes(p, len))
		return -1;
	if (p->field_len + len <= FIELD_MAX)
		memcpy(p->field + p->field_len, at, len);
	p->field_len += len;
	return 0;
}

static int on_header_field_complete(llhttp_t *h)
{
	struct gw_parser *p = of(h);
	if (++p->header_count > GW_MAX_HEADER_COUNT)
		return refuse(p, 431, "headers_too_large", "too many request headers");
	if (count_header_bytes(p, 4))           /* ": " and CRLF */
		return -1;
	p->want_value = false;
	if (p->field_len <= FIELD_MAX) {
		p->field[p->field_len] = 0;
		p->want_value = !strcasecmp(p->field, "content-type") ||
				!strcasecmp(p->field, "authorization") ||
				!strcasecmp(p->field, "expect");
	}
	gw_buf_reset(&p->value);
	return 0;
}

static int on_header_value(llhttp_t *h, const char *at, size_t len)
{
	struct gw_parser *p = of(h);
	if (count_header_bytes(p, len))
		return -1;
	if (!p->want_value)
		return 0;
	if (p->value.len + len > GW_AUTH_HEADER_MAX)
		return refuse(p, 431, "headers_too_large", "header value over its limit");
	gw_buf_append(&p->value, at, len);
	return gw_buf_error(&p->value) ? refuse(p, 500, "internal", "out of memory") : 0;
}

static int on_header_value_complete(llhttp_t *h)
{
	struct gw_parser *p = of(h);
	struct gw_request *r = &p->req;
	const char *v = p->value.data ? p->value.data : "";
	size_t n = p->value.len;

	if (p->want_value) {
		if (memchr(v, 0, n))
			return refuse(p, 400, "bad_request", "NUL in a header value");
		if (!strcasecmp(p->field, "content-type")) {
			if (n > GW_CONTENT_TYPE_MAX)
				return refuse(p, 400, "bad_request", "Content-Type too long");
			memcpy(r->content_type, v, n);
			r->content_type[n] = 0;
		} else if (!strcasecmp(p->field, "authorization")) {
			if (p->seen_auth)
				return refuse(p, 400, "bad_request", "more than one Authorization header");
			p->seen_auth = true;
			memcpy(r->authorization, v, n);
			r->authorization[n] = 0;
		} else if (n == strlen("100-continue") && !strncasecmp(v, "100-continue", n)) {
			r->expect_continue = true;
		}
	}
	p->field_len = 0;
	p->want_value = false;
	return 0;
}

static enum gw_method method_of(uint8_t m)
{
	switch (m) {
	case HTTP_GET: return GW_M_GET;
	case HTTP_HEAD: return GW_M_HEAD;
	case HTTP_POST: return GW_M_POST;
	case HTTP_PUT: return GW_M_PUT;
	case HTTP_DELETE: return GW_M_DELETE;
	}
	return GW_M_OTHER;
}

static int on_headers_complete(llhttp_t *h)
{
	struct gw_parser *p = of(h);
	struct gw_request *r = &p->req;

	if (!r->path)
		return refuse(p, 400, "bad_request", "no request target");
	r->method = method_of(h->method);
	r->chunked = (h->flags & F_CHUNKED) != 0;
	r->has_length = (h->flags & F_CONTENT_LENGTH) != 0;
	r->content_length = r->has_length ? h->content_length : 0;
	r->keep_alive = llhttp_should_keep_alive(h) != 0;
	r->upgrade = h->upgrade != 0 || h->method == HTTP_CONNECT;
	p->phase = GW_PHASE_BODY;
	int st = p->hook ? p->hook(p->hook_arg, r) : 0;
	if (st) {
		const char *code = r->early_code;
		return refuse(p, st, code, r->early_msg[0] ? r->early_msg : "request refused");
	}
	/* Content-Length over the limit is refused before any body byte. */
	if (r->has_length && r->content_length > r->body_limit)
		return refuse(p, 413, "payload_too_large", "request body over the limit");
	/* CONNECT / Upgrade: no body is read; the session answers and closes. */
	return r->upgrade ? 1 : 0;
}

static int on_body(llhttp_t *h, const char *at, size_t len)
{
	struct gw_parser *p = of(h);
	struct gw_request *r = &p->req;
	if (len > r->body_limit || r->body.len > r->body_limit - len)
		return refuse(p, 413, "payload_too_large", "request body over the limit");
	gw_buf_append(&r->body, at, len);
	return gw_buf_error(&r->body) ? refuse(p, 500, "internal", "out of memory") : 0;
}

static int on_message_complete(llhttp_t *h)
{
	struct gw_parser *p = of(h);
	p->phase = GW_PHASE_COMPLETE;
	return HPE_PAUSED;      /* one request at a time: the rest waits */
}

static void request_reset(struct gw_parser *p)
{
	struct gw_buf body = p->req.body;
	if (body.cap > BODY_KEEP_MAX)
		gw_buf_free(&body);     /* a big body's memory is not kept for the next request */
	gw_buf_reset(&body);
	memset(&p->req, 0, sizeof(p->req));
	p->req.body = body;
	p->req.query = "";
	gw_buf_reset(&p->url);
	gw_buf_reset(&p->value);
	p->header_bytes = 0;
	p->header_count = 0;
	p->field_len = 0;
	p->want_value = false;
	p->seen_auth = false;
	p->phase = GW_PHASE_IDLE;
}

int gw_parser_new(struct gw_parser **out, size_t max_header_bytes, gw_headers_hook hook, void *arg)
{
	struct gw_parser *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	llhttp_settings_init(&p->settings);
	p->settings.on_message_begin = on_message_begin;
	p->settings.on_url = on_url;
	p->settings.on_url_complete = on_url_complete;
	p->settings.on_header_field = on_header_field;
	p->settings.on_header_field_complete = on_header_field_complete;
	p->settings.on_header_value = on_header_value;
	p->settings.on_header_value_complete = on_header_value_complete;
	p->settings.on_headers_complete = on_headers_complete;
	p->settings.on_body = on_body;
	p->settings.on_message_complete = on_message_complete;
	llhttp_init(&p->http, HTTP_REQUEST, &p->settings);
	p->http.data = p;
	p->max_header_bytes = max_header_bytes;
	p->hook = hook;
	p->hook_arg = arg;
	gw_buf_init(&p->url);
	gw_buf_init(&p->value);
	gw_buf_init(&p->req.body);
	request_reset(p);
	*out = p;
	return 0;
}

void gw_parser_free(struct gw_parser *p)
{
	if (!p)
		return;
	gw_buf_free(&p->url);
	gw_buf_free(&p->value);
	gw_buf_free(&p->req.body);
	free(p);
}

static enum gw_parse fail(struct gw_parser *p, llhttp_errno_t e)
{
	if (!p->err_status) {
		p->err_status = 400;
		p->err_code = "bad_request";
		const char *why = llhttp_get_error_reason(&p->http);
		snprintf(p->err_msg, sizeof(p->err_msg), "malformed HTTP request: %s",
			 why ? why : "parse error");
	}
	(void)e;
	return GW_PARSE_ERROR;
}

enum gw_parse gw_parser_feed(struct gw_parser *p, const char *data, size_t len, size_t *consumed)
{
	*consumed = 0;
	if (p->err_status)
		return GW_PARSE_ERROR;
	if (p->phase == GW_PHASE_COMPLETE)
		return GW_PARSE_DONE;
	llhttp_errno_t e = llhttp_execute(&p->http, data, len);
	switch (e) {
	case HPE_OK:
		*consumed = len;
		return GW_PARSE_MORE;
	case HPE_PAUSED:
	case HPE_PAUSED_UPGRADE:
		if (p->phase != GW_PHASE_COMPLETE)
			return fail(p, e);
		*consumed = (size_t)(llhttp_get_error_pos(&p->http) - data);
		if (*consumed > len)
			*consumed = len;
		return GW_PARSE_DONE;
	default:
		return fail(p, e);
	}
}

enum gw_parse gw_parser_eof(struct gw_parser *p)
{
	if (p->err_status)
		return GW_PARSE_ERROR;
	if (p->phase == GW_PHASE_HEAD || p->phase == GW_PHASE_BODY) {
		refuse(p, 400, "bad_request", "connection closed in the middle of a request");
		return GW_PARSE_ERROR;
	}
	return GW_PARSE_MORE;
}

struct gw_request *gw_parser_request(struct gw_parser *p)
{
	return &p->req;
}

int gw_parser_error(const struct gw_parser *p, const char **code, const char **message)
{
	if (code)
		*code = p->err_code ? p->err_code : gw_status_code_name(p->err_status);
	if (message)
		*message = p->err_msg;
	return p->err_status;
}

enum gw_parse_phase gw_parser_phase(const struct gw_parser *p)
{
	return p->phase;
}

void gw_parser_next(struct gw_parser *p)
{
	if (p->err_status)
		return;
	request_reset(p);
	llhttp_errno_t e = llhttp_get_errno(&p->http);
	if (e == HPE_PAUSED)
		llhttp_resume(&p->http);
	else if (e == HPE_PAUSED_UPGRADE)
		llhttp_resume_after_upgrade(&p->http);
}
