/* test_agent_server.c — the guest agent's protocol server driven through the
 * host client over AF_UNIX: hello, invokes, ping, fixup (with injected
 * effects), init states, protocol violations, disconnects, concurrency and
 * shutdown; and agent_server_serve_fd() over one end of a socketpair (the
 * shape of the virtio-serial transport).  The server runs in a forked child
 * per test. */
#include "tests/unit/ut.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest-agent/server.h"
#include "proto/agent_client.h"

#define TMO 10000

static struct sockaddr_un srv_addr;
static socklen_t srv_len;
static pid_t srv_pid;

/* ---- fakes and a handler with an init step ---- */

static uint8_t fx_pattern(size_t i) { return (uint8_t)(i * 7 + 3); }

static int fake_entropy(void *ctx, const uint8_t *b, size_t n)
{
	if (n != 48)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (b[i] != fx_pattern(i))
			return -EBADE;
	return 0;
}
static int fake_reseed(void *ctx) { return -EPERM; }
static int fake_clock(void *ctx, int64_t ns) { return ns == 1234567890123456789ll ? 0 : -ERANGE; }
static const struct agent_fixup_ops fake_fixup = { fake_entropy, fake_reseed, fake_clock, NULL };

static int t_init(const struct agent_init *req, char *err, size_t len)
{
	if (strcmp(req->runtime, "bad") == 0) {
		snprintf(err, len, "cannot load %s", req->handler);
		return -ENOENT;
	}
	if (req->n_env != 1 || strcmp(req->env[0].key, "A") || strcmp(req->env[0].value, "b=c"))
		return -EINVAL;
	return 0;
}

static int t_invoke(const struct agent_call *c, struct agent_reply *out)
{
	if (c->len == 4 && memcmp(c->event, "fail", 4) == 0)
		return -EIO;
	if (c->len == 5 && memcmp(c->event, "badst", 5) == 0) {
		out->status = 42;
		return 0;
	}
	if (c->len == 4 && memcmp(c->event, "huge", 4) == 0) {
		out->body = calloc(1, UF_FRAME_MAX + 1);
		out->body_len = UF_FRAME_MAX + 1;
		return 0;
	}
	if (c->len == 4 && memcmp(c->event, "logs", 4) == 0) {
		out->logs_len = 100000;
		out->logs = malloc(out->logs_len);
		for (size_t i = 0; i < out->logs_len; i++)
			out->logs[i] = (uint8_t)('a' + i % 26);
	}
	out->status = 201;
	out->body = malloc(3 + c->len);
	memcpy(out->body, "ok:", 3);
	if (c->len)
		memcpy(out->body + 3, c->event, c->len);
	out->body_len = 3 + c->len;
	return 0;
}

static const struct agent_handler t_handler = { "test", t_init, t_invoke };

/* ---- harness ---- */

static void start_opts(const struct agent_handler *h, unsigned max_conns)
{
	static int n;
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	UT_ASSERT(lfd >= 0);
	memset(&srv_addr, 0, sizeof srv_addr);
	srv_addr.sun_family = AF_UNIX;
	/* abstract namespace: nothing to clean up on disk */
	int k = snprintf(srv_addr.sun_path + 1, sizeof srv_addr.sun_path - 1, "uf-agent-test-%d-%d",
			 (int)getpid(), n++);
	srv_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)k);
	UT_ASSERT(bind(lfd, (struct sockaddr *)&srv_addr, srv_len) == 0);
	UT_ASSERT(listen(lfd, 16) == 0);
	fflush(NULL);
	srv_pid = fork();
	UT_ASSERT(srv_pid >= 0);
	if (srv_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		struct agent_server_opts o = {
			.handler = h, .fixup = &fake_fixup, .build_id = "test-build",
			.max_conns = max_conns, .io_timeout_ms = TMO, .quiet = 1,
		};
		int rc = agent_server_run_opts(lfd, &o);
		close(lfd);
		exit(rc < 0 ? 100 : rc); /* exit, not _exit: LeakSanitizer runs */
	}
	close(lfd);
}

static void start(void) { start_opts(&agent_handler_echo, 0); }

