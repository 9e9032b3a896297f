/* test_cli_fake.c — the fake HTTP server and child runner behind the CLI's
 * black-box tests (see test_cli_fake.h).  No tests of its own. */
#include "tests/unit/test_cli_fake.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/ut.h"

#define FAKE_IO_MS 20000
#define FAKE_MAX_BODY (64u << 20)

char *fake_http(int status, const char *headers, const char *body)
{
	char *s;
	size_t n = strlen(body);
	if (asprintf(&s, "HTTP/1.1 %d X\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
		     status, headers ? headers : "", n, body) < 0)
		UT_FAIL("asprintf");
	return s;
}

char *fake_http_chunked(int status, const char *headers, const char *body, size_t chunk)
{
	size_t n = strlen(body), cap = n * 2 + 4096, len = 0;
	char *s = malloc(cap);
	UT_ASSERT(s);
	len += (size_t)snprintf(s, cap, "HTTP/1.1 %d X\r\n%sTransfer-Encoding: chunked\r\n\r\n",
				status, headers ? headers : "");
	for (size_t off = 0; off < n; off += chunk) {
		size_t k = n - off < chunk ? n - off : chunk;
		len += (size_t)snprintf(s + len, cap - len, "%zx;ext=1\r\n", k);
		memcpy(s + len, body + off, k);
		len += k;
		memcpy(s + len, "\r\n", 2);
		len += 2;
	}
	snprintf(s + len, cap - len, "0\r\nX-Trailer: t\r\n\r\n");
	return s;
}

const char *fake_hdr(const struct fake_req *q, const char *name)
{
	for (int i = 0; i < q->nhdrs; i++)
		if (strcasecmp(q->hdrs[i].name, name) == 0)
			return q->hdrs[i].value;
	return NULL;
}

/* Read into buf until `pred` or EOF/timeout; returns bytes. */
static ssize_t read_some(int fd, char *buf, size_t cap)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, FAKE_IO_MS) <= 0)
		return -1;
	return read(fd, buf, cap);
}

/* Read a request (head, and the body unless head_only); fills q. */
static void read_request(int fd, struct fake_req *q, int head_only)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap + 1);
	char *end = NULL;
	UT_ASSERT(buf);
	while (!end) {
		UT_ASSERT(len < cap);
		ssize_t n = read_some(fd, buf + len, cap - len);
		if (n <= 0)
			UT_FAIL("fake server: no complete request head (%zd)", n);
		len += (size_t)n;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	size_t head = (size_t)(end - buf) + 4;
	*end = '\0';
	char *save, *line = strtok_r(buf, "\r\n", &save);
	UT_ASSERT(line);
	UT_EQ(sscanf(line, "%15s %2047s %15s", q->method, q->target, q->version), 3);
	while ((line = strtok_r(NULL, "\r\n", &save))) {
		UT_ASSERT(q->nhdrs < FAKE_MAX_HDRS);
		char *colon = strchr(line, ':');
		UT_ASSERT(colon);
		*colon = '\0';
		snprintf(q->hdrs[q->nhdrs].name, sizeof(q->hdrs[0].name), "%s", line);
		const char *v = colon + 1;
		while (*v == ' ')
			v++;
		snprintf(q->hdrs[q->nhdrs].value, sizeof(q->hdrs[0].value), "%s", v);
		q->nhdrs++;
	}
	UT_ASSERT(!fake_hdr(q, "transfer-encoding")); /* the CLI always sends a length */
	const char *cl = fake_hdr(q, "content-length");
	size_t want = cl ? strtoull(cl, NULL, 10) : 0;
	UT_ASSERT(want <= FAKE_MAX_BODY);
	q->body = malloc(want + 1);
	UT_ASSERT(q->body);
	size_t have = len - head < want ? len - head : want;
	memcpy(q->body, buf + head, have);
	free(buf);
	while (!head_only && have < want) {
		ssize_t n = read_some(fd, q->body + have, want - have);
		if (n <= 0)
			UT_FAIL("fake server: body cut short at %zu of %zu", have, want);
		have += (size_t)n;
	}
	q->body_len = have;
	q->body[have] = '\0';
}

static void write_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return; /* the client went away: its exit status tells the test */
		s += k;
		n -= (size_t)k;
	}
}

static char *subst_port(const char *s, int port)
{
	const char *at = strstr(s, "@PORT@");
	char *out;
	if (!at)
		out = strdup(s);
	else if (asprintf(&out, "%.*s%d%s", (int)(at - s), s, port, at + 6) < 0)
		out = NULL;
	UT_ASSERT(out);
	return out;
}

static char *read_memfd(int fd, size_t *len)
{
	off_t n = lseek(fd, 0, SEEK_END);
	UT_ASSERT(n >= 0);
	char *s = malloc((size_t)n + 1);
	UT_ASSERT(s);
	UT_EQ(pread(fd, s, (size_t)n, 0), n);
	s[n] = '\0';
	*len = (size_t)n;
	close(fd);
	return s;
}

/* Accept the next connection, or -1 once the child has exited without one. */
static int accept_or_exit(int lfd, pid_t pid, int *status, int *exited)
{
	for (int waited = 0; waited < FAKE_IO_MS; waited += 100) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		if (poll(&p, 1, 100) > 0)
			return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (!*exited && waitpid(pid, status, WNOHANG) == pid)
			*exited = 1;
		if (*exited) /* one last look at the backlog */
			return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	}
	UT_FAIL("fake server: the CLI neither connected nor exited");
}

