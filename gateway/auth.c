/* auth.c — bearer token comparison without early exit. */
#include "gateway/auth.h"

#include <string.h>
#include <strings.h>

bool gw_auth_ok(const char *token, const char *header)
{
	if (!token || !token[0])
		return true;
	if (!header || strncasecmp(header, "Bearer ", 7) != 0)
		return false;
	const char *given = header + 7;
	while (*given == ' ')
		given++;
	size_t tlen = strlen(token), glen = strlen(given);
	/* Every byte of the token is compared whatever the given length; the
	 * length difference is folded into the result. */
	unsigned char diff = (unsigned char)(tlen != glen);
	for (size_t i = 0; i < tlen; i++) {
		unsigned char g = i < glen ? (unsigned char)given[i] : 0;
		diff |= (unsigned char)(g ^ (unsigned char)token[i]);
	}
	return diff == 0;
}
