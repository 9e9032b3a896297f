/* handler_diag.c — diagnostics the echo runtime answers when a call's
 * content type is AGENT_DIAG_CONTENT_TYPE, so tests can look inside a clone:
 *
 *   rand N        N (1..256) bytes from getrandom(), hex      (CRNG reseeded?)
 *   time          CLOCK_REALTIME in ns, decimal               (clock fixed up?)
 *   boottime      CLOCK_BOOTTIME in ns, decimal               (uptime continues?)
 *   set KEY VAL   store VAL under agent_diag_dir/KEY          (clone isolation)
 *   get KEY       the stored value, or status 404
 *   touch N       allocate and write N (1..65536) 4 KiB pages, keep them
 *
 * KEY is 1-64 of [A-Za-z0-9_-].  Anything else is a 400 with a message.
 */
#include "guest-agent/handler.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DIAG_VAL_MAX  4096

const char *agent_diag_dir = "/run/uf-diag";

static int reply_text(struct agent_reply *out, uint32_t status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int reply_text(struct agent_reply *out, uint32_t status, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	out->status = status;
	out->body = (uint8_t *)s;
	out->body_len = (size_t)n;
	snprintf(out->content_type, sizeof out->content_type, "text/plain");
	return 0;
}

static int valid_key(const char *k)
{
	size_t n = strlen(k);
	if (n == 0 || n > 64)
		return 0;
	for (const char *p = k; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
			return 0;
	return 1;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int diag_rand(unsigned n, struct agent_reply *out)
{
	uint8_t buf[256];
	char hex[513];
	if (n == 0 || n > sizeof(buf))
		return reply_text(out, 400, "rand: N must be 1..256");
	ssize_t got = getrandom(buf, n, 0);
	if (got != (ssize_t)n)
		return reply_text(out, 500, "getrandom: %s", strerror(errno));
	for (unsigned i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", buf[i]);
	return reply_text(out, 200, "%s", hex);
}

static int diag_set(const char *key, const char *val, struct agent_reply *out)
{
	char path[4096];
	if (mkdir(agent_diag_dir, 0700) < 0 && errno != EEXIST)
		return reply_text(out, 500, "mkdir %s: %s", agent_diag_dir, strerror(errno));
	snprintf(path, sizeof path, "%s/%s", agent_diag_dir, key);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return reply_text(out, 500, "open %s: %s", path, strerror(errno));
	size_t len = strlen(val);
	ssize_t w = write(fd, val, len);
	close(fd);
	if (w != (ssize_t)len)
		return reply_text(out, 500, "write %s failed", path);
	return reply_text(out, 200, "ok");
}

static int diag_get(const char *key, struct agent_reply *out)
{
	char path[4096], val[DIAG_VAL_MAX + 1];
	snprintf(path, sizeof path, "%s/%s", agent_diag_dir, key);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return reply_text(out, errno == ENOENT ? 404 : 500, "%s: %s", key, strerror(errno));
	ssize_t n = read(fd, val, DIAG_VAL_MAX);
	close(fd);
	if (n < 0)
		return reply_text(out, 500, "read %s: %s", path, strerror(errno));
	val[n] = 0;
	return reply_text(out, 200, "%s", val);
}

static int diag_touch(unsigned long pages, struct agent_reply *out)
{
	if (pages == 0 || pages > 65536)
		return reply_text(out, 400, "touch: N must be 1..65536");
	uint8_t *p = malloc(pages * 4096);   /* kept on purpose: the test counts it */
	if (!p)
		return reply_text(out, 500, "touch: out of memory");
	for (unsigned long i = 0; i < pages; i++)
		p[i * 4096] = (uint8_t)(i | 1);
	return reply_text(out, 200, "ok %lu", pages);
}

int agent_diag_invoke(const struct agent_call *call, struct agent_reply *out)
{
	char cmd[DIAG_VAL_MAX + 80], key[80], val[DIAG_VAL_MAX + 1];
	unsigned long n;

	if (call->len >= sizeof(cmd))
		return reply_text(out, 400, "diag: request over %zu bytes", sizeof(cmd) - 1);
	memcpy(cmd, call->event, call->len);
	cmd[call->len] = 0;

	if (sscanf(cmd, "rand %lu", &n) == 1)
		return diag_rand((unsigned)(n > 256 ? 0 : n), out);
	if (strcmp(cmd, "time") == 0)
		return reply_text(out, 200, "%llu", (unsigned long long)clock_ns(CLOCK_REALTIME));
	if (strcmp(cmd, "boottime") == 0)
		return reply_text(out, 200, "%llu", (unsigned long long)clock_ns(CLOCK_BOOTTIME));
	if (sscanf(cmd, "set %79s %4096s", key, val) == 2 && valid_key(key))
		return diag_set(key, val, out);
	if (sscanf(cmd, "get %79s", key) == 1 && valid_key(key))
		return diag_get(key, out);
	if (sscanf(cmd, "touch %lu", &n) == 1)
		return diag_touch(n, out);
	return reply_text(out, 400, "diag: unknown request (rand N | time | boottime | set K V | get K | touch N)");
}
