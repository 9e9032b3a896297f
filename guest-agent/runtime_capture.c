/* runtime_capture.c — fd capture into a memfd and the tail buffer
 * (runtime_capture.h). */
#include "guest-agent/runtime_capture.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void agent_log_mark(uint8_t *buf, size_t n, uint64_t dropped)
{
	char m[80];
	size_t k = 0;
	if (!dropped)
		return;
	/* The marker overwrites its own length of the oldest kept bytes,
	 * which are then dropped too (a fixed point: at most one more digit). */
	for (int i = 0; i < 3; i++) {
		int w = snprintf(m, sizeof(m), AGENT_LOG_MARKER "%llu bytes dropped]\n",
				 (unsigned long long)(dropped + k));
		if (w <= 0 || (size_t)w == k)
			break;
		k = (size_t)w;
	}
	if (k == 0 || k >= n || strlen(m) != k)
		return;
	memcpy(buf, m, k);
}

int agent_capture_begin(struct agent_capture *c)
{
	if (c->active)
		return -EBUSY;
	if (c->fd < 0) {
		c->fd = memfd_create("uf-logs", MFD_CLOEXEC);
		if (c->fd < 0)
			return -errno;
	}
	if (ftruncate(c->fd, 0) < 0 || lseek(c->fd, 0, SEEK_SET) < 0)
		return -errno;
	fflush(NULL);
	c->saved_out = fcntl(1, F_DUPFD_CLOEXEC, 3);
	c->saved_err = fcntl(2, F_DUPFD_CLOEXEC, 3);
	if (c->saved_out < 0 || c->saved_err < 0 || dup2(c->fd, 1) < 0 || dup2(c->fd, 2) < 0) {
		int e = -errno;
		if (c->saved_out >= 0) {
			dup2(c->saved_out, 1);
			close(c->saved_out);
		}
		if (c->saved_err >= 0) {
			dup2(c->saved_err, 2);
			close(c->saved_err);
		}
		c->saved_out = c->saved_err = -1;
		return e;
	}
	c->active = 1;
	return 0;
}

int agent_capture_end(struct agent_capture *c, size_t max, uint8_t **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	if (!c->active)
		return -EINVAL;
	fflush(NULL);
	/* Restore even if the handler closed or replaced fds 1 and 2. */
	dup2(c->saved_out, 1);
	dup2(c->saved_err, 2);
	close(c->saved_out);
	close(c->saved_err);
	c->saved_out = c->saved_err = -1;
	c->active = 0;

	struct stat st;
	if (fstat(c->fd, &st) < 0)
		return -errno;
	size_t size = (size_t)st.st_size;
	if (size == 0)
		return 0;
	size_t n = size < max ? size : max;
	uint8_t *buf = malloc(n);
	if (!buf)
		return -ENOMEM;
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(c->fd, buf + got, n - got, (off_t)(size - n + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	(void)!ftruncate(c->fd, 0);   /* give the memory back now */
	if (got == 0) {
		free(buf);
		return 0;
	}
	if (got == n && size > n)
		agent_log_mark(buf, n, size - n);
	*out = buf;
	*len = got;
	return 0;
}

void agent_capture_release(struct agent_capture *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

int agent_tail_init(struct agent_tail *t, size_t cap)
{
	*t = (struct agent_tail){ .cap = cap };
	t->buf = malloc(cap ? cap : 1);
	return t->buf ? 0 : -ENOMEM;
}

void agent_tail_append(struct agent_tail *t, const uint8_t *p, size_t n)
{
	t->total += n;
	if (t->cap == 0)
		return;
	if (n >= t->cap) {           /* only the last cap bytes matter */
		memcpy(t->buf, p + n - t->cap, t->cap);
		t->start = 0;
		t->len = t->cap;
		return;
	}
	for (size_t i = 0; i < n;) {
		size_t end = (t->start + t->len) % t->cap;
		size_t room = t->cap - end;
		size_t k = n - i < room ? n - i : room;
		memcpy(t->buf + end, p + i, k);
		i += k;
		t->len += k;
		if (t->len > t->cap) {
			t->start = (t->start + t->len - t->cap) % t->cap;
			t->len = t->cap;
		}
	}
}

int agent_tail_take(struct agent_tail *t, uint8_t **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	if (t->len == 0) {
		t->taken = t->total;
		return 0;
	}
	uint8_t *b = malloc(t->len);
	if (!b)
		return -ENOMEM;
	size_t first = t->cap - t->start < t->len ? t->cap - t->start : t->len;
	memcpy(b, t->buf + t->start, first);
	memcpy(b + first, t->buf, t->len - first);
	agent_log_mark(b, t->len, t->total - t->taken - t->len);
	*out = b;
	*len = t->len;
	t->start = t->len = 0;
	t->taken = t->total;
	return 0;
}

void agent_tail_free(struct agent_tail *t)
{
	free(t->buf);
	*t = (struct agent_tail){ 0 };
}
