/* http_parse.c — HTTP/1.1 response state machine over a byte buffer. */
#include "cli/http_parse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vmm/err.h"

enum {
	ST_STATUS,
	ST_HEADERS,
	ST_BODY_LEN,
	ST_BODY_EOF,
	ST_CHUNK_SIZE,
	ST_CHUNK_DATA,
	ST_CHUNK_END,
	ST_TRAILERS,
	ST_DONE,
};

void cli_http_resp_init(struct cli_http_resp *r, size_t max_body)
{
	memset(r, 0, sizeof(*r));
	r->max_body = max_body;
	r->state = ST_STATUS;
}

static void clear_head(struct cli_http_resp *r)
{
	for (size_t i = 0; i < r->nhdrs; i++) {
		free(r->hdrs[i].name);
		free(r->hdrs[i].value);
	}
	r->nhdrs = 0;
	free(r->reason);
	r->reason = NULL;
}

void cli_http_resp_free(struct cli_http_resp *r)
{
	clear_head(r);
	cli_buf_free(&r->body);
	cli_buf_free(&r->raw);
}

int cli_http_have_head(const struct cli_http_resp *r)
{
	return r->state != ST_STATUS && r->state != ST_HEADERS;
}

const char *cli_http_header(const struct cli_http_resp *r, const char *name)
{
	for (size_t i = r->nhdrs; i-- > 0;)
		if (strcasecmp(r->hdrs[i].name, name) == 0)
			return r->hdrs[i].value;
	return NULL;
}

static int is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Next line of raw (without CR LF / LF) or NULL when incomplete.  Lines over
 * CLI_HTTP_MAX_LINE are refused. */
static int next_line(struct cli_http_resp *r, char **line, size_t *len)
{
	char *s = r->raw.data + r->pos;
	size_t avail = r->raw.len - r->pos;
	char *nl = avail ? memchr(s, '\n', avail) : NULL;
	if (!nl) {
		*line = NULL;
		if (avail > CLI_HTTP_MAX_LINE)
			return vmm_err(-EMSGSIZE, "HTTP response: line longer than %d bytes",
				       CLI_HTTP_MAX_LINE);
		return 0;
	}
	size_t n = (size_t)(nl - s);
	if (n > CLI_HTTP_MAX_LINE)
		return vmm_err(-EMSGSIZE, "HTTP response: line longer than %d bytes",
			       CLI_HTTP_MAX_LINE);
	r->pos += n + 1;
	if (n && s[n - 1] == '\r')
		n--;
	s[n] = '\0';
	*line = s;
	*len = n;
	return 1;
}

static int parse_status(struct cli_http_resp *r, char *line, size_t len)
{
	/* HTTP/1.x SP 3DIGIT [SP reason] */
	if (len < 12 || memcmp(line, "HTTP/1.", 7) != 0 || line[7] < '0' || line[7] > '9' ||
	    line[8] != ' ')
		return vmm_err(-EPROTO, "not an HTTP/1.x response");
	for (int i = 9; i < 12; i++)
		if (line[i] < '0' || line[i] > '9')
			return vmm_err(-EPROTO, "HTTP response: bad status code");
	if (len > 12 && line[12] != ' ')
		return vmm_err(-EPROTO, "HTTP response: bad status line");
	r->minor = line[7] - '0';
	r->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
	if (r->status < 100)
		return vmm_err(-EPROTO, "HTTP response: bad status code %d", r->status);
	r->reason = strdup(len > 12 ? line + 13 : "");
	return r->reason ? 0 : vmm_errno(-ENOMEM, "HTTP response");
}

