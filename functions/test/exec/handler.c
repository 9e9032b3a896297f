/* test/exec — the exec runtime's test fixture (tests/unit/test_runtime_exec.c
 * and tests/integration/runtime_itest.c): one behaviour per request body.
 *
 *   start     UF_TEST_INIT_FAIL set: a ready frame with status 5;
 *             UF_TEST_INIT_EXIT set: exits with 3 before it is ready
 *   "env"     body = $UF_TEST_VAR
 *   "crash"   raises SIGSEGV mid-call
 *   "exit"    exits with status 4 mid-call
 *   "teapot"  status 418
 *   "badstatus"  answers with status 42 (a protocol violation)
 *   "extra"   answers, then writes stray bytes to stdout
 *   "sleep"   sleeps 3 s before answering
 *   anything else: "exec:<calls served by this process>:" + the body, with a
 *             stderr line per call
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "uf_exec.h"

static int is(const uint8_t *ev, size_t len, const char *s)
{
	return len == strlen(s) && memcmp(ev, s, len) == 0;
}

int main(void)
{
	fprintf(stderr, "test-exec: starting\n");
	if (getenv("UF_TEST_INIT_EXIT"))
		return 3;
	if (getenv("UF_TEST_INIT_FAIL")) {
		uf_exec_fail(5, "init refused by UF_TEST_INIT_FAIL");
		return 0;
	}
	if (uf_exec_ready() < 0)
		return 1;
	uint8_t *ev;
	size_t len;
	unsigned calls = 0;
	int rc;
	while ((rc = uf_exec_read(&ev, &len)) > 0) {
		calls++;
		int st = 0;
		if (is(ev, len, "env")) {
			const char *v = getenv("UF_TEST_VAR");
			st = uf_exec_respond(200, v ? v : "(unset)", strlen(v ? v : "(unset)"));
		} else if (is(ev, len, "crash")) {
			fprintf(stderr, "test-exec: crashing\n");
			raise(SIGSEGV);
		} else if (is(ev, len, "exit")) {
			exit(4);
		} else if (is(ev, len, "teapot")) {
			st = uf_exec_respond(418, "tea", 3);
		} else if (is(ev, len, "badstatus")) {
			st = uf_exec_respond(42, "", 0);
		} else if (is(ev, len, "extra")) {
			st = uf_exec_respond(200, "ok", 2);
			(void)!write(1, "stray", 5);
		} else if (is(ev, len, "sleep")) {
			sleep(3);
			st = uf_exec_respond(200, "slept", 5);
		} else {
			char *body = malloc(len + 32);
			if (!body)
				return 1;
			int n = snprintf(body, 32, "exec:%u:", calls);
			if (len)
				memcpy(body + n, ev, len);
			fprintf(stderr, "test-exec: call %u\n", calls);
			st = uf_exec_respond(200, body, (size_t)n + len);
			free(body);
		}
		free(ev);
		if (st < 0)
			return 1;
	}
	return rc < 0 ? 1 : 0;
}
