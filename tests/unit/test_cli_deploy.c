/* test_cli_deploy.c — `unifork deploy` against a fake server: the exact
 * request (method, path, token, JSON spec) and a code package that unpacks,
 * with the system's tar, to the deployed directory; prebuilt packages;
 * usage errors that must not reach the network; early 413 answers. */
#include "tests/unit/ut.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/test_cli_fake.h"

/* A function directory with nested, binary, empty, executable files and an
 * inside symlink. */
static char *make_src(const char *root)
{
	char *src;
	UT_ASSERT(asprintf(&src, "%s/src", root) > 0);
	fake_write(src, "handler.py", "def handle(e, c):\n    return e\n", 32, 0644);
	fake_write(src, "lib/util.py", "X = 1\n", 6, 0644);
	fake_write(src, "bin/run", "#!/bin/sh\necho hi\n", 18, 0755);
	fake_write(src, "empty", "", 0, 0600);
	size_t n = 200000;
	unsigned char *blob = malloc(n);
	UT_ASSERT(blob);
	for (size_t i = 0; i < n; i++)
		blob[i] = (unsigned char)(i * 2654435761u >> 13);
	fake_write(src, "data/blob.bin", blob, n, 0644);
	free(blob);
	UT_ASSERT(fake_sh("ln -s util.py '%s/lib/h.py'", src) == 0);
	return src;
}

/* Decode the body's "code" with base64(1), unpack it with tar(1), compare. */
static void check_package(const char *root, const char *src, const char *code)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/code.b64", root);
	fake_write(root, "code.b64", code, strlen(code), 0644);
	UT_EQ(fake_sh("base64 -d '%s/code.b64' > '%s/pkg.tar.gz'", root, root), 0);
	UT_EQ(fake_sh("gzip -t '%s/pkg.tar.gz'", root), 0);
	UT_EQ(fake_sh("mkdir '%s/out' && tar -xzf '%s/pkg.tar.gz' -C '%s/out'", root, root, root), 0);
	UT_EQ(fake_sh("diff -r --no-dereference '%s' '%s/out'", src, root), 0);
	/* entries sorted, directories before their contents, no "./" */
	UT_EQ(fake_sh("tar -tzf '%s/pkg.tar.gz' > '%s/list' && LC_ALL=C sort -c '%s/list' && "
		      "! grep -q '^\\./' '%s/list'", root, root, root, root), 0);
	struct stat st;
	snprintf(path, sizeof(path), "%s/out/bin/run", root);
	UT_ASSERT(stat(path, &st) == 0 && (st.st_mode & 0111));
	snprintf(path, sizeof(path), "%s/out/handler.py", root);
	UT_ASSERT(stat(path, &st) == 0 && !(st.st_mode & 0111));
	snprintf(path, sizeof(path), "%s/out/lib/h.py", root);
	UT_ASSERT(lstat(path, &st) == 0 && S_ISLNK(st.st_mode));
}

UT_TEST(cli_deploy_request)
{
	char *root = fake_tmpdir(), *src = make_src(root);
	fake_write(root, "var/token", "tok-from-file\n", 14, 0600);
	char *ok = fake_http(201, "Content-Type: application/json\r\n",
			     "{\"name\":\"hello\",\"status\":\"created\"}");
	struct fake_resp resp = { FAKE_REPLY, ok, 0 };
	const char *argv[] = { "deploy", "hello", src, "--runtime", "python", "--handler",
			       "handler.handle", "--memory", "256", "--timeout=5000", "--env",
			       "A=1", "--env", "B=x=y", "--env", "A=2", "--min-warm", "2",
			       "--max-instances", "8", NULL };
	struct cli_run r;
	cli_run(root, argv, NULL, NULL, 0, &resp, 1, &r);
	if (r.status != 0)
		UT_FAIL("exit %d: %s", r.status, r.err);
	UT_ASSERT(strncmp(r.out, "created hello (python runtime, ", 31) == 0);
	UT_EQ(r.nreqs, 1);
	struct fake_req *q = &r.req[0];
	UT_ASSERT(strcmp(q->method, "PUT") == 0);
	UT_ASSERT(strcmp(q->target, "/v1/functions/hello") == 0);
	UT_ASSERT(strcmp(q->version, "HTTP/1.1") == 0);
	UT_ASSERT(strcmp(fake_hdr(q, "authorization"), "Bearer tok-from-file") == 0);
	UT_ASSERT(strcmp(fake_hdr(q, "content-type"), "application/json") == 0);
	UT_ASSERT(fake_hdr(q, "host") && strstr(fake_hdr(q, "host"), "127.0.0.1:"));

	json_error_t je;
	json_t *j = json_loadb(q->body, q->body_len, 0, &je);
	if (!j)
		UT_FAIL("body is not JSON: %s", je.text);
	UT_ASSERT(strcmp(json_string_value(json_object_get(j, "runtime")), "python") == 0);
	UT_ASSERT(strcmp(json_string_value(json_object_get(j, "handler")), "handler.handle") == 0);
	UT_EQ(json_integer_value(json_object_get(j, "memory_mb")), 256);
	UT_EQ(json_integer_value(json_object_get(j, "timeout_ms")), 5000);
	json_t *env = json_object_get(j, "env");
	UT_EQ(json_object_size(env), 2);
	UT_ASSERT(strcmp(json_string_value(json_object_get(env, "A")), "2") == 0); /* last wins */
	UT_ASSERT(strcmp(json_string_value(json_object_get(env, "B")), "x=y") == 0);
	json_t *pool = json_object_get(j, "pool");
	UT_EQ(json_object_size(pool), 2);
	UT_EQ(json_integer_value(json_object_get(pool, "min_warm")), 2);
	UT_EQ(json_integer_value(json_object_get(pool, "max_instances")), 8);
	UT_EQ(json_object_size(j), 7);
	check_package(root, src, json_string_value(json_object_get(j, "code")));
	json_decref(j);
	cli_run_free(&r);
	free(ok);
	fake_rmtree(root);
	free(root);
	free(src);
}