static int dial(void)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	UT_ASSERT(fd >= 0);
	UT_ASSERT(connect(fd, (struct sockaddr *)&srv_addr, srv_len) == 0);
	return fd;
}

/* Connect and consume the Hello. */
static int dial_hello(void)
{
	struct agent_hello h;
	int fd = dial();
	UT_EQ(agent_client_hello(fd, &h, TMO), 0);
	return fd;
}

/* Shut the server down with `status` and check it exited with it. */
static void stop(int status)
{
	int fd = dial_hello();
	UT_EQ(agent_client_shutdown(fd, (uint32_t)status, TMO), 0);
	int st;
	UT_ASSERT(waitpid(srv_pid, &st, 0) == srv_pid);
	if (!WIFEXITED(st))
		UT_FAIL("server died with signal %d", WTERMSIG(st));
	UT_EQ(WEXITSTATUS(st), status);
	struct uf_frame f;
	UT_EQ(uf_frame_read(fd, &f, 0, TMO), UF_FRAME_CLOSED);
	close(fd);
}

/* Expect an Error{code} and then the agent closing the connection. */
static void expect_error_close(int fd, Ufagent__ErrorCode code)
{
	uf_env *e;
	UT_EQ(agent_client_recv(fd, &e, TMO), 0);
	UT_EQ(e->msg_case, UFAGENT__ENVELOPE__MSG_ERROR);
	UT_EQ(e->error->code, code);
	uf_msg_free(e);
	struct uf_frame f;
	UT_EQ(uf_frame_read(fd, &f, 0, TMO), UF_FRAME_CLOSED);
	close(fd);
}

static void send_raw(int fd, const void *p, size_t n)
{
	UT_EQ(write(fd, p, n), (ssize_t)n);
}

static void send_payload(int fd, const void *p, size_t n)
{
	UT_EQ(uf_frame_write(fd, p, n, TMO), 0);
}

