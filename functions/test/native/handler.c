/* test/native — the native runtime's test fixture (tests/unit/test_runtime_native.c
 * and tests/integration/runtime_itest.c): one behaviour per request body.
 *
 *   init      fails with 7 when UF_TEST_INIT_FAIL is set; prints a line either way
 *   "env"     body = $UF_TEST_VAR (set through Init.env before uf_init)
 *   "count"   body = how many calls this process served (init state survives)
 *   "fail"    prints to stderr, returns 3 (the call fails)
 *   "teapot"  status 418, content type text/x-teapot
 *   "spam N"  writes N bytes of logs to stdout (log truncation)
 *   "big"     a 6 MiB body, then one byte more (refused by uf_write)
 *   anything else: "native:" + the body, and one log line on each of stdout and stderr
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unifork.h"

static unsigned calls;
static int initialised;

int uf_init(void)
{
	printf("test-native: init\n");
	if (getenv("UF_TEST_INIT_FAIL"))
		return 7;
	initialised = 1;
	return 0;
}

static int is(const struct uf_request *r, const char *s)
{
	return r->len == strlen(s) && memcmp(r->event, s, r->len) == 0;
}

int uf_handle(const struct uf_request *req, struct uf_response *resp)
{
	calls++;
	if (is(req, "env")) {
		const char *v = getenv("UF_TEST_VAR");
		return uf_write_str(resp, v ? v : "(unset)");
	}
	if (is(req, "count"))
		return uf_printf(resp, "%u %d", calls, initialised);
	if (is(req, "fail")) {
		fprintf(stderr, "test-native: failing on purpose\n");
		return 3;
	}
	if (is(req, "teapot")) {
		resp->status = 418;
		uf_set_content_type(resp, "text/x-teapot");
		return uf_write_str(resp, "short and stout");
	}
	if (req->len > 5 && memcmp(req->event, "spam ", 5) == 0) {
		char num[32];
		size_t k = req->len - 5 < sizeof num - 1 ? req->len - 5 : sizeof num - 1;
		memcpy(num, (const char *)req->event + 5, k);
		num[k] = '\0';
		long n = atol(num);
		for (long i = 0; i < n; i++)
			putchar('a' + (int)(i % 26));
		return uf_write_str(resp, "spammed");
	}
	if (is(req, "big")) {
		static char chunk[65536];
		memset(chunk, 'b', sizeof chunk);
		for (size_t i = 0; i < UF_MAX_BODY / sizeof chunk; i++)
			if (uf_write(resp, chunk, sizeof chunk) != 0)
				return 10;
		return uf_write(resp, "x", 1) == -E2BIG ? 0 : 11;
	}
	printf("test-native: stdout line\n");
	fprintf(stderr, "test-native: stderr line\n");
	if (uf_write_str(resp, "native:") != 0)
		return 12;
	return uf_write(resp, req->event, req->len);
}
