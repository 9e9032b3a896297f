/* cow.c — clone a template into a shell, run it, reset it in place, give
 * it back; and what a clone costs in memory. */
#include "forker/cow.h"
#include "vmm/err.h"
#include "vmm/vm.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#define SYNC_WANT (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS)

static int restore_state(struct fork_clone *c, unsigned flags)
{
	const struct fork_vcpu_state *s = &c->tmpl->state;
	struct vmm_vcpu *v = &c->shell->vcpu;

	if ((flags & FORK_SYNC_REGS) && (c->shell->sync_regs & SYNC_WANT) == SYNC_WANT) {
		/* Applied by the next KVM_RUN before it enters the guest; KVM
		 * clears the dirty bits once it has. */
		v->run->s.regs.regs = s->regs;
		v->run->s.regs.sregs = s->sregs;
		v->run->kvm_valid_regs = 0;
		v->run->kvm_dirty_regs = SYNC_WANT;
		return 0;
	}
	/* SREGS first: it may change the mode the general registers live in. */
	if (ioctl(v->fd, KVM_SET_SREGS, &s->sregs) < 0)
		return vmm_errno(-errno, "clone: KVM_SET_SREGS");
	if (ioctl(v->fd, KVM_SET_REGS, &s->regs) < 0)
		return vmm_errno(-errno, "clone: KVM_SET_REGS");
	return 0;
}

int fork_clone_run(struct fork_clone *c, uint64_t *answer)
{
	struct vmm_vcpu *v = &c->shell->vcpu;

	for (;;) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return vmm_errno(-errno, "clone: KVM_RUN");
		}
		if (v->run->exit_reason == KVM_EXIT_INTR)
			continue;
		int ret = vmm_mg_answer(v->run, c->tmpl->state.answer, answer);
		if (ret < 0)
			return ret;
		c->exits++;
		return 0;
	}
}

int fork_clone_request(struct fork_clone *c, enum vmm_mg_op op, uint64_t arg, uint64_t addr,
		       uint64_t count, uint64_t *answer)
{
	int ret = vmm_mg_request(c->mem, c->mem_size, op, arg, addr, count);
	if (ret < 0)
		return ret;
	return fork_clone_run(c, answer);
}

/* Restore the template's vCPU state and run to the first answer, timing
 * both steps (what a clone and a reset share after their memory step). */
static int restore_and_run(struct fork_clone *c, unsigned flags, uint64_t *answer,
			   uint64_t *restore_ns, uint64_t *run_ns)
{
	uint64_t t0 = vmm_now_ns();
	int ret = restore_state(c, flags);
	if (ret < 0)
		return ret;
	uint64_t t1 = vmm_now_ns();
	ret = fork_clone_run(c, answer);
	if (ret < 0)
		return ret;
	*restore_ns = t1 - t0;
	*run_ns = vmm_now_ns() - t1;
	return 0;
}

int fork_clone(struct fork_clone *c, struct fork_shell_pool *pool, const struct fork_template *t,
	       unsigned flags, uint64_t *answer, struct fork_times *times)
{
	int ret;
	uint64_t t0 = vmm_now_ns();

	memset(c, 0, sizeof(*c));
	c->pool = pool;
	c->tmpl = t;
	c->shell = fork_shell_take(pool);
	if (!c->shell)
		return vmm_err(-EAGAIN, "clone: no idle shell (pool of %u)", pool->n);
	uint64_t t1 = vmm_now_ns();
	if (c->shell->mem_size != t->mem_size) {
		ret = vmm_err(-EINVAL, "clone: template of %" PRIu64 " bytes, shell of %" PRIu64,
			      t->mem_size, c->shell->mem_size);
		goto err_put;
	}
	/* MAP_NORESERVE: no commit charge for the whole size up front; the
	 * clone pays for the pages it actually copies. */
	void *p = mmap(c->shell->mem, t->mem_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, t->memfd, 0);
	if (p == MAP_FAILED) {
		ret = vmm_errno(-errno, "clone: map template");
		goto err_put;
	}
	c->mem = p;
	c->mem_size = t->mem_size;
	uint64_t t2 = vmm_now_ns(), restore_ns, run_ns;
	ret = restore_and_run(c, flags, answer, &restore_ns, &run_ns);
	if (ret < 0)
		goto err_put;
	if (times)
		*times = (struct fork_times){.take_ns = t1 - t0, .map_ns = t2 - t1,
					     .restore_ns = restore_ns, .run_ns = run_ns,
					     .total_ns = vmm_now_ns() - t0};
	return 0;

err_put:
	fork_shell_put(pool, c->shell);
	memset(c, 0, sizeof(*c));
	return ret;
}

int fork_clone_reset(struct fork_clone *c, unsigned flags, uint64_t *answer,
		     struct fork_times *times)
{
	int ret;
	uint64_t t0 = vmm_now_ns();

	/* On a private file mapping this frees the clone's copies; the next
	 * access (guest or host) maps the template's page again.  KVM's MMU
	 * notifier drops its mappings of the range first. */
	if (madvise(c->mem, c->mem_size, MADV_DONTNEED) < 0)
		return vmm_errno(-errno, "reset: MADV_DONTNEED");
	uint64_t t1 = vmm_now_ns(), restore_ns, run_ns;
	ret = restore_and_run(c, flags, answer, &restore_ns, &run_ns);
	if (ret < 0)
		return ret;
	if (times)
		*times = (struct fork_times){.map_ns = t1 - t0, .restore_ns = restore_ns,
					     .run_ns = run_ns, .total_ns = vmm_now_ns() - t0};
	return 0;
}

void fork_clone_destroy(struct fork_clone *c)
{
	if (c->shell)
		fork_shell_put(c->pool, c->shell);
	memset(c, 0, sizeof(*c));
}

/* Sum Rss and Anonymous over the VMAs inside the clone's range (one,
 * unless something split it). */
int fork_clone_mem_usage(const struct fork_clone *c, struct fork_mem_usage *u)
{
	return fork_range_mem_usage(c->mem, c->mem_size, u);
}

int fork_range_mem_usage(const void *mem, uint64_t size, struct fork_mem_usage *u)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	if (!f)
		return vmm_errno(-errno, "mem usage: open /proc/self/smaps");
	uintptr_t lo = (uintptr_t)mem, hi = lo + size;
	char line[512];
	bool in = false, found = false;
	unsigned long long kib;

	memset(u, 0, sizeof(*u));
	while (fgets(line, sizeof(line), f)) {
		uintptr_t a, b;
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " ", &a, &b) == 2) {
			in = a >= lo && b <= hi;
			found |= in;
		} else if (in && sscanf(line, "Rss: %llu kB", &kib) == 1) {
			u->rss_kib += kib;
		} else if (in && sscanf(line, "Anonymous: %llu kB", &kib) == 1) {
			u->anon_kib += kib;
		}
	}
	fclose(f);
	if (!found)
		return vmm_err(-ENOENT, "mem usage: no mapping at %p in /proc/self/smaps", mem);
	return 0;
}