void cli_run(const char *cwd, const char *const *argv, const char *const *env,
	     const void *in, size_t in_len, const struct fake_resp *resps, int nresps,
	     struct cli_run *r)
{
	memset(r, 0, sizeof(*r));
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	UT_ASSERT(lfd >= 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	UT_ASSERT(bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0);
	UT_ASSERT(listen(lfd, 8) == 0);
	UT_ASSERT(getsockname(lfd, (struct sockaddr *)&a, &alen) == 0);
	int port = ntohs(a.sin_port);

	char exe[4096], bin[4200];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	UT_ASSERT(n > 0);
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0'; /* .../tests */
	*strrchr(exe, '/') = '\0'; /* the build directory */
	snprintf(bin, sizeof(bin), "%s/bin/unifork", exe);
	if (access(bin, X_OK) != 0)
		UT_FAIL("%s not built (make host)", bin);

	char *args[64], *envs[64];
	int na = 0, ne = 0, has_url = 0, has_listen = 0;
	args[na++] = strdup("unifork");
	for (; argv && argv[na - 1]; na++) {
		UT_ASSERT(na < 63);
		args[na] = subst_port(argv[na - 1], port);
		has_url |= strncmp(args[na], "--url", 5) == 0;
	}
	args[na] = NULL;
	envs[ne++] = strdup("PATH=/usr/bin:/bin");
	for (int i = 0; env && env[i]; i++) {
		UT_ASSERT(ne < 62);
		envs[ne] = subst_port(env[i], port);
		has_listen |= strncmp(envs[ne], "UNIFORK_LISTEN=", 15) == 0;
		ne++;
	}
	if (!has_url && !has_listen && asprintf(&envs[ne++], "UNIFORK_LISTEN=127.0.0.1:%d", port) < 0)
		UT_FAIL("asprintf");
	envs[ne] = NULL;

	int ofd = memfd_create("out", MFD_CLOEXEC), efd = memfd_create("err", MFD_CLOEXEC);
	int ifd = memfd_create("in", MFD_CLOEXEC);
	UT_ASSERT(ofd >= 0 && efd >= 0 && ifd >= 0);
	UT_EQ(in_len ? write(ifd, in, in_len) : 0, in_len);
	UT_ASSERT(lseek(ifd, 0, SEEK_SET) == 0);

	fflush(NULL);
	pid_t pid = fork();
	UT_ASSERT(pid >= 0);
	if (pid == 0) {
		if (chdir(cwd) < 0 || dup2(ifd, 0) < 0 || dup2(ofd, 1) < 0 || dup2(efd, 2) < 0)
			_exit(120);
		execve(bin, args, envs);
		_exit(121);
	}
	close(ifd);
	for (int i = 0; i < na; i++)
		free(args[i]);
	for (int i = 0; i < ne; i++)
		free(envs[i]);

	int status = 0, exited = 0;
	for (int i = 0; i < nresps; i++) {
		int fd = accept_or_exit(lfd, pid, &status, &exited);
		if (fd < 0)
			break;
		struct fake_req *q = &r->req[r->nreqs < FAKE_MAX_REQS ? r->nreqs : FAKE_MAX_REQS - 1];
		r->nreqs++;
		read_request(fd, q, resps[i].mode == FAKE_EARLY);
		if (resps[i].mode == FAKE_REPLY || resps[i].mode == FAKE_EARLY)
			write_all(fd, resps[i].raw, resps[i].len ? resps[i].len : strlen(resps[i].raw));
		/* EARLY: a server that refused the body stops reading; the CLI must
		 * notice the answer rather than block on a full socket buffer. */
		if ((resps[i].mode == FAKE_HANG || resps[i].mode == FAKE_EARLY) && !exited) {
			UT_EQ(waitpid(pid, &status, 0), pid);
			exited = 1;
		}
		close(fd);
	}
	if (!exited) {
		/* Guard against a CLI that never exits. */
		for (int waited = 0; !exited; waited += 10) {
			if (waitpid(pid, &status, WNOHANG) == pid)
				exited = 1;
			else if (waited > FAKE_IO_MS) {
				kill(pid, SIGKILL);
				waitpid(pid, &status, 0);
				UT_FAIL("the CLI did not exit");
			} else
				usleep(10000);
		}
	}
	/* Any connection beyond the scripted ones is counted, not answered. */
	int extra;
	while ((extra = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		r->nreqs++;
		close(extra);
	}
	close(lfd);
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	r->out = read_memfd(ofd, &r->out_len);
	r->err = read_memfd(efd, &r->err_len);
}

void cli_run_free(struct cli_run *r)
{
	for (int i = 0; i < FAKE_MAX_REQS; i++)
		free(r->req[i].body);
	free(r->out);
	free(r->err);
}

char *fake_tmpdir(void)
{
	char *d = strdup("/tmp/ut-cli-XXXXXX");
	UT_ASSERT(d && mkdtemp(d));
	return d;
}

int fake_sh(const char *fmt, ...)
{
	char *cmd;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	UT_ASSERT(n > 0);
	fflush(NULL);
	int st = system(cmd);
	free(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void fake_rmtree(const char *path)
{
	if (path && strncmp(path, "/tmp/ut-cli-", 12) == 0)
		fake_sh("rm -rf '%s'", path);
}

void fake_write(const char *dir, const char *rel, const void *data, size_t len, int mode)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	for (char *s = path + 1; (s = strchr(s, '/')); s++) { /* mkdir -p */
		*s = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			UT_FAIL("mkdir %s: %s", path, strerror(errno));
		*s = '/';
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	UT_ASSERT(fd >= 0);
	UT_EQ(write(fd, data, len), len);
	UT_ASSERT(fchmod(fd, (mode_t)mode) == 0);
	close(fd);
}
