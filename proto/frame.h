/* frame.h — length-prefixed framing for the agent protocol: a frame is a
 * u32 little-endian payload length followed by that many payload bytes (a
 * packed ufagent.Envelope, see proto/agent_msg.h).  This module owns only the
 * byte stream: blocking helpers for a connected fd and an incremental decoder
 * for nonblocking event loops.  It knows nothing about protobuf.
 *
 * Nothing read from the wire is trusted: a declared length over the
 * decoder's maximum is refused before any payload byte is read or any
 * buffer is sized from it, and payload buffers grow with the bytes that
 * actually arrived, never ahead of them by more than a factor of two.
 *
 * Shared by the host (VMM, forker, tests) and the guest agent.
 */
#ifndef UF_PROTO_FRAME_H
#define UF_PROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <sys/types.h>

#define UF_WUR __attribute__((warn_unused_result))

/* Header bytes before each payload. */
#define UF_FRAME_HDR_LEN    4u
/* Largest payload (packed envelope) a frame may carry.  An Invoke or Result
 * with a 6 MiB body fits with room to spare for the other fields. */
#define UF_FRAME_MAX        (8u << 20)

/* uf_frame_read(): the peer closed the stream cleanly between frames.
 * EOF after part of a frame is -EPIPE instead. */
#define UF_FRAME_CLOSED     (-ENODATA)

/* A frame's payload.  `data` is malloc'd and owned by whoever holds the
 * struct; release with uf_frame_free().  A zero-length frame has data NULL. */
struct uf_frame {
	uint8_t *data;
	size_t len;
};

void uf_frame_free(struct uf_frame *f);

/* Write one frame (header + payload) to `fd`, looping over short writes and
 * EINTR; on a nonblocking fd it polls for POLLOUT.  Sockets are written with
 * MSG_NOSIGNAL, so a vanished peer gives -EPIPE, not SIGPIPE (other fd types
 * fall back to write(2): callers writing pipes must ignore SIGPIPE).
 * timeout_ms bounds the whole frame (-1: no limit).
 * Returns 0, -EMSGSIZE (len > UF_FRAME_MAX; nothing written), -ETIMEDOUT,
 * or the -errno of the failed write/poll (the frame may be partly sent: the
 * stream is then unusable and the caller should close it). */
int uf_frame_write(int fd, const void *payload, size_t len, int timeout_ms) UF_WUR;

/* Read exactly one frame from `fd` into *out (caller frees), looping over
 * short reads and EINTR; on a nonblocking fd it polls for POLLIN.
 * timeout_ms bounds the whole frame (-1: no limit).  `max` is the largest
 * payload accepted (0 = UF_FRAME_MAX; never above it).
 * Returns 0 with *out set; UF_FRAME_CLOSED on EOF before the first header
 * byte; -EPIPE on EOF inside a frame; -EMSGSIZE when the declared length
 * exceeds `max` (nothing allocated; the payload is not consumed, so close
 * the stream); -ETIMEDOUT; -ENOMEM; or the -errno of read/poll.
 * On any error *out is {NULL, 0}. */
int uf_frame_read(int fd, struct uf_frame *out, size_t max, int timeout_ms) UF_WUR;

/* Incremental decoder: feed whatever bytes arrived, get whole frames out.
 * Usage (nonblocking loop):
 *
 *	n = read(fd, buf, sizeof buf);       // n == 0: uf_frame_dec_eof()
 *	for (size_t off = 0; off < n; ) {
 *		size_t used;
 *		int rc = uf_frame_dec_feed(&d, buf + off, n - off, &used);
 *		off += used;
 *		if (rc < 0) { ...error: send Error, close...; break; }
 *		if (rc == 1) { struct uf_frame f; uf_frame_dec_take(&d, &f); ...; uf_frame_free(&f); }
 *	}
 *
 * Errors are sticky: after -EMSGSIZE or -ENOMEM every feed returns it. */
struct uf_frame_dec {
	size_t max;          /* largest payload accepted */
	uint8_t hdr[UF_FRAME_HDR_LEN];
	size_t hdr_have;     /* header bytes seen for the current frame */
	size_t want;         /* declared payload length (valid once hdr_have == 4) */
	uint8_t *buf;        /* payload bytes so far */
	size_t have, cap;
	int ready;           /* a complete frame waits in buf for _take() */
	int err;             /* sticky negative errno, 0 if fine */
};

/* `max` 0 means UF_FRAME_MAX; larger values are clamped to it. */
void uf_frame_dec_init(struct uf_frame_dec *d, size_t max);
/* Frees any partial frame; the decoder may be re-initialised afterwards. */
void uf_frame_dec_free(struct uf_frame_dec *d);

/* Consume bytes from p[0..n).  Stops right after a frame completes.
 * *used = bytes consumed.  Returns 1 when a frame is ready (take it before
 * feeding more), 0 when more bytes are needed, -EMSGSIZE when the declared
 * length is over max (no payload buffer was allocated), -ENOMEM, or
 * -EBUSY if a ready frame was not taken. */
int uf_frame_dec_feed(struct uf_frame_dec *d, const void *p, size_t n, size_t *used) UF_WUR;

/* Move the ready frame to *out (caller frees); -EAGAIN if none is ready. */
int uf_frame_dec_take(struct uf_frame_dec *d, struct uf_frame *out) UF_WUR;

/* The stream ended: 0 if it ended on a frame boundary, -EPIPE if a frame was
 * cut short. */
int uf_frame_dec_eof(const struct uf_frame_dec *d) UF_WUR;

/* Little-endian header helpers (exposed for tests and fuzzers). */
void uf_frame_put_hdr(uint8_t hdr[UF_FRAME_HDR_LEN], uint32_t len);
uint32_t uf_frame_get_hdr(const uint8_t hdr[UF_FRAME_HDR_LEN]);

#endif
