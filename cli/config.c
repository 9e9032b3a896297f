/* config.c — server address parsing and token lookup. */
#include "cli/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "vmm/err.h"

static int copy_str(char *dst, size_t cap, const char *s, size_t n)
{
	if (n >= cap)
		return -ENAMETOOLONG;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

int cli_target_parse(const char *s, struct cli_target *t)
{
	memset(t, 0, sizeof(*t));
	if (!s || !*s) {
		s = getenv("UNIFORK_LISTEN");
		if (!s || !*s)
			s = CLI_DEFAULT_ADDR;
	}
	const char *orig = s;
	if (strncasecmp(s, "https://", 8) == 0)
		return vmm_err(-EINVAL, "%s: https is not supported (runtimed serves plain HTTP; "
			       "use a TLS-terminating proxy or an SSH tunnel)", orig);
	if (strncasecmp(s, "http://", 7) == 0)
		s += 7;
	else if (strstr(s, "://"))
		return vmm_err(-EINVAL, "%s: only http:// URLs are supported", orig);

	const char *hs = s, *he;
	if (*s == '[') {
		he = strchr(s, ']');
		if (!he || he == s + 1)
			return vmm_err(-EINVAL, "%s: bad IPv6 address", orig);
		hs = s + 1;
		s = he + 1;
	} else {
		s += strcspn(s, ":/");
		he = s;
	}
	if (copy_str(t->host, sizeof(t->host), hs, (size_t)(he - hs)) < 0)
		return vmm_err(-EINVAL, "%s: host name too long", orig);
	for (const char *c = t->host; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == '@' || *c == '?' || *c == '#' || *c == 0x7f)
			return vmm_err(-EINVAL, "%s: bad host name", orig);
	if (!t->host[0])
		strcpy(t->host, "127.0.0.1");

	long port = 8080;
	if (*s == ':') {
		s++;
		size_t n = strspn(s, "0123456789");
		if (n == 0 || n > 5)
			return vmm_err(-EINVAL, "%s: bad port", orig);
		port = strtol(s, NULL, 10);
		if (port < 1 || port > 65535)
			return vmm_err(-EINVAL, "%s: port out of range", orig);
		s += n;
	}
	if (*s && *s != '/')
		return vmm_err(-EINVAL, "%s: unexpected '%c' after the address", orig, *s);
	size_t plen = strlen(s);
	while (plen && s[plen - 1] == '/')
		plen--;
	if (copy_str(t->prefix, sizeof(t->prefix), s, plen) < 0)
		return vmm_err(-EINVAL, "%s: path too long", orig);
	for (const char *c = t->prefix; *c; c++)
		if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f || *c == '?' || *c == '#')
			return vmm_err(-EINVAL, "%s: bad character in the path", orig);

	snprintf(t->port, sizeof(t->port), "%ld", port);
	int v6 = strchr(t->host, ':') != NULL;
	snprintf(t->hostport, sizeof(t->hostport), "%s%s%s:%ld", v6 ? "[" : "", t->host,
		 v6 ? "]" : "", port);
	snprintf(t->url, sizeof(t->url), "http://%s%s", t->hostport, t->prefix);
	return 0;
}

static int token_check(const char *tok, size_t n, const char *from)
{
	if (n == 0 || n > CLI_TOKEN_MAX)
		return vmm_err(-EINVAL, "token from %s must be 1..%d characters", from, CLI_TOKEN_MAX);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)tok[i] <= ' ' || (unsigned char)tok[i] >= 0x7f)
			return vmm_err(-EINVAL, "token from %s holds a character that cannot go "
				       "in an HTTP header", from);
	return 0;
}

static int read_token_file(const char *path, char *out, size_t cap, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t n = 0;
	int r = 0;
	for (;;) {
		if (n == cap) { /* more than fits: too long */
			r = -EFBIG;
			break;
		}
		ssize_t k = read(fd, out + n, cap - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = -errno;
			break;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	if (r < 0)
		return r;
	while (n && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' ' ||
		     out[n - 1] == '\t'))
		n--;
	size_t lead = 0;
	while (lead < n && (out[lead] == ' ' || out[lead] == '\t' || out[lead] == '\n' ||
			    out[lead] == '\r'))
		lead++;
	memmove(out, out + lead, n - lead);
	*len = n - lead;
	return 0;
}

int cli_token_resolve(const char *flag, char *out, size_t cap, char *file, size_t fcap,
		      enum cli_token_src *src)
{
	const char *data = getenv("UNIFORK_DATA");
	snprintf(file, fcap, "%s/token", data && *data ? data : "var");
	out[0] = '\0';
	*src = CLI_TOKEN_NONE;
	if (cap < CLI_TOKEN_MAX + 1)
		return vmm_err(-EINVAL, "token buffer too small");

	const char *tok = flag, *from = "--token";
	if (!tok) {
		tok = getenv("UNIFORK_TOKEN");
		from = "UNIFORK_TOKEN";
		if (tok && !*tok)
			tok = NULL;
	}
	if (tok) {
		size_t n = strlen(tok);
		int r = token_check(tok, n, from);
		if (r < 0)
			return r;
		memcpy(out, tok, n + 1);
		*src = flag ? CLI_TOKEN_FLAG : CLI_TOKEN_ENV;
		return 0;
	}

	size_t n = 0;
	int r = read_token_file(file, out, CLI_TOKEN_MAX + 1, &n);
	if (r == -ENOENT) {
		out[0] = '\0';
		return 0;
	}
	if (r == -EFBIG)
		return vmm_err(r, "%s: token longer than %d bytes", file, CLI_TOKEN_MAX);
	if (r < 0)
		return vmm_errno(r, "cannot read the token file %s", file);
	r = token_check(out, n, file);
	if (r < 0) {
		out[0] = '\0';
		return r;
	}
	out[n] = '\0';
	*src = CLI_TOKEN_FILE;
	return 0;
}
