/* vm_clone.c — Linux clones on pre-built shells: start, reset in place,
 * destroy (contract in vm_clone.h). */
#include "forker/vm_clone.h"
#include "proto/agent_client.h"
#include "proto/uf_abi.h"
#include "vmm/err.h"
#include "vmm/vm_debug.h"
#include "vmm/vsock_host.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

int fork_vm_template_open(struct fork_vm_template *t, const char *dir, const struct snap_expect *exp)
{
	memset(t, 0, sizeof(*t));
	t->mem.memfd = -1;
	pthread_rwlock_init(&t->ws_lock, NULL);
	int ret = snap_open(dir, exp, &t->img);
	if (ret) {
		pthread_rwlock_destroy(&t->ws_lock);
		return ret;
	}
	if ((ret = fork_template_from_fd(&t->mem, t->img.mem_fd, t->img.meta->vm.mem_size))) {
		snap_image_close(&t->img);
		pthread_rwlock_destroy(&t->ws_lock);
		return ret;
	}
	/* From here on the image reads memory from the memfd, never the file. */
	int dup = fcntl(t->mem.memfd, F_DUPFD_CLOEXEC, 0);
	if (dup < 0) {
		ret = vmm_errno(-errno, "template: dup memfd");
		fork_vm_template_close(t);
		return ret;
	}
	close(t->img.mem_fd);
	t->img.mem_fd = dup;

	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/" FORK_WS_FILE, dir) < (int)sizeof(path)) {
		/* A damaged working set costs only its speed-up. */
		int r = fork_ws_load(&t->ws, path, t->mem.mem_size);
		if (r && r != -ENOENT)
			fprintf(stderr, "unifork: template %s: working set ignored: %s\n", dir,
				vmm_strerror());
	}
	return 0;
}

void fork_vm_template_close(struct fork_vm_template *t)
{
	snap_image_close(&t->img);
	fork_template_release(&t->mem);
	fork_ws_free(&t->ws);
	pthread_rwlock_destroy(&t->ws_lock);
}

void fork_vm_template_set_ws(struct fork_vm_template *t, struct fork_ws *ws)
{
	pthread_rwlock_wrlock(&t->ws_lock);
	fork_ws_free(&t->ws);
	t->ws = *ws;
	pthread_rwlock_unlock(&t->ws_lock);
	memset(ws, 0, sizeof(*ws));
}

void fork_vm_template_config(const struct fork_vm_template *t, struct vmm_vm_config *cfg)
{
	snap_vm_config(&t->img, cfg);
}

static uint64_t lap(uint64_t *t)
{
	uint64_t now = vmm_now_ns(), d = now - *t;
	*t = now;
	return d;
}

static int64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* Everything after the shell is in hand: restore, run, connect, fix up. */
static int bring_up(struct fork_vm_clone *c, unsigned flags, struct fork_vm_times *tm, uint64_t t)
{
	struct vmm_vm *vm = &c->v->vm;
	const struct fork_vm_template *tp = c->tmpl;
	struct snap_restore_stats rs;
	int ret;

	if ((ret = snap_restore(vm, &tp->img, &rs)))
		return ret;
	uint64_t restore = lap(&t);
	tm->map_ns = rs.memory_us * 1000;
	tm->restore_ns = restore > tm->map_ns ? restore - tm->map_ns : 0;
	if (flags & FORK_VM_PREFETCH) {
		struct fork_vm_template *tw = (struct fork_vm_template *)tp;  /* the lock only */
		pthread_rwlock_rdlock(&tw->ws_lock);
		ret = tp->ws.n ? fork_ws_prefetch(&tp->ws, vm->mem.host, vm->mem.size) : 0;
		pthread_rwlock_unlock(&tw->ws_lock);
		if (ret)
			return ret;
	}
	tm->prefetch_ns = lap(&t);

	fork_vm_run(c->v);
	if ((ret = snap_wait_vsock_reset(vm, &tp->img, FORK_VM_START_TIMEOUT_MS)))
		return ret;
	tm->run_ns = lap(&t);

	if ((ret = vsock_host_connect_wait(vm->vsock, UF_AGENT_VSOCK_PORT, FORK_VM_START_TIMEOUT_MS,
					   &c->fd)))
		return vmm_errno(ret, "connect to the clone's agent");
	if ((ret = agent_client_hello(c->fd, &c->hello, FORK_VM_START_TIMEOUT_MS)))
		return vmm_errno(ret, "the clone's agent sent no Hello");
	tm->connect_ns = lap(&t);

	uint8_t ent[48];
	if (getrandom(ent, sizeof(ent), 0) != (ssize_t)sizeof(ent))
		return vmm_errno(-errno, "getrandom for the clone's entropy");
	struct agent_fixup_ack ack;
	if ((ret = agent_client_fixup(c->fd, ent, sizeof(ent), realtime_ns(), &ack,
				      FORK_VM_START_TIMEOUT_MS)))
		return vmm_errno(ret, "post-clone fixup");
	if (!ack.ok)
		return vmm_err(-EPROTO, "the clone refused its fixup (entropy errno %d, reseed %d, clock %d)",
			       ack.entropy_errno, ack.reseed_errno, ack.clock_errno);
	tm->fixup_ns = lap(&t);
	c->starts++;
	return 0;
}

