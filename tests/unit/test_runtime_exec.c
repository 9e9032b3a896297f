/* test_runtime_exec.c — the exec runtime through the agent server over
 * AF_UNIX: build/functions/hello-exec and test-exec (functions/test/exec):
 * framing both ways with large events, stderr as logs, a crash or exit
 * failing its call and the next call restarting the process, protocol
 * violations, deadlines, and start-up failures as InitResult errors. */
#include "tests/unit/test_runtime.h"
#include "tests/unit/ut.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void expect_ok(int fd, const char *event, const char *body)
{
	struct agent_result r;
	rt_call(fd, event, &r);
	if (r.status != 200 || r.body_len != strlen(body) || memcmp(r.body, body, r.body_len) ||
	    r.error[0])
		UT_FAIL("%s: status %u, '%.*s', error '%s'; want '%s'", event, r.status,
			(int)r.body_len, (const char *)r.body, r.error, body);
	agent_result_free(&r);
}

static void expect_fail(int fd, const char *event, const char *msg, const char *log)
{
	struct agent_result r;
	rt_call(fd, event, &r);
	if (r.status != 502 || !strstr(r.error, msg) || r.body_len != 0 ||
	    (log && !rt_has(r.logs, r.logs_len, log)))
		UT_FAIL("%s: status %u, error '%s' (want '%s'), logs '%.*s'", event, r.status, r.error,
			msg, (int)r.logs_len, (const char *)r.logs);
	agent_result_free(&r);
}

UT_TEST(runtime_exec_hello)
{
	struct rt_srv s;
	rt_start(&s);
	int fd = rt_dial(&s, NULL);
	const char *env[] = { "GREETING=yo" };
	rt_deploy(fd, "exec", NULL, "hello-exec", env, 1);
	struct agent_result r;
	rt_call(fd, "Eve", &r);
	UT_ASSERT(r.status == 200 && r.body_len == 9 && memcmp(r.body, "yo, Eve!\n", 9) == 0);
	UT_ASSERT(r.logs_len == strlen("hello-exec: call 1, 3 bytes\n") &&
		  rt_has(r.logs, r.logs_len, "hello-exec: call 1, 3 bytes\n"));
	agent_result_free(&r);
	expect_ok(fd, "", "yo, world!\n");
	close(fd);
	struct agent_hello h;
	fd = rt_dial(&s, &h);
	UT_ASSERT(strcmp(h.runtime, "exec") == 0);
	UT_EQ(h.state, UFAGENT__AGENT_STATE__AGENT_STATE_READY);
	close(fd);
	rt_stop(&s);
}

UT_TEST(runtime_exec_calls_crashes_restarts)
{
	struct rt_srv s;
	rt_start(&s);
	int fd = rt_dial(&s, NULL);
	const char *env[] = { "UF_TEST_VAR=exec-env" };
	rt_deploy(fd, "exec", "handler", "test-exec", env, 1);
	expect_ok(fd, "env", "exec-env");
	expect_ok(fd, "a", "exec:2:a");

	/* 3 MiB each way: the agent writes while the handler reads. */
	size_t big = 3u << 20;
	char *ev = malloc(big + 1);
	for (size_t i = 0; i < big; i++)
		ev[i] = (char)('a' + i % 26);
	ev[big] = '\0';
	struct agent_result r;
	rt_call(fd, ev, &r);
	UT_ASSERT(r.status == 200 && r.body_len == big + 7 && memcmp(r.body, "exec:3:", 7) == 0 &&
		  memcmp(r.body + 7, ev, big) == 0);
	UT_ASSERT(rt_has(r.logs, r.logs_len, "test-exec: call 3\n"));
	agent_result_free(&r);
	free(ev);

	rt_call(fd, "teapot", &r);
	UT_ASSERT(r.status == 418 && r.body_len == 3 && !r.error[0]);
	agent_result_free(&r);

	/* A crash fails its call; the next call starts a new process. */
	expect_fail(fd, "crash", "exec: handler killed by signal 11", "test-exec: crashing");
	expect_ok(fd, "b", "exec:1:b");
	expect_fail(fd, "exit", "exec: handler exited with status 4 during the call", NULL);
	expect_ok(fd, "c", "exec:1:c");
	/* Protocol violations kill it too. */
	expect_fail(fd, "badstatus", "status 42 outside 100..599", NULL);
	expect_ok(fd, "d", "exec:1:d");
	/* Stray bytes after a response: seen between calls, or read as the
	 * next response's header (a bad status) if they come later. */
	expect_ok(fd, "extra", "ok");
	expect_fail(fd, "e", "exec: protocol violation: ", NULL);
	expect_ok(fd, "f", "exec:1:f");
	/* A deadline the handler misses (it sleeps 3 s, the call allows 500 ms). */
	UT_EQ(agent_client_invoke(fd, "slow", "sleep", 5, 500, &r), 0);
	UT_ASSERT(r.status == 502 && strstr(r.error, "missed the call's deadline of 500 ms"));
	agent_result_free(&r);
	expect_ok(fd, "g", "exec:1:g");
	close(fd);
	rt_stop(&s);
}

static void expect_init_error(int fd, const char *handler, const void *pkg, size_t len,
			      const char *const *env, size_t n_env, const char *msg)
{
	struct agent_init_result res;
	UT_EQ(rt_init(fd, "exec", handler, pkg, len, env, n_env, 0, &res), 0);
	if (res.ok || !strstr(res.error, msg))
		UT_FAIL("ok=%d error '%s', want '%s'", res.ok, res.error, msg);
}

UT_TEST(runtime_exec_init_failures)
{
	struct rt_srv s;
	rt_start(&s);
	int fd = rt_dial(&s, NULL);
	size_t len;
	uint8_t *pkg = rt_read_file(RT_FUNCTIONS "/test-exec.tar.gz", &len);
	const char *fail_env[] = { "UF_TEST_INIT_FAIL=1" };
	expect_init_error(fd, NULL, pkg, len, fail_env, 1,
			  "failed its start-up (status 5): init refused by UF_TEST_INIT_FAIL");
	const char *exit_env[] = { "UF_TEST_INIT_EXIT=1" };
	expect_init_error(fd, NULL, pkg, len, exit_env, 1,
			  "exec: handler exited with status 3 before it was ready");
	expect_init_error(fd, NULL, pkg, len, exit_env, 1, "stderr: test-exec: starting");
	expect_init_error(fd, "nothere", pkg, len, NULL, 0, "handler nothere is not an executable");
	free(pkg);
	const struct rt_entry text[] = { { .name = "handler", .type = '0', .data = "hello" } };
	pkg = rt_targz(text, 1, 0, &len);
	expect_init_error(fd, NULL, pkg, len, NULL, 0, "is not an executable file");
	free(pkg);
	const struct rt_entry noelf[] = { { .name = "handler", .type = '0', .data = "hello",
					    .mode = 0755 } };
	pkg = rt_targz(noelf, 1, 0, &len);
	expect_init_error(fd, NULL, pkg, len, NULL, 0, "exec: cannot start");
	free(pkg);
	/* The same package deploys once the failing env is gone (it was rolled back). */
	rt_deploy(fd, "exec", NULL, "test-exec", NULL, 0);
	expect_ok(fd, "env", "(unset)");
	close(fd);
	rt_stop(&s);
}
