/* session.c — per-connection HTTP/1.1 state machine (sans IO). */
#include "gateway/session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "gateway/api.h"
#include "gateway/call.h"
#include "gateway/parser.h"
#include "gateway/response.h"

#define IN_COMPACT_AT (64 * 1024)

struct gw_session {
	struct gw_core *core;
	const struct gw_session_io *io;
	void *io_arg;
	struct gw_parser *parser;
	struct gw_buf in;               /* bytes not parsed yet (pipelined requests) */
	size_t in_off;
	struct gw_buf out;
	struct gw_response resp;
	struct gw_call *call;           /* in flight, or NULL */
	enum gw_sess_phase phase;
	bool busy;                      /* a request is being served */
	bool closed;
	bool peer_eof;
	bool stop_after;                /* graceful stop: close after this response */
	bool pumping;
	size_t req_bytes;
};

static void set_phase(struct gw_session *s, enum gw_sess_phase ph)
{
	if (s->phase == ph || s->phase == GW_SP_CLOSED)
		return;
	s->phase = ph;
	s->io->phase(s->io_arg, ph);
}

static void send_out(struct gw_session *s)
{
	if (s->out.len == 0)
		return;
	s->io->send(s->io_arg, &s->out);
	gw_buf_reset(&s->out);
}

static void do_close(struct gw_session *s)
{
	if (s->closed)
		return;
	set_phase(s, GW_SP_CLOSED);
	s->closed = true;
	s->io->close(s->io_arg);
}

/* Write s->resp for the current request; close or get ready for the next. */
static void finish_response(struct gw_session *s)
{
	struct gw_request *req = gw_parser_request(s->parser);
	bool keep = req->keep_alive && !req->upgrade && !s->resp.close && !s->core->stopping &&
		    !s->stop_after && !s->peer_eof;

	gw_metrics_request(&s->core->metrics, req->match.route, req->method, s->resp.status,
			   uv_hrtime() - req->start_ns, s->req_bytes, s->resp.body.len);
	gw_response_write(&s->resp, keep, &s->out);
	gw_response_reset(&s->resp);
	send_out(s);
	s->busy = false;
	if (!keep) {
		do_close(s);
		return;
	}
	gw_parser_next(s->parser);
	set_phase(s, GW_SP_IDLE);
}

/* The request cannot be read further: answer, close. */
static void reject(struct gw_session *s, int status, const char *code, const char *msg)
{
	struct gw_request *req = gw_parser_request(s->parser);

	gw_response_reset(&s->resp);
	gw_response_error(&s->resp, status, code, "%s", msg);
	if (status == 405 && req->match.allow)
		gw_response_header(&s->resp, "Allow", "%s", req->match.allow);
	s->resp.close = true;
	if (req->start_ns == 0)
		req->start_ns = uv_hrtime();
	if (req->match.route == GW_ROUTE_NONE || status == 400 || status == 408 || status == 413 ||
	    status == 414 || status == 431)
		s->core->metrics.malformed++;
	s->req_bytes = req->body.len;
	finish_response(s);
}

static void dispatch(struct gw_session *s)
{
	struct gw_request *req = gw_parser_request(s->parser);

	s->busy = true;
	s->req_bytes = req->body.len;
	set_phase(s, GW_SP_BUSY);
	gw_response_reset(&s->resp);
	if (gw_api_serve(s->core, s, req, &s->resp) == 0)
		finish_response(s);
}

static void track_phase(struct gw_session *s)
{
	if (s->busy || s->closed)
		return;
	switch (gw_parser_phase(s->parser)) {
	case GW_PHASE_IDLE: set_phase(s, GW_SP_IDLE); break;
	case GW_PHASE_HEAD: set_phase(s, GW_SP_HEAD); break;
	case GW_PHASE_BODY: set_phase(s, GW_SP_BODY); break;
	case GW_PHASE_COMPLETE: break;
	}
}

