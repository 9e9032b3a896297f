/* test_gateway_harness.h — for the gateway tests: a fake backend (behaviour
 * chosen by the function name), the gateway on its own loop thread on an
 * ephemeral port, and a raw-socket HTTP client. */
#ifndef TEST_GATEWAY_HARNESS_H
#define TEST_GATEWAY_HARNESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "gateway/backend.h"
#include "gateway/server.h"

#define GWT_TOKEN "s3cret-token"
#define GWT_AUTH "Authorization: Bearer " GWT_TOKEN "\r\n"
#define GWT_HELD_MAX 128

/* Invoke behaviour by function name: "echo" (completes inside invoke),
 * "thread" (completes from a new thread), "hold" (waits for
 * gwt_release()), "busy" (429, Retry-After 7), "crash" (502 unhandled),
 * "slow" (504), "missing" (404), "status-NNN" (handler status NNN).
 * Deploy: "bad-init" → 422, "exists" → 200, else 201 from a thread.
 * get/remove/set_pool/logs: "missing" → 404. */
struct fake {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int invokes, deploys, lists, gets, removes, pools, logs, infos, readies;
	bool not_ready;
	char last_name[GW_NAME_MAX + 1];
	char last_call_id[GW_CALL_ID_LEN + 1];
	char last_ct[256];
	size_t last_body_len;
	/* the last deploy spec, copied */
	int d_runtime;
	char d_handler[256];
	unsigned char d_code[256];
	size_t d_code_len;
	unsigned d_memory_mb, d_timeout_ms, d_env_n;
	char d_env0[256];
	struct gw_pool_spec d_pool;
	struct gw_pool_update last_upd;
	unsigned last_tail;
	struct gw_call *held[GWT_HELD_MAX];
	char *held_body[GWT_HELD_MAX];
	size_t held_len[GWT_HELD_MAX];
	int nheld;
};

struct gwt {
	struct fake fake;
	uv_loop_t loop;
	uv_async_t ctl;
	struct gw_server *srv;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int port;                       /* 0 until listening, -1 on failure */
	unsigned stop_deadline_ms;
	bool stop_requested;
	bool stopped;                   /* done callback ran */
	struct gw_config cfg;
};

extern const struct gw_ops gwt_ops;
/* Complete an invocation: 200, the given body, start type clone, restore
 * 12 us, duration 34 us. */
void gwt_echo_result(struct gw_call *call, const void *body, size_t len, const char *ct);

/* Start the gateway (cfg NULL: defaults + GWT_TOKEN) on 127.0.0.1:0. */
void gwt_start(struct gwt *t, const struct gw_config *cfg);
/* Begin a graceful stop (returns at once); gwt_join() waits for the end. */
void gwt_stop_begin(struct gwt *t, unsigned deadline_ms);
void gwt_join(struct gwt *t);
/* Both. */
void gwt_stop(struct gwt *t);

/* Wait until n invocations are held; complete them all (echo) from this thread. */
void gwt_wait_held(struct gwt *t, int n);
void gwt_release(struct gwt *t);
int gwt_count(struct gwt *t, const int *counter);

/* ---- raw HTTP client ---- */
struct gwc {
	int fd;
	char buf[1 << 16];
	size_t len;
};

struct gwr {
	int status;
	char head[8192];                /* status line + headers, NUL-terminated */
	char *body;                     /* malloc'd, NUL-terminated */
	size_t body_len;
};

void gwc_open(struct gwc *c, int port);
/* -errno instead of failing the test. */
int gwc_try_open(struct gwc *c, int port);
void gwc_send(struct gwc *c, const void *data, size_t len);
void gwc_sends(struct gwc *c, const char *s);
/* Read one response (Content-Length framing); 0, or -1 at EOF/error. */
int gwc_read(struct gwc *c, struct gwr *r);
/* Read until the peer closes: true if it did (with nothing more). */
bool gwc_closed(struct gwc *c);
void gwc_close(struct gwc *c);

/* A header's value (name case-insensitive) copied into out; false if absent. */
bool gwr_header(const struct gwr *r, const char *name, char *out, size_t outlen);
void gwr_free(struct gwr *r);

/* One request on a new connection. */
void gwt_request(int port, const char *raw, struct gwr *r);

#endif