static void expect_echo(int fd, const char *id, const void *ev, size_t n)
{
	struct agent_result r;
	UT_EQ(agent_client_invoke(fd, id, ev, n, 5000, &r), 0);
	UT_EQ(r.status, 200);
	UT_EQ(r.body_len, n);
	UT_ASSERT(n == 0 || memcmp(r.body, ev, n) == 0);
	UT_ASSERT(strcmp(r.call_id, id) == 0 && r.error[0] == '\0');
	agent_result_free(&r);
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* ---- tests ---- */

UT_TEST(agent_hello_ping)
{
	start();
	int fd = dial();
	struct agent_hello h;
	UT_EQ(agent_client_hello(fd, &h, TMO), 0);
	UT_EQ(h.version, UF_AGENT_PROTO_VERSION);
	UT_ASSERT(strcmp(h.runtime, "echo") == 0 && strcmp(h.build, "test-build") == 0);
	UT_EQ(h.state, UFAGENT__AGENT_STATE__AGENT_STATE_READY);
	for (int i = 0; i < 10; i++)
		UT_EQ(agent_client_ping(fd, TMO), 0);
	close(fd);
	stop(0);
}

UT_TEST(agent_invoke_1000_random)
{
	start();
	int fd = dial_hello();
	uint64_t s = 0x1234567;
	uint8_t *ev = malloc(1u << 20);
	for (int i = 0; i < 1000; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		size_t n = (s % 100) < 70 ? s % 1025 : (s % 100) < 95 ? s % 65537 : s % (1u << 20);
		for (size_t j = 0; j < n; j++)
			ev[j] = (uint8_t)((s >> (j % 56)) + j);
		char id[32];
		snprintf(id, sizeof id, "call-%d", i);
		struct agent_result r;
		UT_EQ(agent_client_invoke(fd, id, ev, n, 0, &r), 0);
		UT_EQ(r.status, 200);
		UT_EQ(r.body_len, n);
		UT_ASSERT(fnv1a(r.body, r.body_len) == fnv1a(ev, n));
		UT_ASSERT(n == 0 || memcmp(r.body, ev, n) == 0);
		UT_ASSERT(strcmp(r.call_id, id) == 0);
		UT_ASSERT(strcmp(r.content_type, "application/octet-stream") == 0);
		agent_result_free(&r);
	}
	free(ev);
	close(fd);
	stop(3);
}

UT_TEST(agent_invoke_6mib)
{
	start();
	int fd = dial_hello();
	size_t n = UF_AGENT_MAX_PAYLOAD;
	uint8_t *ev = malloc(n);
	for (size_t j = 0; j < n; j++)
		ev[j] = (uint8_t)(j * 31 + (j >> 13));
	expect_echo(fd, "big", ev, n);
	free(ev);
	close(fd);
	stop(0);
}

UT_TEST(agent_fixup_injected)
{
	start();
	int fd = dial_hello();
	uint8_t ent[64];
	for (size_t i = 0; i < sizeof ent; i++)
		ent[i] = fx_pattern(i);
	struct agent_fixup_ack ack;
	UT_EQ(agent_client_fixup(fd, ent, 48, 1234567890123456789ll, &ack, TMO), 0);
	UT_ASSERT(!ack.ok);
	UT_EQ(ack.entropy_errno, 0);      /* the bytes arrived intact */
	UT_EQ(ack.reseed_errno, EPERM);   /* the fake refuses to reseed */
	UT_EQ(ack.clock_errno, 0);
	ent[5] ^= 1;
	UT_EQ(agent_client_fixup(fd, ent, 48, 99, &ack, TMO), 0);
	UT_EQ(ack.entropy_errno, EBADE);
	UT_EQ(ack.clock_errno, ERANGE);
	/* Out-of-range fixups are refused by the client before sending... */
	UT_EQ(agent_client_fixup(fd, ent, 16, 99, &ack, TMO), -EINVAL);
	/* ...and by the agent when sent anyway. */
	expect_echo(fd, "still-up", "x", 1);
	Ufagent__Fixup fx = UFAGENT__FIXUP__INIT;
	fx.entropy.data = ent;
	fx.entropy.len = 16;
	fx.realtime_ns = 1;
	uf_env env = UFAGENT__ENVELOPE__INIT;
	uf_msg_wrap(&env, UFAGENT__ENVELOPE__MSG_FIXUP, &fx);
	UT_EQ(uf_msg_send(fd, &env, TMO), 0);
	expect_error_close(fd, UFAGENT__ERROR_CODE__ERROR_INVALID);
	stop(0);
}

UT_TEST(agent_init_echo)
{
	start();
	int fd = dial_hello();
	struct agent_init_req req = { .runtime = "native", .handler = "handler.so" };
	struct agent_init_result res;
	UT_EQ(agent_client_init(fd, &req, &res, TMO), 0);
	UT_ASSERT(res.ok && res.error[0] == '\0');
	expect_echo(fd, "after-init", "hi", 2);
	close(fd);
	stop(0);
}

UT_TEST(agent_init_states)
{
	start_opts(&t_handler, 0);
	struct agent_hello h;
	struct agent_result r;
	struct agent_init_result res;
	const char *env[] = { "A=b=c" };

	int fd = dial();
	UT_EQ(agent_client_hello(fd, &h, TMO), 0);
	UT_EQ(h.state, UFAGENT__AGENT_STATE__AGENT_STATE_FRESH);
	UT_EQ(agent_client_invoke(fd, "early", "x", 1, 0, &r), -EAGAIN); /* NOT_READY */
	struct uf_frame f;
	UT_EQ(uf_frame_read(fd, &f, 0, TMO), UF_FRAME_CLOSED);
	close(fd);

	fd = dial_hello();
	struct agent_init_req bad = { .runtime = "bad", .handler = "h.so" };
	UT_EQ(agent_client_init(fd, &bad, &res, TMO), 0);
	UT_ASSERT(!res.ok && strcmp(res.error, "cannot load h.so") == 0);
	close(fd);

	fd = dial();
	UT_EQ(agent_client_hello(fd, &h, TMO), 0);
	UT_EQ(h.state, UFAGENT__AGENT_STATE__AGENT_STATE_FAILED);
	struct agent_init_req good = { .runtime = "native", .handler = "h.so", .env = env, .n_env = 1 };
	UT_EQ(agent_client_init(fd, &good, &res, TMO), 0);
	UT_ASSERT(res.ok);
	UT_EQ(agent_client_invoke(fd, "c1", "yo", 2, 0, &r), 0);
	UT_ASSERT(r.status == 201 && r.body_len == 5 && memcmp(r.body, "ok:yo", 5) == 0);
	agent_result_free(&r);
	/* A second Init on a ready agent breaks the protocol. */
	UT_EQ(agent_client_init(fd, &good, &res, TMO), -EPROTO);
	close(fd);

	fd = dial();
	UT_EQ(agent_client_hello(fd, &h, TMO), 0);
	UT_EQ(h.state, UFAGENT__AGENT_STATE__AGENT_STATE_READY);
	close(fd);
	stop(0);
}

UT_TEST(agent_handler_failures)
{
	start_opts(&t_handler, 0);
	int fd = dial_hello();
	struct agent_init_result res;
	const char *env[] = { "A=b=c" };
	struct agent_init_req good = { .runtime = "x", .env = env, .n_env = 1 };
	UT_EQ(agent_client_init(fd, &good, &res, TMO), 0);
	struct agent_result r;

	UT_EQ(agent_client_invoke(fd, "f", "fail", 4, 0, &r), 0);
	UT_ASSERT(r.status == 502 && strstr(r.error, "Input/output error") && r.body_len == 0);
	agent_result_free(&r);
	UT_EQ(agent_client_invoke(fd, "s", "badst", 5, 0, &r), 0);
	UT_ASSERT(r.status == 500 && strstr(r.error, "invalid status 42"));
	agent_result_free(&r);
	UT_EQ(agent_client_invoke(fd, "h", "huge", 4, 0, &r), 0);
	UT_ASSERT(r.status == 500 && strstr(r.error, "frame limit") && r.body_len == 0);
	agent_result_free(&r);
	UT_EQ(agent_client_invoke(fd, "l", "logs", 4, 0, &r), 0);
	UT_EQ(r.logs_len, UF_AGENT_MAX_LOGS);   /* tail kept */
	UT_EQ(r.logs[r.logs_len - 1], 'a' + (100000 - 1) % 26);
	UT_EQ(r.logs[0], 'a' + (100000 - UF_AGENT_MAX_LOGS) % 26);
	agent_result_free(&r);
	close(fd);
	stop(0);
}

UT_TEST(agent_protocol_violations)
{
	start();
	/* bytes that are not protobuf */
	int fd = dial_hello();
	send_payload(fd, "\xff\xff\xff\xff\xff", 5);
	expect_error_close(fd, UFAGENT__ERROR_CODE__ERROR_MALFORMED);
	/* declared length over the maximum: refused from the header alone */
	fd = dial_hello();
	uint8_t hdr[4];
	uf_frame_put_hdr(hdr, 16u << 20);
	send_raw(fd, hdr, 4);
	expect_error_close(fd, UFAGENT__ERROR_CODE__ERROR_TOO_LARGE);
	/* a newer protocol version */
	fd = dial_hello();
	send_payload(fd, "\x08\x02\x52\x00", 4);
	expect_error_close(fd, UFAGENT__ERROR_CODE__ERROR_VERSION_MISMATCH);
	/* a message type this agent does not know */
	fd = dial_hello();
	send_payload(fd, "\x08\x01\x9a\x06\x00", 5);
	expect_error_close(fd, UFAGENT__ERROR_CODE__ERROR_UNKNOWN_MESSAGE);
	/* a message that only travels agent -> host */
	fd = dial_hello();
	Ufagent__Pong p = UFAGENT__PONG__INIT;
	uf_env env = UFAGENT__ENVELOPE__INIT;
	uf_msg_wrap(&env, UFAGENT__ENVELOPE__MSG_PONG, &p);
	UT_EQ(uf_msg_send(fd, &env, TMO), 0);
	expect_error_close(fd, UFAGENT__ERROR_CODE__ERROR_UNEXPECTED);
	/* the agent is still serving */
	fd = dial_hello();
	expect_echo(fd, "alive", "ok", 2);
	close(fd);
	stop(0);
}

UT_TEST(agent_disconnect_mid_frame)
{
	start();
	uint8_t raw[4 + 10] = { 0 };
	uf_frame_put_hdr(raw, 1000);
	int fd = dial_hello();
	send_raw(fd, raw, 2);             /* inside the header */
	close(fd);
	fd = dial_hello();
	send_raw(fd, raw, sizeof raw);    /* inside the payload */
	close(fd);
	fd = dial();                      /* before even reading the Hello */
	close(fd);
	/* A 6 MiB invoke whose sender vanishes halfway. */
	fd = dial_hello();
	uint8_t *big = calloc(1, 3u << 20);
	uf_frame_put_hdr(big, 6u << 20);
	send_raw(fd, big, 3u << 20);
	close(fd);
	free(big);
	/* A host that sends a whole 6 MiB invoke and leaves before the Result:
	 * the agent's write fails (no SIGPIPE) and it carries on. */
	fd = dial_hello();
	big = calloc(1, UF_AGENT_MAX_PAYLOAD);
	Ufagent__Invoke iv = UFAGENT__INVOKE__INIT;
	iv.call_id = "gone";
	iv.event.data = big;
	iv.event.len = UF_AGENT_MAX_PAYLOAD;
	uf_env env = UFAGENT__ENVELOPE__INIT;
	uf_msg_wrap(&env, UFAGENT__ENVELOPE__MSG_INVOKE, &iv);
	UT_EQ(uf_msg_send(fd, &env, TMO), 0);
	close(fd);
	free(big);
	fd = dial_hello();
	expect_echo(fd, "next", "abc", 3);
	close(fd);
	stop(0);
}

UT_TEST(agent_two_connections)
{
	start();
	int a = dial_hello();
	/* A stalls with half an Invoke... */
	Ufagent__Invoke iv = UFAGENT__INVOKE__INIT;
	iv.call_id = "from-a";
	iv.event.data = (uint8_t *)"aaaa";
	iv.event.len = 4;
	uf_env env = UFAGENT__ENVELOPE__INIT;
	uf_msg_wrap(&env, UFAGENT__ENVELOPE__MSG_INVOKE, &iv);
	struct uf_frame f;
	UT_EQ(uf_msg_pack(&env, &f), 0);
	uint8_t hdr[4];
	uf_frame_put_hdr(hdr, (uint32_t)f.len);
	send_raw(a, hdr, 4);
	send_raw(a, f.data, 3);
	/* ...while B is served. */
	int b = dial_hello();
	expect_echo(b, "from-b", "bbbb", 4);
	UT_EQ(agent_client_ping(b, TMO), 0);
	/* A finishes its frame and gets its answer. */
	send_raw(a, f.data + 3, f.len - 3);
	uf_frame_free(&f);
	uf_env *e;
	UT_EQ(agent_client_recv(a, &e, TMO), 0);
	UT_EQ(e->msg_case, UFAGENT__ENVELOPE__MSG_RESULT);
	UT_ASSERT(strcmp(e->result->call_id, "from-a") == 0 && e->result->body.len == 4);
	uf_msg_free(e);
	/* Pipelined: three Invokes in a row, answered in order. */
	for (int i = 0; i < 3; i++) {
		iv.call_id = (char *)(i == 0 ? "p0" : i == 1 ? "p1" : "p2");
		UT_EQ(uf_msg_send(a, &env, TMO), 0);
	}
	for (int i = 0; i < 3; i++) {
		UT_EQ(agent_client_recv(a, &e, TMO), 0);
		UT_EQ(e->msg_case, UFAGENT__ENVELOPE__MSG_RESULT);
		UT_EQ(e->result->call_id[1], '0' + i);
		uf_msg_free(e);
	}
	close(a);
	close(b);
	stop(0);
}

UT_TEST(agent_evicts_oldest)
{
	start_opts(&agent_handler_echo, 2);
	int a = dial_hello(), b = dial_hello(), c = dial_hello();
	struct uf_frame f;
	UT_EQ(uf_frame_read(a, &f, 0, TMO), UF_FRAME_CLOSED); /* a was evicted */
	expect_echo(b, "b", "1", 1);
	expect_echo(c, "c", "2", 1);
	close(a);
	close(b);
	close(c);
	stop(0);
}

UT_TEST(agent_shutdown_closes_all)
{
	start();
	int idle = dial_hello();
	stop(42);
	struct uf_frame f;
	UT_EQ(uf_frame_read(idle, &f, 0, TMO), UF_FRAME_CLOSED);
	close(idle);
}

UT_TEST(agent_bad_arguments)
{
	struct agent_handler no_invoke = { .name = "x" };
	UT_EQ(agent_server_run(-1, &agent_handler_echo), -EINVAL);
	UT_EQ(agent_server_run(0, &no_invoke), -EINVAL);
	int fd = agent_vsock_listen(UF_AGENT_VSOCK_PORT);
	/* No vsock transport on a build host is fine; a listener must work if
	 * the family exists. */
	if (fd >= 0)
		close(fd);
	else
		UT_ASSERT(fd == -EAFNOSUPPORT || fd == -ENODEV || fd == -EADDRNOTAVAIL ||
			  fd == -EADDRINUSE || fd == -EPERM);
}

/* ---- agent_server_serve_fd: one already-connected stream ---- */

struct fd_srv {
	pid_t pid;
	int host;   /* our end of the socketpair */
	int rcpipe; /* the child writes serve_fd's return value here */
};

/* Serve one end of a socketpair in a child.  After serve_fd returns, the
 * child reports the return value and the O_NONBLOCK flag on a pipe, then
 * writes 'M' on its (still open: not owned by the server) end. */
static struct fd_srv fd_start(const struct agent_handler *h, int nonblock)
{
	int sv[2], pp[2];
	UT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	UT_EQ(pipe2(pp, O_CLOEXEC), 0);
	fflush(NULL);
	pid_t pid = fork();
	UT_ASSERT(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		signal(SIGPIPE, SIG_IGN);
		close(sv[0]);
		close(pp[0]);
		if (nonblock)
			fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK);
		struct agent_server_opts o = {
			.handler = h, .fixup = &fake_fixup, .build_id = "fd-build",
			.io_timeout_ms = TMO, .quiet = 1,
		};
		int rep[2] = { agent_server_serve_fd(sv[1], &o), 0 };
		rep[1] = (fcntl(sv[1], F_GETFL) & O_NONBLOCK) != 0;
		int ok = write(pp[1], rep, sizeof rep) == (ssize_t)sizeof rep;
		fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) & ~O_NONBLOCK);
		(void)!write(sv[1], "M", 1);
		close(sv[1]);
		close(pp[1]);
		exit(ok ? 0 : 1);
	}
	close(sv[1]);
	close(pp[1]);
	return (struct fd_srv){ .pid = pid, .host = sv[0], .rcpipe = pp[0] };
}