static int parse_header(struct cli_http_resp *r, char *line, size_t len)
{
	if (line[0] == ' ' || line[0] == '\t')
		return vmm_err(-EPROTO, "HTTP response: folded header line");
	char *colon = memchr(line, ':', len);
	if (!colon || colon == line)
		return vmm_err(-EPROTO, "HTTP response: header line without a name");
	for (char *c = line; c < colon; c++)
		if (!is_tchar((unsigned char)*c))
			return vmm_err(-EPROTO, "HTTP response: bad header name");
	if (r->nhdrs == CLI_HTTP_MAX_HEADERS)
		return vmm_err(-EMSGSIZE, "HTTP response: more than %d headers",
			       CLI_HTTP_MAX_HEADERS);
	char *v = colon + 1, *end = line + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	for (char *c = v; c < end; c++)
		if ((unsigned char)*c < 0x20 && *c != '\t')
			return vmm_err(-EPROTO, "HTTP response: control character in a header");
	struct cli_http_header *h = &r->hdrs[r->nhdrs];
	h->name = strndup(line, (size_t)(colon - line));
	h->value = strndup(v, (size_t)(end - v));
	if (!h->name || !h->value) {
		free(h->name);
		free(h->value);
		return vmm_errno(-ENOMEM, "HTTP response");
	}
	r->nhdrs++;
	return 0;
}

/* Strict decimal, no sign, no blanks; -1 if not one or over 2^62. */
static int64_t parse_dec(const char *s)
{
	if (!*s)
		return -1;
	int64_t v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (INT64_C(1) << 62) / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v;
}

/* Decide how the body is framed, once the head is complete. */
static int choose_framing(struct cli_http_resp *r)
{
	if (r->status == 204 || r->status == 304) {
		r->state = ST_DONE;
		return 0;
	}
	const char *te = cli_http_header(r, "transfer-encoding");
	if (te) {
		/* The last coding decides; anything not ending in chunked runs to EOF. */
		size_t n = strlen(te);
		while (n && (te[n - 1] == ' ' || te[n - 1] == '\t'))
			n--;
		r->state = (n >= 7 && strncasecmp(te + n - 7, "chunked", 7) == 0 &&
			    (n == 7 || te[n - 8] == ',' || te[n - 8] == ' '))
				   ? ST_CHUNK_SIZE
				   : ST_BODY_EOF;
		return 0;
	}
	int64_t len = -1;
	for (size_t i = 0; i < r->nhdrs; i++) {
		if (strcasecmp(r->hdrs[i].name, "content-length") != 0)
			continue;
		int64_t v = parse_dec(r->hdrs[i].value);
		if (v < 0 || (len >= 0 && v != len))
			return vmm_err(-EPROTO, "HTTP response: bad Content-Length");
		len = v;
	}
	if (len < 0) {
		r->state = ST_BODY_EOF;
		return 0;
	}
	if ((uint64_t)len > r->max_body)
		return vmm_err(-EMSGSIZE, "HTTP response: body of %lld bytes is over the %zu limit",
			       (long long)len, r->max_body);
	r->remaining = (uint64_t)len;
	r->state = len ? ST_BODY_LEN : ST_DONE;
	return 0;
}

static int take_body(struct cli_http_resp *r, size_t n)
{
	if (n > r->max_body - r->body.len)
		return vmm_err(-EMSGSIZE, "HTTP response: body over the %zu byte limit",
			       r->max_body);
	int e = cli_buf_append(&r->body, r->raw.data + r->pos, n);
	if (e < 0)
		return vmm_errno(e, "HTTP response body");
	r->pos += n;
	return 0;
}

static int parse_chunk_size(struct cli_http_resp *r, const char *line)
{
	uint64_t v = 0;
	const char *s = line;
	for (; *s; s++) {
		int d;
		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			break;
		if (v >> 60)
			return vmm_err(-EPROTO, "HTTP response: chunk size overflows");
		v = v << 4 | (uint64_t)d;
	}
	if (s == line)
		return vmm_err(-EPROTO, "HTTP response: bad chunk size line");
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s && *s != ';')
		return vmm_err(-EPROTO, "HTTP response: bad chunk size line");
	if (v > r->max_body - r->body.len)
		return vmm_err(-EMSGSIZE, "HTTP response: body over the %zu byte limit",
			       r->max_body);
	r->remaining = v;
	r->state = v ? ST_CHUNK_DATA : ST_TRAILERS;
	return 0;
}

