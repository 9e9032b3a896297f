/* base64.c — base64 decoder for deploy packages. */
#include "gateway/base64.h"

#include <errno.h>

size_t gw_base64_max_decoded(size_t len)
{
	return len / 4 * 3 + 3;
}

static int value_of(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int gw_base64_decode(const char *in, size_t len, uint8_t *out, size_t *out_len)
{
	uint32_t acc = 0;
	unsigned nbits = 0, pad = 0, nchars = 0;
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		int v = value_of(c);
		if (v < 0 || pad)               /* data after padding */
			return -EINVAL;
		acc = (acc << 6) | (uint32_t)v;
		nbits += 6;
		nchars++;
		if (nbits >= 8) {
			nbits -= 8;
			out[o++] = (uint8_t)(acc >> nbits);
		}
	}
	/* 1 leftover character is never valid; leftover bits must be zero;
	 * padding, when present, must complete the last quantum. */
	unsigned rem = nchars % 4;
	if (rem == 1 || (acc & ((1u << nbits) - 1)) != 0)
		return -EINVAL;
	if (pad && (rem == 0 || pad != 4 - rem))
		return -EINVAL;
	*out_len = o;
	return 0;
}
