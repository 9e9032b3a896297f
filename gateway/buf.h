/* buf.h — a growable byte buffer (gateway-owned; also lent to the backend's
 * metrics hook).
 *
 * Append-only with a sticky error: after an allocation failure or a size
 * over GW_BUF_MAX every append is a no-op and gw_buf_error() returns
 * -ENOMEM / -E2BIG, so a producer can append freely and check once.
 * The memory belongs to whoever called gw_buf_init(); gw_buf_free()
 * releases it.  Contents are not NUL-terminated unless the producer adds one.
 */
#ifndef GW_BUF_H
#define GW_BUF_H

#include <stddef.h>

#define GW_BUF_MAX ((size_t)1 << 30)   /* 1 GiB: a bug, not a response */

struct gw_buf {
	char *data;
	size_t len;
	size_t cap;
	int err;        /* 0, or the first failure (-ENOMEM, -E2BIG) */
};

void gw_buf_init(struct gw_buf *b);
void gw_buf_free(struct gw_buf *b);
/* Forget the contents, keep the memory (the error is cleared too). */
void gw_buf_reset(struct gw_buf *b);
void gw_buf_append(struct gw_buf *b, const void *data, size_t len);
void gw_buf_puts(struct gw_buf *b, const char *s);
void gw_buf_printf(struct gw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Make room for `len` more bytes; returns a pointer to them or NULL (sticky
 * error).  Commit what was written with gw_buf_commit(). */
char *gw_buf_reserve(struct gw_buf *b, size_t len);
void gw_buf_commit(struct gw_buf *b, size_t len);
/* Drop the first n bytes (n <= len). */
void gw_buf_consume(struct gw_buf *b, size_t n);
static inline int gw_buf_error(const struct gw_buf *b) { return b->err; }

#endif
