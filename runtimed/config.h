/* config.h — runtimed's configuration: command-line flags, their
 * environment variables and defaults, the paths of the guest artifacts and
 * the control-plane token (given, or generated once into DATA/token, 0600).
 *
 *   --listen ADDR      UNIFORK_LISTEN   127.0.0.1:8080
 *   --data DIR         UNIFORK_DATA     ./var
 *   --token TOKEN      UNIFORK_TOKEN    else DATA/token (created on first start)
 *   --cpus N           UNIFORK_CPUS     online CPUs: template builds run at once,
 *                                       and the scheduler's run slots
 *   --memory-mb N      UNIFORK_MEMORY_MB  guest RAM of all live instances (0 = no limit)
 *   --sched fair|off   UNIFORK_SCHED    fair: group scheduler (runtimed/sched.h);
 *                                       off: every call straight to its worker
 *   --max-instances N  UNIFORK_MAX_INSTANCES  calls admitted at once, all
 *                                       functions (queued + running + paused; 0 = no limit)
 *   --queue-max N      UNIFORK_QUEUE_MAX  queued calls per group (256)
 *   --queue-timeout-ms N UNIFORK_QUEUE_TIMEOUT_MS  longest wait in a queue (30000)
 *   --slice-ms N       UNIFORK_SLICE_MS  run time before preemption when
 *                                       another group waits (50; 0 = never)
 *   --kernel FILE      UNIFORK_KERNEL   build/guest/vmlinux
 *   --initrd FILE      UNIFORK_INITRD   build/guest/initramfs.cpio
 *   --initrd-python F  UNIFORK_INITRD_PYTHON  build/guest/initramfs-python.cpio (if present)
 *   --agent FILE       UNIFORK_AGENT    build/bin/guest-agent (hashed into template keys)
 *   --worker FILE      UNIFORK_WORKER   uf-worker next to the runtimed binary
 *   --drain-s N        seconds SIGTERM waits for calls in flight (30)
 * A flag wins over its variable.  Paths are made absolute.
 */
#ifndef RT_CONFIG_H
#define RT_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "snapshotter/format.h"

#define RT_TOKEN_BYTES 24               /* random bytes of a generated token */

struct rt_config {
	char listen[128];
	char data[PATH_MAX];
	char token[256];
	unsigned cpus;
	uint64_t memory_mb;             /* 0 = unlimited */
	bool sched_off;
	unsigned max_instances;         /* 0 = unlimited */
	unsigned queue_max;
	unsigned queue_timeout_ms;
	unsigned slice_ms;
	char kernel[PATH_MAX];
	char initrd[PATH_MAX];
	char initrd_python[PATH_MAX];   /* "" when absent */
	char agent[PATH_MAX];           /* "" when absent (not hashed) */
	char worker[PATH_MAX];
	unsigned drain_s;
	/* sha256s of kernel, agent and each initramfs, taken at start. */
	struct snap_origin origin;              /* with the default initramfs */
	struct snap_origin origin_python;       /* with the python one */
};

/* Parse flags and environment (envp-style lookups through getenv).
 * Returns 0, 1 after --help (printed), or -EINVAL (message on stderr). */
int rt_config_parse(struct rt_config *c, int argc, char **argv) __attribute__((warn_unused_result));

/* Create the data directory, load or generate the token (when none was
 * given), and hash the artifacts.  0 or -errno (vmm_strerror()). */
int rt_config_prepare(struct rt_config *c) __attribute__((warn_unused_result));

/* The initramfs and origin a runtime's templates are built from. */
const char *rt_config_initrd(const struct rt_config *c, const char *runtime);
const struct snap_origin *rt_config_origin(const struct rt_config *c, const char *runtime);

/* "KHEX:IHEX:AHEX" for uf-worker --origin (out: 3*64+3 bytes). */
void rt_config_origin_arg(const struct snap_origin *o, char *out, size_t cap);

#endif
