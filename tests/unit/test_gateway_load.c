/* test_gateway_load.c — the gateway under concurrency and shutdown: 64
 * concurrent clients, completions from other threads, graceful stop with
 * requests in flight (finished before the deadline, cut at it). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tests/unit/test_gateway_harness.h"
#include "tests/unit/ut.h"

#define CLIENTS 64
#define CALLS_EACH 4

struct client_arg {
	int port;
	int id;
	int ok;
};

static void *client(void *p)
{
	struct client_arg *a = p;
	struct gwc *c = malloc(sizeof(*c));
	struct gwr r;
	UT_ASSERT(c);
	gwc_open(c, a->port);
	for (int i = 0; i < CALLS_EACH; i++) {
		char body[64], req[256];
		snprintf(body, sizeof(body), "client %d call %d", a->id, i);
		/* Alternate completion inside invoke and from a backend thread. */
		snprintf(req, sizeof(req), "POST /function/%s HTTP/1.1\r\nContent-Length: %zu\r\n\r\n%s",
			 i % 2 ? "echo" : "thread", strlen(body), body);
		gwc_sends(c, req);
		if (gwc_read(c, &r) == 0 && r.status == 200 && !strcmp(r.body, body))
			a->ok++;
		gwr_free(&r);
	}
	gwc_close(c);
	free(c);
	return NULL;
}

UT_TEST(gateway_64_concurrent_clients)
{
	struct gwt t;
	pthread_t th[CLIENTS];
	struct client_arg args[CLIENTS];
	gwt_start(&t, NULL);
	for (int i = 0; i < CLIENTS; i++) {
		args[i] = (struct client_arg){.port = t.port, .id = i};
		UT_EQ(pthread_create(&th[i], NULL, client, &args[i]), 0);
	}
	int ok = 0;
	for (int i = 0; i < CLIENTS; i++) {
		UT_EQ(pthread_join(th[i], NULL), 0);
		ok += args[i].ok;
	}
	UT_EQ(ok, CLIENTS * CALLS_EACH);
	UT_EQ(gwt_count(&t, &t.fake.invokes), CLIENTS * CALLS_EACH);
	gwt_stop(&t);
}

UT_TEST(gateway_completion_from_another_thread)
{
	struct gwt t;
	struct gwc c[3];
	struct gwr r;
	gwt_start(&t, NULL);
	for (int i = 0; i < 3; i++) {
		char req[128];
		snprintf(req, sizeof(req), "POST /function/hold HTTP/1.1\r\nContent-Length: 6\r\n\r\nheld-%d", i);
		gwc_open(&c[i], t.port);
		gwc_sends(&c[i], req);
	}
	gwt_wait_held(&t, 3);
	/* While they wait, the loop serves others. */
	gwt_request(t.port, "GET /healthz HTTP/1.1\r\n\r\n", &r);
	UT_EQ(r.status, 200);
	gwr_free(&r);
	gwt_release(&t);                /* gw_invoke_done from this thread */
	for (int i = 0; i < 3; i++) {
		char want[16];
		snprintf(want, sizeof(want), "held-%d", i);
		UT_EQ(gwc_read(&c[i], &r), 0);
		UT_EQ(r.status, 200);
		UT_ASSERT(!strcmp(r.body, want));
		gwr_free(&r);
		gwc_close(&c[i]);
	}
	gwt_stop(&t);
}

