/* frame.c — u32-LE length-prefixed frames: blocking I/O and an incremental
 * decoder (contracts in frame.h). */
#include "proto/frame.h"

#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* First payload buffer; later ones double, capped by the declared length. */
#define FRAME_BUF_MIN (64u << 10)

void uf_frame_put_hdr(uint8_t hdr[UF_FRAME_HDR_LEN], uint32_t len)
{
	hdr[0] = (uint8_t)len;
	hdr[1] = (uint8_t)(len >> 8);
	hdr[2] = (uint8_t)(len >> 16);
	hdr[3] = (uint8_t)(len >> 24);
}

uint32_t uf_frame_get_hdr(const uint8_t hdr[UF_FRAME_HDR_LEN])
{
	return (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
	       (uint32_t)hdr[3] << 24;
}

void uf_frame_free(struct uf_frame *f)
{
	free(f->data);
	f->data = NULL;
	f->len = 0;
}

static size_t clamp_max(size_t max)
{
	return (max == 0 || max > UF_FRAME_MAX) ? UF_FRAME_MAX : max;
}

/* Grow *buf so it holds at least `need` bytes, doubling from FRAME_BUF_MIN
 * but never beyond `limit` (the declared, already bounded, frame length). */
static int grow(uint8_t **buf, size_t *cap, size_t need, size_t limit)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap : FRAME_BUF_MIN;
	while (ncap < need)
		ncap *= 2;
	if (ncap > limit)
		ncap = limit;
	uint8_t *nb = realloc(*buf, ncap);
	if (!nb)
		return -ENOMEM;
	*buf = nb;
	*cap = ncap;
	return 0;
}

/* ---- blocking I/O with an overall deadline ---- */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for `events` on fd until the deadline (-1: none). */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int tmo = -1;
		if (deadline >= 0) {
			int64_t left = deadline - now_ms();
			if (left <= 0)
				return -ETIMEDOUT;
			tmo = left > 1000000 ? 1000000 : (int)left;
		}
		struct pollfd pfd = { .fd = fd, .events = events };
		int n = poll(&pfd, 1, tmo);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n > 0)
			return 0; /* ready, or HUP/ERR: the next I/O call says which */
	}
}

static int64_t deadline_of(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

/* Read exactly len bytes.  *got counts what arrived (to tell EOF at a frame
 * boundary from EOF inside one).  Returns 0, -EPIPE on EOF, -errno. */
static int read_full(int fd, uint8_t *p, size_t len, size_t *got, int64_t deadline)
{
	while (*got < len) {
		if (deadline >= 0) {
			int rc = wait_fd(fd, POLLIN, deadline);
			if (rc < 0)
				return rc;
		}
		ssize_t n = read(fd, p + *got, len - *got);
		if (n > 0) {
			*got += (size_t)n;
			continue;
		}
		if (n == 0)
			return -EPIPE;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			int rc = wait_fd(fd, POLLIN, deadline);
			if (rc < 0)
				return rc;
			continue;
		}
		return -errno;
	}
	return 0;
}

static int write_iov(int fd, struct iovec *iov, int cnt, int64_t deadline)
{
	bool sock = true;

	while (cnt > 0) {
		if (iov->iov_len == 0) {
			iov++;
			cnt--;
			continue;
		}
		if (deadline >= 0) {
			int rc = wait_fd(fd, POLLOUT, deadline);
			if (rc < 0)
				return rc;
		}
		ssize_t n;
		if (sock) {
			struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)cnt };
			/* With a deadline, never let the kernel block past it. */
			n = sendmsg(fd, &mh, MSG_NOSIGNAL | (deadline >= 0 ? MSG_DONTWAIT : 0));
			if (n < 0 && errno == ENOTSOCK) {
				sock = false;
				continue;
			}
		} else {
			n = writev(fd, iov, cnt);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				int rc = wait_fd(fd, POLLOUT, deadline);
				if (rc < 0)
					return rc;
				continue;
			}
			return -errno;
		}
		size_t left = (size_t)n;
		while (cnt > 0 && left >= iov->iov_len) {
			left -= iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return 0;
}

