/* runtime_exec.c — the `exec` runtime: the package's executable
 * (Init.handler, default "handler") is started at Init, before the
 * snapshot, and speaks the frames of functions/sdk/EXEC.md on its stdin
 * and stdout; its stderr is the call's logs.  A process that dies or
 * breaks the framing fails its call and is started again by the next one.
 */
#include "guest-agent/runtime.h"
#include "guest-agent/runtime_capture.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto/agent_msg.h"

#define READY_MSG_MAX 4096u

extern char **environ;

static struct {
	char path[4096], dir[4096];
	pid_t pid;                   /* -1: not running */
	int in, out, err;            /* our ends of its stdin, stdout, stderr */
	struct agent_tail logs;      /* its stderr */
	unsigned ready_ms;
	int loaded;
} ex = { .pid = -1, .in = -1, .out = -1, .err = -1 };

/* Writes still to go to the child's stdin: up to two segments. */
struct xfer {
	const uint8_t *seg[2];
	size_t len[2];
	int broken;                  /* its stdin is gone */
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void drain_stderr(void)
{
	uint8_t buf[4096];
	while (ex.err >= 0) {
		ssize_t n = read(ex.err, buf, sizeof buf);
		if (n > 0) {
			agent_tail_append(&ex.logs, buf, (size_t)n);
			continue;
		}
		if (n == 0 || (errno != EINTR && errno != EAGAIN))
			close_fd(&ex.err);
		if (n < 0 && errno == EINTR)
			continue;
		break;
	}
}

/* How the child ended, for an error message. */
static void describe(int st, char *buf, size_t len)
{
	if (WIFEXITED(st))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		snprintf(buf, len, "ended (wait status %#x)", st);
}

/* Make sure the child is gone and reaped; describe how it ended. */
static void stop_child(char *how, size_t len)
{
	int st = 0;
	if (ex.pid > 0) {
		pid_t r = 0;
		/* It may be exiting on its own: give it 100 ms to say how. */
		for (int i = 0; i < 50 && (r = waitpid(ex.pid, &st, WNOHANG)) == 0; i++)
			nanosleep(&(struct timespec){ 0, 2000000 }, NULL);
		if (r == 0) {
			kill(ex.pid, SIGKILL);
			r = waitpid(ex.pid, &st, 0);
		}
		if (how)
			describe(st, how, len);
	} else if (how) {
		snprintf(how, len, "is not running");
	}
	drain_stderr();
	ex.pid = -1;
	close_fd(&ex.in);
	close_fd(&ex.out);
	close_fd(&ex.err);
}

/* Orphans of the handler's own children are reparented to the agent
 * (PID 1): reap them, noting if the handler itself is among them. */
static void reap(void)
{
	int st;
	pid_t p;
	while ((p = waitpid(-1, &st, WNOHANG)) > 0)
		if (p == ex.pid)
			ex.pid = 0;   /* gone: stop_child() only closes the pipes */
}

/* Pump the pending writes into the child's stdin while reading exactly
 * rlen bytes of its stdout into r, collecting stderr, until done or the
 * deadline (absolute ms, 0 = none).  0, -EPIPE (stdout ended),
 * -ETIMEDOUT, or -errno. */
static int pump(struct xfer *x, uint8_t *r, size_t rlen, int64_t deadline)
{
	size_t got = 0;
	while (got < rlen) {
		struct pollfd p[3];
		int n = 0, iw = -1, ie = -1;
		int wpend = !x->broken && (x->len[0] || x->len[1]);
		p[n++] = (struct pollfd){ .fd = ex.out, .events = POLLIN };
		if (wpend) {
			iw = n;
			p[n++] = (struct pollfd){ .fd = ex.in, .events = POLLOUT };
		}
		if (ex.err >= 0) {
			ie = n;
			p[n++] = (struct pollfd){ .fd = ex.err, .events = POLLIN };
		}
		int tmo = -1;
		if (deadline) {
			int64_t left = deadline - now_ms();
			if (left <= 0)
				return -ETIMEDOUT;
			tmo = left > 60000 ? 60000 : (int)left;
		}
		int k = poll(p, (nfds_t)n, tmo);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (ie >= 0 && p[ie].revents)
			drain_stderr();
		if (iw >= 0 && p[iw].revents) {
			int s = x->len[0] ? 0 : 1;
			ssize_t w = write(ex.in, x->seg[s], x->len[s]);
			if (w > 0) {
				x->seg[s] += w;
				x->len[s] -= (size_t)w;
			} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
				x->broken = 1;   /* EPIPE: its answer (or EOF) tells the rest */
			}
		}
		if (p[0].revents) {
			ssize_t m = read(ex.out, r + got, rlen - got);
			if (m == 0)
				return -EPIPE;
			if (m < 0 && errno != EAGAIN && errno != EINTR)
				return -errno;
			if (m > 0)
				got += (size_t)m;
		}
	}
	return 0;
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

/* Spawn the handler and wait for its ready frame.  0 or -errno with a
 * message (and the tail of its stderr) in err. */
static int start_child(char *err, size_t errlen)
{
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t all, none;
	int rc;

	if (pipe2(pin, O_CLOEXEC) < 0 || pipe2(pout, O_CLOEXEC) < 0 || pipe2(perr, O_CLOEXEC) < 0) {
		rc = -errno;
		snprintf(err, errlen, "exec: pipe: %s", strerror(-rc));
		goto out_close;
	}
	sigfillset(&all);
	sigemptyset(&none);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
	posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
	posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
	posix_spawn_file_actions_addchdir_np(&fa, ex.dir);
	posix_spawnattr_init(&at);
	posix_spawnattr_setsigdefault(&at, &all);   /* the agent ignores SIGPIPE */
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	char *argv[] = { ex.path, NULL };
	pid_t pid;
	rc = -posix_spawn(&pid, ex.path, &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc < 0) {
		snprintf(err, errlen, "exec: cannot start %s: %s", ex.path, strerror(-rc));
		goto out_close;
	}
	ex.pid = pid;
	ex.in = pin[1];
	ex.out = pout[0];
	ex.err = perr[0];
	pin[1] = pout[0] = perr[0] = -1;
	close_fd(&pin[0]);           /* the child's ends: only it may hold them, */
	close_fd(&pout[1]);          /* so its exit is EOF here */
	close_fd(&perr[1]);
	if ((rc = set_nonblock(ex.in)) < 0 || (rc = set_nonblock(ex.out)) < 0 ||
	    (rc = set_nonblock(ex.err)) < 0) {
		snprintf(err, errlen, "exec: %s", strerror(-rc));
		stop_child(NULL, 0);
		goto out_close;
	}

	uint8_t hdr[8];
	char msg[READY_MSG_MAX + 1] = "";
	struct xfer none_w = { .broken = 1 };
	int64_t deadline = now_ms() + ex.ready_ms;
	rc = pump(&none_w, hdr, sizeof hdr, deadline);
	uint32_t status = rc == 0 ? get_le32(hdr) : 0, mlen = rc == 0 ? get_le32(hdr + 4) : 0;
	if (rc == 0 && mlen > READY_MSG_MAX)
		rc = -EPROTO;
	if (rc == 0 && mlen && (rc = pump(&none_w, (uint8_t *)msg, mlen, deadline)) == 0)
		msg[mlen] = '\0';
	if (rc == 0 && status == 0) {
		rc = 0;
		goto out_close;
	}
	char how[160];
	stop_child(how, sizeof how);
	if (rc == -EPIPE)
		snprintf(err, errlen, "exec: handler %s before it was ready", how);
	else if (rc == -ETIMEDOUT)
		snprintf(err, errlen, "exec: handler not ready within %u ms", ex.ready_ms);
	else if (rc == -EPROTO)
		snprintf(err, errlen, "exec: bad ready frame (message of %u bytes)", mlen);
	else if (rc < 0)
		snprintf(err, errlen, "exec: waiting for the handler: %s", strerror(-rc));
	else
		snprintf(err, errlen, "exec: handler failed its start-up (status %u): %s", status, msg);
	if (rc == 0)
		rc = -ECANCELED;
out_close:
	for (int i = 0; i < 2; i++) {
		close_fd(&pin[i]);
		close_fd(&pout[i]);
		close_fd(&perr[i]);
	}
	return rc;
}

/* Append the tail of the child's stderr to an error message. */
static void add_stderr(char *err, size_t errlen)
{
	uint8_t *t;
	size_t n;
	if (agent_tail_take(&ex.logs, &t, &n) < 0 || !t)
		return;
	size_t keep = n > 1024 ? 1024 : n, used = strlen(err);
	snprintf(err + used, errlen - used, "\nstderr: %.*s", (int)keep, (const char *)t + n - keep);
	free(t);
}

static int exec_load(const struct agent_fn *fn, char *err, size_t errlen)
{
	const char *h = fn->handler[0] ? fn->handler : "handler";
	struct stat st;

	if (ex.loaded) {
		snprintf(err, errlen, "exec: a function is already loaded");
		return -EBUSY;
	}
	if (agent_runtime_check_relpath(h) < 0) {
		snprintf(err, errlen, "exec: handler '%.200s' must be a relative path inside the "
			 "package", h);
		return -EINVAL;
	}
	if ((size_t)snprintf(ex.path, sizeof ex.path, "%s/%s", fn->dir, h) >= sizeof ex.path ||
	    (size_t)snprintf(ex.dir, sizeof ex.dir, "%s", fn->dir) >= sizeof ex.dir) {
		snprintf(err, errlen, "exec: handler path too long");
		return -ENAMETOOLONG;
	}
	if (stat(ex.path, &st) < 0 || !S_ISREG(st.st_mode) || !(st.st_mode & 0111)) {
		snprintf(err, errlen, "exec: handler %s is not an executable file in the package", h);
		return -ENOENT;
	}
	if (!ex.logs.buf && agent_tail_init(&ex.logs, UF_AGENT_MAX_LOGS) < 0) {
		snprintf(err, errlen, "exec: out of memory");
		return -ENOMEM;
	}
	signal(SIGPIPE, SIG_IGN);    /* a dead handler's stdin gives EPIPE, not death */
	if (!ex.ready_ms)
		ex.ready_ms = AGENT_EXEC_READY_MS;
	int rc = start_child(err, errlen);
	if (rc < 0) {
		add_stderr(err, errlen);
		return rc;
	}
	uint8_t *discard;
	size_t n;
	if (agent_tail_take(&ex.logs, &discard, &n) == 0)  /* start-up output is not a call's */
		free(discard);
	ex.loaded = 1;
	return 0;
}

/* A call failed and the process goes: error text, logs, -EIO. */
static int call_failed(struct agent_reply *out, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int call_failed(struct agent_reply *out, const char *fmt, ...)
{
	va_list ap;
	stop_child(NULL, 0);
	va_start(ap, fmt);
	vsnprintf(out->error, sizeof out->error, fmt, ap);
	va_end(ap);
	(void)agent_tail_take(&ex.logs, &out->logs, &out->logs_len);
	return -EIO;
}

static int exec_invoke(const struct agent_call *call, struct agent_reply *out)
{
	if (!ex.loaded) {
		snprintf(out->error, sizeof out->error, "exec: no function loaded");
		return -ENOENT;
	}
	reap();
	if (ex.pid == 0)                 /* reaped above: it died between calls */
		stop_child(NULL, 0);
	if (ex.pid < 0) {
		char err[AGENT_REPLY_ERROR_MAX];
		if (start_child(err, sizeof err) < 0) {
			snprintf(out->error, sizeof out->error, "%s", err);
			(void)agent_tail_take(&ex.logs, &out->logs, &out->logs_len);
			return -EIO;
		}
	}
	struct pollfd pf = { .fd = ex.out, .events = POLLIN };
	if (poll(&pf, 1, 0) > 0)
		return call_failed(out, "exec: protocol violation: the handler wrote to stdout "
				   "between calls; killed");

	uint8_t req[4] = { (uint8_t)call->len, (uint8_t)(call->len >> 8),
			   (uint8_t)(call->len >> 16), (uint8_t)(call->len >> 24) };
	uint8_t hdr[8];
	struct xfer x = { .seg = { req, call->event }, .len = { 4, call->len } };
	int64_t deadline = call->deadline_ms ? now_ms() + (int64_t)call->deadline_ms : 0;
	int rc = pump(&x, hdr, sizeof hdr, deadline);
	uint32_t status = get_le32(hdr), len = get_le32(hdr + 4);
	/* Check the header before waiting for a body it may only pretend to
	 * announce (stray bytes read as a header). */
	if (rc == 0 && (status < 100 || status > 599))
		return call_failed(out, "exec: protocol violation: status %u outside 100..599; "
				   "killed", status);
	if (rc == 0 && len > UF_AGENT_MAX_PAYLOAD)
		return call_failed(out, "exec: protocol violation: a response of %u bytes (over "
				   "6 MiB); killed", len);
	if (rc == 0 && len) {
		out->body = malloc(len);
		if (!out->body)
			return call_failed(out, "exec: out of memory for a %u-byte response", len);
		out->body_len = len;
		rc = pump(&x, out->body, len, deadline);
	}
	if (rc == -EPIPE) {
		char how[160];
		stop_child(how, sizeof how);
		return call_failed(out, "exec: handler %s during the call", how);
	}
	if (rc == -ETIMEDOUT)
		return call_failed(out, "exec: handler missed the call's deadline of %llu ms; killed",
				   (unsigned long long)call->deadline_ms);
	if (rc < 0)
		return call_failed(out, "exec: talking to the handler: %s", strerror(-rc));
	if (!x.broken && (x.len[0] || x.len[1]))
		return call_failed(out, "exec: protocol violation: the handler answered before "
				   "reading the whole request; killed");
	drain_stderr();
	out->status = status;
	snprintf(out->content_type, sizeof out->content_type, "application/octet-stream");
	(void)agent_tail_take(&ex.logs, &out->logs, &out->logs_len);
	return 0;
}

static int exec_warm(const struct agent_runtime_config *cfg, char *err, size_t errlen)
{
	ex.ready_ms = cfg->exec_ready_ms ? cfg->exec_ready_ms : AGENT_EXEC_READY_MS;
	return 0;
}

const struct agent_runtime agent_runtime_exec = {
	.abi = AGENT_RUNTIME_ABI,
	.name = "exec",
	.capture_fds = 0,
	.warm = exec_warm,
	.load = exec_load,
	.invoke = exec_invoke,
};
