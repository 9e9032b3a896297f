/* server.c — the agent's protocol server: a poll loop over the listener and
 * the open host connections (or over one already-connected stream, for
 * transports without a listener), dispatching decoded requests to the
 * handler (contracts in server.h, wire format in proto/README.md). */
#include "guest-agent/server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "proto/agent_msg.h"

_Static_assert(sizeof(((struct agent_reply *)0)->content_type) <= UF_AGENT_MAX_NAME + 1,
	       "a reply's content type must pass the decoder's limit");
_Static_assert(AGENT_REPLY_ERROR_MAX <= UF_AGENT_MAX_TEXT, "reply error over the wire limit");

#define READ_CHUNK (64u << 10)

struct conn {
	int fd;                  /* owned; -1 when the slot is free */
	uint64_t seq;            /* accept order, to evict the oldest */
	struct uf_frame_dec dec;
};

struct server {
	struct agent_server_opts o;
	int lfd;
	struct conn *conns;
	unsigned nconns;         /* slots in use are packed at the front */
	uint64_t next_seq;
	Ufagent__AgentState state;
	int shutdown;            /* -1, or the status to return */
	int end_rc;              /* why the last connection ended (serve_fd) */
	uint8_t *rbuf;
};

static void say(const struct server *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void say(const struct server *s, const char *fmt, ...)
{
	if (s->o.quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	fputs("agent: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void conn_close(struct server *s, unsigned i)
{
	close(s->conns[i].fd);
	uf_frame_dec_free(&s->conns[i].dec);
	s->conns[i] = s->conns[--s->nconns];
	s->conns[s->nconns].fd = -1;
}

/* Close connection i for a reason agent_server_serve_fd() reports. */
static void conn_end(struct server *s, unsigned i, int why)
{
	s->end_rc = why;
	conn_close(s, i);
}

/* Reply to a protocol violation and drop the connection. */
static void conn_fail(struct server *s, unsigned i, int rc, const char *what)
{
	Ufagent__ErrorCode code = uf_msg_errcode(rc);
	say(s, "closing connection: %s (%s)", what, uf_msg_errcode_name(code));
	(void)!uf_msg_send_error(s->conns[i].fd, s->o.io_timeout_ms, code, "%s", what);
	conn_end(s, i, -EPROTO);
}

_Static_assert((int)AGENT_HANDLER_FRESH == UFAGENT__AGENT_STATE__AGENT_STATE_FRESH &&
	       (int)AGENT_HANDLER_READY == UFAGENT__AGENT_STATE__AGENT_STATE_READY &&
	       (int)AGENT_HANDLER_FAILED == UFAGENT__AGENT_STATE__AGENT_STATE_FAILED,
	       "handler states are numbered as the protocol's AgentState");

/* The state Hello reports and Invoke checks: the handler's own when it
 * keeps one, else the server's; *runtime gets the name to report. */
static Ufagent__AgentState cur_state(const struct server *s, const char **runtime)
{
	const struct agent_handler *h = s->o.handler;
	if (!s->o.status) {
		*runtime = h->name;
		return s->state;
	}
	struct agent_handler_status st = { .runtime = h->name, .state = AGENT_HANDLER_FRESH };
	s->o.status(&st);
	*runtime = st.runtime ? st.runtime : h->name;
	return (Ufagent__AgentState)st.state;
}

static int send_hello(struct server *s, int fd)
{
	Ufagent__Hello h = UFAGENT__HELLO__INIT;
	const char *runtime;
	h.protocol_version = UF_AGENT_PROTO_VERSION;
	h.agent_build = (char *)s->o.build_id;
	h.state = cur_state(s, &runtime);
	h.runtime = (char *)runtime;
	uf_env env = UFAGENT__ENVELOPE__INIT;
	uf_msg_wrap(&env, UFAGENT__ENVELOPE__MSG_HELLO, &h);
	return uf_msg_send(fd, &env, s->o.io_timeout_ms);
}

/* ---- requests ---- */

static int do_init(struct server *s, int fd, const Ufagent__Init *m, const char **why)
{
	Ufagent__InitResult r = UFAGENT__INIT_RESULT__INIT;
	char err[UF_AGENT_MAX_TEXT] = "";
	const struct agent_handler *h = s->o.handler;

	if (s->o.status) {
		struct agent_handler_status st = { .runtime = h->name };
		s->o.status(&st);
		if (!st.accepts_init) {
			*why = "init: the function is already initialised";
			return -EPROTO;
		}
	} else if (h->init && s->state == UFAGENT__AGENT_STATE__AGENT_STATE_READY) {
		*why = "init: the function is already initialised";
		return -EPROTO;
	}
	r.ok = 1;
	if (h->init) {
		struct agent_env_kv *kv = calloc(m->n_env ? m->n_env : 1, sizeof *kv);
		if (!kv) {
			*why = "init: out of memory";
			return -ENOMEM;
		}
		for (size_t i = 0; i < m->n_env; i++)
			kv[i] = (struct agent_env_kv){ m->env[i]->key, m->env[i]->value };
		struct agent_init req = {
			.package = m->package.data, .package_len = m->package.len,
			.runtime = m->runtime ? m->runtime : "",
			.handler = m->handler ? m->handler : "",
			.env = kv, .n_env = m->n_env,
			.memory_mb = m->memory_mb, .timeout_ms = m->timeout_ms,
		};
		uint64_t t0 = mono_us();
		int rc = h->init(&req, err, sizeof err);
		r.duration_us = mono_us() - t0;
		free(kv);
		if (rc < 0) {
			r.ok = 0;
			if (!err[0])
				snprintf(err, sizeof err, "init failed: %s", strerror(-rc));
		}
		s->state = r.ok ? UFAGENT__AGENT_STATE__AGENT_STATE_READY
				: UFAGENT__AGENT_STATE__AGENT_STATE_FAILED;
	}
	r.error = err;
	uf_env env = UFAGENT__ENVELOPE__INIT;
	uf_msg_wrap(&env, UFAGENT__ENVELOPE__MSG_INIT_RESULT, &r);
	return uf_msg_send(fd, &env, s->o.io_timeout_ms);
}

/* Build and send the Result; a reply too big for a frame becomes a 500. */
static int send_result(struct server *s, int fd, const char *call_id, struct agent_reply *rep,
		       uint64_t handler_us)
{
	Ufagent__Result r = UFAGENT__RESULT__INIT;
	r.call_id = (char *)call_id;
	r.status = rep->status;
	r.body.data = rep->body;
	r.body.len = rep->body_len;
	r.logs.data = rep->logs;
	r.logs.len = rep->logs_len;
	if (r.logs.len > UF_AGENT_MAX_LOGS) { /* keep the tail: the end says why */
		r.logs.data += r.logs.len - UF_AGENT_MAX_LOGS;
		r.logs.len = UF_AGENT_MAX_LOGS;
	}
	rep->content_type[sizeof rep->content_type - 1] = '\0';
	rep->error[sizeof rep->error - 1] = '\0';
	r.content_type = rep->content_type;
	r.error = rep->error;
	r.handler_us = handler_us;
	if (r.status < 100 || r.status > 599) {
		snprintf(rep->error, sizeof rep->error, "handler returned invalid status %u", r.status);
		r.status = 500;
	}

	uf_env env = UFAGENT__ENVELOPE__INIT;
	uf_msg_wrap(&env, UFAGENT__ENVELOPE__MSG_RESULT, &r);
	struct uf_frame f;
	int rc = uf_msg_pack(&env, &f);
	if (rc == -EMSGSIZE) {
		snprintf(rep->error, sizeof rep->error, "result over the %u-byte frame limit",
			 UF_FRAME_MAX);
		r.status = 500;
		r.body.len = 0;
		r.logs.len = 0;
		rc = uf_msg_pack(&env, &f);
	}
	if (rc < 0)
		return rc;
	rc = uf_frame_write(fd, f.data, f.len, s->o.io_timeout_ms);
	uf_frame_free(&f);
	return rc;
}

static int do_invoke(struct server *s, int fd, const Ufagent__Invoke *m, const char **why)
{
	const char *runtime;
	if (cur_state(s, &runtime) != UFAGENT__AGENT_STATE__AGENT_STATE_READY) {
		*why = "invoke before a successful init";
		return -EAGAIN;
	}
	struct agent_call call = {
		.call_id = m->call_id ? m->call_id : "",
		.event = m->event.len ? m->event.data : NULL,
		.len = m->event.len,
		.content_type = m->content_type ? m->content_type : "",
		.deadline_ms = m->deadline_ms,
	};
	struct agent_reply rep = { .status = 200 };
	uint64_t t0 = mono_us();
	int rc = s->o.handler->invoke(&call, &rep);
	uint64_t dt = mono_us() - t0;
	if (rc < 0) {
		rep.status = 502;
		if (!rep.error[0])
			snprintf(rep.error, sizeof rep.error, "handler failed: %s", strerror(-rc));
		rep.body_len = 0; /* a failed handler's body is not trusted to be whole */
	} else if (!rep.body) {
		rep.body_len = 0;
	}
	if (!rep.logs)
		rep.logs_len = 0;
	rc = send_result(s, fd, call.call_id, &rep, dt);
	free(rep.body);
	free(rep.logs);
	return rc;
}

static int do_fixup(struct server *s, int fd, const Ufagent__Fixup *m)
{
	const struct agent_fixup_ops *ops = s->o.fixup;
	Ufagent__FixupAck ack = UFAGENT__FIXUP_ACK__INIT;

	/* Independent steps: a failed one does not skip the next. */
	ack.entropy_errno = -ops->add_entropy(ops->ctx, m->entropy.data, m->entropy.len);
	ack.reseed_errno = -ops->reseed(ops->ctx);
	ack.clock_errno = -ops->set_clock(ops->ctx, m->realtime_ns);
	if (s->o.after_fixup)
		ack.runtime_errno = -s->o.after_fixup();
	ack.ok = !ack.entropy_errno && !ack.reseed_errno && !ack.clock_errno && !ack.runtime_errno;
	if (!ack.ok)
		say(s, "fixup: entropy %d, reseed %d, clock %d, runtime %d", ack.entropy_errno,
		    ack.reseed_errno, ack.clock_errno, ack.runtime_errno);
	uf_env env = UFAGENT__ENVELOPE__INIT;
	uf_msg_wrap(&env, UFAGENT__ENVELOPE__MSG_FIXUP_ACK, &ack);
	return uf_msg_send(fd, &env, s->o.io_timeout_ms);
}

static int do_ping(struct server *s, int fd, const Ufagent__Ping *m)
{
	Ufagent__Pong p = UFAGENT__PONG__INIT;
	p.nonce = m->nonce;
	uf_env env = UFAGENT__ENVELOPE__INIT;
	uf_msg_wrap(&env, UFAGENT__ENVELOPE__MSG_PONG, &p);
	return uf_msg_send(fd, &env, s->o.io_timeout_ms);
}

/* Handle one frame of connection i.  Returns 0 to keep the connection, or
 * <0 after it was closed. */
static int handle_frame(struct server *s, unsigned i, const struct uf_frame *f)
{
	int fd = s->conns[i].fd;
	uf_env *env;
	uint32_t ver;
	char why[96];
	const char *reason = NULL;
	int rc = uf_msg_decode(f->data, f->len, &env, &ver);

	if (rc < 0) {
		if (rc == -EPROTONOSUPPORT)
			snprintf(why, sizeof why, "protocol version %u, agent speaks %u", ver,
				 UF_AGENT_PROTO_VERSION);
		else
			snprintf(why, sizeof why, "undecodable frame (%s)", strerror(-rc));
		conn_fail(s, i, rc, why);
		return rc;
	}
	switch (env->msg_case) {
	case UFAGENT__ENVELOPE__MSG_INIT:
		rc = do_init(s, fd, env->init, &reason);
		break;
	case UFAGENT__ENVELOPE__MSG_INVOKE:
		rc = do_invoke(s, fd, env->invoke, &reason);
		break;
	case UFAGENT__ENVELOPE__MSG_FIXUP:
		rc = do_fixup(s, fd, env->fixup);
		break;
	case UFAGENT__ENVELOPE__MSG_PING:
		rc = do_ping(s, fd, env->ping);
		break;
	case UFAGENT__ENVELOPE__MSG_SHUTDOWN:
		s->shutdown = (int)env->shutdown->status;
		rc = 0;
		break;
	case UFAGENT__ENVELOPE__MSG_ERROR:
		say(s, "host reported %s: %.200s", uf_msg_errcode_name(env->error->code),
		    env->error->message);
		conn_end(s, i, -ECONNABORTED);
		rc = -ECONNABORTED;
		break;
	default: /* hello, results and acks travel agent -> host only */
		snprintf(why, sizeof why, "unexpected %s from host", uf_msg_type_name(env->msg_case));
		reason = why;
		rc = -EPROTO;
		break;
	}
	uf_msg_free(env);
	if (rc == -ECONNABORTED)
		return rc;
	if (reason) {  /* the request broke the protocol: tell the host */
		conn_fail(s, i, rc, reason);
		return rc;
	}
	if (rc < 0) {  /* the reply could not be sent: the host is gone */
		say(s, "closing connection: reply failed: %s", strerror(-rc));
		conn_end(s, i, rc);
	}
	return rc;
}

/* Read what connection i has and serve every complete frame in it. */
static void conn_readable(struct server *s, unsigned i)
{
	ssize_t n = read(s->conns[i].fd, s->rbuf, READ_CHUNK);
	if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		int why = n < 0 ? -errno : UF_FRAME_CLOSED;
		if (n == 0 && uf_frame_dec_eof(&s->conns[i].dec) < 0) {
			say(s, "host closed the connection mid-frame");
			why = -EPIPE;
		} else if (n < 0) {
			say(s, "closing connection: read: %s", strerror(errno));
		}
		conn_end(s, i, why);
		return;
	}
	for (size_t off = 0; off < (size_t)n && s->shutdown < 0;) {
		size_t used;
		int rc = uf_frame_dec_feed(&s->conns[i].dec, s->rbuf + off, (size_t)n - off, &used);
		off += used;
		if (rc < 0) {
			conn_fail(s, i, rc, rc == -EMSGSIZE ? "frame length over the limit"
							    : "cannot buffer frame");
			return;
		}
		if (rc == 0)
			continue;
		struct uf_frame f;
		if (uf_frame_dec_take(&s->conns[i].dec, &f) < 0)
			continue; /* cannot happen after rc == 1 */
		rc = handle_frame(s, i, &f);
		uf_frame_free(&f);
		if (rc < 0)
			return;
	}
}

/* The connection accepted first: after a clone, the one left over from
 * before the snapshot, which no host will use again. */
static unsigned oldest(const struct server *s)
{
	unsigned old = 0;
	for (unsigned i = 1; i < s->nconns; i++)
		if (s->conns[i].seq < s->conns[old].seq)
			old = i;
	return old;
}

static int accept_one(struct server *s)
{
	int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		int err = errno;
		if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)
			return 0;
		if (err == ECONNABORTED || err == EMFILE || err == ENFILE ||
		    err == ENOBUFS || err == ENOMEM) {
			say(s, "accept: %s", strerror(err));
			if (err != ECONNABORTED && s->nconns > 0)
				conn_close(s, oldest(s)); /* free an fd so the listener drains */
			return 0;
		}
		return -err;
	}
	if (s->nconns == s->o.max_conns) { /* evict the oldest: likely stale */
		say(s, "too many connections: closing the oldest");
		conn_close(s, oldest(s));
	}
	int rc = send_hello(s, fd);
	if (rc < 0) {
		say(s, "hello: %s", strerror(-rc));
		close(fd);
		return 0;
	}
	struct conn *c = &s->conns[s->nconns++];
	c->fd = fd;
	c->seq = s->next_seq++;
	uf_frame_dec_init(&c->dec, UF_FRAME_MAX);
	return 1;
}

int agent_vsock_listen(uint32_t port)
{
	struct sockaddr_vm addr = {
		.svm_family = AF_VSOCK,
		.svm_cid = VMADDR_CID_ANY,
		.svm_port = port,
	};
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 16) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

int agent_server_run(int listen_fd, const struct agent_handler *h)
{
	struct agent_server_opts o = { .handler = h };
	return agent_server_run_opts(listen_fd, &o);
}

/* Check the options and fill in the defaults: 0 or -EINVAL. */
static int server_setup(struct server *s, int fd, const struct agent_server_opts *opts)
{
	if (fd < 0 || !opts || !opts->handler || !opts->handler->invoke || !opts->handler->name)
		return -EINVAL;
	*s = (struct server){ .o = *opts, .lfd = -1, .shutdown = -1 };
	if (!s->o.fixup)
		s->o.fixup = &agent_fixup_system;
	if (!s->o.build_id)
		s->o.build_id = AGENT_BUILD_ID;
	if (!s->o.max_conns)
		s->o.max_conns = AGENT_SERVER_MAX_CONNS;
	if (!s->o.io_timeout_ms)
		s->o.io_timeout_ms = AGENT_SERVER_IO_TIMEOUT;
	s->state = s->o.handler->init ? UFAGENT__AGENT_STATE__AGENT_STATE_FRESH
				      : UFAGENT__AGENT_STATE__AGENT_STATE_READY;
	return 0;
}

int agent_server_run_opts(int listen_fd, const struct agent_server_opts *opts)
{
	struct server s;
	struct pollfd *pfds = NULL;
	int rc = server_setup(&s, listen_fd, opts);

	if (rc < 0)
		return rc;
	s.lfd = listen_fd;

	int fl = fcntl(listen_fd, F_GETFL);
	if (fl < 0 || fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	s.conns = calloc(s.o.max_conns, sizeof *s.conns);
	pfds = calloc(s.o.max_conns + 1, sizeof *pfds);
	s.rbuf = malloc(READ_CHUNK);
	if (!s.conns || !pfds || !s.rbuf) {
		rc = -ENOMEM;
		goto out_free;
	}

	while (s.shutdown < 0) {
		unsigned n = s.nconns;
		pfds[0] = (struct pollfd){ .fd = listen_fd, .events = POLLIN };
		for (unsigned i = 0; i < n; i++)
			pfds[i + 1] = (struct pollfd){ .fd = s.conns[i].fd, .events = POLLIN };
		if (poll(pfds, n + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			say(&s, "poll: %s", strerror(errno));
			break;
		}
		/* Connections first (closing one reorders the array: walk the poll
		 * set backwards and find each fd again). */
		for (unsigned k = n; k > 0 && s.shutdown < 0; k--) {
			if (!pfds[k].revents)
				continue;
			for (unsigned i = 0; i < s.nconns; i++)
				if (s.conns[i].fd == pfds[k].fd) {
					conn_readable(&s, i);
					break;
				}
		}
		if (s.shutdown < 0 && (pfds[0].revents & (POLLIN | POLLERR | POLLHUP))) {
			rc = accept_one(&s);
			if (rc < 0) {
				say(&s, "accept: %s", strerror(-rc));
				break;
			}
			rc = 0;
		}
	}
	if (s.shutdown >= 0)
		rc = s.shutdown;

out_free:
	while (s.nconns)
		conn_close(&s, s.nconns - 1);
	free(s.rbuf);
	free(pfds);
	free(s.conns);
	return rc;
}

int agent_server_serve_fd(int fd, const struct agent_server_opts *opts)
{
	struct server s;
	int rc = server_setup(&s, fd, opts);

	if (rc < 0)
		return rc;
	s.o.max_conns = 1;
	s.conns = calloc(1, sizeof *s.conns);
	s.rbuf = malloc(READ_CHUNK);
	if (!s.conns || !s.rbuf) {
		rc = -ENOMEM;
		goto out_free;
	}
	/* The server closes a connection it gives up on; the caller owns fd,
	 * so the server works on (and closes) a duplicate of it. */
	int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dfd < 0) {
		rc = -errno;
		goto out_free;
	}
	rc = send_hello(&s, dfd);
	if (rc < 0) {
		say(&s, "hello: %s", strerror(-rc));
		close(dfd);
		goto out_free;
	}
	s.conns[0] = (struct conn){ .fd = dfd, .seq = s.next_seq++ };
	uf_frame_dec_init(&s.conns[0].dec, UF_FRAME_MAX);
	s.nconns = 1;

	while (s.shutdown < 0 && s.nconns == 1) {
		struct pollfd pfd = { .fd = dfd, .events = POLLIN };
		if (poll(&pfd, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			say(&s, "poll: %s", strerror(errno));
			break;
		}
		conn_readable(&s, 0);
	}
	if (s.shutdown >= 0)
		rc = s.shutdown;
	else if (s.nconns == 0)
		rc = s.end_rc;

out_free:
	while (s.nconns)
		conn_close(&s, s.nconns - 1);
	free(s.rbuf);
	free(s.conns);
	return rc;
}
