/* itest.c — shared helpers of the C guest integration tests. */
#include "tests/integration/itest.h"
#include "vmm/vm_debug.h"
#include "guest-agent/handler.h"
#include "vmm/vsock_host.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__thread char itest_failmsg[512];

void itest_fill(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed | 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

int itest_open_agent(struct vmm_vm *vm, int *fd)
{
	int r = vsock_host_connect_wait(vm->vsock, UF_AGENT_VSOCK_PORT, 10000, fd);
	CHECK(r == 0, "connect to the agent: %s", strerror(-r));
	struct agent_hello h;
	r = agent_client_hello(*fd, &h, ITEST_IO_MS);
	if (r) {
		close(*fd);
		CHECK(0, "hello: %s", strerror(-r));
	}
	CHECK(h.version == UF_AGENT_PROTO_VERSION, "hello version %u", h.version);
	return 0;
}

int itest_echo(int fd, size_t len, uint64_t seed)
{
	static __thread uint8_t *buf;
	if (!buf)
		buf = malloc(UF_AGENT_MAX_PAYLOAD);
	CHECK(buf && len <= UF_AGENT_MAX_PAYLOAD, "echo of %zu bytes: no buffer", len);
	itest_fill(buf, len, seed);
	struct agent_result res;
	char id[32];
	snprintf(id, sizeof(id), "c%llx", (unsigned long long)seed);
	int r = agent_client_invoke(fd, id, buf, len, 0, &res);
	CHECK(r == 0, "invoke of %zu bytes: %s", len, strerror(-r));
	int ok = res.status == 200 && res.body_len == len && memcmp(res.body, buf, len) == 0;
	size_t got = res.body_len;
	uint32_t st = res.status;
	agent_result_free(&res);
	CHECK(ok, "echo of %zu bytes came back as %zu bytes, status %u, or differs", len, got, st);
	return 0;
}

int itest_diag(int fd, const char *req, char *out, size_t cap, uint32_t *status)
{
	struct agent_invoke inv = {.call_id = "diag", .event = req, .len = strlen(req),
				   .content_type = AGENT_DIAG_CONTENT_TYPE, .timeout_ms = ITEST_IO_MS};
	struct agent_result res;
	int r = agent_client_invoke_req(fd, &inv, &res);
	CHECK(r == 0, "diag '%s': %s", req, strerror(-r));
	size_t n = res.body_len < cap - 1 ? res.body_len : cap - 1;
	memcpy(out, res.body, n);
	out[n] = 0;
	*status = res.status;
	agent_result_free(&res);
	return 0;
}

int itest_main(int argc, char **argv, int nfixed, const struct itest_case *cases, size_t n)
{
	int passed = 0, failed = 0;
	for (size_t i = 0; i < n; i++) {
		bool want = argc == nfixed;
		for (int a = nfixed; a < argc; a++)
			want |= strcmp(argv[a], cases[i].name) == 0;
		if (!want)
			continue;
		uint64_t t0 = vmm_now_ns();
		itest_failmsg[0] = 0;
		if (cases[i].fn() == 0) {
			passed++;
			printf("ok   %s (%.1f s)\n", cases[i].name, (double)(vmm_now_ns() - t0) / 1e9);
		} else {
			failed++;
			printf("FAIL %s: %s\n", cases[i].name, itest_failmsg);
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

/* The System.map symbol at or below addr ("func+0x12"), or "?". */
static void kernel_symbol(const char *kernel, uint64_t addr, char *out, size_t cap)
{
	char map[PATH_MAX];
	const char *slash = strrchr(kernel, '/');
	int dl = slash ? (int)(slash - kernel) : 1;
	snprintf(out, cap, "?");
	if (snprintf(map, sizeof(map), "%.*s/System.map", dl, slash ? kernel : ".") >= (int)sizeof(map))
		return;
	FILE *f = fopen(map, "r");
	if (!f)
		return;
	char line[256], best[128] = "";
	uint64_t best_addr = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a;
		char type, name[128];
		if (sscanf(line, "%llx %c %127s", &a, &type, name) != 3)
			continue;
		if (a <= addr && a >= best_addr && (type == 't' || type == 'T')) {
			best_addr = a;
			snprintf(best, sizeof(best), "%s", name);
		}
	}
	fclose(f);
	if (best[0])
		snprintf(out, cap, "%s+0x%llx", best, (unsigned long long)(addr - best_addr));
}

uint64_t itest_count_exits(struct vmm_vm *vm, int watch_ms)
{
	uint64_t e0 = vm->exits;
	usleep((useconds_t)watch_ms * 1000);
	return vm->exits - e0;
}

void itest_where(struct vmm_vm *vm, const char *kernel, uint64_t exits, char *out, size_t cap)
{
	char where[256], sym[160] = "";
	struct vmm_cpu_where w;
	vmm_vm_describe(vm, where, sizeof(where));
	if (vmm_vm_where(vm, &w) == 0 && w.cpl == 0)
		kernel_symbol(kernel, w.rip, sym, sizeof(sym));
	snprintf(out, cap, "%llu exits in the last second; %s%s%s", (unsigned long long)exits, where,
		 sym[0] ? " at " : "", sym);
}
