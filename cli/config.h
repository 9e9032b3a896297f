/* config.h — where the CLI connects and with which token.
 *
 * Server address: --url, else $UNIFORK_LISTEN, else 127.0.0.1:8080.
 * Accepted forms: HOST, HOST:PORT, [V6]:PORT, :PORT (= 127.0.0.1), each
 * optionally prefixed with http:// and followed by a path prefix (for a
 * runtimed behind a reverse proxy).  https is refused with a reason: the
 * CLI speaks plain HTTP only.
 *
 * Token: --token, else $UNIFORK_TOKEN, else the file ${UNIFORK_DATA:-./var}/token
 * (what runtimed generates on first start; surrounding whitespace ignored).  A
 * missing file means "no token"; an unreadable one is an error.  A token is
 * refused unless it is 1..4096 visible ASCII characters, so it can never
 * break the Authorization header.
 */
#ifndef CLI_CONFIG_H
#define CLI_CONFIG_H

#include <stddef.h>

#define CLI_DEFAULT_ADDR "127.0.0.1:8080"
#define CLI_TOKEN_MAX 4096

struct cli_target {
	char host[256];     /* for getaddrinfo (brackets removed) */
	char port[6];
	char hostport[300]; /* for the Host header */
	char prefix[512];   /* path prefix, "" or "/x/y" without trailing slash */
	char url[1100];     /* as shown to the user: http://hostport/prefix */
};

/* Parse `s` (NULL: the default chain above).  0 or -EINVAL with context. */
int cli_target_parse(const char *s, struct cli_target *t) __attribute__((warn_unused_result));

enum cli_token_src {
	CLI_TOKEN_NONE,
	CLI_TOKEN_FLAG,
	CLI_TOKEN_ENV,
	CLI_TOKEN_FILE,
};

/* Resolve the token.  `flag` is --token or NULL.  Writes it to out[cap]
 * (empty with CLI_TOKEN_NONE), the file consulted to file[fcap].  0 or
 * -errno with context. */
int cli_token_resolve(const char *flag, char *out, size_t cap, char *file, size_t fcap,
		      enum cli_token_src *src) __attribute__((warn_unused_result));

#endif
