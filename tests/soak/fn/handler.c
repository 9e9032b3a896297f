/* soak/fn — the soak test's fault function (native, built against
 * functions/sdk/unifork.h into handler.so by tests/soak/run.sh): each
 * request body picks a behaviour, so the soak client can mix good calls
 * with calls that take their clone down.
 *
 *   "crash"      dereferences NULL: the agent (PID 1) dies, the clone's VM
 *                goes down, the call gets 502
 *   "spin"       never returns: the deadline kills the clone, 504
 *   "big N"      answers N bytes (N <= 4 MiB), byte i = 'a' + (i*7 + i/251) % 26
 *                (the client recomputes it)
 *   anything else: "soak:" + the body
 */
#include <stdlib.h>
#include <string.h>

#include "unifork.h"

#define BIG_MAX (4u << 20)

static int is(const struct uf_request *r, const char *s)
{
	return r->len == strlen(s) && memcmp(r->event, s, r->len) == 0;
}

static int big(const struct uf_request *req, struct uf_response *resp)
{
	char num[16] = {0};
	size_t k = req->len - 4 < sizeof num - 1 ? req->len - 4 : sizeof num - 1;
	memcpy(num, (const char *)req->event + 4, k);
	unsigned long n = strtoul(num, NULL, 10);
	if (n > BIG_MAX)
		return 3;
	char *buf = malloc(n ? n : 1);
	if (!buf)
		return 4;
	for (unsigned long i = 0; i < n; i++)
		buf[i] = (char)('a' + (i * 7 + i / 251) % 26);
	int rc = uf_write(resp, buf, n);
	free(buf);
	return rc;
}

int uf_handle(const struct uf_request *req, struct uf_response *resp)
{
	if (is(req, "crash")) {
		volatile int *p = NULL;
		*p = 1;
	}
	if (is(req, "spin"))
		for (volatile int spin = 1; spin;)
			;
	if (req->len > 4 && memcmp(req->event, "big ", 4) == 0)
		return big(req, resp);
	if (uf_write_str(resp, "soak:") != 0)
		return 2;
	return uf_write(resp, req->event, req->len);
}