/* serve_fd's return value; checks O_NONBLOCK was left as set up. */
static int fd_result(struct fd_srv *f, int nonblock)
{
	int rep[2];
	UT_EQ(read(f->rcpipe, rep, sizeof rep), (ssize_t)sizeof rep);
	UT_EQ(rep[1], nonblock);
	int st;
	UT_ASSERT(waitpid(f->pid, &st, 0) == f->pid);
	UT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(f->rcpipe);
	return rep[0];
}

/* The child's end is still open after serve_fd: its 'M' arrives. */
static void fd_expect_marker(int fd)
{
	char c = 0;
	UT_EQ(read(fd, &c, 1), 1);
	UT_EQ(c, 'M');
}

UT_TEST(agent_serve_fd_session)
{
	for (int nb = 0; nb < 2; nb++) {
		struct fd_srv f = fd_start(&agent_handler_echo, nb);
		struct agent_hello h;
		UT_EQ(agent_client_hello(f.host, &h, TMO), 0);
		UT_EQ(h.version, UF_AGENT_PROTO_VERSION);
		UT_ASSERT(strcmp(h.build, "fd-build") == 0 && strcmp(h.runtime, "echo") == 0);
		UT_EQ(h.state, UFAGENT__AGENT_STATE__AGENT_STATE_READY);
		static const size_t sizes[] = { 0, 1, 64, 4096, 65537, 1u << 20, UF_AGENT_MAX_PAYLOAD };
		uint8_t *ev = malloc(UF_AGENT_MAX_PAYLOAD);
		for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
			for (size_t j = 0; j < sizes[k]; j++)
				ev[j] = (uint8_t)(j * 13 + k);
			char id[16];
			snprintf(id, sizeof id, "s%zu", k);
			expect_echo(f.host, id, ev, sizes[k]);
		}
		free(ev);
		UT_EQ(agent_client_ping(f.host, TMO), 0);
		uint8_t ent[48];
		for (size_t i = 0; i < sizeof ent; i++)
			ent[i] = fx_pattern(i);
		struct agent_fixup_ack ack;
		UT_EQ(agent_client_fixup(f.host, ent, sizeof ent, 1234567890123456789ll, &ack, TMO), 0);
		UT_ASSERT(ack.entropy_errno == 0 && ack.reseed_errno == EPERM && ack.clock_errno == 0);
		UT_EQ(agent_client_shutdown(f.host, 7, TMO), 0);
		UT_EQ(fd_result(&f, nb), 7);
		fd_expect_marker(f.host);
		close(f.host);
	}
}

