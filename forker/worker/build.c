/* build.c — `uf-worker build`: make a function's template through the
 * template chain, reusing cached links:
 *
 *   base     boot kernel + initramfs, wait for the agent, snapshot
 *            (TEMPLATES/base-KEY; KEY covers the sha256 of kernel, initramfs
 *            and agent, the memory size and the command line)
 *   runtime  clone base, Init{runtime, empty package} (the agent warms the
 *            interpreter), snapshot (TEMPLATES/runtime-NAME-KEY)
 *   function clone runtime, Init{package, handler, env, ...}; a failed init
 *            is BUILD_INIT_FAILED (HTTP 422) with the agent's message;
 *            snapshot into --out
 *
 * A cached link is used when snap_open() accepts it with the current
 * origin hashes, so a changed kernel, initramfs or agent rebuilds it.  Each
 * link is built under an flock of its own, so concurrent builds share it.
 * The answer is one BuildResult frame on --fd (or a line on stdout).
 *
 *   uf-worker build --templates DIR --kernel FILE --initrd FILE [--agent FILE]
 *                   --out DIR --runtime NAME [--package FILE] [--handler H]
 *                   [--env K=V]... [--env-file FILE] [--mem-mb N]
 *                   [--timeout-ms N] [--fd N] [--cmdline STR]
 * (--env-file: KEY=VALUE entries each ended by a NUL byte.)
 */
#include "forker/worker/worker.h"
#include "forker/worker/build.h"
#include "vmm/err.h"
#include "vmm/fileio.h"
#include "vmm/vsock_host.h"
#include "proto/agent_client.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEC 1000000000ull

static uint64_t us_since(uint64_t t0)
{
	return (vmm_now_ns() - t0) / 1000;
}

