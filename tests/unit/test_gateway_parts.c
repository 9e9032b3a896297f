/* test_gateway_parts.c — the gateway's pieces without sockets: routing,
 * names, auth, base64, spec validation, and the connection state machine
 * driven byte by byte through a memory IO layer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/auth.h"
#include "gateway/base64.h"
#include "gateway/call.h"
#include "gateway/core.h"
#include "gateway/router.h"
#include "gateway/session.h"
#include "gateway/spec.h"
#include "tests/unit/test_gateway_harness.h"
#include "tests/unit/ut.h"

UT_TEST(gateway_router_table)
{
	static const struct {
		enum gw_method m;
		const char *path;
		enum gw_route route;
		int status;
		const char *name;
		bool control, invoke;
	} cases[] = {
		{GW_M_GET, "/healthz", GW_ROUTE_HEALTHZ, 0, "", false, false},
		{GW_M_GET, "/readyz", GW_ROUTE_READYZ, 0, "", false, false},
		{GW_M_GET, "/metrics", GW_ROUTE_METRICS, 0, "", false, false},
		{GW_M_GET, "/v1/info", GW_ROUTE_INFO, 0, "", true, false},
		{GW_M_GET, "/v1/functions", GW_ROUTE_FUNCTIONS, 0, "", true, false},
		{GW_M_PUT, "/v1/functions/a_b-9", GW_ROUTE_FUNCTION, 0, "a_b-9", true, false},
		{GW_M_DELETE, "/v1/functions/x", GW_ROUTE_FUNCTION, 0, "x", true, false},
		{GW_M_PUT, "/v1/functions/x/pool", GW_ROUTE_POOL, 0, "x", true, false},
		{GW_M_GET, "/v1/functions/x/logs", GW_ROUTE_LOGS, 0, "x", true, false},
		{GW_M_POST, "/v1/functions/x/invoke", GW_ROUTE_INVOKE, 0, "x", false, true},
		{GW_M_POST, "/function/x", GW_ROUTE_INVOKE_ALIAS, 0, "x", false, true},
		{GW_M_HEAD, "/healthz", GW_ROUTE_HEALTHZ, 405, "", false, false},
		{GW_M_OTHER, "/v1/functions/x", GW_ROUTE_FUNCTION, 405, "x", true, false},
		{GW_M_GET, "/v1/functions/", GW_ROUTE_FUNCTION, 400, "", true, false},
		{GW_M_GET, "/v1/functions/X", GW_ROUTE_FUNCTION, 400, "", true, false},
		{GW_M_GET, "/v1/functions/x/", GW_ROUTE_NONE, 404, "x", false, false},
		{GW_M_GET, "/healthz/", GW_ROUTE_NONE, 404, "", false, false},
		{GW_M_GET, "/v1/functionsx", GW_ROUTE_NONE, 404, "", false, false},
		{GW_M_POST, "/function/x/y", GW_ROUTE_NONE, 404, "x", false, false},
		{GW_M_GET, "", GW_ROUTE_NONE, 404, "", false, false},
		{GW_M_GET, "*", GW_ROUTE_NONE, 404, "", false, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct gw_match m;
		gw_route_match(cases[i].m, cases[i].path, strlen(cases[i].path), &m);
		if (m.route != cases[i].route || m.status != cases[i].status ||
		    (cases[i].status != 404 && (m.control != cases[i].control || m.invoke != cases[i].invoke)))
			UT_FAIL("%s %s: route %d status %d", gw_method_name(cases[i].m), cases[i].path,
				m.route, m.status);
		if (cases[i].status == 0 && strcmp(m.name, cases[i].name))
			UT_FAIL("%s: name '%s'", cases[i].path, m.name);
	}
	struct gw_match m;
	gw_route_match(GW_M_PUT, "/v1/functions/x", 15, &m);
	UT_EQ(m.body, GW_BODY_DEPLOY);
	gw_route_match(GW_M_POST, "/function/x", 11, &m);
	UT_EQ(m.body, GW_BODY_INVOKE);
	gw_route_match(GW_M_PUT, "/v1/functions/x/pool", 20, &m);
	UT_EQ(m.body, GW_BODY_CONTROL);
	/* Not NUL-terminated: only len bytes count. */
	gw_route_match(GW_M_GET, "/healthzXYZ", 8, &m);
	UT_EQ(m.route, GW_ROUTE_HEALTHZ);
}

UT_TEST(gateway_names)
{
	char n63[64], n64[65];
	memset(n63, 'a', 63);
	n63[63] = 0;
	memset(n64, 'a', 64);
	n64[64] = 0;
	UT_ASSERT(gw_name_valid("a", 1));
	UT_ASSERT(gw_name_valid("0-a_b", 5));
	UT_ASSERT(gw_name_valid(n63, 63));
	UT_ASSERT(!gw_name_valid(n64, 64));
	UT_ASSERT(!gw_name_valid("", 0));
	UT_ASSERT(!gw_name_valid("_a", 2));
	UT_ASSERT(!gw_name_valid("-a", 2));
	UT_ASSERT(!gw_name_valid("aB", 2));
	UT_ASSERT(!gw_name_valid("a.b", 3));
	UT_ASSERT(!gw_name_valid("a%20", 4));
	UT_ASSERT(!gw_name_valid("a\0b", 3));
}