UT_TEST(agent_serve_fd_pipelined_shutdown)
{
	/* Requests and the Shutdown in one burst, before reading anything:
	 * every request is answered in order, then serve_fd returns. */
	struct fd_srv f = fd_start(&agent_handler_echo, 0);
	Ufagent__Invoke iv = UFAGENT__INVOKE__INIT;
	uf_env env = UFAGENT__ENVELOPE__INIT;
	iv.event.data = (uint8_t *)"xyz";
	iv.event.len = 3;
	uf_msg_wrap(&env, UFAGENT__ENVELOPE__MSG_INVOKE, &iv);
	for (int i = 0; i < 3; i++) {
		iv.call_id = (char *)(i == 0 ? "q0" : i == 1 ? "q1" : "q2");
		UT_EQ(uf_msg_send(f.host, &env, TMO), 0);
	}
	UT_EQ(agent_client_shutdown(f.host, 0, TMO), 0);
	struct agent_hello h;
	UT_EQ(agent_client_hello(f.host, &h, TMO), 0);
	for (int i = 0; i < 3; i++) {
		uf_env *e;
		UT_EQ(agent_client_recv(f.host, &e, TMO), 0);
		UT_EQ(e->msg_case, UFAGENT__ENVELOPE__MSG_RESULT);
		UT_EQ(e->result->call_id[1], '0' + i);
		uf_msg_free(e);
	}
	UT_EQ(fd_result(&f, 0), 0);
	fd_expect_marker(f.host);
	close(f.host);
}

