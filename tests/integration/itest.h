/* itest.h — what the C guest integration tests share: the runner (each test
 * a function; `prog KERNEL INITRD [TEST...]`; "N passed, N failed" at the
 * end), failure messages, and talking to a guest's agent over vsock. */
#ifndef TESTS_ITEST_H
#define TESTS_ITEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "proto/agent_client.h"
#include "vmm/vm.h"

#define ITEST_IO_MS 120000
#define ITEST_CMDLINE \
	"console=ttyS0 quiet panic=-1 reboot=k nomodule pci=off tsc=reliable no_timer_check rdinit=/init"

extern __thread char itest_failmsg[512];

/* Fail the current test with a message (from a function returning int). */
#define CHECK(cond, ...)                                                          \
	do {                                                                      \
		if (!(cond)) {                                                    \
			/* (a truncated message is still a failure) */            \
			if (snprintf(itest_failmsg, sizeof(itest_failmsg), __VA_ARGS__) < 0) \
				itest_failmsg[0] = 0;                             \
			return -1;                                                \
		}                                                                 \
	} while (0)

struct itest_case {
	const char *name;
	int (*fn)(void);
};

/* Run the cases named on the command line after the first `nfixed`
 * arguments (all when none is named); returns the exit status. */
int itest_main(int argc, char **argv, int nfixed, const struct itest_case *cases, size_t n);

/* Connect to the agent's vsock port and read its Hello. */
int itest_open_agent(struct vmm_vm *vm, int *fd);
/* One echo round trip of `len` pseudo-random bytes, verified byte for byte. */
int itest_echo(int fd, size_t len, uint64_t seed);
/* A diagnostics call (guest-agent/handler_diag.c): the body, NUL-terminated,
 * in out (cap bytes); *status gets the handler's status. */
int itest_diag(int fd, const char *req, char *out, size_t cap, uint32_t *status);
void itest_fill(uint8_t *p, size_t n, uint64_t seed);
/* A guest that stopped answering: how many times its vCPU exited to us over
 * `watch_ms` (a busy guest exits, a spinning one does not) ... */
uint64_t itest_count_exits(struct vmm_vm *vm, int watch_ms);
/* ... and, once the caller stopped its vCPU, where it was (vmm/vm_debug.h)
 * with the kernel symbol from System.map next to `kernel` when RIP is in the
 * kernel. */
void itest_where(struct vmm_vm *vm, const char *kernel, uint64_t exits, char *out, size_t cap);

#endif
