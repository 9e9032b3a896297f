/* clone.c — make a clone: restore a snapshot into a new VM on a run thread,
 * connect to the agent, Hello, Fixup (contract in clone.h). */
#include "forker/worker/clone.h"
#include "proto/agent_client.h"
#include "vmm/err.h"
#include "vmm/vsock_host.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

int worker_tmpl_open(struct worker_tmpl *t, const char *dir, const struct snap_origin *origin)
{
	memset(t, 0, sizeof(*t));
	t->img.mem_fd = -1;
	if (strlen(dir) >= sizeof(t->dir))
		return vmm_err(-ENAMETOOLONG, "template %.64s...: path too long", dir);
	snprintf(t->dir, sizeof(t->dir), "%s", dir);
	struct snap_expect exp = {.origin = origin};
	int r = snap_open(dir, &exp, &t->img);
	if (r)
		return r;
	t->cfg = (struct vmm_vm_config){.console_fd = -1, .vsock_cid = WORKER_VSOCK_CID};
	snap_vm_config(&t->img, &t->cfg);
	return 0;
}

void worker_tmpl_close(struct worker_tmpl *t)
{
	if (t->img.meta || t->img.mem_fd >= 0)
		snap_image_close(&t->img);
	t->img.mem_fd = -1;
	t->img.meta = NULL;
}

static int64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

int worker_clone_start(struct worker_clone *c, const struct worker_tmpl *t)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	uint64_t t0 = vmm_now_ns();
	int r = snap_vm_thread_start(&c->t, &t->cfg, &t->img, NULL, NULL);
	if (r)
		return r;
	c->started = true;
	/* The device gives up on a connect the guest has not answered within
	 * its own connect timeout (2 s); a busy host can starve a fresh
	 * clone for longer, so try again until WORKER_CLONE_IO_MS. */
	uint64_t until = vmm_now_ns() + (uint64_t)WORKER_CLONE_IO_MS * 1000000ull;
	do {
		r = vsock_host_connect_wait(c->t.vm.vsock, UF_AGENT_VSOCK_PORT, -1, &c->fd);
	} while ((r == -ETIMEDOUT || r == -ECONNREFUSED || r == -ECONNRESET) &&
		 vmm_now_ns() < until && !worker_clone_dead(c));
	if (r) {
		c->fd = -1;
		vmm_err(r, "clone: connect to the agent: %s", strerror(-r));
		goto fail;
	}
	struct agent_hello h;
	r = agent_client_hello(c->fd, &h, WORKER_CLONE_IO_MS);
	if (r) {
		vmm_err(r, "clone: agent hello: %s", strerror(-r));
		goto fail;
	}
	snprintf(c->runtime, sizeof(c->runtime), "%.63s", h.runtime);
	c->hello_state = (int)h.state;
	uint8_t ent[48];
	if (getrandom(ent, sizeof(ent), 0) != (ssize_t)sizeof(ent)) {
		r = vmm_errno(-errno, "clone: getrandom");
		goto fail;
	}
	struct agent_fixup_ack ack;
	r = agent_client_fixup(c->fd, ent, sizeof(ent), realtime_ns(), &ack, WORKER_CLONE_IO_MS);
	explicit_bzero(ent, sizeof(ent));
	if (r) {
		vmm_err(r, "clone: fixup: %s", strerror(-r));
		goto fail;
	}
	if (!ack.ok) {
		/* A clone that could not reseed shares its RNG with its siblings:
		 * never hand it out. */
		r = vmm_err(-EIO, "clone: fixup refused (entropy %d, reseed %d, clock %d)",
			    ack.entropy_errno, ack.reseed_errno, ack.clock_errno);
		goto fail;
	}
	c->created_ns = vmm_now_ns();
	c->restore_us = (c->created_ns - t0) / 1000;
	return 0;
fail:
	worker_clone_destroy(c);
	return r;
}

int worker_clone_pause(struct worker_clone *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (!c->started)
		return vmm_err(-EINVAL, "clone: not started");
	vmm_vm_stop(&c->t.vm);
	int r = vmm_vm_thread_join(&c->t, 30000000000ull);
	if (r)
		return vmm_err(r, "clone: vCPU thread did not stop: %s", strerror(-r));
	return 0;
}

bool worker_clone_dead(struct worker_clone *c)
{
	if (!c->started)
		return true;
	pthread_mutex_lock(&c->t.vm.lock);
	bool running = c->t.vm.running;
	pthread_mutex_unlock(&c->t.vm.lock);
	return !running;
}

void worker_clone_destroy(struct worker_clone *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->started)
		vmm_vm_thread_release(&c->t);
	c->started = false;
}
