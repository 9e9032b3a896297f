/* test_runtime_python.c — the python runtime (build/bin/uf-runtime-python.so,
 * Debian's libpython3.11 and /usr/lib/python3.11, natively) through the
 * agent server over AF_UNIX: runtime-only warm-up then the function,
 * return types, context, exceptions, logs, env, import-time failures. */
#include "tests/unit/test_runtime.h"
#include "tests/unit/ut.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char handler_py[] =
	"import os, sys\n"
	"N = 0\n"
	"def handle(event, context):\n"
	"    global N\n"
	"    N += 1\n"
	"    e = event.decode('utf-8', 'replace')\n"
	"    if e == 'bytes': return b'\\x00\\x01raw'\n"
	"    if e == 'bytearray': return bytearray(b'ba')\n"
	"    if e == 'memoryview': return memoryview(b'mv')\n"
	"    if e == 'str': return 'h\\u00e9llo'\n"
	"    if e == 'dict': return {'a': [1, 2], 'b': None}\n"
	"    if e == 'none': return None\n"
	"    if e == 'status':\n"
	"        context['status'] = 404\n"
	"        context['response_content_type'] = 'text/x-nf'\n"
	"        return 'nope'\n"
	"    if e == 'badstatus':\n"
	"        context['status'] = 'x'\n"
	"        return ''\n"
	"    if e == 'object': return object()\n"
	"    if e == 'raise': raise ValueError('boom ' + context['call_id'])\n"
	"    if e == 'exit': raise SystemExit(3)\n"
	"    if e == 'env': return os.environ.get('UF_TEST_VAR', '(unset)')\n"
	"    if e == 'print':\n"
	"        print('to stdout')\n"
	"        print('to stderr', file=sys.stderr)\n"
	"        os.write(1, b'fd one\\n')\n"
	"        return 'printed'\n"
	"    if e == 'ctx': return [context['call_id'], context['content_type'],\n"
	"                           context['deadline_ms']]\n"
	"    if e == 'count': return N\n"
	"    if e == 'rstate':\n"
	"        import random\n"
	"        return str(hash(random.getstate()))\n"
	"    return event\n";

static uint8_t *pkg_of(const char *name, const char *source, size_t *len)
{
	const struct rt_entry e[] = { { .name = name, .type = '0', .data = source } };
	return rt_targz(e, 1, 0, len);
}

static void expect_body(int fd, const char *event, uint32_t status, const char *ct,
			const void *body, size_t len)
{
	struct agent_result r;
	rt_call(fd, event, &r);
	if (r.status != status || r.body_len != len || (len && memcmp(r.body, body, len)) ||
	    (ct && strcmp(r.content_type, ct)) || r.error[0])
		UT_FAIL("%s: status %u, %zu bytes '%.*s', type %s, error '%s'", event, r.status,
			r.body_len, (int)r.body_len, (const char *)r.body, r.content_type, r.error);
	agent_result_free(&r);
}

UT_TEST(runtime_python_warmup_then_hello)
{
	struct rt_srv s;
	rt_start_python(&s);
	int fd = rt_dial(&s, NULL);
	struct agent_init_result res;
	UT_EQ(rt_init(fd, "python", NULL, NULL, 0, NULL, 0, 0, &res), 0);
	if (!res.ok)
		UT_FAIL("warm-up: %s", res.error);
	close(fd);
	struct agent_hello h;
	fd = rt_dial(&s, &h);
	UT_ASSERT(strcmp(h.runtime, "python") == 0);
	UT_EQ(h.state, UFAGENT__AGENT_STATE__AGENT_STATE_FRESH);
	/* GREETING reaches os.environ although CPython started before it was set. */
	const char *env[] = { "GREETING=hey" };
	rt_deploy(fd, "python", NULL, "hello-python", env, 1);
	expect_body(fd, "Bob", 200, "text/plain; charset=utf-8", "hey, Bob!\n", 10);
	struct agent_result r;
	rt_call(fd, "", &r);
	UT_ASSERT(r.body_len == 12 && memcmp(r.body, "hey, world!\n", 12) == 0);
	UT_ASSERT(rt_has(r.logs, r.logs_len, "hello-python: call call-"));
	agent_result_free(&r);
	close(fd);
	fd = rt_dial(&s, &h);
	UT_EQ(h.state, UFAGENT__AGENT_STATE__AGENT_STATE_READY);
	close(fd);
	rt_stop(&s);
}