/* Omitted options are not sent (server defaults); 200 reads "updated"; the
 * same tree packs to the same bytes however it was created. */
UT_TEST(cli_deploy_minimal_and_deterministic)
{
	char *root = fake_tmpdir(), *src = make_src(root);
	char *upd = fake_http(200, NULL, "{\"name\":\"f\",\"status\":\"updated\"}");
	struct fake_resp resp[2] = { { FAKE_REPLY, upd, 0 }, { FAKE_REPLY, upd, 0 } };
	const char *argv[] = { "deploy", "f", src, "--runtime", "exec", NULL };
	struct cli_run r1, r2;
	cli_run(root, argv, NULL, NULL, 0, resp, 1, &r1);
	UT_EQ(r1.status, 0);
	UT_ASSERT(strncmp(r1.out, "updated f ", 10) == 0);
	UT_ASSERT(fake_hdr(&r1.req[0], "authorization") == NULL); /* no token anywhere */
	json_t *j = json_loadb(r1.req[0].body, r1.req[0].body_len, 0, NULL);
	UT_ASSERT(j);
	UT_EQ(json_object_size(j), 2); /* runtime, code */
	UT_ASSERT(json_is_string(json_object_get(j, "code")));

	/* Same content, created in another order, other times and umask. */
	UT_EQ(fake_sh("cd '%s' && mkdir copy && cp -r src/data copy/ && sleep 0 && "
		      "cp -rP src/lib src/bin src/empty src/handler.py copy/ && "
		      "touch -d 2001-01-01 copy/handler.py && chmod 0640 copy/empty", root), 0);
	argv[2] = "copy"; /* relative to cwd = root */
	cli_run(root, argv, NULL, NULL, 0, resp, 1, &r2);
	UT_EQ(r2.status, 0);
	json_t *j2 = json_loadb(r2.req[0].body, r2.req[0].body_len, 0, NULL);
	UT_ASSERT(j2);
	UT_ASSERT(strcmp(json_string_value(json_object_get(j, "code")),
			 json_string_value(json_object_get(j2, "code"))) == 0);
	json_decref(j);
	json_decref(j2);
	cli_run_free(&r1);
	cli_run_free(&r2);
	free(upd);
	fake_rmtree(root);
	free(root);
	free(src);
}

/* A .tar.gz given instead of a directory is sent byte for byte. */
UT_TEST(cli_deploy_prebuilt_package)
{
	char *root = fake_tmpdir(), *src = make_src(root);
	UT_EQ(fake_sh("cd '%s' && tar -czf pre.tar.gz -C src .", root), 0);
	char *ok = fake_http(201, NULL, "{}");
	struct fake_resp resp = { FAKE_REPLY, ok, 0 };
	const char *argv[] = { "deploy", "p", "pre.tar.gz", "--runtime", "native", NULL };
	struct cli_run r;
	cli_run(root, argv, NULL, NULL, 0, &resp, 1, &r);
	UT_EQ(r.status, 0);
	json_t *j = json_loadb(r.req[0].body, r.req[0].body_len, 0, NULL);
	UT_ASSERT(j);
	const char *code = json_string_value(json_object_get(j, "code"));
	fake_write(root, "code.b64", code, strlen(code), 0644);
	UT_EQ(fake_sh("cd '%s' && base64 -d code.b64 | cmp - pre.tar.gz", root), 0);
	json_decref(j);
	cli_run_free(&r);
	free(ok);
	fake_rmtree(root);
	free(root);
	free(src);
}