/* A start that failed once the guest ran: say where the guest was, after
 * the error's own context (the clone is destroyed next). */
static void fail_report(struct fork_vm_clone *c, int ret)
{
	char why[512], where[256];
	snprintf(why, sizeof(why), "%s", vmm_strerror());
	if (!c->v || fork_vm_halt(c->v, 1000))
		return;
	struct vmm_exit ex;
	if (fork_vm_exited(c->v, &ex) && ex.kind != VMM_EXIT_STOPPED)
		vmm_err(ret, "%s; the guest ended: %s", why, ex.detail);
	else if (c->v->vm.t_first_run)
		vmm_err(ret, "%s; guest %s", why, vmm_vm_describe(&c->v->vm, where, sizeof(where)));
}

int fork_vm_clone_start(struct fork_vm_clone *c, struct fork_vm_pool *pool,
			const struct fork_vm_template *t, unsigned flags, struct fork_vm_times *tm)
{
	struct fork_vm_times local;
	if (!tm)
		tm = &local;
	memset(tm, 0, sizeof(*tm));
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->tmpl = t;
	uint64_t t0 = vmm_now_ns(), t1 = t0;
	int ret;
	if (!(c->v = fork_vm_take(pool, &ret)))
		return ret;
	tm->take_ns = lap(&t1);
	if ((ret = bring_up(c, flags, tm, t1))) {
		fail_report(c, ret);
		fork_vm_clone_destroy(c);
		return ret;
	}
	tm->total_ns = vmm_now_ns() - t0;
	return 0;
}

int fork_vm_clone_reset(struct fork_vm_clone *c, unsigned flags, struct fork_vm_times *tm)
{
	struct fork_vm_times local;
	if (!tm)
		tm = &local;
	memset(tm, 0, sizeof(*tm));
	if (!c->v)
		return vmm_err(-EINVAL, "reset of a destroyed clone");
	uint64_t t0 = vmm_now_ns();
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	int ret = fork_vm_halt(c->v, FORK_VM_START_TIMEOUT_MS);
	if (!ret && (ret = bring_up(c, flags, tm, vmm_now_ns())))
		fail_report(c, ret);
	if (ret) {
		fork_vm_clone_destroy(c);
		return ret;
	}
	tm->total_ns = vmm_now_ns() - t0;
	return 0;
}

void fork_vm_clone_destroy(struct fork_vm_clone *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->v)
		fork_vm_put(c->v);
	c->v = NULL;
}

bool fork_vm_clone_exited(struct fork_vm_clone *c, struct vmm_exit *ex)
{
	return c->v && fork_vm_exited(c->v, ex);
}

int fork_vm_clone_mem_usage(const struct fork_vm_clone *c, struct fork_mem_usage *u)
{
	if (!c->v)
		return vmm_err(-EINVAL, "memory of a destroyed clone");
	return fork_range_mem_usage(c->v->vm.mem.host, c->v->vm.mem.size, u);
}
