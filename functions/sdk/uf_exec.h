/* uf_exec.h — the framing of the `exec` runtime (functions/sdk/EXEC.md) for
 * handlers written in C: header-only, plain read(2)/write(2) on fds 0 and 1
 * (no stdio buffering in the way).
 *
 *	int main(void)
 *	{
 *		... start-up work (runs before the snapshot) ...
 *		if (uf_exec_ready() < 0)
 *			return 1;
 *		uint8_t *ev;
 *		size_t len;
 *		while (uf_exec_read(&ev, &len) > 0) {
 *			uf_exec_respond(200, ev, len);    // one response per request
 *			free(ev);
 *		}
 *		return 0;                             // stdin closed: the agent is done
 *	}
 *
 * Log with fprintf(stderr, ...): stderr is the call's log.
 */
#ifndef UF_EXEC_H
#define UF_EXEC_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define UF_EXEC_MAX_FRAME (6u << 20)

static inline int uf_exec__io(int fd, void *p, size_t n, int is_write)
{
	uint8_t *b = (uint8_t *)p;
	size_t done = 0;
	while (done < n) {
		ssize_t r = is_write ? write(fd, b + done, n - done) : read(fd, b + done, n - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return done == 0 ? 0 : -EPIPE;   /* 0: EOF before anything */
		done += (size_t)r;
	}
	return 1;
}

static inline void uf_exec__le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* A response frame (also the ready frame, with status 0).  0 or -errno. */
static inline int uf_exec_respond(uint32_t status, const void *body, size_t len)
{
	uint8_t hdr[8];
	if (len > UF_EXEC_MAX_FRAME)
		return -E2BIG;
	uf_exec__le32(hdr, status);
	uf_exec__le32(hdr + 4, (uint32_t)len);
	int rc = uf_exec__io(1, hdr, sizeof hdr, 1);
	if (rc > 0 && len)
		rc = uf_exec__io(1, (void *)body, len, 1);
	return rc > 0 ? 0 : (rc == 0 ? -EPIPE : rc);
}

/* Tell the agent the start-up is done.  0 or -errno. */
static inline int uf_exec_ready(void)
{
	return uf_exec_respond(0, NULL, 0);
}

/* Tell the agent the start-up failed (status != 0) and why; then exit. */
static inline int uf_exec_fail(uint32_t status, const char *why)
{
	size_t n = strlen(why);
	return uf_exec_respond(status ? status : 1, why, n > 4096 ? 4096 : n);
}

/* Read one request: 1 with *event (malloc'd, free it; NULL when *len is
 * 0), 0 when the agent closed stdin, or -errno. */
static inline int uf_exec_read(uint8_t **event, size_t *len)
{
	uint8_t hdr[4];
	*event = NULL;
	*len = 0;
	int rc = uf_exec__io(0, hdr, sizeof hdr, 0);
	if (rc <= 0)
		return rc;
	uint32_t n = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
		     (uint32_t)hdr[3] << 24;
	if (n > UF_EXEC_MAX_FRAME)
		return -EPROTO;
	if (n == 0)
		return 1;
	uint8_t *b = (uint8_t *)malloc(n);
	if (!b)
		return -ENOMEM;
	rc = uf_exec__io(0, b, n, 0);
	if (rc <= 0) {
		free(b);
		return rc == 0 ? -EPIPE : rc;
	}
	*event = b;
	*len = n;
	return 1;
}

#endif
