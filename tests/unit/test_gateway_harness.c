/* test_gateway_harness.c — the gateway on a loop thread and a raw HTTP
 * client for the gateway tests (no tests of its own); the fake backend is
 * in test_gateway_fake.c. */
#include "tests/unit/test_gateway_harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "tests/unit/ut.h"

/* ---- server thread ---- */

static void on_done(struct gw_server *s, void *arg)
{
	struct gwt *t = arg;
	uv_close((uv_handle_t *)&t->ctl, NULL);
	pthread_mutex_lock(&t->lock);
	t->stopped = true;
	pthread_mutex_unlock(&t->lock);
}

static void on_ctl(uv_async_t *a)
{
	struct gwt *t = a->data;
	pthread_mutex_lock(&t->lock);
	bool stop = t->stop_requested;
	unsigned deadline = t->stop_deadline_ms;
	pthread_mutex_unlock(&t->lock);
	if (stop)
		gw_server_stop(t->srv, deadline, on_done, t);
}

static void *server_thread(void *arg)
{
	struct gwt *t = arg;
	int r = gw_server_start(&t->loop, &t->cfg, &gwt_ops, &t->fake, &t->srv);
	pthread_mutex_lock(&t->lock);
	t->port = r ? -1 : gw_server_port(t->srv);
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	if (r)
		return NULL;
	uv_run(&t->loop, UV_RUN_DEFAULT);
	gw_server_free(t->srv);
	return NULL;
}

void gwt_start(struct gwt *t, const struct gw_config *cfg)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->fake.lock, NULL);
	pthread_cond_init(&t->fake.cond, NULL);
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	if (cfg) {
		t->cfg = *cfg;
	} else {
		gw_config_defaults(&t->cfg);
		t->cfg.token = GWT_TOKEN;
	}
	t->cfg.listen = "127.0.0.1:0";
	UT_EQ(uv_loop_init(&t->loop), 0);
	UT_EQ(uv_async_init(&t->loop, &t->ctl, on_ctl), 0);
	t->ctl.data = t;
	UT_EQ(pthread_create(&t->thread, NULL, server_thread, t), 0);
	pthread_mutex_lock(&t->lock);
	while (t->port == 0)
		pthread_cond_wait(&t->cond, &t->lock);
	pthread_mutex_unlock(&t->lock);
	UT_ASSERT(t->port > 0);
}

void gwt_stop_begin(struct gwt *t, unsigned deadline_ms)
{
	pthread_mutex_lock(&t->lock);
	t->stop_requested = true;
	t->stop_deadline_ms = deadline_ms;
	pthread_mutex_unlock(&t->lock);
	uv_async_send(&t->ctl);
}

void gwt_join(struct gwt *t)
{
	UT_EQ(pthread_join(t->thread, NULL), 0);
	UT_ASSERT(t->stopped);
	UT_EQ(uv_loop_close(&t->loop), 0);      /* every handle was closed */
}

void gwt_stop(struct gwt *t)
{
	gwt_stop_begin(t, 5000);
	gwt_join(t);
}

void gwt_wait_held(struct gwt *t, int n)
{
	pthread_mutex_lock(&t->fake.lock);
	while (t->fake.nheld < n)
		pthread_cond_wait(&t->fake.cond, &t->fake.lock);
	pthread_mutex_unlock(&t->fake.lock);
}

void gwt_release(struct gwt *t)
{
	pthread_mutex_lock(&t->fake.lock);
	int n = t->fake.nheld;
	t->fake.nheld = 0;
	for (int i = 0; i < n; i++) {
		gwt_echo_result(t->fake.held[i], t->fake.held_body[i], t->fake.held_len[i], "text/plain");
		free(t->fake.held_body[i]);
	}
	pthread_mutex_unlock(&t->fake.lock);
}

int gwt_count(struct gwt *t, const int *counter)
{
	pthread_mutex_lock(&t->fake.lock);
	int v = *counter;
	pthread_mutex_unlock(&t->fake.lock);
	return v;
}

/* ---- client ---- */

int gwc_try_open(struct gwc *c, int port)
{
	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	/* A hung server fails the test instead of hanging it (not a timing check). */
	struct timeval tv = {.tv_sec = 30};
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;
		close(c->fd);
		c->fd = -1;
		return e;
	}
	return 0;
}

void gwc_open(struct gwc *c, int port)
{
	int r = gwc_try_open(c, port);
	if (r)
		UT_FAIL("connect to port %d: %s", port, strerror(-r));
}

void gwc_send(struct gwc *c, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			UT_FAIL("send: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

void gwc_sends(struct gwc *c, const char *s)
{
	gwc_send(c, s, strlen(s));
}

static int fill(struct gwc *c)
{
	if (c->len == sizeof(c->buf))
		return -1;
	ssize_t n;
	do
		n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		UT_FAIL("no answer from the gateway within 30 s");
	if (n <= 0)
		return -1;
	c->len += (size_t)n;
	return 0;
}

static void take(struct gwc *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

bool gwr_header(const struct gwr *r, const char *name, char *out, size_t outlen)
{
	size_t n = strlen(name);
	const char *line = strstr(r->head, "\r\n");
	while (line && line[2]) {
		line += 2;
		if (!strncasecmp(line, name, n) && line[n] == ':') {
			const char *v = line + n + 1;
			while (*v == ' ')
				v++;
			const char *end = strstr(v, "\r\n");
			size_t len = end ? (size_t)(end - v) : strlen(v);
			if (len >= outlen)
				len = outlen - 1;
			memcpy(out, v, len);
			out[len] = 0;
			return true;
		}
		line = strstr(line, "\r\n");
	}
	return false;
}

int gwc_read(struct gwc *c, struct gwr *r)
{
	memset(r, 0, sizeof(*r));
	char *end;
	for (;;) {
		end = memmem(c->buf, c->len, "\r\n\r\n", 4);
		if (end)
			break;
		if (fill(c))
			return -1;
	}
	size_t hlen = (size_t)(end - c->buf) + 4;
	UT_ASSERT(hlen < sizeof(r->head));
	memcpy(r->head, c->buf, hlen);
	r->head[hlen] = 0;
	take(c, hlen);
	UT_ASSERT(sscanf(r->head, "HTTP/1.1 %d ", &r->status) == 1);
	char v[64];
	size_t blen = 0;
	if (gwr_header(r, "Content-Length", v, sizeof(v)))
		blen = strtoul(v, NULL, 10);
	r->body = malloc(blen + 1);
	UT_ASSERT(r->body);
	size_t got = 0;
	while (got < blen) {
		if (c->len == 0 && fill(c)) {
			gwr_free(r);
			return -1;
		}
		size_t n = c->len < blen - got ? c->len : blen - got;
		memcpy(r->body + got, c->buf, n);
		take(c, n);
		got += n;
	}
	r->body[blen] = 0;
	r->body_len = blen;
	return 0;
}

bool gwc_closed(struct gwc *c)
{
	if (c->len)
		return false;
	char b[256];
	ssize_t n;
	do
		n = recv(c->fd, b, sizeof(b), 0);
	while (n < 0 && errno == EINTR);
	return n == 0 || (n < 0 && errno == ECONNRESET);
}

void gwc_close(struct gwc *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

void gwr_free(struct gwr *r)
{
	free(r->body);
	r->body = NULL;
}

void gwt_request(int port, const char *raw, struct gwr *r)
{
	struct gwc c;
	gwc_open(&c, port);
	gwc_sends(&c, raw);
	if (gwc_read(&c, r))
		UT_FAIL("no response to: %.60s", raw);
	gwc_close(&c);
}