/* Parse buffered input and serve what completes, one request at a time. */
static void pump(struct gw_session *s)
{
	if (s->pumping)
		return;
	s->pumping = true;
	while (!s->closed && !s->busy && s->in_off < s->in.len) {
		size_t used;
		enum gw_parse r = gw_parser_feed(s->parser, s->in.data + s->in_off,
						 s->in.len - s->in_off, &used);
		s->in_off += used;
		if (r == GW_PARSE_ERROR) {
			const char *code, *msg;
			int st = gw_parser_error(s->parser, &code, &msg);
			reject(s, st, code, msg);
		} else if (r == GW_PARSE_DONE) {
			dispatch(s);
		} else {
			break;
		}
	}
	if (s->in_off == s->in.len) {
		gw_buf_reset(&s->in);
		s->in_off = 0;
	} else if (s->in_off >= IN_COMPACT_AT) {
		gw_buf_consume(&s->in, s->in_off);
		s->in_off = 0;
	}
	track_phase(s);
	if (s->peer_eof && !s->busy && !s->closed && s->in_off == s->in.len) {
		if (gw_parser_eof(s->parser) == GW_PARSE_ERROR) {
			const char *code, *msg;
			int st = gw_parser_error(s->parser, &code, &msg);
			reject(s, st, code, msg);
		} else {
			do_close(s);
		}
	} else if (s->stop_after && !s->busy && !s->closed && gw_parser_phase(s->parser) == GW_PHASE_IDLE) {
		do_close(s);
	}
	s->pumping = false;
}

/* Headers hook: policy checks, then 100 Continue when a body is wanted. */
static int headers_done(void *arg, struct gw_request *req)
{
	struct gw_session *s = arg;
	int st = gw_api_precheck(s->core, req);
	if (st)
		return st;
	if (req->expect_continue && !req->early_status && (req->chunked || req->content_length > 0)) {
		gw_buf_puts(&s->out, "HTTP/1.1 100 Continue\r\n\r\n");
		send_out(s);
	}
	return 0;
}

int gw_session_new(struct gw_session **out, struct gw_core *core, const struct gw_session_io *io,
		   void *io_arg)
{
	struct gw_session *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->core = core;
	s->io = io;
	s->io_arg = io_arg;
	gw_buf_init(&s->in);
	gw_buf_init(&s->out);
	gw_response_init(&s->resp);
	int r = gw_parser_new(&s->parser, core->cfg.max_header_bytes, headers_done, s);
	if (r) {
		free(s);
		return r;
	}
	*out = s;
	return 0;
}

void gw_session_free(struct gw_session *s)
{
	if (!s)
		return;
	if (s->call)
		s->call->session = NULL;
	gw_parser_free(s->parser);
	gw_buf_free(&s->in);
	gw_buf_free(&s->out);
	gw_response_free(&s->resp);
	free(s);
}

void gw_session_feed(struct gw_session *s, const char *data, size_t len)
{
	if (s->closed || len == 0)
		return;
	gw_buf_append(&s->in, data, len);
	if (gw_buf_error(&s->in)) {
		do_close(s);
		return;
	}
	pump(s);
}

void gw_session_eof(struct gw_session *s)
{
	if (s->closed)
		return;
	s->peer_eof = true;
	pump(s);
}

void gw_session_timeout(struct gw_session *s)
{
	if (s->closed || s->busy)
		return;
	if (s->phase == GW_SP_HEAD || s->phase == GW_SP_BODY)
		reject(s, 408, "request_timeout", "the request was not received in time");
	else
		do_close(s);
}

void gw_session_stop(struct gw_session *s)
{
	s->stop_after = true;
	if (!s->closed && !s->busy && gw_parser_phase(s->parser) == GW_PHASE_IDLE && s->in_off == s->in.len)
		do_close(s);
}

void gw_session_refuse(struct gw_session *s, const char *why)
{
	if (s->closed)
		return;
	s->core->metrics.connections_refused++;
	gw_response_reset(&s->resp);
	gw_response_error(&s->resp, 503, "unavailable", "%s", why);
	gw_response_write(&s->resp, false, &s->out);
	send_out(s);
	do_close(s);
}

enum gw_sess_phase gw_session_phase(const struct gw_session *s)
{
	return s->phase;
}

void gw_session_attach(struct gw_session *s, struct gw_call *call)
{
	s->call = call;
	call->session = s;
}

void gw_session_call_done(struct gw_session *s, struct gw_call *call)
{
	if (s->call != call)
		return;
	s->call = NULL;
	call->session = NULL;
	if (s->closed)
		return;
	gw_response_free(&s->resp);
	s->resp = call->resp;                   /* take the response's memory */
	gw_response_init(&call->resp);
	finish_response(s);
	pump(s);
}
