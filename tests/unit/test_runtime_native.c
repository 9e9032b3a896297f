/* test_runtime_native.c — the runtime dispatcher and the native runtime
 * through the agent server over AF_UNIX: echo until an Init, runtime-only
 * warm-up, build/functions/hello-c and test-native (functions/test/native),
 * logs, failures, and the InitResult errors of bad packages. */
#include "guest-agent/runtime_capture.h"
#include "tests/unit/test_runtime.h"
#include "tests/unit/ut.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void expect_init_error(int fd, const char *runtime, const char *handler, const void *pkg,
			      size_t len, const char *const *env, size_t n_env, const char *msg)
{
	struct agent_init_result res;
	UT_EQ(rt_init(fd, runtime, handler, pkg, len, env, n_env, 0, &res), 0);
	if (res.ok || !strstr(res.error, msg))
		UT_FAIL("init %s/%s: ok=%d error '%s', want '%s'", runtime, handler ? handler : "",
			res.ok, res.error, msg);
}

UT_TEST(runtime_echo_until_init)
{
	struct rt_srv s;
	rt_start(&s);
	struct agent_hello h;
	int fd = rt_dial(&s, &h);
	UT_ASSERT(strcmp(h.runtime, "echo") == 0);
	UT_EQ(h.state, UFAGENT__AGENT_STATE__AGENT_STATE_READY);
	struct agent_result r;
	rt_call(fd, "ping me", &r);
	UT_ASSERT(r.status == 200 && r.body_len == 7 && memcmp(r.body, "ping me", 7) == 0);
	agent_result_free(&r);
	/* Init with runtime echo: acknowledged, nothing changes. */
	struct agent_init_result res;
	UT_EQ(rt_init(fd, "echo", NULL, NULL, 0, NULL, 0, 0, &res), 0);
	UT_ASSERT(res.ok);
	rt_call(fd, "still", &r);
	UT_ASSERT(r.body_len == 5 && memcmp(r.body, "still", 5) == 0);
	agent_result_free(&r);
	/* Then a real runtime. */
	const char *env[] = { "GREETING=hi" };
	rt_deploy(fd, "native", NULL, "hello-c", env, 1);
	rt_call(fd, "Ada", &r);
	UT_EQ(r.status, 200);
	UT_ASSERT(r.body_len == 9 && memcmp(r.body, "hi, Ada!\n", 9) == 0);
	UT_ASSERT(strcmp(r.content_type, "text/plain; charset=utf-8") == 0 && r.error[0] == 0);
	UT_ASSERT(rt_has(r.logs, r.logs_len, "hello-c: call call-"));
	agent_result_free(&r);
	/* READY with a function: no second Init, and echo is gone. */
	UT_EQ(rt_init(fd, "native", NULL, "x", 1, NULL, 0, 0, &res), -EPROTO);
	close(fd);
	fd = rt_dial(&s, &h);
	UT_ASSERT(strcmp(h.runtime, "native") == 0);
	UT_EQ(h.state, UFAGENT__AGENT_STATE__AGENT_STATE_READY);
	UT_EQ(rt_init(fd, "echo", NULL, NULL, 0, NULL, 0, 0, &res), -EPROTO);
	close(fd);
	rt_stop(&s);
}

UT_TEST(runtime_native_warmup_then_package)
{
	struct rt_srv s;
	rt_start(&s);
	int fd = rt_dial(&s, NULL);
	struct agent_init_result res;
	UT_EQ(rt_init(fd, "native", NULL, NULL, 0, NULL, 0, 0, &res), 0);   /* runtime only */
	UT_ASSERT(res.ok);
	close(fd);
	struct agent_hello h;
	fd = rt_dial(&s, &h);
	UT_ASSERT(strcmp(h.runtime, "native") == 0);
	UT_EQ(h.state, UFAGENT__AGENT_STATE__AGENT_STATE_FRESH);
	struct agent_result r;
	UT_EQ(agent_client_invoke(fd, "early", "x", 1, 0, &r), -EAGAIN);   /* NOT_READY */
	close(fd);
	fd = rt_dial(&s, NULL);
	rt_deploy(fd, "native", "handler.so", "test-native", NULL, 0);
	rt_call(fd, "count", &r);
	UT_ASSERT(r.body_len == 3 && memcmp(r.body, "1 1", 3) == 0);   /* uf_init ran */
	agent_result_free(&r);
	close(fd);
	rt_stop(&s);
}