int uf_frame_write(int fd, const void *payload, size_t len, int timeout_ms)
{
	if (len > UF_FRAME_MAX)
		return -EMSGSIZE;
	uint8_t hdr[UF_FRAME_HDR_LEN];
	uf_frame_put_hdr(hdr, (uint32_t)len);
	struct iovec iov[2] = {
		{ .iov_base = hdr, .iov_len = sizeof hdr },
		{ .iov_base = (void *)payload, .iov_len = len },
	};
	return write_iov(fd, iov, 2, deadline_of(timeout_ms));
}

int uf_frame_read(int fd, struct uf_frame *out, size_t max, int timeout_ms)
{
	int64_t deadline = deadline_of(timeout_ms);
	uint8_t hdr[UF_FRAME_HDR_LEN];
	size_t got = 0;
	int rc;

	out->data = NULL;
	out->len = 0;
	max = clamp_max(max);
	rc = read_full(fd, hdr, sizeof hdr, &got, deadline);
	if (rc == -EPIPE && got == 0)
		return UF_FRAME_CLOSED;
	if (rc < 0)
		return rc;

	size_t want = uf_frame_get_hdr(hdr);
	if (want > max)
		return -EMSGSIZE;
	if (want == 0)
		return 0;

	uint8_t *buf = NULL;
	size_t cap = 0;
	got = 0;
	while (got < want) {
		/* Grow with the data, so a peer that declares a big frame and then
		 * stalls pins at most FRAME_BUF_MIN (or twice what it sent). */
		rc = grow(&buf, &cap, got + 1, want);
		if (rc < 0)
			goto err_free;
		rc = read_full(fd, buf, cap, &got, deadline);
		if (rc < 0)
			goto err_free;
	}
	out->data = buf;
	out->len = want;
	return 0;

err_free:
	free(buf);
	return rc;
}

/* ---- incremental decoder ---- */

void uf_frame_dec_init(struct uf_frame_dec *d, size_t max)
{
	memset(d, 0, sizeof *d);
	d->max = clamp_max(max);
}

void uf_frame_dec_free(struct uf_frame_dec *d)
{
	free(d->buf);
	d->buf = NULL;
	d->have = d->cap = 0;
	d->hdr_have = 0;
	d->ready = 0;
}

int uf_frame_dec_feed(struct uf_frame_dec *d, const void *p, size_t n, size_t *used)
{
	const uint8_t *src = p;
	size_t off = 0;
	int rc;

	*used = 0;
	if (d->err)
		return d->err;
	if (d->ready)
		return -EBUSY;

	if (d->hdr_have < UF_FRAME_HDR_LEN) {
		size_t k = UF_FRAME_HDR_LEN - d->hdr_have;
		if (k > n)
			k = n;
		memcpy(d->hdr + d->hdr_have, src, k);
		d->hdr_have += k;
		off += k;
		if (d->hdr_have < UF_FRAME_HDR_LEN) {
			*used = off;
			return 0;
		}
		d->want = uf_frame_get_hdr(d->hdr);
		d->have = 0;
		if (d->want > d->max) {
			*used = off;
			d->err = -EMSGSIZE;
			return d->err;
		}
	}

	size_t k = d->want - d->have;
	if (k > n - off)
		k = n - off;
	if (k > 0) {
		rc = grow(&d->buf, &d->cap, d->have + k, d->want);
		if (rc < 0) {
			*used = off;
			d->err = rc;
			return rc;
		}
		memcpy(d->buf + d->have, src + off, k);
		d->have += k;
		off += k;
	}
	*used = off;
	if (d->have < d->want)
		return 0;
	d->ready = 1;
	return 1;
}

int uf_frame_dec_take(struct uf_frame_dec *d, struct uf_frame *out)
{
	if (!d->ready) {
		out->data = NULL;
		out->len = 0;
		return -EAGAIN;
	}
	out->len = d->want;
	out->data = d->want ? d->buf : NULL;
	if (!d->want)
		free(d->buf);
	d->buf = NULL;
	d->cap = d->have = d->want = 0;
	d->hdr_have = 0;
	d->ready = 0;
	return 0;
}

int uf_frame_dec_eof(const struct uf_frame_dec *d)
{
	if (d->ready)
		return 0; /* a whole frame is waiting: nothing was cut */
	return (d->hdr_have > 0) ? -EPIPE : 0;
}
