/* test_gateway.c — the gateway over real sockets with a fake backend:
 * every route and error code of DESIGN.md §8, auth, invoke headers,
 * deploy specs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/test_gateway_harness.h"
#include "tests/unit/ut.h"

static void expect_error(const struct gwr *r, int status, const char *code)
{
	char want[96];
	snprintf(want, sizeof(want), "{\"error\":{\"code\":\"%s\",\"message\":", code);
	if (r->status != status || strncmp(r->body, want, strlen(want)) != 0)
		UT_FAIL("want %d %s, got %d %s", status, code, r->status, r->body);
	char ct[64];
	UT_ASSERT(gwr_header(r, "Content-Type", ct, sizeof(ct)));
	UT_ASSERT(!strcmp(ct, "application/json"));
}

UT_TEST(gateway_health_ready_metrics_info)
{
	struct gwt t;
	struct gwr r;
	gwt_start(&t, NULL);

	gwt_request(t.port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", &r);
	UT_EQ(r.status, 200);
	UT_ASSERT(!strcmp(r.body, "{\"status\":\"ok\"}\n"));
	gwr_free(&r);

	gwt_request(t.port, "GET /readyz HTTP/1.1\r\n\r\n", &r);
	UT_EQ(r.status, 200);
	UT_ASSERT(strstr(r.body, "ready"));
	gwr_free(&r);
	pthread_mutex_lock(&t.fake.lock);
	t.fake.not_ready = true;
	pthread_mutex_unlock(&t.fake.lock);
	gwt_request(t.port, "GET /readyz HTTP/1.1\r\n\r\n", &r);
	expect_error(&r, 503, "unavailable");
	UT_ASSERT(strstr(r.body, "no runtime template yet"));
	gwr_free(&r);
	UT_EQ(gwt_count(&t, &t.fake.readies), 2);

	/* /v1/info is control plane: the token is needed. */
	gwt_request(t.port, "GET /v1/info HTTP/1.1\r\n\r\n", &r);
	expect_error(&r, 401, "unauthorized");
	gwr_free(&r);
	UT_EQ(gwt_count(&t, &t.fake.infos), 0);
	gwt_request(t.port, "GET /v1/info HTTP/1.1\r\n" GWT_AUTH "\r\n", &r);
	UT_EQ(r.status, 200);
	UT_ASSERT(strstr(r.body, "\"kvm_mode\":\"fake\""));
	gwr_free(&r);

	gwt_request(t.port, "GET /metrics HTTP/1.1\r\n\r\n", &r);
	UT_EQ(r.status, 200);
	char ct[96];
	UT_ASSERT(gwr_header(&r, "Content-Type", ct, sizeof(ct)));
	UT_ASSERT(!strncmp(ct, "text/plain; version=0.0.4", 25));
	/* Counted so far: 1 healthz, 2 readyz (200, 503), 2 info (401, 200). */
	UT_ASSERT(strstr(r.body, "uf_http_requests_total{route=\"/healthz\",method=\"GET\",code=\"200\"} 1\n"));
	UT_ASSERT(strstr(r.body, "uf_http_requests_total{route=\"/readyz\",method=\"GET\",code=\"503\"} 1\n"));
	UT_ASSERT(strstr(r.body, "uf_http_requests_total{route=\"/v1/info\",method=\"GET\",code=\"401\"} 1\n"));
	UT_ASSERT(strstr(r.body, "uf_http_request_duration_seconds_count{route=\"/readyz\"} 2\n"));
	UT_ASSERT(strstr(r.body, "# TYPE uf_http_request_duration_seconds histogram\n"));
	UT_ASSERT(strstr(r.body, "uf_fake_metric 42\n"));
	gwr_free(&r);
	gwt_stop(&t);
}