UT_TEST(runtime_native_calls)
{
	struct rt_srv s;
	rt_start(&s);
	int fd = rt_dial(&s, NULL);
	const char *env[] = { "UF_TEST_VAR=value from Init.env" };
	rt_deploy(fd, "native", NULL, "test-native", env, 1);
	struct agent_result r;

	rt_call(fd, "env", &r);
	UT_ASSERT(r.body_len == strlen("value from Init.env") &&
		  memcmp(r.body, "value from Init.env", r.body_len) == 0);
	agent_result_free(&r);
	rt_call(fd, "count", &r);
	UT_ASSERT(r.body_len == 3 && memcmp(r.body, "2 1", 3) == 0);
	agent_result_free(&r);

	rt_call(fd, "hello", &r);
	UT_ASSERT(r.status == 200 && r.body_len == 12 && memcmp(r.body, "native:hello", 12) == 0);
	UT_ASSERT(strcmp(r.content_type, "application/octet-stream") == 0);
	/* stdout and stderr both (stdio buffers stdout: their order is stdio's) */
	const char *want = "test-native: stdout line\ntest-native: stderr line\n";
	UT_EQ(r.logs_len, strlen(want));
	UT_ASSERT(rt_has(r.logs, r.logs_len, "test-native: stdout line\n"));
	UT_ASSERT(rt_has(r.logs, r.logs_len, "test-native: stderr line\n"));
	agent_result_free(&r);

	rt_call(fd, "fail", &r);
	UT_EQ(r.status, 502);
	UT_ASSERT(strcmp(r.error, "uf_handle returned 3") == 0 && r.body_len == 0);
	UT_ASSERT(rt_has(r.logs, r.logs_len, "failing on purpose"));
	agent_result_free(&r);

	rt_call(fd, "teapot", &r);
	UT_ASSERT(r.status == 418 && strcmp(r.content_type, "text/x-teapot") == 0 && !r.error[0]);
	agent_result_free(&r);

	rt_call(fd, "spam 100000", &r);   /* 100000 bytes of logs: the tail is kept, */
	UT_EQ(r.logs_len, UF_AGENT_MAX_LOGS);   /* marked as truncated */
	UT_EQ(r.logs[r.logs_len - 1], 'a' + 99999 % 26);
	UT_ASSERT(memcmp(r.logs, AGENT_LOG_MARKER, strlen(AGENT_LOG_MARKER)) == 0);
	agent_result_free(&r);

	rt_call(fd, "big", &r);          /* 6 MiB body; uf_write refuses one byte more */
	UT_EQ(r.status, 200);
	UT_EQ(r.body_len, UF_AGENT_MAX_PAYLOAD);
	UT_ASSERT(r.body[0] == 'b' && r.body[r.body_len - 1] == 'b');
	agent_result_free(&r);

	rt_call(fd, "", &r);             /* empty event; the calls before left no logs behind */
	UT_ASSERT(r.body_len == 7 && memcmp(r.body, "native:", 7) == 0);
	UT_ASSERT(r.logs_len == strlen(want));
	agent_result_free(&r);
	close(fd);
	rt_stop(&s);
}

UT_TEST(runtime_native_bad_packages)
{
	struct rt_srv s;
	rt_start(&s);
	int fd = rt_dial(&s, NULL);
	static const char text[] = "plain text, not a package";
	expect_init_error(fd, "native", NULL, text, sizeof text, NULL, 0, "not gzip");
	size_t len;
	const struct rt_entry trav[] = { { .name = "../../etc/evil", .type = '0', .data = "x" } };
	uint8_t *pkg = rt_targz(trav, 1, 0, &len);
	expect_init_error(fd, "native", NULL, pkg, len, NULL, 0, "'..' in path");
	free(pkg);
	const struct rt_entry esc[] = { { .name = "handler.so", .type = '2', .link = "/usr/lib/x.so" } };
	pkg = rt_targz(esc, 1, 0, &len);
	expect_init_error(fd, "native", NULL, pkg, len, NULL, 0, "leaves its directory");
	free(pkg);
	const struct rt_entry none[] = { { .name = "README", .type = '0', .data = "no code" } };
	pkg = rt_targz(none, 1, 0, &len);
	expect_init_error(fd, "native", NULL, pkg, len, NULL, 0,
			  "handler handler.so is not a file in the package");
	expect_init_error(fd, "native", "../README", pkg, len, NULL, 0, "must be a relative path");
	expect_init_error(fd, "native", "README", pkg, len, NULL, 0, "cannot load README");
	free(pkg);
	expect_init_error(fd, "cobol", NULL, text, sizeof text, NULL, 0, "unknown runtime 'cobol'");
	expect_init_error(fd, "", NULL, text, sizeof text, NULL, 0, "Init.runtime is empty");
	close(fd);

	struct agent_hello h;
	fd = rt_dial(&s, &h);
	UT_EQ(h.state, UFAGENT__AGENT_STATE__AGENT_STATE_FAILED);
	struct agent_result r;
	UT_EQ(agent_client_invoke(fd, "x", "x", 1, 0, &r), -EAGAIN);
	close(fd);

	/* The init hook fails: its output comes with the error; env is rolled back. */
	fd = rt_dial(&s, NULL);
	const char *bad_env[] = { "UF_TEST_INIT_FAIL=1", "UF_TEST_VAR=from-the-failed-init" };
	len = 0;
	pkg = rt_read_file(RT_FUNCTIONS "/test-native.tar.gz", &len);
	expect_init_error(fd, "native", NULL, pkg, len, bad_env, 2, "uf_init returned 7");
	expect_init_error(fd, "native", NULL, pkg, len, bad_env, 2, "test-native: init");
	/* After all that, the same package deploys, without the failed env. */
	struct agent_init_result res;
	UT_EQ(rt_init(fd, "native", NULL, pkg, len, NULL, 0, 0, &res), 0);
	UT_ASSERT(res.ok);
	free(pkg);
	rt_call(fd, "env", &r);
	UT_ASSERT(r.body_len == 7 && memcmp(r.body, "(unset)", 7) == 0);
	agent_result_free(&r);
	close(fd);
	rt_stop(&s);
}

UT_TEST(runtime_native_memory_budget)
{
	struct rt_srv s;
	rt_start(&s);
	int fd = rt_dial(&s, NULL);
	/* memory_mb 2: 1 MiB of unpacked files at most. */
	size_t big = 3u << 20, len;
	char *zeros = calloc(1, big);
	const struct rt_entry e[] = { { .name = "data.bin", .type = '0', .data = zeros, .len = big } };
	uint8_t *pkg = rt_targz(e, 1, 0, &len);
	free(zeros);
	struct agent_init_result res;
	UT_EQ(rt_init(fd, "native", NULL, pkg, len, NULL, 0, 2, &res), 0);
	UT_ASSERT(!res.ok && strstr(res.error, "memory budget of 1048576 bytes"));
	free(pkg);
	close(fd);
	rt_stop(&s);
}
