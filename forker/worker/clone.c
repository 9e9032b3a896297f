/* clone.c — make a clone: a forker/vm_clone.h clone of the template on one
 * of its pre-built shells (restore, run, connect, Hello, Fixup), retried
 * while a starved guest is slow to answer (contract in clone.h). */
#include "forker/worker/clone.h"
#include "proto/agent_client.h"
#include "vmm/err.h"
#include "vmm/vsock_host.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int worker_tmpl_open(struct worker_tmpl *t, const char *dir, const struct snap_origin *origin)
{
	memset(t, 0, sizeof(*t));
	t->vt.img.mem_fd = -1;
	t->vt.mem.memfd = -1;
	if (strlen(dir) >= sizeof(t->dir))
		return vmm_err(-ENAMETOOLONG, "template %.64s...: path too long", dir);
	snprintf(t->dir, sizeof(t->dir), "%s", dir);
	struct snap_expect exp = {.origin = origin};
	int r = fork_vm_template_open(&t->vt, dir, &exp);
	if (r)
		return r;
	t->cfg = (struct vmm_vm_config){.console_fd = -1, .vsock_cid = WORKER_VSOCK_CID};
	fork_vm_template_config(&t->vt, &t->cfg);
	if ((r = fork_vm_pool_init(&t->pool, &t->cfg, 0))) {
		fork_vm_template_close(&t->vt);
		return r;
	}
	t->pool_on = true;
	return 0;
}

void worker_tmpl_set_shells(struct worker_tmpl *t, unsigned n)
{
	if (t->pool_on)
		fork_vm_pool_set_target(&t->pool, n);
}

void worker_tmpl_close(struct worker_tmpl *t)
{
	if (t->pool_on)
		fork_vm_pool_release(&t->pool);
	t->pool_on = false;
	if (t->vt.img.meta || t->vt.mem.memfd >= 0)
		fork_vm_template_close(&t->vt);
	t->vt.img.meta = NULL;
	t->vt.mem.memfd = -1;
}

int worker_tmpl_record_ws(struct worker_tmpl *t)
{
	struct worker_clone c;
	int r = worker_clone_start(&c, t);
	if (r)
		return r;
	r = agent_client_ping(c.fd, WORKER_CLONE_IO_MS);
	if (r)
		vmm_err(r, "working set: ping: %s", strerror(-r));
	if (!r)
		r = worker_clone_pause(&c);
	struct fork_ws ws = {0};
	struct vmm_vm *vm = worker_clone_vm(&c);
	if (!r)
		r = fork_ws_record(&ws, vm->mem.host, vm->mem.size);
	worker_clone_destroy(&c);
	char path[PATH_MAX];
	if (!r && snprintf(path, sizeof(path), "%s/" FORK_WS_FILE, t->dir) >= (int)sizeof(path))
		r = vmm_err(-ENAMETOOLONG, "working set: path too long");
	if (!r)
		r = fork_ws_save(&ws, path);
	fork_ws_free(&ws);
	return r;
}

int worker_tmpl_learn_ws(struct worker_tmpl *t, struct worker_clone *c)
{
	int r = worker_clone_pause(c);
	struct vmm_vm *vm = worker_clone_vm(c);
	struct fork_ws ws = {0};
	if (!r)
		r = fork_ws_record(&ws, vm->mem.host, vm->mem.size);
	char path[PATH_MAX];
	if (!r && snprintf(path, sizeof(path), "%s/" FORK_WS_FILE, t->dir) >= (int)sizeof(path))
		r = vmm_err(-ENAMETOOLONG, "working set: path too long");
	if (!r)
		r = fork_ws_save(&ws, path);
	if (!r)
		fork_vm_template_set_ws(&t->vt, &ws);
	fork_ws_free(&ws);
	return r;
}