UT_TEST(runtime_python_results)
{
	struct rt_srv s;
	rt_start_python(&s);
	int fd = rt_dial(&s, NULL);
	size_t len;
	uint8_t *pkg = pkg_of("handler.py", handler_py, &len);
	const char *env[] = { "UF_TEST_VAR=py-env" };
	struct agent_init_result res;
	UT_EQ(rt_init(fd, "python", "handler.handle", pkg, len, env, 1, 0, &res), 0);
	free(pkg);
	if (!res.ok)
		UT_FAIL("init: %s", res.error);

	expect_body(fd, "bytes", 200, "application/octet-stream", "\0\1raw", 5);
	expect_body(fd, "bytearray", 200, "application/octet-stream", "ba", 2);
	expect_body(fd, "memoryview", 200, "application/octet-stream", "mv", 2);
	expect_body(fd, "str", 200, "text/plain; charset=utf-8", "h\xc3\xa9llo", 6);
	expect_body(fd, "dict", 200, "application/json", "{\"a\": [1, 2], \"b\": null}", 24);
	expect_body(fd, "none", 200, "application/json", "null", 4);
	expect_body(fd, "status", 404, "text/x-nf", "nope", 4);
	expect_body(fd, "env", 200, NULL, "py-env", 6);
	expect_body(fd, "anything", 200, "application/octet-stream", "anything", 8);

	struct agent_invoke inv = { .call_id = "ctx-call", .event = "ctx", .len = 3,
				    .deadline_ms = 2500, .content_type = "text/x-in", .timeout_ms = RT_TMO };
	struct agent_result r;
	UT_EQ(agent_client_invoke_req(fd, &inv, &r), 0);
	const char *want = "[\"ctx-call\", \"text/x-in\", 2500]";
	UT_ASSERT(r.body_len == strlen(want) && memcmp(r.body, want, r.body_len) == 0);
	agent_result_free(&r);

	rt_call(fd, "raise", &r);
	UT_EQ(r.status, 502);
	UT_ASSERT(strncmp(r.error, "ValueError: boom call-", 22) == 0 && r.body_len == 0);
	UT_ASSERT(rt_has(r.logs, r.logs_len, "Traceback (most recent call last)"));
	UT_ASSERT(rt_has(r.logs, r.logs_len, "handler.py\", line"));
	agent_result_free(&r);

	rt_call(fd, "exit", &r);   /* SystemExit fails the call, not the agent */
	UT_ASSERT(r.status == 502 && strstr(r.error, "SystemExit: 3"));
	agent_result_free(&r);

	rt_call(fd, "object", &r);
	UT_ASSERT(r.status == 502 && strstr(r.error, "TypeError") && strstr(r.error, "JSON"));
	agent_result_free(&r);

	rt_call(fd, "badstatus", &r);
	UT_ASSERT(r.status == 502 && strstr(r.error, "context['status']"));
	agent_result_free(&r);

	rt_call(fd, "print", &r);
	UT_ASSERT(r.status == 200 && r.body_len == 7);
	UT_ASSERT(rt_has(r.logs, r.logs_len, "to stdout\n"));
	UT_ASSERT(rt_has(r.logs, r.logs_len, "to stderr\n"));
	UT_ASSERT(rt_has(r.logs, r.logs_len, "fd one\n"));
	agent_result_free(&r);

	/* Module state lives on between calls of one process (this is call 16). */
	expect_body(fd, "count", 200, "application/json", "16", 2);
	close(fd);
	rt_stop(&s);
}

static void expect_py_init_error(int fd, const char *handler, const char *file, const char *src,
				 const char *msg)
{
	size_t len;
	uint8_t *pkg = pkg_of(file, src, &len);
	struct agent_init_result res;
	UT_EQ(rt_init(fd, "python", handler, pkg, len, NULL, 0, 0, &res), 0);
	free(pkg);
	if (res.ok || !strstr(res.error, msg))
		UT_FAIL("init %s: ok=%d error '%s', want '%s'", handler ? handler : "(default)",
			res.ok, res.error, msg);
}

