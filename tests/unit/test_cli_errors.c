/* test_cli_errors.c — what the CLI says and which exit code it returns when
 * things go wrong: no server, a silent or broken server, 401, non-JSON
 * errors, bad command lines; and where --url and the token come from. */
#include "tests/unit/ut.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/unit/test_cli_fake.h"

static void run1(const char *root, const char *const *argv, const char *const *env,
		 enum fake_mode mode, const char *raw, struct cli_run *r)
{
	struct fake_resp resp = { mode, raw, 0 };
	cli_run(root, argv, env, NULL, 0, &resp, 1, r);
}

static void expect(const struct cli_run *r, int status, const char *err_has)
{
	if (r->status != status || !strstr(r->err, err_has))
		UT_FAIL("exit %d (want %d), stderr: %s (want: %s)", r->status, status, r->err, err_has);
}

UT_TEST(cli_cannot_connect)
{
	/* a port nobody listens on */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	UT_ASSERT(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0);
	UT_ASSERT(getsockname(s, (struct sockaddr *)&a, &alen) == 0);
	close(s);
	char url[64], want[128];
	snprintf(url, sizeof(url), "--url=127.0.0.1:%d", ntohs(a.sin_port));
	snprintf(want, sizeof(want), "error: cannot reach runtimed at http://127.0.0.1:%d "
		 "(is it running? make run)\n", ntohs(a.sin_port));
	char *root = fake_tmpdir();
	const char *argv[] = { url, "ls", NULL };
	struct cli_run r;
	cli_run(root, argv, NULL, NULL, 0, NULL, 0, &r);
	UT_EQ(r.status, 3);
	UT_ASSERT(strcmp(r.err, want) == 0);
	UT_EQ(r.out_len, 0);
	cli_run_free(&r);

	const char *argv2[] = { "--url", "no-such-host.invalid:80", "info", NULL };
	cli_run(root, argv2, NULL, NULL, 0, NULL, 0, &r);
	expect(&r, 3, "error: cannot reach runtimed at http://no-such-host.invalid:80: ");
	cli_run_free(&r);
	fake_rmtree(root);
	free(root);
}