UT_TEST(agent_serve_fd_host_closes)
{
	/* Between frames: a clean end of the session. */
	struct fd_srv f = fd_start(&agent_handler_echo, 0);
	struct agent_hello h;
	UT_EQ(agent_client_hello(f.host, &h, TMO), 0);
	expect_echo(f.host, "one", "1", 1);
	close(f.host);
	UT_EQ(fd_result(&f, 0), UF_FRAME_CLOSED);
	/* Inside a frame. */
	f = fd_start(&agent_handler_echo, 1);
	UT_EQ(agent_client_hello(f.host, &h, TMO), 0);
	uint8_t raw[4 + 10] = { 0 };
	uf_frame_put_hdr(raw, 1000);
	send_raw(f.host, raw, sizeof raw);
	close(f.host);
	UT_EQ(fd_result(&f, 1), -EPIPE);
	/* Before the Hello could be read: the Hello went into the socket
	 * buffer, the server sees EOF. */
	f = fd_start(&agent_handler_echo, 0);
	close(f.host);
	int rc = fd_result(&f, 0);
	UT_ASSERT(rc == UF_FRAME_CLOSED || rc == -EPIPE);
}

UT_TEST(agent_serve_fd_violations)
{
	/* Garbage: Error{MALFORMED}, -EPROTO, and the stream stays open. */
	struct fd_srv f = fd_start(&agent_handler_echo, 0);
	struct agent_hello h;
	UT_EQ(agent_client_hello(f.host, &h, TMO), 0);
	send_payload(f.host, "\xff\xff\xff\xff\xff", 5);
	uf_env *e;
	UT_EQ(agent_client_recv(f.host, &e, TMO), 0);
	UT_EQ(e->msg_case, UFAGENT__ENVELOPE__MSG_ERROR);
	UT_EQ(e->error->code, UFAGENT__ERROR_CODE__ERROR_MALFORMED);
	uf_msg_free(e);
	UT_EQ(fd_result(&f, 0), -EPROTO);
	fd_expect_marker(f.host);
	close(f.host);
	/* An oversized declared length: refused from the header alone. */
	f = fd_start(&agent_handler_echo, 0);
	UT_EQ(agent_client_hello(f.host, &h, TMO), 0);
	uint8_t hdr[4];
	uf_frame_put_hdr(hdr, 16u << 20);
	send_raw(f.host, hdr, 4);
	UT_EQ(agent_client_recv(f.host, &e, TMO), 0);
	UT_EQ(e->msg_case, UFAGENT__ENVELOPE__MSG_ERROR);
	UT_EQ(e->error->code, UFAGENT__ERROR_CODE__ERROR_TOO_LARGE);
	uf_msg_free(e);
	UT_EQ(fd_result(&f, 0), -EPROTO);
	fd_expect_marker(f.host);
	close(f.host);
	/* Invoke before Init on a handler that needs one: NOT_READY. */
	f = fd_start(&t_handler, 0);
	UT_EQ(agent_client_hello(f.host, &h, TMO), 0);
	UT_EQ(h.state, UFAGENT__AGENT_STATE__AGENT_STATE_FRESH);
	struct agent_result r;
	UT_EQ(agent_client_invoke(f.host, "early", "x", 1, 0, &r), -EAGAIN);
	UT_EQ(fd_result(&f, 0), -EPROTO);
	close(f.host);
	/* The host's own Error frame ends the session. */
	f = fd_start(&agent_handler_echo, 0);
	UT_EQ(agent_client_hello(f.host, &h, TMO), 0);
	UT_EQ(uf_msg_send_error(f.host, TMO, UFAGENT__ERROR_CODE__ERROR_INTERNAL, "host gives up"), 0);
	UT_EQ(fd_result(&f, 0), -ECONNABORTED);
	close(f.host);
}

