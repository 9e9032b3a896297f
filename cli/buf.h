/* buf.h — growable byte buffer used by the CLI (HTTP bodies, packages,
 * base64).  The buffer owns its memory; data is always NUL-terminated one
 * past len so text bodies can be handed to string functions.  A buffer
 * starts zeroed (struct cli_buf b = {0}) and is released with cli_buf_free().
 */
#ifndef CLI_BUF_H
#define CLI_BUF_H

#include <stddef.h>

struct cli_buf {
	char *data;
	size_t len;
	size_t cap;
};

/* Make room for `extra` more bytes (plus the NUL).  0 or -ENOMEM/-EOVERFLOW. */
int cli_buf_reserve(struct cli_buf *b, size_t extra) __attribute__((warn_unused_result));
int cli_buf_append(struct cli_buf *b, const void *p, size_t n) __attribute__((warn_unused_result));
int cli_buf_appendf(struct cli_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), warn_unused_result));
void cli_buf_free(struct cli_buf *b);

/* Append the standard base64 (RFC 4648, padded) encoding of in[0..n). */
int cli_base64_encode(const void *in, size_t n, struct cli_buf *out) __attribute__((warn_unused_result));

#endif