/* Mistakes found locally exit 2 and never reach the server. */
UT_TEST(cli_deploy_local_errors)
{
	char *root = fake_tmpdir(), *src = make_src(root);
	fake_write(root, "notgz", "hello", 5, 0644);
	UT_EQ(fake_sh("mkdir '%s/emptydir' '%s/esc' && ln -s ../../etc/passwd '%s/esc/p' && "
		      "mkfifo '%s/src/fifo'", root, root, root, root), 0);
	struct fake_resp none = { FAKE_REPLY, "HTTP/1.1 500 X\r\nContent-Length: 0\r\n\r\n", 0 };
	static const struct {
		const char *argv[8];
		const char *msg;
	} cases[] = {
		{ { "deploy", "f", "src", NULL }, "--runtime is required" },
		{ { "deploy", "f", "--runtime", "python", NULL }, "missing argument" },
		{ { "deploy", "f", "nope", "--runtime", "python", NULL }, "nope: No such file" },
		{ { "deploy", "f", "notgz", "--runtime", "python", NULL }, "not a directory or a .tar.gz" },
		{ { "deploy", "f", "emptydir", "--runtime", "python", NULL }, "no files to deploy" },
		{ { "deploy", "f", "esc", "--runtime", "python", NULL }, "leaves its directory" },
		{ { "deploy", "f", "src", "--runtime", "python", NULL }, "src/fifo: not a regular file" },
		{ { "deploy", "f", "src", "--runtime", "python", "--memory", "12x", NULL }, "--memory wants" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cli_run r;
		cli_run(root, cases[i].argv, NULL, NULL, 0, &none, 1, &r);
		if (r.status != 2 || r.nreqs != 0 || !strstr(r.err, cases[i].msg))
			UT_FAIL("case %zu: exit %d, %d requests, stderr: %s", i, r.status, r.nreqs, r.err);
		UT_ASSERT(strncmp(r.err, "error: ", 7) == 0);
		cli_run_free(&r);
	}
	fake_rmtree(root);
	free(root);
	free(src);
}

/* A server that refuses the body after the head (413) is heard, not a broken pipe. */
UT_TEST(cli_deploy_early_413)
{
	char *root = fake_tmpdir();
	size_t n = 6u << 20; /* incompressible: the body is ~8 MiB */
	unsigned char *blob = malloc(n);
	UT_ASSERT(blob);
	unsigned long long x = 88172645463325252ull;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		blob[i] = (unsigned char)x;
	}
	fake_write(root, "big/blob", blob, n, 0644);
	free(blob);
	char *tl = fake_http(413, "Content-Type: application/json\r\n",
			     "{\"error\":{\"code\":\"payload_too_large\",\"message\":\"body over 1 MiB\"}}");
	struct fake_resp resp = { FAKE_EARLY, tl, 0 };
	const char *argv[] = { "--timeout", "15", "deploy", "big", "big", "--runtime", "native", NULL };
	struct cli_run r;
	cli_run(root, argv, NULL, NULL, 0, &resp, 1, &r);
	if (r.status != 1 || strcmp(r.err, "error: payload_too_large: body over 1 MiB\n") != 0)
		UT_FAIL("exit %d, stderr: %s", r.status, r.err);
	UT_EQ(r.out_len, 0);
	cli_run_free(&r);
	free(tl);
	fake_rmtree(root);
	free(root);
}

/* 422 from a failing init: the server's code and message, exit 1. */
UT_TEST(cli_deploy_init_failed)
{
	char *root = fake_tmpdir(), *src = make_src(root);
	char *e = fake_http(422, NULL, "{\"error\":{\"code\":\"init_failed\",\"message\":"
				       "\"ImportError: no module named numpy\"}}");
	struct fake_resp resp = { FAKE_REPLY, e, 0 };
	const char *argv[] = { "deploy", "f", "src", "--runtime", "python", "--json", NULL };
	struct cli_run r;
	cli_run(root, argv, NULL, NULL, 0, &resp, 1, &r);
	UT_EQ(r.status, 1);
	UT_ASSERT(strcmp(r.err, "error: init_failed: ImportError: no module named numpy\n") == 0);
	UT_EQ(r.out_len, 0);
	cli_run_free(&r);
	free(e);
	fake_rmtree(root);
	free(root);
	free(src);
}
