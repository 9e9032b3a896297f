/* test_cli_cmds.c — `unifork invoke | ls | get | rm | logs | pool | info |
 * health` against a fake server: the requests sent and what is printed. */
#include "tests/unit/ut.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/test_cli_fake.h"

/* Run one command against one scripted response. */
static void run1(const char *root, const char *const *argv, const char *const *env,
		 const char *in, enum fake_mode mode, char *raw, struct cli_run *r)
{
	struct fake_resp resp = { mode, raw, 0 };
	cli_run(root, argv, env, in, in ? strlen(in) : 0, &resp, 1, r);
	free(raw);
}

UT_TEST(cli_invoke_data_forms)
{
	char *root = fake_tmpdir();
	fake_write(root, "var/token", "filetok", 7, 0600);
	fake_write(root, "ev.bin", "file\0event", 10, 0644);
	static const struct {
		const char *argv[8];
		const char *in;
		const char *body;
		size_t len;
		const char *ctype;
	} cases[] = {
		{ { "invoke", "echo", "--data", "{\"a\":1}", "--content-type", "application/json", NULL },
		  NULL, "{\"a\":1}", 7, "application/json" },
		{ { "invoke", "echo", "-d", "@ev.bin", NULL }, NULL, "file\0event", 10,
		  "application/octet-stream" },
		{ { "invoke", "echo", "--data=-", NULL }, "from stdin", "from stdin", 10,
		  "application/octet-stream" },
		{ { "invoke", "echo", NULL }, NULL, "", 0, "application/octet-stream" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cli_run r;
		char *ans = fake_http_chunked(200, "X-Call-Id: 0123456789abcdef\r\n", "r@s\nt", 2);
		struct fake_resp resp = { FAKE_REPLY, ans, 0 };
		cli_run(root, cases[i].argv, NULL, cases[i].in, cases[i].in ? strlen(cases[i].in) : 0,
			&resp, 1, &r);
		free(ans);
		if (r.status != 0)
			UT_FAIL("case %zu: exit %d: %s", i, r.status, r.err);
		struct fake_req *q = &r.req[0];
		UT_ASSERT(strcmp(q->method, "POST") == 0);
		UT_ASSERT(strcmp(q->target, "/v1/functions/echo/invoke") == 0);
		UT_EQ(q->body_len, cases[i].len);
		UT_ASSERT(memcmp(q->body, cases[i].body, cases[i].len) == 0);
		UT_ASSERT(strcmp(fake_hdr(q, "content-type"), cases[i].ctype) == 0);
		char cl[24];
		snprintf(cl, sizeof(cl), "%zu", cases[i].len);
		UT_ASSERT(strcmp(fake_hdr(q, "content-length"), cl) == 0);
		/* the token FILE is never sent to a function endpoint */
		UT_ASSERT(fake_hdr(q, "authorization") == NULL);
		UT_EQ(r.out_len, 5);
		UT_ASSERT(memcmp(r.out, "r@s\nt", 5) == 0);
		UT_EQ(r.err_len, 0);
		cli_run_free(&r);
	}
	fake_rmtree(root);
	free(root);
}

/* Binary answers pass through untouched; -v shows status and headers on stderr. */
UT_TEST(cli_invoke_binary_and_verbose)
{
	char *root = fake_tmpdir();
	const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Start-Type: clone\r\n"
			    "X-Restore-Us: 812\r\n\r\n";
	char raw[sizeof(head) + 4];
	memcpy(raw, head, sizeof(head) - 1);
	memcpy(raw + sizeof(head) - 1, "\x00\x02\xff\x1b", 4); /* a NUL, an ESC: as is */
	const char *argv[] = { "invoke", "f", "-v", NULL };
	const char *env[] = { "UNIFORK_TOKEN=envtok", NULL };
	struct fake_resp resp = { FAKE_REPLY, raw, sizeof(raw) - 1 };
	struct cli_run r;
	cli_run(root, argv, env, NULL, 0, &resp, 1, &r);
	UT_EQ(r.status, 0);
	UT_EQ(r.out_len, 4);
	UT_ASSERT(memcmp(r.out, "\x00\x02\xff\x1b", 4) == 0);
	UT_ASSERT(strstr(r.err, "< HTTP/1.1 200 OK\n"));
	UT_ASSERT(strstr(r.err, "< X-Start-Type: clone\n"));
	UT_ASSERT(strstr(r.err, "< X-Restore-Us: 812\n"));
	/* an explicit token (UNIFORK_TOKEN) is sent on invoke */
	UT_ASSERT(strcmp(fake_hdr(&r.req[0], "authorization"), "Bearer envtok") == 0);
	cli_run_free(&r);
	fake_rmtree(root);
	free(root);
}

UT_TEST(cli_invoke_errors)
{
	char *root = fake_tmpdir();
	const char *argv[] = { "invoke", "f", "--data", "x", NULL };
	struct cli_run r;

	/* the runtime's error: code and message, Retry-After on 429 */
	run1(root, argv, NULL, NULL, FAKE_REPLY,
	     fake_http(429, "Retry-After: 2\r\n", "{\"error\":{\"code\":\"too_many_requests\","
						 "\"message\":\"f is at max_instances (4)\"}}"), &r);
	UT_EQ(r.status, 1);
	UT_ASSERT(strcmp(r.err, "error: too_many_requests: f is at max_instances (4) "
				"(retry after 2 s)\n") == 0);
	UT_EQ(r.out_len, 0);
	cli_run_free(&r);

	run1(root, argv, NULL, NULL, FAKE_REPLY,
	     fake_http(502, "X-Function-Error: unhandled\r\n",
		       "{\"error\":{\"code\":\"unhandled\",\"message\":\"ZeroDivisionError\"}}"), &r);
	UT_EQ(r.status, 1);
	UT_ASSERT(strcmp(r.err, "error: unhandled: ZeroDivisionError\n") == 0);
	cli_run_free(&r);

	/* a handler's own non-2xx answer: its body on stdout, exit 1 */
	run1(root, argv, NULL, NULL, FAKE_REPLY, fake_http(404, NULL, "no such item"), &r);
	UT_EQ(r.status, 1);
	UT_ASSERT(strcmp(r.out, "no such item") == 0);
	UT_ASSERT(strcmp(r.err, "error: the handler answered HTTP 404\n") == 0);
	cli_run_free(&r);

	/* --data @missing: exit 2 before any request */
	const char *argv2[] = { "invoke", "f", "--data", "@missing", NULL };
	run1(root, argv2, NULL, NULL, FAKE_REPLY, fake_http(200, NULL, ""), &r);
	UT_EQ(r.status, 2);
	UT_EQ(r.nreqs, 0);
	UT_ASSERT(strstr(r.err, "missing: No such file"));
	cli_run_free(&r);

	/* names are percent-encoded: no path tricks */
	const char *argv3[] = { "invoke", "../x?y", NULL };
	run1(root, argv3, NULL, NULL, FAKE_REPLY, fake_http(404, NULL, "{}"), &r);
	UT_ASSERT(strcmp(r.req[0].target, "/v1/functions/%2E%2E%2Fx%3Fy/invoke") == 0);
	cli_run_free(&r);
	fake_rmtree(root);
	free(root);
}

UT_TEST(cli_ls_table_and_json)
{
	char *root = fake_tmpdir();
	fake_write(root, "var/token", "t0k\n", 4, 0600);
	const char *list = "{\"functions\":[{\"name\":\"hello\",\"runtime\":\"python\",\"state\":\"ready\","
			   "\"memory_mb\":128,\"timeout_ms\":3000,\"pool\":{\"min_warm\":1,"
			   "\"max_instances\":64}},{\"name\":\"e\\u001b[2Jvil\",\"runtime\":\"exec\"}]}";
	const char *argv[] = { "ls", NULL };
	struct cli_run r;
	run1(root, argv, NULL, NULL, FAKE_REPLY, fake_http_chunked(200, NULL, list, 7), &r);
	if (r.status != 0)
		UT_FAIL("exit %d: %s", r.status, r.err);
	UT_ASSERT(strcmp(r.req[0].method, "GET") == 0);
	UT_ASSERT(strcmp(r.req[0].target, "/v1/functions") == 0);
	UT_ASSERT(strcmp(fake_hdr(&r.req[0], "authorization"), "Bearer t0k") == 0);
	UT_ASSERT(strcmp(r.out,
		"NAME      RUNTIME  STATE  MEMORY_MB  TIMEOUT_MS  MIN_WARM  MAX_INSTANCES\n"
		"hello     python   ready  128        3000        1         64\n"
		"e?[2Jvil  exec     -      -          -           -         -\n") == 0);
	cli_run_free(&r);

	const char *argv2[] = { "--json", "ls", NULL };
	run1(root, argv2, NULL, NULL, FAKE_REPLY, fake_http(200, NULL, list), &r);
	UT_EQ(r.status, 0);
	UT_EQ(r.out_len, strlen(list) + 1);
	UT_ASSERT(strncmp(r.out, list, strlen(list)) == 0);
	cli_run_free(&r);

	run1(root, argv, NULL, NULL, FAKE_REPLY, fake_http(200, NULL, "{\"functions\":[]}"), &r);
	UT_EQ(r.status, 0);
	UT_ASSERT(strcmp(r.out, "no functions deployed\n") == 0);
	cli_run_free(&r);
	fake_rmtree(root);
	free(root);
}

UT_TEST(cli_get_rm_logs_pool)
{
	char *root = fake_tmpdir();
	struct cli_run r;

	const char *get[] = { "get", "hello", NULL };
	run1(root, get, NULL, NULL, FAKE_REPLY,
	     fake_http(200, NULL, "{\"name\":\"hello\",\"state\":\"ready\",\"pool\":{\"warm\":2,"
				  "\"live\":3},\"tags\":[\"a\",\"b\"]}"), &r);
	UT_EQ(r.status, 0);
	UT_ASSERT(strcmp(r.req[0].target, "/v1/functions/hello") == 0);
	UT_ASSERT(strcmp(r.out, "name: hello\nstate: ready\npool:\n  warm: 2\n  live: 3\n"
				"tags: a, b\n") == 0);
	cli_run_free(&r);

	const char *rm[] = { "rm", "hello", NULL };
	run1(root, rm, NULL, NULL, FAKE_REPLY,
	     strdup("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"), &r);
	UT_EQ(r.status, 0);
	UT_ASSERT(strcmp(r.req[0].method, "DELETE") == 0);
	UT_ASSERT(strcmp(r.req[0].target, "/v1/functions/hello") == 0);
	UT_ASSERT(fake_hdr(&r.req[0], "content-length") == NULL);
	UT_ASSERT(strcmp(r.out, "removed hello\n") == 0);
	cli_run_free(&r);

	run1(root, rm, NULL, NULL, FAKE_REPLY,
	     fake_http(404, NULL, "{\"error\":{\"code\":\"not_found\",\"message\":\"no function hello\"}}"),
	     &r);
	UT_EQ(r.status, 1);
	UT_ASSERT(strcmp(r.err, "error: not_found: no function hello\n") == 0);
	cli_run_free(&r);

	const char *logs[] = { "logs", "hello", "--tail", "5", NULL };
	run1(root, logs, NULL, NULL, FAKE_REPLY,
	     fake_http(200, "Content-Type: application/x-ndjson\r\n",
		       "{\"time\":\"12:00:01\",\"call_id\":\"ab12\",\"stream\":\"stdout\",\"message\":\"hi\\n\"}\n"
		       "{\"stream\":\"stderr\",\"line\":\"a\\u0007b\"}\n"
		       "not json\n"), &r);
	UT_EQ(r.status, 0);
	UT_ASSERT(strcmp(r.req[0].target, "/v1/functions/hello/logs?tail=5") == 0);
	UT_ASSERT(strcmp(r.out, "12:00:01 ab12 stdout: hi\nstderr: a?b\nnot json\n") == 0);
	cli_run_free(&r);

	const char *pool[] = { "pool", "hello", "--min-warm", "2", "--max", "8", NULL };
	run1(root, pool, NULL, NULL, FAKE_REPLY,
	     fake_http(200, NULL, "{\"min_warm\":2,\"max_instances\":8,\"idle_timeout_s\":300}"), &r);
	UT_EQ(r.status, 0);
	UT_ASSERT(strcmp(r.req[0].method, "PUT") == 0);
	UT_ASSERT(strcmp(r.req[0].target, "/v1/functions/hello/pool") == 0);
	UT_ASSERT(strcmp(r.req[0].body, "{\"min_warm\":2,\"max_instances\":8}") == 0);
	UT_ASSERT(strcmp(r.out, "pool of hello updated\n  min_warm: 2\n  max_instances: 8\n"
				"  idle_timeout_s: 300\n") == 0);
	cli_run_free(&r);

	const char *pool1[] = { "pool", "hello", "--idle-timeout=60", NULL };
	run1(root, pool1, NULL, NULL, FAKE_REPLY, fake_http(200, NULL, "{}"), &r);
	UT_EQ(r.status, 0);
	UT_ASSERT(strcmp(r.req[0].body, "{\"idle_timeout_s\":60}") == 0);
	cli_run_free(&r);

	const char *pool0[] = { "pool", "hello", NULL };
	run1(root, pool0, NULL, NULL, FAKE_REPLY, fake_http(200, NULL, "{}"), &r);
	UT_EQ(r.status, 2);
	UT_EQ(r.nreqs, 0);
	cli_run_free(&r);
	fake_rmtree(root);
	free(root);
}

UT_TEST(cli_info_and_health)
{
	char *root = fake_tmpdir();
	struct cli_run r;

	const char *info[] = { "info", NULL };
	run1(root, info, NULL, NULL, FAKE_REPLY,
	     fake_http(200, NULL, "{\"version\":\"0.1\",\"kvm_mode\":\"sandbox\"}"), &r);
	UT_EQ(r.status, 0);
	UT_ASSERT(strcmp(r.req[0].target, "/v1/info") == 0);
	UT_ASSERT(strstr(r.out, "url: http://127.0.0.1:"));
	UT_ASSERT(strstr(r.out, "\nversion: 0.1\nkvm_mode: sandbox\n"));
	cli_run_free(&r);

	const char *health[] = { "health", NULL };
	char *ok = fake_http(200, NULL, "ok"), *notready = fake_http(503, NULL,
		"{\"error\":{\"code\":\"unavailable\",\"message\":\"no KVM\"}}");
	struct fake_resp two[2] = { { FAKE_REPLY, ok, 0 }, { FAKE_REPLY, ok, 0 } };
	cli_run(root, health, NULL, NULL, 0, two, 2, &r);
	UT_EQ(r.status, 0);
	UT_EQ(r.nreqs, 2);
	UT_ASSERT(strcmp(r.req[0].target, "/healthz") == 0);
	UT_ASSERT(strcmp(r.req[1].target, "/readyz") == 0);
	UT_ASSERT(strstr(r.out, "live:  yes\nready: yes\n"));
	cli_run_free(&r);

	two[1].raw = notready;
	cli_run(root, health, NULL, NULL, 0, two, 2, &r);
	UT_EQ(r.status, 1);
	UT_ASSERT(strstr(r.out, "live:  yes\nready: no (HTTP 503 unavailable: no KVM)\n"));
	cli_run_free(&r);

	const char *hj[] = { "health", "--json", NULL };
	cli_run(root, hj, NULL, NULL, 0, two, 2, &r);
	UT_EQ(r.status, 1);
	json_t *j = json_loads(r.out, 0, NULL);
	UT_ASSERT(j);
	UT_ASSERT(json_is_true(json_object_get(j, "live")));
	UT_ASSERT(json_is_false(json_object_get(j, "ready")));
	UT_ASSERT(strcmp(json_string_value(json_object_get(j, "ready_error")),
			 "HTTP 503 unavailable: no KVM") == 0);
	json_decref(j);
	cli_run_free(&r);
	free(ok);
	free(notready);
	fake_rmtree(root);
	free(root);
}
