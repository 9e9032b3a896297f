/* wproc.c — worker child processes on the loop (contract in wproc.h). */
#include "runtimed/wproc.h"
#include "vmm/err.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK (64u << 10)

struct rt_wproc {
	uv_process_t proc;
	uv_pipe_t sock;
	struct rt_wproc_cbs cbs;
	void *arg;
	struct uf_frame_dec dec;
	char rbuf[READ_CHUNK];
	bool proc_open, sock_open, exited;
	bool spawn_failed;              /* no exit callback: the child never ran */
	int64_t exit_status;
	int term_signal;
	int pid;
};

struct wreq {
	uv_write_t req;
	uint8_t *buf;
};

static void maybe_finish(struct rt_wproc *w)
{
	if (w->proc_open || w->sock_open)
		return;
	if (!w->spawn_failed)
		w->cbs.on_exit(w, w->exit_status, w->term_signal, w->arg);
	uf_frame_dec_free(&w->dec);
	free(w);
}

static void proc_closed(uv_handle_t *h)
{
	struct rt_wproc *w = h->data;
	w->proc_open = false;
	maybe_finish(w);
}

static void sock_closed(uv_handle_t *h)
{
	struct rt_wproc *w = h->data;
	w->sock_open = false;
	maybe_finish(w);
}

static void close_sock(struct rt_wproc *w)
{
	if (!uv_is_closing((uv_handle_t *)&w->sock))
		uv_close((uv_handle_t *)&w->sock, sock_closed);
}

static void on_proc_exit(uv_process_t *p, int64_t status, int sig)
{
	struct rt_wproc *w = p->data;
	w->exited = true;
	w->exit_status = sig ? -1 : status;
	w->term_signal = sig;
	/* Whatever it sent before dying has been read or is lost with it. */
	close_sock(w);
	uv_close((uv_handle_t *)&w->proc, proc_closed);
}

void rt_wproc_kill(struct rt_wproc *w, int sig)
{
	if (!w->exited)
		uv_process_kill(&w->proc, sig);
}

int rt_wproc_pid(const struct rt_wproc *w)
{
	return w->pid;
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct rt_wproc *w = h->data;
	(void)hint;
	*buf = uv_buf_init(w->rbuf, sizeof(w->rbuf));
}

static void protocol_error(struct rt_wproc *w, const char *what, int r)
{
	fprintf(stderr, "runtimed: worker %d: %s: %s; killing it\n", w->pid, what, strerror(-r));
	uv_read_stop((uv_stream_t *)&w->sock);
	rt_wproc_kill(w, SIGKILL);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct rt_wproc *w = s->data;
	if (n < 0) {
		uv_read_stop(s);
		if (n != UV_EOF) {
			fprintf(stderr, "runtimed: worker %d: read: %s\n", w->pid, uv_strerror((int)n));
			rt_wproc_kill(w, SIGKILL);
		}
		/* EOF: the worker closed its end (it exits, or has); the
		 * exit callback follows. */
		close_sock(w);
		return;
	}
	for (size_t off = 0; off < (size_t)n;) {
		size_t used;
		int r = uf_frame_dec_feed(&w->dec, buf->base + off, (size_t)n - off, &used);
		off += used;
		if (r < 0) {
			protocol_error(w, "bad frame", r);
			return;
		}
		if (r == 0)
			continue;
		struct uf_frame f;
		if (uf_frame_dec_take(&w->dec, &f))
			continue;
		uf_wmsg *m;
		r = uf_wmsg_decode(f.data, f.len, &m);
		uf_frame_free(&f);
		if (r) {
			protocol_error(w, "bad message", r);
			return;
		}
		w->cbs.on_msg(w, m, w->arg);
		uf_wmsg_free(m);
	}
}

int rt_wproc_spawn(uv_loop_t *loop, char **argv, const struct rt_wproc_cbs *cbs, void *arg,
		   struct rt_wproc **out)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return vmm_errno(-errno, "worker socketpair");
	struct rt_wproc *w = calloc(1, sizeof(*w));
	if (!w) {
		close(sv[0]);
		close(sv[1]);
		return vmm_err(-ENOMEM, "worker: out of memory");
	}
	w->cbs = *cbs;
	w->arg = arg;
	uf_frame_dec_init(&w->dec, UF_FRAME_MAX);
	uv_stdio_container_t stdio[4] = {
		{.flags = UV_IGNORE},
		{.flags = UV_INHERIT_FD, .data.fd = STDOUT_FILENO},
		{.flags = UV_INHERIT_FD, .data.fd = STDERR_FILENO},
		{.flags = UV_INHERIT_FD, .data.fd = sv[1]},
	};
	uv_process_options_t o = {.exit_cb = on_proc_exit, .file = argv[0], .args = argv,
				  .stdio_count = 4, .stdio = stdio};
	int r = uv_pipe_init(loop, &w->sock, 0);
	if (r == 0)
		r = uv_pipe_open(&w->sock, sv[0]);
	if (r) {
		close(sv[0]);
		close(sv[1]);
		uf_frame_dec_free(&w->dec);
		free(w);
		return vmm_err(-EIO, "worker socket: %s", uv_strerror(r));
	}
	w->sock.data = w;
	w->sock_open = true;
	w->proc.data = w;
	r = uv_spawn(loop, &w->proc, &o);
	close(sv[1]);
	if (r) {
		/* Both handles close asynchronously (libuv wants a process
		 * handle closed even after a failed spawn); no exit callback
		 * runs for a child that never started. */
		w->spawn_failed = true;
		w->exited = true;
		w->proc_open = true;
		uv_close((uv_handle_t *)&w->proc, proc_closed);
		close_sock(w);
		return vmm_err(-ENOEXEC, "spawn %s: %s", argv[0], uv_strerror(r));
	}
	w->proc_open = true;
	w->pid = w->proc.pid;
	r = uv_read_start((uv_stream_t *)&w->sock, alloc_cb, read_cb);
	if (r) {
		fprintf(stderr, "runtimed: worker %d: read: %s\n", w->pid, uv_strerror(r));
		rt_wproc_kill(w, SIGKILL);
	}
	*out = w;
	return 0;
}

static void write_cb(uv_write_t *req, int status)
{
	struct wreq *wr = (struct wreq *)req;
	(void)status; /* a failed write shows up as EOF / the exit */
	free(wr->buf);
	free(wr);
}

int rt_wproc_send(struct rt_wproc *w, uf_wmsg *m)
{
	if (!w->sock_open || uv_is_closing((uv_handle_t *)&w->sock))
		return -EPIPE;
	struct uf_frame f;
	int r = uf_wmsg_pack(m, &f);
	if (r)
		return r;
	struct wreq *wr = malloc(sizeof(*wr));
	uint8_t *buf = malloc(UF_FRAME_HDR_LEN + f.len);
	if (!wr || !buf) {
		free(wr);
		free(buf);
		uf_frame_free(&f);
		return -ENOMEM;
	}
	size_t len = f.len;
	uf_frame_put_hdr(buf, (uint32_t)len);
	if (len)
		memcpy(buf + UF_FRAME_HDR_LEN, f.data, len);
	uf_frame_free(&f);
	wr->buf = buf;
	uv_buf_t b = uv_buf_init((char *)buf, (unsigned)(UF_FRAME_HDR_LEN + len));
	r = uv_write(&wr->req, (uv_stream_t *)&w->sock, &b, 1, write_cb);
	if (r) {
		free(buf);
		free(wr);
		return -EPIPE;
	}
	return 0;
}
