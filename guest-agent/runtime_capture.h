/* runtime_capture.h — a handler's output as logs.
 *
 * fd capture (native and python handlers run inside the agent): between
 * begin and end, fds 1 and 2 point at one memfd, so printf, write(2), a
 * Python print and a C extension's output all land there in order; end
 * puts the old fds back and hands out the last `max` bytes.  What a handler
 * writes costs guest memory until the call ends (its function's memory
 * budget), and only the tail is kept.
 *
 * Tail buffer (exec handlers' stderr, read from a pipe): keeps the last
 * `cap` bytes of whatever is appended.
 *
 * Either way, when output was dropped, what is handed out starts with one
 * line AGENT_LOG_MARKER "N bytes dropped]\n" and is still at most the cap
 * (the marker takes the place of the oldest kept bytes).
 */
#ifndef UF_AGENT_RUNTIME_CAPTURE_H
#define UF_AGENT_RUNTIME_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

struct agent_capture {
	int fd;                      /* the memfd; -1 before the first begin */
	int saved_out, saved_err;    /* the real fds 1 and 2 while capturing */
	int active;
};

#define AGENT_CAPTURE_INIT { .fd = -1, .saved_out = -1, .saved_err = -1, .active = 0 }

/* Flush stdio and point fds 1 and 2 at the (emptied) capture file.
 * 0 or -errno (nothing changed then). */
int agent_capture_begin(struct agent_capture *c) __attribute__((warn_unused_result));

/* Flush stdio, restore fds 1 and 2, and return the last `max` bytes of
 * what was written (malloc'd into *out, NULL when nothing was; caller
 * frees).  0 or -errno (the fds are restored either way). */
int agent_capture_end(struct agent_capture *c, size_t max, uint8_t **out, size_t *len);

/* Close the capture file (after end). */
void agent_capture_release(struct agent_capture *c);

#define AGENT_LOG_MARKER "[unifork: log truncated, "

struct agent_tail {
	uint8_t *buf;                /* ring of cap bytes */
	size_t cap, start, len;
	uint64_t total;              /* bytes appended in all */
	uint64_t taken;              /* total at the last take */
};

/* Put the marker for `dropped` bytes at the start of buf (n bytes of kept
 * output), shifting out its oldest bytes; n stays n.  No-op when nothing
 * was dropped or buf is too small for the marker. */
void agent_log_mark(uint8_t *buf, size_t n, uint64_t dropped);

int agent_tail_init(struct agent_tail *t, size_t cap) __attribute__((warn_unused_result));
void agent_tail_append(struct agent_tail *t, const uint8_t *p, size_t n);
/* The kept bytes in order, malloc'd (NULL when empty); then empties t.
 * 0 or -ENOMEM. */
int agent_tail_take(struct agent_tail *t, uint8_t **out, size_t *len);
void agent_tail_free(struct agent_tail *t);

#endif