UT_TEST(gateway_graceful_stop_finishes_in_flight)
{
	struct gwt t;
	struct gwc busy, idle, partial, late;
	struct gwr r;
	char v[32];
	gwt_start(&t, NULL);

	gwc_open(&busy, t.port);
	gwc_sends(&busy, "POST /function/hold HTTP/1.1\r\nContent-Length: 8\r\n\r\ninflight");
	gwt_wait_held(&t, 1);
	gwc_open(&idle, t.port);
	gwc_sends(&idle, "GET /healthz HTTP/1.1\r\n\r\n");
	UT_EQ(gwc_read(&idle, &r), 0);
	gwr_free(&r);
	/* A request whose body is still to come; the 100 Continue proves the
	 * gateway has its headers. */
	gwc_open(&partial, t.port);
	gwc_sends(&partial, "POST /function/echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
	char cont[25];
	size_t got = 0;
	while (got < sizeof(cont)) {
		ssize_t k = recv(partial.fd, cont + got, sizeof(cont) - got, 0);
		UT_ASSERT(k > 0);
		got += (size_t)k;
	}
	UT_ASSERT(!memcmp(cont, "HTTP/1.1 100 Continue\r\n\r\n", sizeof(cont)));

	gwt_stop_begin(&t, 30000);
	/* An idle keep-alive connection is closed at once... */
	UT_ASSERT(gwc_closed(&idle));
	gwc_close(&idle);
	/* ... the listener is gone ... */
	UT_EQ(gwc_try_open(&late, t.port), -ECONNREFUSED);
	/* ... a request being received is finished and answered ... */
	gwc_sends(&partial, "body");
	UT_EQ(gwc_read(&partial, &r), 0);
	UT_EQ(r.status, 200);
	UT_ASSERT(!strcmp(r.body, "body"));
	UT_ASSERT(gwr_header(&r, "Connection", v, sizeof(v)) && !strcmp(v, "close"));
	gwr_free(&r);
	UT_ASSERT(gwc_closed(&partial));
	gwc_close(&partial);
	/* ... and the one in the backend gets its answer, then the close. */
	gwt_release(&t);
	UT_EQ(gwc_read(&busy, &r), 0);
	UT_EQ(r.status, 200);
	UT_ASSERT(!strcmp(r.body, "inflight"));
	UT_ASSERT(gwr_header(&r, "Connection", v, sizeof(v)) && !strcmp(v, "close"));
	gwr_free(&r);
	UT_ASSERT(gwc_closed(&busy));
	gwc_close(&busy);
	gwt_join(&t);
}

UT_TEST(gateway_graceful_stop_deadline)
{
	struct gwt t;
	struct gwc busy;
	gwt_start(&t, NULL);
	gwc_open(&busy, t.port);
	gwc_sends(&busy, "POST /function/hold HTTP/1.1\r\nContent-Length: 1\r\n\r\nx");
	gwt_wait_held(&t, 1);
	gwt_stop_begin(&t, 50);
	/* At the deadline the connection is cut without an answer ... */
	UT_ASSERT(gwc_closed(&busy));
	gwc_close(&busy);
	/* ... but the server waits for the backend to complete the call. */
	pthread_mutex_lock(&t.lock);
	bool stopped = t.stopped;
	pthread_mutex_unlock(&t.lock);
	UT_ASSERT(!stopped);
	gwt_release(&t);                /* its result is dropped */
	gwt_join(&t);
}

UT_TEST(gateway_start_fails_cleanly)
{
	uv_loop_t loop;
	struct gw_config cfg;
	struct gw_server *srv = NULL;
	UT_EQ(uv_loop_init(&loop), 0);
	gw_config_defaults(&cfg);
	static const char *const bad[] = {"nohost", "127.0.0.1:", "127.0.0.1:99999", "300.1.1.1:80",
					  "[::1:80", "127.0.0.1:80x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg.listen = bad[i];
		UT_EQ(gw_server_start(&loop, &cfg, &gwt_ops, NULL, &srv), -EINVAL);
	}
	/* A port in use: the bind fails, the memory goes on the next turn. */
	struct gwt t;
	gwt_start(&t, NULL);
	char addr[64];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", t.port);
	cfg.listen = addr;
	UT_ASSERT(gw_server_start(&loop, &cfg, &gwt_ops, NULL, &srv) < 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	UT_EQ(uv_loop_close(&loop), 0);
	gwt_stop(&t);
}
