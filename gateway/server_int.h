/* server_int.h — the server's state, shared by server.c (listener, async
 * completions, graceful stop) and conn.c (one accepted connection each).
 * Loop thread only.
 */
#ifndef GW_SERVER_INT_H
#define GW_SERVER_INT_H

#include <stdbool.h>
#include <uv.h>

#include "gateway/core.h"
#include "gateway/server.h"

#define GW_READ_BUF (64 * 1024)

struct gw_conn;

struct gw_server {
	uv_loop_t *loop;
	struct gw_core core;
	uv_tcp_t listener;
	uv_async_t async;               /* completions from other threads */
	uv_timer_t stop_timer;          /* graceful stop deadline */
	int port;
	struct gw_conn *conns;          /* every open connection */
	unsigned nconns;
	bool listener_open;
	bool stop_started;
	bool finishing;                 /* closing async + timer, done cb next */
	unsigned closing_handles;
	void (*done)(struct gw_server *s, void *arg);
	void *done_arg;
	char rbuf[GW_READ_BUF];         /* shared: sessions copy what they keep */
};

/* conn.c */
void gw_conn_accept(struct gw_server *srv);
void gw_conn_stop(struct gw_conn *c);       /* graceful */
void gw_conn_abort(struct gw_conn *c);      /* at the stop deadline */
struct gw_conn *gw_conn_next(struct gw_conn *c);

/* server.c: a connection is gone (or a call finished) — stop may be done. */
void gw_server_check_done(struct gw_server *srv);

#endif
