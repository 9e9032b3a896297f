/* http.c — TCP connect, request write and response read under a deadline. */
#include "cli/http.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vmm/err.h"

#define CLI_VERSION_UA "unifork-cli/0.1"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int left_ms(int64_t deadline)
{
	int64_t l = deadline - now_ms();
	return l < 0 ? 0 : l > 60000 ? 60000 : (int)l;
}

static int connect_one(const struct addrinfo *ai, int64_t deadline, int *out)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			ai->ai_protocol);
	if (fd < 0)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
		*out = fd;
		return 0;
	}
	int r = -errno;
	while (r == -EINPROGRESS || r == -EINTR) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int ms = left_ms(deadline);
		if (ms == 0) {
			r = -ETIMEDOUT;
			break;
		}
		int n = poll(&p, 1, ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			continue; /* re-check the deadline */
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			r = -errno;
		else
			r = -err;
	}
	if (r == 0) {
		*out = fd;
		return 0;
	}
	close(fd);
	return r;
}

static int http_connect(const struct cli_target *t, int64_t deadline, int *fd)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res;
	int g = getaddrinfo(t->host, t->port, &hints, &res);
	if (g != 0)
		return vmm_err(g == EAI_SYSTEM ? -errno : -EHOSTUNREACH, "%s: %s", t->host,
			       g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
	int r = -EHOSTUNREACH;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		r = connect_one(ai, deadline, fd);
		if (r == 0 || r == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	if (r == -ETIMEDOUT)
		return vmm_err(r, "connection timed out");
	return r < 0 ? vmm_errno(r, "connect") : 0;
}

static int build_head(const struct cli_target *t, const struct cli_http_req *req,
		      struct cli_buf *out)
{
	const char *vals[] = { req->token, req->ctype, req->accept, req->method, req->path };
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
		for (const char *c = vals[i]; c && *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				return vmm_err(-EINVAL, "control character in a request header");
	int r = cli_buf_appendf(out, "%s %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\n"
				"Connection: close\r\n", req->method, t->prefix, req->path,
				t->hostport, CLI_VERSION_UA);
	if (r == 0 && req->accept)
		r = cli_buf_appendf(out, "Accept: %s\r\n", req->accept);
	if (r == 0 && req->token)
		r = cli_buf_appendf(out, "Authorization: Bearer %s\r\n", req->token);
	if (r == 0 && req->has_body && req->ctype)
		r = cli_buf_appendf(out, "Content-Type: %s\r\n", req->ctype);
	if (r == 0 && req->has_body)
		r = cli_buf_appendf(out, "Content-Length: %zu\r\n", req->body_len);
	if (r == 0)
		r = cli_buf_append(out, "\r\n", 2);
	return r < 0 ? vmm_errno(r, "request") : 0;
}

/* Send head then body while reading; stop sending if the server answers. */
static int exchange(int fd, const struct cli_buf *head, const struct cli_http_req *req,
		    int64_t deadline, double timeout_s, struct cli_http_resp *resp)
{
	size_t total = head->len + (req->has_body ? req->body_len : 0), sent = 0;
	int send_err = 0, done = 0;
	char buf[65536];

	while (!done) {
		int sending = sent < total && !send_err;
		struct pollfd p = { .fd = fd, .events = POLLIN | (sending ? POLLOUT : 0) };
		int ms = left_ms(deadline);
		if (ms == 0)
			return vmm_err(-ETIMEDOUT, "no complete response within %g s (--timeout)",
				       timeout_s);
		int n = poll(&p, 1, ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return vmm_errno(-errno, "poll");
		if (n == 0)
			continue;
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t k = recv(fd, buf, sizeof(buf), 0);
			if (k < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (k < 0 && sent < total && !cli_http_have_head(resp))
				return vmm_errno(-errno, "sending the request");
			if (k < 0)
				return vmm_errno(-errno, "receiving the response");
			int r = k ? cli_http_feed(resp, buf, (size_t)k) : cli_http_eof(resp);
			if (r < 0 && k == 0 && send_err && !cli_http_have_head(resp))
				return vmm_errno(send_err, "sending the request");
			if (r < 0)
				return r;
			done = r;
			continue;
		}
		if (sending && (p.revents & POLLOUT)) {
			const char *src;
			size_t len;
			if (sent < head->len) {
				src = head->data + sent;
				len = head->len - sent;
			} else {
				src = (const char *)req->body + (sent - head->len);
				len = total - sent;
			}
			ssize_t k = send(fd, src, len, MSG_NOSIGNAL);
			if (k < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (k < 0) {
				/* Maybe the server answered early and closed: keep reading. */
				send_err = -errno;
				shutdown(fd, SHUT_WR);
				continue;
			}
			/* No half-close after the last byte: some servers take a
			 * client's FIN as the end of the whole connection. */
			sent += (size_t)k;
		}
	}
	return 0;
}

int cli_http_do(const struct cli_target *t, const struct cli_http_req *req, double timeout_s,
		struct cli_http_resp *resp, int *connected)
{
	int64_t deadline = now_ms() + (int64_t)(timeout_s * 1000.0);
	struct cli_buf head = {0};
	int fd = -1;

	*connected = 0;
	int r = build_head(t, req, &head);
	if (r == 0)
		r = http_connect(t, deadline, &fd);
	if (r == 0) {
		*connected = 1;
		r = exchange(fd, &head, req, deadline, timeout_s, resp);
		close(fd);
	}
	cli_buf_free(&head);
	return r;
}

int cli_http_path_escape(struct cli_buf *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		int r;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '~') { /* '.' escaped: no "." or ".." segments */
			r = cli_buf_append(out, s, 1);
		} else {
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };
			r = cli_buf_append(out, e, 3);
		}
		if (r < 0)
			return r;
	}
	return 0;
}
