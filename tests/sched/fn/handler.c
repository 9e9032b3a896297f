/* sched/fn — the CPU-bound native function tests/sched/run.sh deploys
 * (built against functions/sdk/unifork.h into handler.so):
 *
 *   "spin N"   N rounds of integer arithmetic (a fixed amount of CPU work,
 *              nothing else), then "spun N"
 *   anything else: "sched:" + the body (a light call)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "unifork.h"

int uf_init(void)
{
	return 0;
}

int uf_handle(const struct uf_request *req, struct uf_response *resp)
{
	if (req->len > 5 && req->len < 32 && memcmp(req->event, "spin ", 5) == 0) {
		char num[32] = {0};
		memcpy(num, (const char *)req->event + 5, req->len - 5);
		unsigned long n = strtoul(num, NULL, 10);
		volatile uint64_t x = 1;
		for (unsigned long i = 0; i < n; i++)
			x = x * 6364136223846793005ull + 1442695040888963407ull;
		return uf_printf(resp, "spun %lu", n);
	}
	if (uf_write_str(resp, "sched:") != 0)
		return 2;
	return uf_write(resp, req->event, req->len);
}