UT_TEST(runtime_python_init_failures)
{
	struct rt_srv s;
	rt_start_python(&s);
	int fd = rt_dial(&s, NULL);
	expect_py_init_error(fd, NULL, "handler.py", "def handle(e, c)\n    return e\n",
			     "SyntaxError");
	expect_py_init_error(fd, NULL, "handler.py", "raise RuntimeError('no config')\n",
			     "python: import handler: RuntimeError: no config");
	expect_py_init_error(fd, NULL, "handler.py", "raise RuntimeError('no config')\n",
			     "Traceback");    /* the traceback comes with the error */
	expect_py_init_error(fd, NULL, "handler.py", "import no_such_module\n",
			     "ModuleNotFoundError: No module named 'no_such_module'");
	expect_py_init_error(fd, "other.handle", "handler.py", "def handle(e, c): return e\n",
			     "No module named 'other'");
	expect_py_init_error(fd, "handler.nothere", "handler.py", "def handle(e, c): return e\n",
			     "module handler has no function nothere");
	expect_py_init_error(fd, "handler", "handler.py", "def handle(e, c): return e\n",
			     "must be module.function");
	expect_py_init_error(fd, "../x.handle", "handler.py", "def handle(e, c): return e\n",
			     "must be module.function");
	/* After the failures a good package imports afresh. */
	size_t len;
	uint8_t *pkg = pkg_of("handler.py", "def handle(e, c): return b'fixed:' + e\n", &len);
	struct agent_init_result res;
	UT_EQ(rt_init(fd, "python", NULL, pkg, len, NULL, 0, 0, &res), 0);
	free(pkg);
	if (!res.ok)
		UT_FAIL("init: %s", res.error);
	expect_body(fd, "x", 200, NULL, "fixed:x", 7);
	close(fd);
	rt_stop(&s);
}

UT_TEST(runtime_python_packages_and_heavy_init)
{
	struct rt_srv s;
	rt_start_python(&s);
	int fd = rt_dial(&s, NULL);
	/* A package with a sub-package and a dotted handler. */
	const struct rt_entry e[] = {
		{ .name = "app/__init__.py", .type = '0', .data = "" },
		{ .name = "app/util.py", .type = '0', .data = "def twice(b): return b + b\n" },
		{ .name = "app/main.py", .type = '0',
		  .data = "from app.util import twice\ndef run(e, c): return twice(e)\n" },
	};
	size_t len;
	uint8_t *pkg = rt_targz(e, 3, 0, &len);
	struct agent_init_result res;
	UT_EQ(rt_init(fd, "python", "app.main.run", pkg, len, NULL, 0, 0, &res), 0);
	free(pkg);
	if (!res.ok)
		UT_FAIL("init: %s", res.error);
	expect_body(fd, "ab", 200, NULL, "abab", 4);
	close(fd);
	rt_stop(&s);

	rt_start_python(&s);
	fd = rt_dial(&s, NULL);
	rt_deploy(fd, "python", NULL, "heavy-python", NULL, 0);
	struct agent_result r;
	rt_call(fd, "<req><n>5</n></req>", &r);
	UT_EQ(r.status, 200);
	UT_ASSERT(strcmp(r.content_type, "application/json") == 0);
	/* the 6th prime, Decimal arithmetic, the email subject, a row from sqlite */
	UT_ASSERT(rt_has(r.body, r.body_len, "\"prime\": 13,"));
	UT_ASSERT(rt_has(r.body, r.body_len, "\"decimal\": \"3.3\""));
	UT_ASSERT(rt_has(r.body, r.body_len, "\"subject\": \"prime #5\""));
	UT_ASSERT(rt_has(r.body, r.body_len, "\"sqlite\": \"v5\""));
	agent_result_free(&r);
	close(fd);
	rt_stop(&s);
}

/* A Fixup (a new clone) reseeds `random`, which was seeded before the
 * snapshot: without it every clone would draw the same numbers. */
UT_TEST(runtime_python_fixup_reseeds_random)
{
	struct rt_srv s;
	rt_start_python(&s);
	int fd = rt_dial(&s, NULL);
	size_t len;
	uint8_t *pkg = pkg_of("handler.py", handler_py, &len);
	struct agent_init_result res;
	UT_EQ(rt_init(fd, "python", NULL, pkg, len, NULL, 0, 0, &res), 0);
	free(pkg);
	UT_ASSERT(res.ok);
	struct agent_result a, b, c;
	rt_call(fd, "rstate", &a);
	rt_call(fd, "rstate", &b);
	UT_ASSERT(a.body_len == b.body_len && memcmp(a.body, b.body, a.body_len) == 0);
	uint8_t ent[48] = { 1, 2, 3 };
	struct agent_fixup_ack ack;
	UT_EQ(agent_client_fixup(fd, ent, sizeof ent, 1, &ack, RT_TMO), 0);
	UT_ASSERT(ack.ok);
	rt_call(fd, "rstate", &c);
	UT_ASSERT(c.status == 200 && (c.body_len != a.body_len || memcmp(c.body, a.body, a.body_len)));
	agent_result_free(&a);
	agent_result_free(&b);
	agent_result_free(&c);
	close(fd);
	rt_stop(&s);
}
