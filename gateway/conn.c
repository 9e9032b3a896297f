/* conn.c — one TCP connection on the loop: reads into its session, writes
 * what the session sends, the phase timers, backpressure and the lingering
 * close after an error response. */
#include "gateway/server_int.h"

#include <stdio.h>
#include <stdlib.h>

#include "gateway/session.h"

#define LINGER_MS        2000           /* drain unread input before closing */
#define FLUSH_MS         10000          /* a peer that does not take the last response */
#define WRITE_HIGH_WATER (1024 * 1024)  /* stop reading while this much is queued */

struct gw_conn {
	struct gw_conn *prev, *next;
	struct gw_server *srv;
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_shutdown_t shut;
	struct gw_session *sess;
	enum gw_sess_phase phase;
	bool reading;
	bool closing;                   /* the session is done: flush, shut down, linger */
	bool shut_started;
	bool eof;                       /* the peer closed its side */
	bool handles_closing;           /* uv_close called */
	int open_handles;
	size_t queued;                  /* bytes handed to uv_write, not yet written */
};

struct gw_write {
	uv_write_t req;
	struct gw_conn *c;
	char *data;
	size_t len;
};

static void on_handle_closed(uv_handle_t *h)
{
	struct gw_conn *c = h->data;
	if (--c->open_handles > 0)
		return;
	struct gw_server *srv = c->srv;
	gw_session_free(c->sess);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->nconns--;
	srv->core.metrics.connections_active--;
	free(c);
	gw_server_check_done(srv);
}

static void close_handles(struct gw_conn *c)
{
	if (c->handles_closing)
		return;
	c->handles_closing = true;
	uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct gw_conn *c = h->data;
	*buf = uv_buf_init(c->srv->rbuf, sizeof(c->srv->rbuf));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);

static void want_read(struct gw_conn *c, bool on)
{
	if (c->handles_closing)
		return;
	if (on && !c->reading) {
		if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
			c->reading = true;
	} else if (!on && c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	}
}

/* Read when the session wants input, or when lingering, and the peer is
 * not being sent more than WRITE_HIGH_WATER it has not taken yet. */
static void update_reading(struct gw_conn *c)
{
	bool session_reads = c->phase == GW_SP_IDLE || c->phase == GW_SP_HEAD || c->phase == GW_SP_BODY;
	want_read(c, c->shut_started || (session_reads && !c->closing && c->queued < WRITE_HIGH_WATER));
}

static void on_timer(uv_timer_t *t)
{
	struct gw_conn *c = t->data;
	if (c->closing)
		close_handles(c);               /* flush or linger over */
	else
		gw_session_timeout(c->sess);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct gw_conn *c = req->data;
	if (status < 0 || c->handles_closing || c->eof) {
		close_handles(c);
		return;
	}
	/* Lingering close: read and drop what the peer still sends for a
	 * while, so that unread input does not turn our close into a reset
	 * that destroys the response in flight. */
	uv_timer_start(&c->timer, on_timer, LINGER_MS, 0);
	update_reading(c);
}

static void start_shutdown(struct gw_conn *c)
{
	if (c->shut_started || c->handles_closing)
		return;
	c->shut_started = true;
	c->shut.data = c;
	if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) < 0)
		close_handles(c);
}

static void on_write(uv_write_t *req, int status)
{
	struct gw_write *w = (struct gw_write *)req;
	struct gw_conn *c = w->c;

	c->queued -= w->len;
	free(w->data);
	free(w);
	if (c->handles_closing)
		return;
	if (status < 0) {
		close_handles(c);
		return;
	}
	if (c->closing && c->queued == 0)
		start_shutdown(c);
	else
		update_reading(c);
}

static void io_send(void *io, struct gw_buf *data)
{
	struct gw_conn *c = io;
	if (c->handles_closing || data->len == 0)
		return;
	struct gw_write *w = malloc(sizeof(*w));
	if (!w) {
		close_handles(c);
		return;
	}
	w->c = c;
	w->data = data->data;           /* take the bytes */
	w->len = data->len;
	gw_buf_init(data);
	uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
	c->queued += w->len;
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
		c->queued -= w->len;
		free(w->data);
		free(w);
		close_handles(c);
		return;
	}
	update_reading(c);
}

static void io_close(void *io)
{
	struct gw_conn *c = io;
	c->closing = true;
	uv_timer_start(&c->timer, on_timer, FLUSH_MS, 0);
	want_read(c, false);
	if (c->queued == 0)
		start_shutdown(c);
}

static void io_phase(void *io, enum gw_sess_phase ph)
{
	struct gw_conn *c = io;
	const struct gw_config *cfg = &c->srv->core.cfg;

	c->phase = ph;
	if (c->handles_closing || c->closing)
		return;
	switch (ph) {
	case GW_SP_IDLE:
		uv_timer_start(&c->timer, on_timer, cfg->idle_timeout_ms, 0);
		break;
	case GW_SP_HEAD:
		uv_timer_start(&c->timer, on_timer, cfg->header_timeout_ms, 0);
		break;
	case GW_SP_BODY:
		uv_timer_start(&c->timer, on_timer, cfg->body_timeout_ms, 0);
		break;
	case GW_SP_BUSY:
	case GW_SP_CLOSED:
		uv_timer_stop(&c->timer);
		break;
	}
	update_reading(c);
}

static const struct gw_session_io conn_io = {
	.send = io_send,
	.close = io_close,
	.phase = io_phase,
};

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct gw_conn *c = st->data;

	if (n == 0)
		return;
	if (n < 0) {
		want_read(c, false);
		c->eof = n == UV_EOF;
		if (n == UV_EOF && !c->closing)
			gw_session_eof(c->sess);        /* may still answer, then close */
		else
			close_handles(c);
		return;
	}
	if (c->closing)
		return;                         /* lingering: dropped */
	gw_session_feed(c->sess, buf->base, (size_t)n);
}

void gw_conn_accept(struct gw_server *srv)
{
	struct gw_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->srv = srv;
	if (uv_tcp_init(srv->loop, &c->tcp) < 0) {
		free(c);
		return;
	}
	c->tcp.data = c;
	c->open_handles = 1;
	/* Linked before anything can fail: on_handle_closed unlinks. */
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->nconns++;
	srv->core.metrics.connections_active++;
	if (uv_timer_init(srv->loop, &c->timer) < 0) {
		c->handles_closing = true;
		uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
		return;
	}
	c->timer.data = c;
	c->open_handles = 2;
	if (uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)&c->tcp) < 0 ||
	    gw_session_new(&c->sess, &srv->core, &conn_io, c) < 0) {
		close_handles(c);
		return;
	}
	srv->core.metrics.connections_total++;
	uv_tcp_nodelay(&c->tcp, 1);
	if (srv->nconns > srv->core.cfg.max_connections) {
		gw_session_refuse(c->sess, "too many connections");
		return;
	}
	io_phase(c, GW_SP_IDLE);
}

void gw_conn_stop(struct gw_conn *c)
{
	if (!c->closing && !c->handles_closing)
		gw_session_stop(c->sess);
}

void gw_conn_abort(struct gw_conn *c)
{
	close_handles(c);
}

struct gw_conn *gw_conn_next(struct gw_conn *c)
{
	return c->next;
}