UT_TEST(gateway_auth_bearer)
{
	UT_ASSERT(gw_auth_ok("tok", "Bearer tok"));
	UT_ASSERT(gw_auth_ok("tok", "bearer  tok"));
	UT_ASSERT(!gw_auth_ok("tok", "Bearer tok "));
	UT_ASSERT(!gw_auth_ok("tok", "Bearer to"));
	UT_ASSERT(!gw_auth_ok("tok", "Bearer tokk"));
	UT_ASSERT(!gw_auth_ok("tok", "Bearer tOk"));
	UT_ASSERT(!gw_auth_ok("tok", "Bearer "));
	UT_ASSERT(!gw_auth_ok("tok", "Basic tok"));
	UT_ASSERT(!gw_auth_ok("tok", ""));
	UT_ASSERT(!gw_auth_ok("tok", NULL));
	UT_ASSERT(gw_auth_ok("", ""));          /* no token configured: open */
	UT_ASSERT(gw_auth_ok(NULL, "anything"));
}

static int b64(const char *in, char *out, size_t *len)
{
	uint8_t buf[64];
	int r = gw_base64_decode(in, strlen(in), buf, len);
	if (!r)
		memcpy(out, buf, *len);
	return r;
}

UT_TEST(gateway_base64)
{
	char out[64];
	size_t n;
	UT_EQ(b64("aGVsbG8=", out, &n), 0);
	UT_ASSERT(n == 5 && !memcmp(out, "hello", 5));
	UT_EQ(b64("aGVsbG8", out, &n), 0);              /* padding optional */
	UT_ASSERT(n == 5 && !memcmp(out, "hello", 5));
	UT_EQ(b64("aGVs\r\nbG8=\n", out, &n), 0);       /* wrapped lines */
	UT_EQ(n, 5);
	UT_EQ(b64("+/+/", out, &n), 0);
	UT_ASSERT(n == 3 && (uint8_t)out[0] == 0xfb && (uint8_t)out[1] == 0xff && (uint8_t)out[2] == 0xbf);
	UT_EQ(b64("", out, &n), 0);
	UT_EQ(n, 0);
	UT_ASSERT(b64("a", out, &n) < 0);               /* a lone sextet */
	UT_ASSERT(b64("aGVsbG8==", out, &n) < 0);       /* too much padding */
	UT_ASSERT(b64("aG=Vs", out, &n) < 0);           /* data after padding */
	UT_ASSERT(b64("aGV sbG8=", out, &n) < 0);
	UT_ASSERT(b64("aGVsbG9=", out, &n) < 0);        /* non-zero leftover bits */
	UT_ASSERT(b64("====", out, &n) < 0);
	UT_ASSERT(gw_base64_max_decoded(8) >= 6);
}

UT_TEST(gateway_spec_parse)
{
	struct gw_spec s;
	char err[256];
	const char *j = "{\"runtime\":\"exec\",\"code\":\"AAEC\",\"env\":{\"A\":\"1\",\"B_2\":\"x y\"},"
			"\"pool\":{\"max_instances\":3}}";
	UT_EQ(gw_spec_parse(&s, "fn", j, strlen(j), err, sizeof(err)), 0);
	UT_ASSERT(!strcmp(s.fs.name, "fn"));
	UT_EQ(s.fs.runtime, GW_RUNTIME_EXEC);
	UT_ASSERT(!strcmp(s.fs.runtime_name, "exec"));
	UT_ASSERT(!strcmp(s.fs.handler, "handler"));
	UT_EQ(s.fs.code_len, 3);
	UT_EQ(s.fs.n_env, 2);
	UT_ASSERT(!strcmp(s.fs.env[0].name, "A") && !strcmp(s.fs.env[0].value, "1"));
	UT_ASSERT(!strcmp(s.fs.env[1].name, "B_2") && !strcmp(s.fs.env[1].value, "x y"));
	UT_EQ(s.fs.pool.max_instances, 3);
	UT_EQ(s.fs.pool.min_warm, 0);
	UT_EQ(s.fs.pool.idle_timeout_s, 300);
	gw_spec_free(&s);

	j = "{\"runtime\":\"native\",\"code\":\"AAEC\",\"memory_mb\":16,\"timeout_ms\":900000}";
	UT_EQ(gw_spec_parse(&s, "n", j, strlen(j), err, sizeof(err)), 0);
	UT_ASSERT(!strcmp(s.fs.handler, "handler.so"));
	UT_EQ(s.fs.memory_mb, 16);
	UT_EQ(s.fs.timeout_ms, 900000);
	gw_spec_free(&s);

	j = "{\"runtime\":\"native\",\"code\":\"AAEC\",\"memory_mb\":16385}";
	UT_ASSERT(gw_spec_parse(&s, "n", j, strlen(j), err, sizeof(err)) < 0);
	UT_ASSERT(strstr(err, "memory_mb"));
	j = "{\"runtime\":\"native\",\"code\":\"AAEC\",\"pool\":{\"max_instances\":4097}}";
	UT_ASSERT(gw_spec_parse(&s, "n", j, strlen(j), err, sizeof(err)) < 0);
	UT_ASSERT(strstr(err, "max_instances"));
	UT_ASSERT(gw_spec_parse(&s, "Bad", "{}", 2, err, sizeof(err)) < 0);

	struct gw_pool_update u;
	j = "{\"min_warm\":1,\"idle_timeout_s\":0}";
	UT_EQ(gw_pool_update_parse(&u, j, strlen(j), err, sizeof(err)), 0);
	UT_ASSERT(u.has_min_warm && u.has_idle_timeout_s && !u.has_max_instances);
	UT_EQ(u.pool.min_warm, 1);
	UT_ASSERT(gw_pool_update_parse(&u, "{}", 2, err, sizeof(err)) < 0);
	UT_ASSERT(gw_pool_update_parse(&u, "{\"min_warm\":-1}", 15, err, sizeof(err)) < 0);
}

