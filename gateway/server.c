/* server.c — the listener, completions from other threads, graceful stop. */
#include "gateway/server_int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/call.h"
#include "vmm/err.h"

/* "host:port" or "[v6]:port" into a socket address. */
static int parse_listen(const char *s, struct sockaddr_storage *ss)
{
	char host[256];
	const char *colon;
	const char *h = s;
	size_t hlen;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = 0;
	char *end;
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port < 0 || port > 65535)
		return -EINVAL;
	if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0)
		return 0;
	if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0)
		return 0;
	return -EINVAL;
}

static void on_connection(uv_stream_t *l, int status)
{
	struct gw_server *srv = l->data;
	if (status < 0 || srv->stop_started)
		return;
	gw_conn_accept(srv);
}

static void wake(void *arg)
{
	uv_async_send(arg);
}

static void on_async(uv_async_t *a)
{
	struct gw_server *srv = a->data;
	gw_calls_drain(&srv->core);
	gw_server_check_done(srv);
}

static void on_finish_closed(uv_handle_t *h)
{
	struct gw_server *srv = h->data;
	if (--srv->closing_handles == 0 && srv->done)
		srv->done(srv, srv->done_arg);
}

static void on_failed_listener_closed(uv_handle_t *h)
{
	struct gw_server *srv = h->data;
	gw_core_fini(&srv->core);
	free(srv);
}

static void on_listener_closed(uv_handle_t *h)
{
	struct gw_server *srv = h->data;
	srv->listener_open = false;
	gw_server_check_done(srv);
}

void gw_server_check_done(struct gw_server *srv)
{
	if (!srv->stop_started || srv->finishing || srv->listener_open || srv->nconns ||
	    srv->core.calls_pending)
		return;
	srv->finishing = true;
	srv->closing_handles = 2;
	uv_close((uv_handle_t *)&srv->async, on_finish_closed);
	uv_close((uv_handle_t *)&srv->stop_timer, on_finish_closed);
}

static void on_stop_deadline(uv_timer_t *t)
{
	struct gw_server *srv = t->data;
	for (struct gw_conn *c = srv->conns; c; c = gw_conn_next(c))
		gw_conn_abort(c);
}

int gw_server_start(uv_loop_t *loop, const struct gw_config *cfg, const struct gw_ops *ops,
		    void *ctx, struct gw_server **out)
{
	struct sockaddr_storage ss;
	struct gw_server *srv = calloc(1, sizeof(*srv));
	int r;

	if (!srv)
		return vmm_err(-ENOMEM, "gateway: out of memory");
	srv->loop = loop;
	r = gw_core_init(&srv->core, cfg, ops, ctx);
	if (r) {
		free(srv);
		return vmm_errno(r, "gateway: init");
	}
	r = parse_listen(srv->core.cfg.listen, &ss);
	if (r) {
		vmm_err(r, "gateway: bad listen address '%s' (want host:port or [v6]:port)",
			srv->core.cfg.listen);
		goto err_core;
	}
	/* A peer that goes away mid-response must not kill the daemon. */
	struct sigaction sa;
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);

	if ((r = uv_tcp_init(loop, &srv->listener)) < 0) {
		vmm_err(r, "gateway: uv_tcp_init: %s", uv_strerror(r));
		goto err_core;
	}
	srv->listener.data = srv;
	srv->listener_open = true;
	if ((r = uv_tcp_bind(&srv->listener, (struct sockaddr *)&ss, 0)) < 0 ||
	    (r = uv_listen((uv_stream_t *)&srv->listener, 511, on_connection)) < 0) {
		vmm_err(r, "gateway: listen on %s: %s", srv->core.cfg.listen, uv_strerror(r));
		goto err_listener;
	}
	struct sockaddr_storage bound;
	int blen = sizeof(bound);
	if ((r = uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &blen)) < 0) {
		vmm_err(r, "gateway: getsockname: %s", uv_strerror(r));
		goto err_listener;
	}
	srv->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
						      : ((struct sockaddr_in *)&bound)->sin_port);
	if ((r = uv_async_init(loop, &srv->async, on_async)) < 0) {
		vmm_err(r, "gateway: uv_async_init: %s", uv_strerror(r));
		goto err_listener;
	}
	srv->async.data = srv;
	uv_timer_init(loop, &srv->stop_timer);
	srv->stop_timer.data = srv;
	srv->core.wake = wake;
	srv->core.wake_arg = &srv->async;
	*out = srv;
	return 0;

err_listener:
	/* The handle's memory must live until its close callback: the server
	 * is freed there, on the loop's next turn. */
	uv_close((uv_handle_t *)&srv->listener, on_failed_listener_closed);
	return r;
err_core:
	gw_core_fini(&srv->core);
	free(srv);
	return r;
}

int gw_server_port(const struct gw_server *s)
{
	return s->port;
}

void gw_server_stop(struct gw_server *srv, unsigned deadline_ms,
		    void (*done)(struct gw_server *s, void *arg), void *arg)
{
	if (srv->stop_started)
		return;
	srv->stop_started = true;
	srv->core.stopping = true;
	srv->done = done;
	srv->done_arg = arg;
	uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
	for (struct gw_conn *c = srv->conns, *next; c; c = next) {
		next = gw_conn_next(c);
		gw_conn_stop(c);
	}
	uv_timer_start(&srv->stop_timer, on_stop_deadline, deadline_ms, 0);
	gw_server_check_done(srv);
}

void gw_server_free(struct gw_server *s)
{
	if (!s)
		return;
	gw_core_fini(&s->core);
	free(s);
}
