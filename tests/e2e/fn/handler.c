/* e2e/fn — the native function the end-to-end tests deploy (built against
 * functions/sdk/unifork.h into handler.so): one behaviour per request body.
 *
 *   init         fails (returns 5) when E2E_INIT_FAIL is set
 *   "version"    body = $E2E_VERSION (set through the function's env)
 *   "state"      how many calls this clone served (always 1: one clone a call)
 *   "sleep MS"   sleeps MS milliseconds, then "slept"
 *   "loop"       never returns (the deadline kills the clone: 504)
 *   "crash"      dereferences NULL (the VM goes down: 502)
 *   "fail"       returns non-zero (unhandled: 502)
 *   "log TEXT"   prints TEXT on stdout, body "logged"
 *   anything else: "e2e:" + the body
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unifork.h"

static unsigned calls;

int uf_init(void)
{
	printf("e2e: init\n");
	if (getenv("E2E_INIT_FAIL")) {
		fprintf(stderr, "e2e: init failing on purpose\n");
		return 5;
	}
	return 0;
}

static int is(const struct uf_request *r, const char *s)
{
	return r->len == strlen(s) && memcmp(r->event, s, r->len) == 0;
}

static int starts(const struct uf_request *r, const char *s)
{
	return r->len >= strlen(s) && memcmp(r->event, s, strlen(s)) == 0;
}

int uf_handle(const struct uf_request *req, struct uf_response *resp)
{
	calls++;
	if (is(req, "version")) {
		const char *v = getenv("E2E_VERSION");
		return uf_write_str(resp, v ? v : "none");
	}
	if (is(req, "state"))
		return uf_printf(resp, "%u", calls);
	if (starts(req, "sleep ")) {
		char num[16] = {0};
		size_t k = req->len - 6 < sizeof num - 1 ? req->len - 6 : sizeof num - 1;
		memcpy(num, (const char *)req->event + 6, k);
		usleep((useconds_t)atoi(num) * 1000u);
		return uf_write_str(resp, "slept");
	}
	if (is(req, "loop"))
		for (volatile int spin = 1; spin;)
			;
	if (is(req, "crash")) {
		volatile int *p = NULL;
		*p = 1;
	}
	if (is(req, "fail")) {
		fprintf(stderr, "e2e: failing on purpose\n");
		return 1;
	}
	if (starts(req, "log ")) {
		printf("%.*s\n", (int)req->len - 4, (const char *)req->event + 4);
		return uf_write_str(resp, "logged");
	}
	if (uf_write_str(resp, "e2e:") != 0)
		return 2;
	return uf_write(resp, req->event, req->len);
}
