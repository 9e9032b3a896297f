/* fuzz_http.c — libFuzzer target over the gateway's request path without
 * sockets: the bytes are one connection's input to a gateway session
 * (gateway/session.h: llhttp parsing, limits, routing, auth, JSON spec
 * validation, backend calls through the completion queue, response
 * writing), fed in input-chosen chunks, with the peer's close, timeouts
 * and a graceful stop thrown in.
 *
 * Input: byte 0 picks the chunk size (0: everything at once), byte 1 a few
 * events (bit 0: timeout after each chunk, bit 1: graceful stop halfway,
 * bit 2: peer EOF at the end, bit 3: complete held calls after each
 * chunk, bit 4: complete the rest before the session goes, else after),
 * the rest is what the client sends.  The fake backend answers
 * according to the function name: "h..." holds invocations until later,
 * others echo; deploys of "b..." fail with 422.  Limits are small so that
 * 413/431 are reachable.  Seeds: tests/fuzz/http/.
 *
 *   make fuzz-build && build/fuzz/fuzz_http -max_total_time=60 build/fuzz/fuzz_http-corpus tests/fuzz/http
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/call.h"
#include "gateway/core.h"
#include "gateway/session.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)
#define HELD_MAX 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz {
	struct gw_buf out;
	bool closed;
	struct gw_call *held[HELD_MAX];
	int nheld;
};

static volatile uint64_t sink;

static void touch(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 0;
	for (size_t i = 0; i < n; i++)
		h = h * 31 + b[i];
	sink += h;
}

static void complete(struct gw_call *call, bool ok)
{
	struct gw_invoke_result res = {.status = ok ? 200 : 503, .body = "done", .body_len = 4,
				       .error_code = ok ? NULL : "unavailable", .start = GW_START_WARM};
	gw_invoke_done(call, &res);
}

static void fz_invoke(void *ctx, struct gw_call *call, const struct gw_invoke *req)
{
	struct fz *f = ctx;
	touch(req->body, req->body_len);
	touch(req->content_type, strlen(req->content_type));
	CHECK(strlen(req->call_id) == GW_CALL_ID_LEN);
	if (req->function[0] == 'h' && f->nheld < HELD_MAX) {
		f->held[f->nheld++] = call;
		return;
	}
	struct gw_invoke_result res = {.status = 200, .body = req->body, .body_len = req->body_len,
				       .content_type = req->content_type, .start = GW_START_CLONE};
	if (req->function[0] == 'x')
		res = (struct gw_invoke_result){.status = 429, .error_code = "too_many_requests",
						.retry_after_s = 1};
	gw_invoke_done(call, &res);
}

static void fz_deploy(void *ctx, struct gw_call *call, const struct gw_function_spec *s)
{
	touch(s->code, s->code_len);
	touch(s->handler, strlen(s->handler));
	for (size_t i = 0; i < s->n_env; i++) {
		touch(s->env[i].name, strlen(s->env[i].name));
		touch(s->env[i].value, strlen(s->env[i].value));
	}
	CHECK(s->pool.min_warm <= s->pool.max_instances);
	struct gw_deploy_result res = {.status = 201};
	if (s->name[0] == 'b')
		res = (struct gw_deploy_result){.status = 422, .error_code = "init_failed", .error_message = "x"};
	gw_deploy_done(call, &res);
}

static int fz_get(void *ctx, const char *name, json_t **out, struct gw_error *err)
{
	if (name[0] == 'm') {
		err->code = "not_found";
		return 404;
	}
	*out = json_pack("{s:s}", "name", name);
	return 200;
}

static int fz_list(void *ctx, json_t **out, struct gw_error *err)
{
	*out = json_pack("{s:[]}", "functions");
	return 200;
}

static int fz_remove(void *ctx, const char *name, struct gw_error *err)
{
	return name[0] == 'm' ? 404 : 204;
}

static int fz_pool(void *ctx, const char *name, const struct gw_pool_update *u, json_t **out,
		   struct gw_error *err)
{
	*out = json_pack("{s:i}", "min_warm", (int)u->pool.min_warm);
	return 200;
}

static int fz_logs(void *ctx, const char *name, unsigned tail, char **text, size_t *len,
		   struct gw_error *err)
{
	CHECK(tail >= 1 && tail <= GW_LOGS_TAIL_MAX);
	*text = strdup("{}\n");
	*len = *text ? 3 : 0;
	return 200;
}

static int fz_info(void *ctx, json_t **out, struct gw_error *err)
{
	return 500;     /* a failing op: the error path */
}

static const struct gw_ops fz_ops = {
	.invoke = fz_invoke, .deploy = fz_deploy, .list = fz_list, .get = fz_get,
	.remove = fz_remove, .set_pool = fz_pool, .logs = fz_logs, .info = fz_info,
};

static void io_send(void *io, struct gw_buf *b)
{
	struct fz *f = io;
	CHECK(!f->closed);
	gw_buf_append(&f->out, b->data, b->len);
}

static void io_close(void *io)
{
	struct fz *f = io;
	CHECK(!f->closed);
	f->closed = true;
}

static void io_phase(void *io, enum gw_sess_phase ph)
{
	(void)io;
	CHECK(ph <= GW_SP_CLOSED);
}

static const struct gw_session_io fz_io = {io_send, io_close, io_phase};

static void release(struct fz *f, bool ok)
{
	for (int i = 0; i < f->nheld; i++)
		complete(f->held[i], ok);
	f->nheld = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t chunk = data[0] ? data[0] : SIZE_MAX;
	uint8_t ev = data[1];
	data += 2;
	size -= 2;

	struct fz f = {0};
	struct gw_core core;
	struct gw_config cfg;
	struct gw_session *s;
	gw_config_defaults(&cfg);
	cfg.token = "tok";
	cfg.max_header_bytes = 1024;
	cfg.max_invoke_body = 4096;
	cfg.max_deploy_body = 8192;
	cfg.max_control_body = 512;
	CHECK(gw_core_init(&core, &cfg, &fz_ops, &f) == 0);
	gw_buf_init(&f.out);
	CHECK(gw_session_new(&s, &core, &fz_io, &f) == 0);

	for (size_t off = 0; off < size && !f.closed;) {
		size_t n = size - off < chunk ? size - off : chunk;
		gw_session_feed(s, (const char *)data + off, n);
		off += n;
		if (ev & 8)
			release(&f, true);
		gw_calls_drain(&core);
		if ((ev & 1) && !f.closed)
			gw_session_timeout(s);
		if ((ev & 2) && off >= size / 2 && !core.stopping) {
			core.stopping = true;
			gw_session_stop(s);
		}
	}
	if ((ev & 4) && !f.closed)
		gw_session_eof(s);
	if (ev & 16) {
		release(&f, true);
		gw_calls_drain(&core);
	}
	CHECK(f.out.len == 0 || (f.out.len >= 12 && !memcmp(f.out.data, "HTTP/1.1 ", 9)));
	touch(f.out.data, f.out.len);
	gw_session_free(s);
	release(&f, false);     /* completed after the session is gone: dropped */
	gw_calls_drain(&core);
	CHECK(core.calls_pending == 0);
	gw_buf_free(&f.out);
	gw_core_fini(&core);
	return 0;
}
