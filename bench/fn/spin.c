/* bench/fn/spin — a CPU-bound native function for bench/burst's share by
 * weight: the request body is a decimal iteration count N (capped at
 * 10^10); the handler spins N iterations of an LCG and answers
 * "spun N <state>\n".  Built by bench/burst with functions/sdk/unifork.h
 * into handler.so. */
#include <stdint.h>
#include <stdio.h>

#include "unifork.h"

int uf_handle(const struct uf_request *req, struct uf_response *resp)
{
	const char *p = (const char *)req->event;
	uint64_t n = 0, x = 1;

	for (size_t i = 0; i < req->len && i < 11; i++) {
		if (p[i] < '0' || p[i] > '9')
			return uf_printf(resp, "bad count\n") < 0 ? 1 : 0;
		n = n * 10 + (uint64_t)(p[i] - '0');
	}
	if (n > 10000000000ull)
		n = 10000000000ull;
	for (uint64_t i = 0; i < n; i++)
		x = x * 6364136223846793005ull + 1442695040888963407ull;
	uf_set_content_type(resp, "text/plain; charset=utf-8");
	return uf_printf(resp, "spun %llu %llu\n", (unsigned long long)n,
			 (unsigned long long)(x >> 48));
}