UT_TEST(gateway_unknown_route_method_and_name)
{
	struct gwt t;
	struct gwr r;
	char allow[64];
	gwt_start(&t, NULL);

	gwt_request(t.port, "GET /nope HTTP/1.1\r\n\r\n", &r);
	expect_error(&r, 404, "not_found");
	gwr_free(&r);
	gwt_request(t.port, "GET /v1/functions/f/other HTTP/1.1\r\n" GWT_AUTH "\r\n", &r);
	expect_error(&r, 404, "not_found");
	gwr_free(&r);
	gwt_request(t.port, "POST /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r);
	expect_error(&r, 405, "method_not_allowed");
	UT_ASSERT(gwr_header(&r, "Allow", allow, sizeof(allow)) && !strcmp(allow, "GET"));
	gwr_free(&r);
	gwt_request(t.port, "POST /v1/functions/f HTTP/1.1\r\n" GWT_AUTH "\r\n", &r);
	expect_error(&r, 405, "method_not_allowed");
	UT_ASSERT(gwr_header(&r, "Allow", allow, sizeof(allow)) && !strcmp(allow, "GET, PUT, DELETE"));
	gwr_free(&r);
	gwt_request(t.port, "GET /v1/functions/f/invoke HTTP/1.1\r\n\r\n", &r);
	expect_error(&r, 405, "method_not_allowed");
	gwr_free(&r);
	/* Names: [a-z0-9][a-z0-9_-]{0,62}. */
	gwt_request(t.port, "GET /v1/functions/Bad HTTP/1.1\r\n" GWT_AUTH "\r\n", &r);
	expect_error(&r, 400, "bad_request");
	gwr_free(&r);
	gwt_request(t.port, "POST /function/-x HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r);
	expect_error(&r, 400, "bad_request");
	gwr_free(&r);
	char req[256];
	snprintf(req, sizeof(req), "POST /function/%064d HTTP/1.1\r\n\r\n", 0);
	gwt_request(t.port, req, &r);
	expect_error(&r, 400, "bad_request");
	gwr_free(&r);
	UT_EQ(gwt_count(&t, &t.fake.invokes), 0);
	UT_EQ(gwt_count(&t, &t.fake.gets), 0);
	gwt_stop(&t);
}

UT_TEST(gateway_control_plane_needs_the_token)
{
	struct gwt t;
	struct gwr r;
	gwt_start(&t, NULL);
	static const char *const reqs[][2] = {
		{"GET /v1/functions HTTP/1.1\r\n", "\r\n"},
		{"GET /v1/functions/f HTTP/1.1\r\n", "\r\n"},
		{"DELETE /v1/functions/f HTTP/1.1\r\n", "\r\n"},
		{"GET /v1/functions/f/logs HTTP/1.1\r\n", "\r\n"},
		{"PUT /v1/functions/f/pool HTTP/1.1\r\n", "Content-Length: 2\r\n\r\n{}"},
		{"PUT /v1/functions/f HTTP/1.1\r\n", "Content-Length: 2\r\n\r\n{}"},
	};
	static const char *const bad[] = {
		"", "Authorization: Bearer wrong\r\n", "Authorization: Basic " GWT_TOKEN "\r\n",
		"Authorization: Bearer " GWT_TOKEN "x\r\n", "Authorization: Bearer s3cret-toke\r\n",
	};
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++)
		for (size_t j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
			char req[512];
			snprintf(req, sizeof(req), "%s%s%s", reqs[i][0], bad[j], reqs[i][1]);
			gwt_request(t.port, req, &r);
			expect_error(&r, 401, "unauthorized");
			gwr_free(&r);
		}
	UT_EQ(gwt_count(&t, &t.fake.lists) + gwt_count(&t, &t.fake.gets) + gwt_count(&t, &t.fake.removes) +
	      gwt_count(&t, &t.fake.logs) + gwt_count(&t, &t.fake.pools) + gwt_count(&t, &t.fake.deploys), 0);
	/* The scheme is case-insensitive. */
	gwt_request(t.port, "GET /v1/functions HTTP/1.1\r\nauthorization: bearer " GWT_TOKEN "\r\n\r\n", &r);
	UT_EQ(r.status, 200);
	gwr_free(&r);
	/* Invocations are open by default. */
	gwt_request(t.port, "POST /function/echo HTTP/1.1\r\nContent-Length: 1\r\n\r\nx", &r);
	UT_EQ(r.status, 200);
	gwr_free(&r);
	gwt_stop(&t);

	/* ... and closed with invoke_auth. */
	struct gw_config cfg;
	gw_config_defaults(&cfg);
	cfg.token = GWT_TOKEN;
	cfg.invoke_auth = true;
	gwt_start(&t, &cfg);
	gwt_request(t.port, "POST /function/echo HTTP/1.1\r\nContent-Length: 1\r\n\r\nx", &r);
	expect_error(&r, 401, "unauthorized");
	gwr_free(&r);
	gwt_request(t.port, "POST /function/echo HTTP/1.1\r\n" GWT_AUTH "Content-Length: 1\r\n\r\nx", &r);
	UT_EQ(r.status, 200);
	gwr_free(&r);
	UT_EQ(gwt_count(&t, &t.fake.invokes), 1);
	gwt_stop(&t);
}

UT_TEST(gateway_function_crud_pool_logs)
{
	struct gwt t;
	struct gwr r;
	gwt_start(&t, NULL);

	gwt_request(t.port, "GET /v1/functions HTTP/1.1\r\n" GWT_AUTH "\r\n", &r);
	UT_EQ(r.status, 200);
	UT_ASSERT(!strcmp(r.body, "{\"functions\":[{\"name\":\"a\"},{\"name\":\"b\"}]}\n"));
	gwr_free(&r);
	gwt_request(t.port, "GET /v1/functions/fn-1 HTTP/1.1\r\n" GWT_AUTH "\r\n", &r);
	UT_EQ(r.status, 200);
	UT_ASSERT(strstr(r.body, "\"name\":\"fn-1\""));
	gwr_free(&r);
	gwt_request(t.port, "GET /v1/functions/missing HTTP/1.1\r\n" GWT_AUTH "\r\n", &r);
	expect_error(&r, 404, "not_found");
	UT_ASSERT(strstr(r.body, "no function missing"));
	gwr_free(&r);

	gwt_request(t.port, "DELETE /v1/functions/fn-1 HTTP/1.1\r\n" GWT_AUTH "\r\n", &r);
	UT_EQ(r.status, 204);
	UT_EQ(r.body_len, 0);
	gwr_free(&r);
	gwt_request(t.port, "DELETE /v1/functions/missing HTTP/1.1\r\n" GWT_AUTH "\r\n", &r);
	expect_error(&r, 404, "not_found");
	gwr_free(&r);

	gwt_request(t.port, "PUT /v1/functions/fn-1/pool HTTP/1.1\r\n" GWT_AUTH
		    "Content-Length: 21\r\n\r\n{\"max_instances\": 9}\n", &r);
	UT_EQ(r.status, 200);
	UT_ASSERT(strstr(r.body, "\"max_instances\":9"));
	UT_ASSERT(t.fake.last_upd.has_max_instances && !t.fake.last_upd.has_min_warm);
	UT_EQ(t.fake.last_upd.pool.max_instances, 9);
	gwr_free(&r);
	gwt_request(t.port, "PUT /v1/functions/fn-1/pool HTTP/1.1\r\n" GWT_AUTH
		    "Content-Length: 21\r\n\r\n{\"max_instances\": 0}\n", &r);
	expect_error(&r, 400, "bad_request");
	gwr_free(&r);
	gwt_request(t.port, "PUT /v1/functions/fn-1/pool HTTP/1.1\r\n" GWT_AUTH
		    "Content-Length: 8\r\n\r\n{\"x\":1}\n", &r);
	expect_error(&r, 400, "bad_request");
	gwr_free(&r);
	gwt_request(t.port, "PUT /v1/functions/missing/pool HTTP/1.1\r\n" GWT_AUTH
		    "Content-Length: 16\r\n\r\n{\"min_warm\": 1}\n", &r);
	expect_error(&r, 404, "not_found");
	gwr_free(&r);
	UT_EQ(gwt_count(&t, &t.fake.pools), 2);

	gwt_request(t.port, "GET /v1/functions/fn-1/logs?tail=5 HTTP/1.1\r\n" GWT_AUTH "\r\n", &r);
	UT_EQ(r.status, 200);
	char ct[64];
	UT_ASSERT(gwr_header(&r, "Content-Type", ct, sizeof(ct)) && !strcmp(ct, "application/x-ndjson"));
	UT_ASSERT(!strcmp(r.body, "{\"line\":\"one\"}\n{\"line\":\"two\"}\n"));
	UT_EQ(t.fake.last_tail, 5);
	gwr_free(&r);
	gwt_request(t.port, "GET /v1/functions/fn-1/logs HTTP/1.1\r\n" GWT_AUTH "\r\n", &r);
	UT_EQ(r.status, 200);
	UT_EQ(t.fake.last_tail, GW_LOGS_TAIL_DEFAULT);
	gwr_free(&r);
	gwt_request(t.port, "GET /v1/functions/fn-1/logs?tail=0 HTTP/1.1\r\n" GWT_AUTH "\r\n", &r);
	expect_error(&r, 400, "bad_request");
	gwr_free(&r);
	gwt_request(t.port, "GET /v1/functions/fn-1/logs?tail=x HTTP/1.1\r\n" GWT_AUTH "\r\n", &r);
	expect_error(&r, 400, "bad_request");
	gwr_free(&r);
	UT_EQ(gwt_count(&t, &t.fake.logs), 2);
	gwt_stop(&t);
}

/* PUT a spec; returns the response. */
static void deploy(struct gwt *t, const char *name, const char *json, struct gwr *r)
{
	char *req;
	UT_ASSERT(asprintf(&req, "PUT /v1/functions/%s HTTP/1.1\r\n" GWT_AUTH
			   "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			   name, strlen(json), json) > 0);
	gwt_request(t->port, req, r);
	free(req);
}

UT_TEST(gateway_deploy_spec)
{
	struct gwt t;
	struct gwr r;
	gwt_start(&t, NULL);

	/* "aGVsbG8=" is "hello"; everything else takes its default. */
	deploy(&t, "fn", "{\"runtime\":\"python\",\"code\":\"aGVsbG8=\"}", &r);
	UT_EQ(r.status, 201);
	UT_ASSERT(!strcmp(r.body, "{\"name\":\"fn\",\"status\":\"created\"}\n"));
	gwr_free(&r);
	UT_EQ(t.fake.d_runtime, GW_RUNTIME_PYTHON);
	UT_ASSERT(!strcmp(t.fake.d_handler, "handler.handle"));
	UT_EQ(t.fake.d_code_len, 5);
	UT_ASSERT(!memcmp(t.fake.d_code, "hello", 5));
	UT_EQ(t.fake.d_memory_mb, 128);
	UT_EQ(t.fake.d_timeout_ms, 3000);
	UT_EQ(t.fake.d_pool.min_warm, 0);
	UT_EQ(t.fake.d_pool.max_instances, 64);
	UT_EQ(t.fake.d_env_n, 0);

	deploy(&t, "exists", "{\"runtime\":\"native\",\"handler\":\"lib/h.so\",\"code\":\"AAEC\","
	       "\"memory_mb\":256,\"timeout_ms\":100,\"env\":{\"MODE\":\"fast\"},"
	       "\"pool\":{\"min_warm\":2,\"max_instances\":4,\"idle_timeout_s\":9}}", &r);
	UT_EQ(r.status, 200);
	UT_ASSERT(strstr(r.body, "\"state\":\"ready\""));
	gwr_free(&r);
	UT_ASSERT(!strcmp(t.fake.d_handler, "lib/h.so"));
	UT_EQ(t.fake.d_code_len, 3);
	UT_ASSERT(!memcmp(t.fake.d_code, "\0\1\2", 3));
	UT_EQ(t.fake.d_memory_mb, 256);
	UT_EQ(t.fake.d_timeout_ms, 100);
	UT_EQ(t.fake.d_env_n, 1);
	UT_ASSERT(!strcmp(t.fake.d_env0, "MODE=fast"));
	UT_EQ(t.fake.d_pool.min_warm, 2);
	UT_EQ(t.fake.d_pool.max_instances, 4);
	UT_EQ(t.fake.d_pool.idle_timeout_s, 9);

	deploy(&t, "bad-init", "{\"runtime\":\"exec\",\"code\":\"AAEC\"}", &r);
	expect_error(&r, 422, "init_failed");
	UT_ASSERT(strstr(r.body, "init hook exited with 3"));
	gwr_free(&r);
	UT_EQ(gwt_count(&t, &t.fake.deploys), 3);

	/* Refused by the gateway: the backend never sees them. */
	static const char *const bad[] = {
		"", "[]", "{", "{\"runtime\":\"java\",\"code\":\"AAEC\"}",
		"{\"code\":\"AAEC\"}", "{\"runtime\":\"exec\"}",
		"{\"runtime\":\"exec\",\"code\":\"\"}", "{\"runtime\":\"exec\",\"code\":\"A\"}",
		"{\"runtime\":\"exec\",\"code\":\"AA!C\"}", "{\"runtime\":\"exec\",\"code\":5}",
		"{\"runtime\":\"exec\",\"code\":\"AAEC\",\"memory_mb\":8}",
		"{\"runtime\":\"exec\",\"code\":\"AAEC\",\"memory_mb\":\"128\"}",
		"{\"runtime\":\"exec\",\"code\":\"AAEC\",\"memory_mb\":128.5}",
		"{\"runtime\":\"exec\",\"code\":\"AAEC\",\"timeout_ms\":0}",
		"{\"runtime\":\"exec\",\"code\":\"AAEC\",\"timeout_ms\":99999999999}",
		"{\"runtime\":\"exec\",\"code\":\"AAEC\",\"env\":{\"1X\":\"v\"}}",
		"{\"runtime\":\"exec\",\"code\":\"AAEC\",\"env\":{\"X\":1}}",
		"{\"runtime\":\"exec\",\"code\":\"AAEC\",\"env\":{\"X\":\"a\\u0000b\"}}",
		"{\"runtime\":\"exec\",\"code\":\"AAEC\",\"pool\":{\"min_warm\":5,\"max_instances\":4}}",
		"{\"runtime\":\"exec\",\"code\":\"AAEC\",\"pool\":{\"warm\":1}}",
		"{\"runtime\":\"exec\",\"code\":\"AAEC\",\"handler\":\"\"}",
		"{\"runtime\":\"exec\",\"code\":\"AAEC\",\"handler\":\"a\\nb\"}",
		"{\"runtime\":\"exec\",\"code\":\"AAEC\",\"memroy_mb\":128}",
		"{\"runtime\":\"exec\",\"code\":\"AAEC\",\"name\":\"other\"}",
		"{\"runtime\":\"exec\",\"runtime\":\"exec\",\"code\":\"AAEC\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		deploy(&t, "fn", bad[i], &r);
		if (r.status != 400)
			UT_FAIL("spec %s: got %d %s", bad[i], r.status, r.body);
		expect_error(&r, 400, "bad_request");
		gwr_free(&r);
	}
	UT_EQ(gwt_count(&t, &t.fake.deploys), 3);
	gwt_stop(&t);
}

UT_TEST(gateway_invoke_headers_and_errors)
{
	struct gwt t;
	struct gwr r;
	char v[128];
	gwt_start(&t, NULL);

	gwt_request(t.port, "POST /v1/functions/echo/invoke HTTP/1.1\r\nContent-Type: text/x-ev\r\n"
		    "Content-Length: 11\r\n\r\nhello event", &r);
	UT_EQ(r.status, 200);
	UT_ASSERT(!strcmp(r.body, "hello event"));
	UT_ASSERT(gwr_header(&r, "Content-Type", v, sizeof(v)) && !strcmp(v, "text/x-ev"));
	UT_ASSERT(gwr_header(&r, "X-Call-Id", v, sizeof(v)));
	UT_EQ(strlen(v), GW_CALL_ID_LEN);
	UT_EQ(strspn(v, "0123456789abcdef"), GW_CALL_ID_LEN);
	UT_ASSERT(!strcmp(v, t.fake.last_call_id));
	char first_id[32];
	snprintf(first_id, sizeof(first_id), "%s", v);
	UT_ASSERT(gwr_header(&r, "X-Start-Type", v, sizeof(v)) && !strcmp(v, "clone"));
	UT_ASSERT(gwr_header(&r, "X-Restore-Us", v, sizeof(v)) && !strcmp(v, "12"));
	UT_ASSERT(gwr_header(&r, "X-Duration-Us", v, sizeof(v)) && !strcmp(v, "34"));
	UT_ASSERT(!strcmp(t.fake.last_ct, "text/x-ev"));
	UT_EQ(t.fake.last_body_len, 11);
	gwr_free(&r);

	/* The alias, without a Content-Type; a new call id. */
	gwt_request(t.port, "POST /function/echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", &r);
	UT_EQ(r.status, 200);
	UT_ASSERT(!strcmp(r.body, "abc"));
	UT_ASSERT(!strcmp(t.fake.last_ct, "application/octet-stream"));
	UT_ASSERT(gwr_header(&r, "X-Call-Id", v, sizeof(v)) && strcmp(v, first_id) != 0);
	gwr_free(&r);

	gwt_request(t.port, "POST /function/busy HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r);
	expect_error(&r, 429, "too_many_requests");
	UT_ASSERT(gwr_header(&r, "Retry-After", v, sizeof(v)) && !strcmp(v, "7"));
	UT_ASSERT(gwr_header(&r, "X-Call-Id", v, sizeof(v)));
	UT_ASSERT(!gwr_header(&r, "X-Start-Type", v, sizeof(v)));
	gwr_free(&r);

	gwt_request(t.port, "POST /function/crash HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r);
	expect_error(&r, 502, "unhandled");
	UT_ASSERT(gwr_header(&r, "X-Function-Error", v, sizeof(v)) && !strcmp(v, "unhandled"));
	UT_ASSERT(gwr_header(&r, "X-Start-Type", v, sizeof(v)) && !strcmp(v, "warm"));
	gwr_free(&r);

	gwt_request(t.port, "POST /function/slow HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r);
	expect_error(&r, 504, "timeout");
	UT_ASSERT(!gwr_header(&r, "X-Function-Error", v, sizeof(v)));
	gwr_free(&r);
	gwt_request(t.port, "POST /function/missing HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r);
	expect_error(&r, 404, "not_found");
	gwr_free(&r);

	/* The handler's own status passes through; an impossible one is a 502. */
	gwt_request(t.port, "POST /function/status-418 HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r);
	UT_EQ(r.status, 418);
	UT_ASSERT(!strcmp(r.body, "handler says"));
	UT_ASSERT(gwr_header(&r, "X-Start-Type", v, sizeof(v)) && !strcmp(v, "reset"));
	gwr_free(&r);
	gwt_request(t.port, "POST /function/status-700 HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r);
	expect_error(&r, 502, "unhandled");
	UT_ASSERT(gwr_header(&r, "X-Function-Error", v, sizeof(v)));
	gwr_free(&r);
	gwt_request(t.port, "POST /function/status-204 HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r);
	UT_EQ(r.status, 204);
	UT_EQ(r.body_len, 0);
	UT_ASSERT(!gwr_header(&r, "Content-Length", v, sizeof(v)));
	gwr_free(&r);
	UT_EQ(gwt_count(&t, &t.fake.invokes), 9);
	gwt_stop(&t);
}