UT_TEST(agent_serve_fd_init_then_invoke)
{
	struct fd_srv f = fd_start(&t_handler, 0);
	struct agent_hello h;
	UT_EQ(agent_client_hello(f.host, &h, TMO), 0);
	const char *env[] = { "A=b=c" };
	struct agent_init_req good = { .runtime = "native", .handler = "h.so", .env = env, .n_env = 1 };
	struct agent_init_result res;
	UT_EQ(agent_client_init(f.host, &good, &res, TMO), 0);
	UT_ASSERT(res.ok);
	struct agent_result r;
	UT_EQ(agent_client_invoke(f.host, "c1", "yo", 2, 0, &r), 0);
	UT_ASSERT(r.status == 201 && r.body_len == 5 && memcmp(r.body, "ok:yo", 5) == 0);
	agent_result_free(&r);
	UT_EQ(agent_client_shutdown(f.host, 255, TMO), 0);
	UT_EQ(fd_result(&f, 0), 255);
	close(f.host);
}

UT_TEST(agent_serve_fd_bad_arguments)
{
	struct agent_server_opts o = { .handler = &agent_handler_echo, .quiet = 1 };
	struct agent_handler no_invoke = { .name = "x" };
	struct agent_server_opts bad = { .handler = &no_invoke, .quiet = 1 };
	UT_EQ(agent_server_serve_fd(-1, &o), -EINVAL);
	UT_EQ(agent_server_serve_fd(0, &bad), -EINVAL);
	UT_EQ(agent_server_serve_fd(0, NULL), -EINVAL);
}