/* Advance as far as the buffered bytes allow. */
static int step(struct cli_http_resp *r)
{
	for (;;) {
		char *line;
		size_t len, avail = r->raw.len - r->pos;
		int e = 0;

		switch (r->state) {
		case ST_STATUS:
		case ST_HEADERS:
		case ST_TRAILERS: {
			size_t before = r->pos;
			e = next_line(r, &line, &len);
			r->head_bytes += r->pos - before;
			if (e == 0 && r->head_bytes + (r->raw.len - r->pos) > CLI_HTTP_MAX_HEAD)
				e = vmm_err(-EMSGSIZE, "HTTP response: head over %d bytes",
					    CLI_HTTP_MAX_HEAD);
			if (e <= 0)
				return e;
			if (r->head_bytes > CLI_HTTP_MAX_HEAD)
				return vmm_err(-EMSGSIZE, "HTTP response: head over %d bytes",
					       CLI_HTTP_MAX_HEAD);
			if (r->state == ST_TRAILERS) {
				if (len == 0)
					r->state = ST_DONE;
				continue;
			}
			if (r->state == ST_STATUS) {
				e = parse_status(r, line, len);
				r->state = ST_HEADERS;
			} else if (len) {
				e = parse_header(r, line, len);
			} else if (r->status < 200) { /* interim: the real one follows */
				if (r->status == 101)
					return vmm_err(-EPROTO, "HTTP response: unexpected upgrade");
				clear_head(r);
				r->state = ST_STATUS;
			} else {
				r->head_bytes = 0; /* trailers get their own budget */
				e = choose_framing(r);
			}
			if (e < 0)
				return e;
			continue;
		}
		case ST_BODY_LEN:
		case ST_CHUNK_DATA: {
			size_t n = avail < r->remaining ? avail : (size_t)r->remaining;
			if (n == 0)
				return 0;
			if ((e = take_body(r, n)) < 0)
				return e;
			r->remaining -= n;
			if (r->remaining == 0)
				r->state = r->state == ST_BODY_LEN ? ST_DONE : ST_CHUNK_END;
			continue;
		}
		case ST_BODY_EOF:
			if (avail == 0)
				return 0;
			if ((e = take_body(r, avail)) < 0)
				return e;
			continue;
		case ST_CHUNK_SIZE:
		case ST_CHUNK_END:
			e = next_line(r, &line, &len);
			if (e <= 0)
				return e;
			if (r->state == ST_CHUNK_END) {
				if (len != 0)
					return vmm_err(-EPROTO, "HTTP response: chunk not followed by CRLF");
				r->state = ST_CHUNK_SIZE;
				continue;
			}
			if ((e = parse_chunk_size(r, line)) < 0)
				return e;
			continue;
		case ST_DONE:
		default:
			return 1;
		}
	}
}

int cli_http_feed(struct cli_http_resp *r, const void *p, size_t n)
{
	if (r->state == ST_DONE)
		return 1;
	/* Drop what has been consumed before buffering more. */
	if (r->pos) {
		memmove(r->raw.data, r->raw.data + r->pos, r->raw.len - r->pos);
		r->raw.len -= r->pos;
		r->pos = 0;
	}
	int e = cli_buf_append(&r->raw, p, n);
	if (e < 0)
		return vmm_errno(e, "HTTP response");
	return step(r);
}

int cli_http_eof(struct cli_http_resp *r)
{
	int e = step(r);
	if (e != 0)
		return e;
	if (r->state == ST_BODY_EOF) {
		r->state = ST_DONE;
		return 1;
	}
	if (r->state == ST_STATUS && r->raw.len == r->pos && r->head_bytes == 0)
		return vmm_err(-ECONNRESET, "connection closed without a response");
	return vmm_err(-EPIPE, "connection closed before the response was complete");
}
