/* session.h — one HTTP connection's protocol state, without sockets.
 *
 * The session takes the connection's input bytes, parses one request at a
 * time (pipelined requests wait, unparsed, until the previous response is
 * out), serves it through gateway/api.c, and hands the response bytes to its
 * IO layer.  It decides keep-alive vs close, answers malformed input
 * (400/408/413/414/431, then close), sends 100 Continue, and tells the IO
 * layer which phase it is in so that the IO layer can arm the matching
 * timer and start/stop reading.
 *
 * Ownership: the IO layer (gateway/conn.c, or the fuzz target) creates the
 * session, owns it and frees it with gw_session_free() after the session
 * asked it to close (or at any time, e.g. on a socket error); a backend call
 * still in flight is then detached and its result dropped.  All calls on
 * the loop thread.
 */
#ifndef GW_SESSION_H
#define GW_SESSION_H

#include <stddef.h>

#include "gateway/buf.h"
#include "gateway/core.h"

struct gw_call;
struct gw_session;

enum gw_sess_phase {
	GW_SP_IDLE = 0,         /* waiting for a request: idle timeout, reading */
	GW_SP_HEAD,             /* request line/headers arriving: header timeout, reading */
	GW_SP_BODY,             /* body arriving: body timeout, reading */
	GW_SP_BUSY,             /* request being served: no timer, not reading */
	GW_SP_CLOSED,           /* close requested: read nothing more */
};

struct gw_session_io {
	/* Take the bytes in `data` (the IO layer may steal data->data and
	 * re-init the buffer, or copy). */
	void (*send)(void *io, struct gw_buf *data);
	/* No more output: close once what was sent is flushed, then free the
	 * session.  Called once. */
	void (*close)(void *io);
	/* The phase changed (see enum gw_sess_phase). */
	void (*phase)(void *io, enum gw_sess_phase phase);
};

int gw_session_new(struct gw_session **out, struct gw_core *core, const struct gw_session_io *io,
		   void *io_arg) __attribute__((warn_unused_result));
void gw_session_free(struct gw_session *s);

/* Bytes arrived. */
void gw_session_feed(struct gw_session *s, const char *data, size_t len);
/* The peer closed its sending side. */
void gw_session_eof(struct gw_session *s);
/* The timer of the current phase fired: 408 (head/body) or close (idle). */
void gw_session_timeout(struct gw_session *s);
/* Graceful stop: close now if idle, else after the current response. */
void gw_session_stop(struct gw_session *s);
/* Answer 503 and close (over max_connections). */
void gw_session_refuse(struct gw_session *s, const char *why);
enum gw_sess_phase gw_session_phase(const struct gw_session *s);

/* Used by gateway/api.c and gateway/call.c. */
void gw_session_attach(struct gw_session *s, struct gw_call *call);
void gw_session_call_done(struct gw_session *s, struct gw_call *call);

#endif