/* Hold an exclusive lock on PATH.lock while a cache link is checked/built. */
static int lock_link(const char *path)
{
	char lk[PATH_MAX];
	if ((size_t)snprintf(lk, sizeof(lk), "%s.lock", path) >= sizeof(lk))
		return vmm_err(-ENAMETOOLONG, "%s: path too long", path);
	int fd = open(lk, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return vmm_errno(-errno, "open %s", lk);
	if (flock(fd, LOCK_EX) < 0) {
		int r = vmm_errno(-errno, "flock %s", lk);
		close(fd);
		return r;
	}
	return fd;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	if ((flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT)
		fprintf(stderr, "uf-worker: remove %s: %s\n", path, strerror(errno));
	return 0;
}

/* A usable cached snapshot at dir?  A damaged or stale one is removed (a
 * filesystem without RENAME_EXCHANGE could not replace it). */
static bool cached(const char *dir, const struct snap_origin *origin)
{
	struct worker_tmpl t;
	if (access(dir, F_OK) != 0)
		return false;
	if (worker_tmpl_open(&t, dir, origin) == 0) {
		worker_tmpl_close(&t);
		return true;
	}
	fprintf(stderr, "uf-worker: rebuilding %s: %s\n", dir, vmm_strerror());
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return false;
}

/* Pause a clone (or a booted VM) and snapshot it into dir. */
static int snapshot_vm(struct vmm_vm_thread *t, const char *dir, const struct snap_origin *o)
{
	vmm_vm_stop(&t->vm);
	int r = vmm_vm_thread_join(t, 30 * SEC);
	if (r)
		return vmm_err(r, "VM did not stop for its snapshot");
	return snap_save(&t->vm, dir, o, 0, NULL);
}

static int build_base(const struct build_req *q, const char *dir)
{
	struct vmm_vm_config cfg = {.mem_size = (uint64_t)q->mem_mb << 20,
				    .console_fd = STDERR_FILENO, .console_limit = 64 << 10,
				    .vsock_cid = WORKER_VSOCK_CID};
	struct vmm_vm_thread t;
	int r = vmm_vm_thread_start(&t, &cfg, q->kernel, q->initrd, q->cmdline, 120 * SEC);
	if (r)
		return r;
	int fd = -1;
	r = vsock_host_connect_wait(t.vm.vsock, UF_AGENT_VSOCK_PORT, WORKER_CLONE_IO_MS, &fd);
	if (r == 0) {
		struct agent_hello h;
		r = agent_client_hello(fd, &h, WORKER_CLONE_IO_MS);
		close(fd);
		if (r)
			vmm_err(r, "base: agent hello: %s", strerror(-r));
	} else {
		vmm_err(r, "base: connect to the agent: %s", strerror(-r));
	}
	if (r == 0)
		r = snapshot_vm(&t, dir, &q->origin);
	vmm_vm_thread_release(&t);
	return r;
}

/* Clone `from`, send Init, snapshot into `dir` if it succeeded.
 * *init_failed says whether the agent refused the Init. */
static int build_link(const struct build_req *q, const char *from, const char *dir,
		      const void *pkg, size_t pkg_len, const char *handler, bool with_env,
		      bool *init_failed, char *why, size_t whylen, uint64_t *init_us)
{
	struct worker_tmpl tm;
	struct worker_clone c;
	*init_failed = false;
	int r = worker_tmpl_open(&tm, from, &q->origin);
	if (r)
		return r;
	r = worker_clone_start(&c, &tm);
	if (r) {
		worker_tmpl_close(&tm);
		return r;
	}
	struct agent_init_req req = {
		.package = pkg, .package_len = pkg_len, .runtime = q->runtime, .handler = handler,
		.env = with_env ? q->env : NULL, .n_env = with_env ? q->n_env : 0,
		.memory_mb = q->mem_mb, .timeout_ms = q->timeout_ms,
	};
	struct agent_init_result res;
	r = agent_client_init(c.fd, &req, &res, BUILD_INIT_TIMEOUT_MS);
	if (r) {
		vmm_err(r, "init: the agent did not answer: %s", strerror(-r));
	} else if (!res.ok) {
		*init_failed = true;
		snprintf(why, whylen, "%.1900s", res.error[0] ? res.error : "init failed");
		r = -ECANCELED;
	} else {
		*init_us = res.duration_us;
		r = worker_clone_pause(&c);
		if (r == 0)
			r = snap_save(worker_clone_vm(&c), dir, &q->origin, 0, NULL);
	}
	worker_clone_destroy(&c);
	worker_tmpl_close(&tm);
	return r;
}

int worker_build(const struct build_req *q, struct build_out *out)
{
	char base[PATH_MAX], rt[PATH_MAX], why[UF_WORKER_MAX_TEXT / 2] = "";
	uint64_t t0 = vmm_now_ns();
	bool failed;
	memset(out, 0, sizeof(*out));
	out->status = UFWORKER__BUILD_STATUS__BUILD_FAILED;
	build_key(q, out->key);
	if ((size_t)snprintf(base, sizeof(base), "%s/base-%s", q->templates, out->key) >= sizeof(base) ||
	    (size_t)snprintf(rt, sizeof(rt), "%s/runtime-%s-%s", q->templates, q->runtime, out->key) >=
		    sizeof(rt)) {
		snprintf(out->message, sizeof(out->message), "template path too long");
		return -ENAMETOOLONG;
	}
	int lk = lock_link(base), r = lk < 0 ? lk : 0;
	if (r == 0) {
		out->base_reused = cached(base, &q->origin);
		if (!out->base_reused)
			r = build_base(q, base);
		close(lk);
	}
	if (r) {
		snprintf(out->message, sizeof(out->message), "base template: %s", vmm_strerror());
		return r;
	}
	lk = lock_link(rt);
	r = lk < 0 ? lk : 0;
	if (r == 0) {
		out->runtime_reused = cached(rt, &q->origin);
		if (!out->runtime_reused)
			r = build_link(q, base, rt, NULL, 0, "", false, &failed, why, sizeof(why),
				       &out->init_us);
		close(lk);
	}
	if (r) {
		snprintf(out->message, sizeof(out->message), "runtime %s template: %s", q->runtime,
			 failed ? why : vmm_strerror());
		return r;
	}
	r = build_link(q, rt, q->out, q->package, q->package_len, q->handler, true, &failed, why,
		       sizeof(why), &out->init_us);
	out->build_us = us_since(t0);
	if (r) {
		if (failed)
			out->status = UFWORKER__BUILD_STATUS__BUILD_INIT_FAILED;
		snprintf(out->message, sizeof(out->message), "%s",
			 failed ? why : vmm_strerror());
		return r;
	}
	/* The function template's working set (its clones prefetch it); a
	 * template without one still works, only slower to start. */
	struct worker_tmpl tm;
	if (worker_tmpl_open(&tm, q->out, &q->origin) == 0) {
		out->template_bytes = tm.vt.img.mem_file_alloc;
		if (worker_tmpl_record_ws(&tm))
			fprintf(stderr, "uf-worker: %s: no working set: %s\n", q->out, vmm_strerror());
		worker_tmpl_close(&tm);
	}
	out->status = UFWORKER__BUILD_STATUS__BUILD_OK;
	snprintf(out->message, sizeof(out->message), "ok");
	return 0;
}
