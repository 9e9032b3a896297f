/* buf.c — growable byte buffer with a sticky error. */
#include "gateway/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gw_buf_init(struct gw_buf *b)
{
	b->data = NULL;
	b->len = b->cap = 0;
	b->err = 0;
}

void gw_buf_free(struct gw_buf *b)
{
	free(b->data);
	gw_buf_init(b);
}

void gw_buf_reset(struct gw_buf *b)
{
	b->len = 0;
	b->err = 0;
}

char *gw_buf_reserve(struct gw_buf *b, size_t len)
{
	if (b->err)
		return NULL;
	if (len > GW_BUF_MAX || b->len > GW_BUF_MAX - len) {
		b->err = -E2BIG;
		return NULL;
	}
	size_t need = b->len + len;
	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < need)
			cap = cap > GW_BUF_MAX / 2 ? GW_BUF_MAX : cap * 2;
		char *p = realloc(b->data, cap);
		if (!p) {
			b->err = -ENOMEM;
			return NULL;
		}
		b->data = p;
		b->cap = cap;
	}
	return b->data + b->len;
}

void gw_buf_commit(struct gw_buf *b, size_t len)
{
	if (!b->err && len <= b->cap - b->len)
		b->len += len;
}

void gw_buf_append(struct gw_buf *b, const void *data, size_t len)
{
	if (len == 0)
		return;
	char *p = gw_buf_reserve(b, len);
	if (!p)
		return;
	memcpy(p, data, len);
	b->len += len;
}

void gw_buf_puts(struct gw_buf *b, const char *s)
{
	gw_buf_append(b, s, strlen(s));
}

void gw_buf_printf(struct gw_buf *b, const char *fmt, ...)
{
	va_list ap;
	char small[256];

	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		if (!b->err)
			b->err = -EINVAL;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		gw_buf_append(b, small, (size_t)n);
		return;
	}
	char *p = gw_buf_reserve(b, (size_t)n + 1);
	if (!p)
		return;
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void gw_buf_consume(struct gw_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}
