/* build.h — the template chain (build.c) and `uf-worker build`'s request
 * (build_main.c parses it from the command line). */
#ifndef UF_WORKER_BUILD_H
#define UF_WORKER_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/worker_msg.h"
#include "snapshotter/format.h"

/* The longest an agent may take to answer an Init (interpreter start and
 * the function's own init included). */
#define BUILD_INIT_TIMEOUT_MS 300000
#define BUILD_DEFAULT_CMDLINE \
	"console=ttyS0 quiet panic=-1 reboot=k nomodule pci=off tsc=reliable no_timer_check rdinit=/init"

struct build_req {
	const char *templates;          /* cache directory of base/runtime links */
	const char *kernel, *initrd;
	const char *cmdline;
	struct snap_origin origin;      /* sha256 of kernel, initrd, agent */
	const char *runtime;            /* [a-z0-9_-]{1,32} */
	const char *handler;
	const void *package;            /* .tar.gz bytes */
	size_t package_len;
	const char *const *env;         /* "KEY=VALUE" */
	size_t n_env;
	uint32_t mem_mb;
	uint32_t timeout_ms;
	const char *out;                /* where the function template goes */
};

struct build_out {
	Ufworker__BuildStatus status;
	char message[UF_WORKER_MAX_TEXT / 2];
	char key[17];                   /* cache key of the base/runtime links */
	bool base_reused, runtime_reused;
	uint64_t template_bytes, build_us, init_us;
};

/* The cache key: 16 hex digits of sha256(origin, mem_mb, cmdline). */
void build_key(const struct build_req *q, char key[17]);

/* Run the chain.  0, or -errno with out->status and out->message set
 * (-ECANCELED with BUILD_INIT_FAILED when the function's init failed). */
int worker_build(const struct build_req *q, struct build_out *out);

#endif
