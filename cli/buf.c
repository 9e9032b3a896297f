/* buf.c — growable byte buffer and base64 encoding for the CLI. */
#include "cli/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_buf_reserve(struct cli_buf *b, size_t extra)
{
	if (extra > SIZE_MAX / 2 - b->len - 1)
		return -EOVERFLOW;
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	char *p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int cli_buf_append(struct cli_buf *b, const void *p, size_t n)
{
	int r = cli_buf_reserve(b, n);
	if (r < 0)
		return r;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int cli_buf_appendf(struct cli_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	int r = cli_buf_reserve(b, (size_t)n);
	if (r < 0)
		return r;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void cli_buf_free(struct cli_buf *b)
{
	free(b->data);
	*b = (struct cli_buf){0};
}

int cli_base64_encode(const void *in, size_t n, struct cli_buf *out)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const uint8_t *s = in;

	if (n / 3 >= SIZE_MAX / 4 - 1)
		return -EOVERFLOW;
	int r = cli_buf_reserve(out, (n + 2) / 3 * 4);
	if (r < 0)
		return r;
	char *d = out->data + out->len;
	size_t i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
		*d++ = tab[v >> 18 & 63];
		*d++ = tab[v >> 12 & 63];
		*d++ = tab[v >> 6 & 63];
		*d++ = tab[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)s[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)s[i + 1] << 8;
		*d++ = tab[v >> 18 & 63];
		*d++ = tab[v >> 12 & 63];
		*d++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
		*d++ = '=';
	}
	out->len = (size_t)(d - out->data);
	out->data[out->len] = '\0';
	return 0;
}