/* ---- the session through a memory IO layer ---- */

struct memio {
	struct gw_buf out;
	bool closed;
	enum gw_sess_phase phase;
};

static void mem_send(void *io, struct gw_buf *data)
{
	struct memio *m = io;
	gw_buf_append(&m->out, data->data, data->len);
}

static void mem_close(void *io)
{
	((struct memio *)io)->closed = true;
}

static void mem_phase(void *io, enum gw_sess_phase ph)
{
	((struct memio *)io)->phase = ph;
}

static const struct gw_session_io mem_io = {mem_send, mem_close, mem_phase};

static int count(const char *hay, size_t len, const char *needle)
{
	int n = 0;
	size_t k = strlen(needle);
	for (const char *p = hay; (p = memmem(p, len - (size_t)(p - hay), needle, k)); p += k)
		n++;
	return n;
}

UT_TEST(gateway_session_byte_by_byte)
{
	struct gw_core core;
	struct gw_config cfg;
	struct fake fake;
	struct gw_session *s;
	struct memio m = {0};

	memset(&fake, 0, sizeof(fake));
	pthread_mutex_init(&fake.lock, NULL);
	pthread_cond_init(&fake.cond, NULL);
	gw_config_defaults(&cfg);
	UT_EQ(gw_core_init(&core, &cfg, &gwt_ops, &fake), 0);
	gw_buf_init(&m.out);
	UT_EQ(gw_session_new(&s, &core, &mem_io, &m), 0);

	/* Every request split at every byte; "echo" completes through the
	 * completion queue, drained here as the loop would. */
	const char *in = "POST /function/echo HTTP/1.1\r\nContent-Length: 3\r\n\r\none"
			 "GET /healthz HTTP/1.1\r\n\r\n"
			 "POST /function/echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ntwo\r\n0\r\n\r\n"
			 "GET /readyz HTTP/1.1\r\n\r\n";
	for (size_t i = 0; in[i]; i++) {
		gw_session_feed(s, in + i, 1);
		gw_calls_drain(&core);
		UT_ASSERT(!m.closed);
	}
	UT_EQ(count(m.out.data, m.out.len, "HTTP/1.1 200 OK\r\n"), 4);
	UT_ASSERT(memmem(m.out.data, m.out.len, "\r\n\r\none", 7));
	UT_ASSERT(memmem(m.out.data, m.out.len, "\r\n\r\ntwo", 7));
	UT_EQ(m.phase, GW_SP_IDLE);
	UT_EQ(fake.invokes, 2);

	/* While stopping, /readyz is 503 and the connection closes after it. */
	gw_buf_reset(&m.out);
	core.stopping = true;
	const char *ready = "GET /readyz HTTP/1.1\r\n\r\n";
	gw_session_feed(s, ready, strlen(ready));
	UT_ASSERT(memmem(m.out.data, m.out.len, "HTTP/1.1 503 ", 13));
	UT_ASSERT(memmem(m.out.data, m.out.len, "Connection: close\r\n", 19));
	UT_ASSERT(m.closed);
	UT_EQ(m.phase, GW_SP_CLOSED);
	gw_session_free(s);

	/* A session freed with a call in flight: the result is dropped. */
	gw_buf_free(&m.out);
	m = (struct memio){0};
	core.stopping = false;
	UT_EQ(gw_session_new(&s, &core, &mem_io, &m), 0);
	const char *one = "POST /function/echo HTTP/1.1\r\nContent-Length: 1\r\n\r\nz";
	gw_session_feed(s, one, strlen(one));
	UT_EQ(m.phase, GW_SP_BUSY);
	UT_EQ(core.calls_pending, 1);
	gw_session_free(s);
	gw_calls_drain(&core);
	UT_EQ(core.calls_pending, 0);
	UT_EQ(m.out.len, 0);
	gw_buf_free(&m.out);
	gw_core_fini(&core);
}