int worker_clone_start(struct worker_clone *c, const struct worker_tmpl *t)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->vc.fd = -1;
	uint64_t t0 = vmm_now_ns();
	unsigned flags = FORK_VM_PREFETCH;      /* a no-op while there is no working set */
	/* A busy host can starve a fresh clone past the device's connect
	 * timeout: a clone that failed to come up is destroyed; try a new one
	 * until WORKER_CLONE_IO_MS has passed and WORKER_CLONE_TRIES were tried. */
	uint64_t until = t0 + (uint64_t)WORKER_CLONE_IO_MS * 1000000ull;
	int r;
	for (unsigned tries = 1;; tries++) {
		/* The pool locks itself: lending a shell out does not change
		 * the template, which any number of threads share. */
		r = fork_vm_clone_start(&c->vc, (struct fork_vm_pool *)&t->pool, &t->vt, flags, NULL);
		if (!r || (r != -ETIMEDOUT && r != -ECONNREFUSED && r != -ECONNRESET))
			break;
		/* A second clone even when the first used up the time: in the
		 * KVM sandbox a clone was seen stuck for good with an interrupt
		 * pending (QEMU's nested SVM), which a fresh clone is not. */
		if (vmm_now_ns() >= until && tries >= WORKER_CLONE_TRIES)
			break;
	}
	if (r)
		return vmm_err(r, "clone: %s", vmm_strerror());
	c->started = true;
	c->fd = c->vc.fd;
	snprintf(c->runtime, sizeof(c->runtime), "%.63s", c->vc.hello.runtime);
	c->hello_state = (int)c->vc.hello.state;
	c->created_ns = vmm_now_ns();
	c->restore_us = (c->created_ns - t0) / 1000;
	return 0;
}

int worker_clone_pause(struct worker_clone *c)
{
	if (c->vc.fd >= 0)
		close(c->vc.fd);
	c->vc.fd = c->fd = -1;
	if (!c->started || !c->vc.v)
		return vmm_err(-EINVAL, "clone: not started");
	int r = fork_vm_halt(c->vc.v, 30000);
	if (r)
		return vmm_err(r, "clone: vCPU did not stop: %s", strerror(-r));
	return 0;
}

bool worker_clone_dead(struct worker_clone *c)
{
	if (!c->started || !c->vc.v)
		return true;
	return fork_vm_clone_exited(&c->vc, NULL);
}

const char *worker_clone_exit_detail(struct worker_clone *c)
{
	struct vmm_exit ex;
	if (!c->started || !c->vc.v || !fork_vm_clone_exited(&c->vc, &ex))
		return "";
	return c->vc.v->exit.detail;
}

struct vmm_vm *worker_clone_vm(struct worker_clone *c)
{
	return c->started && c->vc.v ? &c->vc.v->vm : NULL;
}

/* What the clone's guest sent the vsock device that it refused: one line
 * on stderr (the worker's log) when anything was, so hostile or broken
 * guests show up in the logs (and in tests/faults/run.sh). */
static void report_hostile(struct worker_clone *c)
{
	struct vmm_vm *vm = worker_clone_vm(c);
	if (!vm || !vm->vsock)
		return;
	struct vsock_stats s;
	vsock_host_stats(vm->vsock, &s);
	uint64_t bad = s.drop_short + s.drop_bad_cid + s.drop_bad_type + s.drop_bad_op +
		       s.drop_bad_len + s.rx_bad_buf + s.credit_violations + s.conn_limit +
		       s.buf_limit + s.ring_errors + s.rst_unknown;
	if (!bad)
		return;
	fprintf(stderr, "uf-worker: clone vsock refused: short=%llu bad_cid=%llu bad_type=%llu "
		"bad_op=%llu bad_len=%llu rx_bad_buf=%llu credit=%llu conn_limit=%llu "
		"buf_limit=%llu ring_errors=%llu rst_unknown=%llu conns=%llu\n",
		(unsigned long long)s.drop_short, (unsigned long long)s.drop_bad_cid,
		(unsigned long long)s.drop_bad_type, (unsigned long long)s.drop_bad_op,
		(unsigned long long)s.drop_bad_len, (unsigned long long)s.rx_bad_buf,
		(unsigned long long)s.credit_violations, (unsigned long long)s.conn_limit,
		(unsigned long long)s.buf_limit, (unsigned long long)s.ring_errors,
		(unsigned long long)s.rst_unknown, (unsigned long long)s.conns_opened);
}

void worker_clone_destroy(struct worker_clone *c)
{
	report_hostile(c);
	fork_vm_clone_destroy(&c->vc);
	c->fd = -1;
	c->started = false;
}
