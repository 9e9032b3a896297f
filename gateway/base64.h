/* base64.h — strict standard-alphabet base64 decoding (RFC 4648 §4) of
 * deploy packages.  Padding is optional; CR and LF are skipped (wrapped
 * output of base64(1)); anything else outside the alphabet is refused. */
#ifndef GW_BASE64_H
#define GW_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* The most bytes `len` characters can decode to. */
size_t gw_base64_max_decoded(size_t len);
/* Decode into out (room for gw_base64_max_decoded(len)); returns the decoded
 * length in *out_len, 0 or -EINVAL. */
int gw_base64_decode(const char *in, size_t len, uint8_t *out, size_t *out_len)
	__attribute__((warn_unused_result));

#endif