UT_TEST(cli_broken_servers)
{
	char *root = fake_tmpdir();
	const char *argv[] = { "get", "f", NULL };
	struct cli_run r;

	const char *slow[] = { "--timeout", "0.3", "get", "f", NULL };
	run1(root, slow, NULL, FAKE_HANG, NULL, &r);
	expect(&r, 3, "no complete response within 0.3 s (--timeout)");
	cli_run_free(&r);

	run1(root, argv, NULL, FAKE_CLOSE, NULL, &r);
	expect(&r, 3, "connection closed without a response");
	cli_run_free(&r);

	run1(root, argv, NULL, FAKE_REPLY, "SSH-2.0-OpenSSH_9.2\r\n", &r);
	expect(&r, 3, "not an HTTP/1.x response");
	cli_run_free(&r);

	run1(root, argv, NULL, FAKE_REPLY, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", &r);
	expect(&r, 3, "connection closed before the response was complete");
	UT_EQ(r.out_len, 0);
	cli_run_free(&r);

	run1(root, argv, NULL, FAKE_REPLY,
	     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", &r);
	expect(&r, 3, "bad chunk size line");
	cli_run_free(&r);

	/* not our error format: status, reason and the body's first line */
	run1(root, argv, NULL, FAKE_REPLY,
	     "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 15\r\n\r\noops\nsecond line", &r);
	UT_EQ(r.status, 1);
	UT_ASSERT(strcmp(r.err, "error: HTTP 500 Internal Server Error: oops\n") == 0);
	cli_run_free(&r);

	/* a 1xx interim answer is skipped */
	run1(root, argv, NULL, FAKE_REPLY,
	     "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"a\":\"b\"}\r\n", &r);
	UT_EQ(r.status, 0);
	UT_ASSERT(strcmp(r.out, "a: b\n") == 0);
	cli_run_free(&r);
	fake_rmtree(root);
	free(root);
}

UT_TEST(cli_unauthorized)
{
	char *root = fake_tmpdir();
	const char *argv[] = { "ls", NULL };
	const char *body = "{\"error\":{\"code\":\"unauthorized\",\"message\":\"bad token\"}}";
	char *raw = fake_http(401, NULL, body);
	struct cli_run r;
	run1(root, argv, NULL, FAKE_REPLY, raw, &r);
	UT_EQ(r.status, 1);
	UT_ASSERT(strcmp(r.err, "error: bad or missing token (UNIFORK_TOKEN / var/token)\n") == 0);
	cli_run_free(&r);

	char dataenv[4200];
	snprintf(dataenv, sizeof(dataenv), "UNIFORK_DATA=%s/data", root);
	const char *env[] = { dataenv, NULL };
	run1(root, argv, env, FAKE_REPLY, raw, &r);
	UT_EQ(r.status, 1);
	UT_ASSERT(strstr(r.err, "(UNIFORK_TOKEN / ") && strstr(r.err, "/data/token)\n"));
	cli_run_free(&r);
	free(raw);
	fake_rmtree(root);
	free(root);
}

/* --token, then UNIFORK_TOKEN, then ${UNIFORK_DATA:-./var}/token. */
UT_TEST(cli_token_sources)
{
	char *root = fake_tmpdir();
	fake_write(root, "var/token", "vartok\n", 7, 0600);
	fake_write(root, "data/token", "  datatok \n", 11, 0600);
	char dataenv[4200];
	snprintf(dataenv, sizeof(dataenv), "UNIFORK_DATA=%s/data", root);
	char *ok = fake_http(200, NULL, "{\"functions\":[]}");
	static const struct {
		const char *argv[4];
		int use_data, use_env;
		const char *want;
	} cases[] = {
		{ { "ls", NULL }, 0, 0, "Bearer vartok" },
		{ { "ls", NULL }, 1, 0, "Bearer datatok" },
		{ { "ls", NULL }, 1, 1, "Bearer envtok" },
		{ { "ls", "--token", "flagtok", NULL }, 1, 1, "Bearer flagtok" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *env[3] = { NULL, NULL, NULL };
		int ne = 0;
		if (cases[i].use_data)
			env[ne++] = dataenv;
		if (cases[i].use_env)
			env[ne++] = "UNIFORK_TOKEN=envtok";
		struct cli_run r;
		run1(root, cases[i].argv, env, FAKE_REPLY, ok, &r);
		UT_EQ(r.status, 0);
		const char *got = fake_hdr(&r.req[0], "authorization");
		if (!got || strcmp(got, cases[i].want) != 0)
			UT_FAIL("case %zu: Authorization %s, want %s", i, got ? got : "(none)",
				cases[i].want);
		cli_run_free(&r);
	}

	/* a token that would break the header is refused before connecting */
	const char *argv[] = { "ls", NULL };
	const char *bad[] = { "UNIFORK_TOKEN=two words", NULL };
	struct cli_run r;
	run1(root, argv, bad, FAKE_REPLY, ok, &r);
	expect(&r, 2, "cannot go in an HTTP header");
	UT_EQ(r.nreqs, 0);
	cli_run_free(&r);
	free(ok);
	fake_rmtree(root);
	free(root);
}

/* --url beats UNIFORK_LISTEN; a path prefix is kept; https is refused. */
UT_TEST(cli_url_sources)
{
	char *root = fake_tmpdir();
	char *ok = fake_http(200, NULL, "{\"functions\":[]}");
	const char *env[] = { "UNIFORK_LISTEN=127.0.0.1:1", NULL };
	const char *argv[] = { "ls", "--url", "http://127.0.0.1:@PORT@/uf/", NULL };
	struct cli_run r;
	run1(root, argv, env, FAKE_REPLY, ok, &r);
	UT_EQ(r.status, 0);
	UT_ASSERT(strcmp(r.req[0].target, "/uf/v1/functions") == 0);
	cli_run_free(&r);

	const char *env2[] = { "UNIFORK_LISTEN=:@PORT@", NULL }; /* a listen address without host */
	const char *argv2[] = { "ls", NULL };
	run1(root, argv2, env2, FAKE_REPLY, ok, &r);
	UT_EQ(r.status, 0);
	UT_EQ(r.nreqs, 1);
	cli_run_free(&r);

	const char *argv3[] = { "--url", "https://example.com", "ls", NULL };
	run1(root, argv3, NULL, FAKE_REPLY, ok, &r);
	expect(&r, 2, "https is not supported");
	UT_EQ(r.nreqs, 0);
	cli_run_free(&r);
	free(ok);
	fake_rmtree(root);
	free(root);
}

UT_TEST(cli_usage_and_help)
{
	char *root = fake_tmpdir();
	const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
	static const struct {
		const char *argv[6];
		int status;
		const char *out_has, *err_has;
	} cases[] = {
		{ { NULL }, 2, "", "error: no command given" },
		{ { "frobnicate", NULL }, 2, "", "unknown command 'frobnicate'" },
		{ { "ls", "--bogus", NULL }, 2, "", "error: ls: unknown option '--bogus'" },
		{ { "get", NULL }, 2, "", "usage: unifork get NAME" },
		{ { "get", "a", "b", NULL }, 2, "", "unexpected argument 'b'" },
		{ { "ls", "--timeout", "-1", NULL }, 2, "", "--timeout wants seconds" },
		{ { "--url", NULL }, 2, "", "--url needs a value" },
		{ { "invoke", "f", "--content-type", "a\nb", NULL }, 2, "", "control character" },
		{ { "--help", NULL }, 0, "Exit codes:", "" },
		{ { "help", "deploy", NULL }, 0, "usage: unifork deploy NAME DIR --runtime R", "" },
		{ { "deploy", "--help", NULL }, 0, "--env K=V", "" },
		{ { "--version", NULL }, 0, "unifork 0.1\n", "" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cli_run r;
		run1(root, cases[i].argv, NULL, FAKE_REPLY, ok, &r);
		if (r.status != cases[i].status || r.nreqs != 0 || !strstr(r.out, cases[i].out_has) ||
		    !strstr(r.err, cases[i].err_has))
			UT_FAIL("case %zu: exit %d, %d requests\nstdout: %s\nstderr: %s", i, r.status,
				r.nreqs, r.out, r.err);
		cli_run_free(&r);
	}
	/* the exit codes are documented in --help */
	struct cli_run r;
	const char *help[] = { "--help", NULL };
	run1(root, help, NULL, FAKE_REPLY, ok, &r);
	UT_ASSERT(strstr(r.out, "  0  success\n"));
	UT_ASSERT(strstr(r.out, "  2  usage error"));
	UT_ASSERT(strstr(r.out, "  3  cannot connect to runtimed"));
	cli_run_free(&r);
	fake_rmtree(root);
	free(root);
}
