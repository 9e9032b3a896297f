/* vm_pool.c — Linux VM shells built ahead of time, their parked vCPU
 * threads, and the filler thread that keeps the pool topped up. */
#include "forker/vm_pool.h"
#include "vmm/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- one shell ---- */

static void *vcpu_main(void *arg)
{
	struct fork_vm *v = arg;
	pthread_mutex_lock(&v->lock);
	for (;;) {
		while (v->cmd == FORK_VM_PARK)
			pthread_cond_wait(&v->cond, &v->lock);
		if (v->cmd == FORK_VM_QUIT)
			break;
		v->in_run = true;
		pthread_mutex_unlock(&v->lock);
		struct vmm_exit ex;
		int r = vmm_vm_run(&v->vm, 0, 0, &ex);
		pthread_mutex_lock(&v->lock);
		v->exit = ex;
		v->run_ret = r;
		v->in_run = false;
		v->runs++;
		if (v->cmd == FORK_VM_RUN)
			v->cmd = FORK_VM_PARK;      /* ended by itself */
		pthread_cond_broadcast(&v->cond);
	}
	pthread_mutex_unlock(&v->lock);
	return NULL;
}

static void shell_destroy(struct fork_vm *v)
{
	if (v->thread_on) {
		pthread_mutex_lock(&v->lock);
		v->cmd = FORK_VM_QUIT;
		pthread_cond_broadcast(&v->cond);
		pthread_mutex_unlock(&v->lock);
		vmm_vm_stop(&v->vm);
		/* vmm_vm_stop() only kicks a vCPU already inside KVM_RUN; a
		 * run that starts just after sees stop_requested and ends. */
		pthread_join(v->thread, NULL);
	}
	vmm_vm_release(&v->vm);
	pthread_cond_destroy(&v->cond);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

static int shell_build(struct fork_vm_pool *pool, struct fork_vm **out)
{
	struct fork_vm *v = calloc(1, sizeof(*v));
	if (!v)
		return vmm_err(-ENOMEM, "VM shell: out of memory");
	v->pool = pool;
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->cond, NULL);
	int r = vmm_vm_create(&v->vm, &pool->cfg);
	if (r) {
		pthread_cond_destroy(&v->cond);
		pthread_mutex_destroy(&v->lock);
		free(v);
		return r;
	}
	v->cmd = FORK_VM_PARK;
	if ((r = -pthread_create(&v->thread, NULL, vcpu_main, v))) {
		vmm_errno(r, "VM shell: vCPU thread");
		shell_destroy(v);
		return r;
	}
	v->thread_on = true;
	*out = v;
	return 0;
}

void fork_vm_run(struct fork_vm *v)
{
	pthread_mutex_lock(&v->lock);
	v->cmd = FORK_VM_RUN;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
}

int fork_vm_halt(struct fork_vm *v, int timeout_ms)
{
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	int r = 0;
	pthread_mutex_lock(&v->lock);
	if (v->cmd == FORK_VM_RUN)
		v->cmd = FORK_VM_PARK;
	while (v->in_run && r == 0) {
		vmm_vm_stop(&v->vm);
		/* Kick again now and then: a stop that lands between the
		 * thread's wake-up and its KVM_RUN is seen by the run loop,
		 * but a kick is cheap and makes sure. */
		struct timespec step;
		clock_gettime(CLOCK_REALTIME, &step);
		step.tv_nsec += 2000000;
		if (step.tv_nsec >= 1000000000) {
			step.tv_sec++;
			step.tv_nsec -= 1000000000;
		}
		if (step.tv_sec > dl.tv_sec || (step.tv_sec == dl.tv_sec && step.tv_nsec > dl.tv_nsec))
			step = dl;
		int w = pthread_cond_timedwait(&v->cond, &v->lock, &step);
		if (w == ETIMEDOUT && step.tv_sec == dl.tv_sec && step.tv_nsec == dl.tv_nsec && v->in_run)
			r = vmm_err(-ETIMEDOUT, "the vCPU did not stop within %d ms", timeout_ms);
	}
	/* A stop requested after the run ended must not end the next one;
	 * a vCPU that did not stop keeps its stop request. */
	if (!r)
		v->vm.stop_requested = 0;
	pthread_mutex_unlock(&v->lock);
	return r;
}

bool fork_vm_exited(struct fork_vm *v, struct vmm_exit *ex)
{
	pthread_mutex_lock(&v->lock);
	bool done = v->cmd != FORK_VM_RUN && !v->in_run && v->runs > 0;
	if (done && ex)
		*ex = v->exit;
	pthread_mutex_unlock(&v->lock);
	return done;
}

/* ---- the pool ---- */

static void *filler_main(void *arg)
{
	struct fork_vm_pool *pool = arg;
	pthread_mutex_lock(&pool->lock);
	while (!pool->stop) {
		if (pool->dead) {
			struct fork_vm *v = pool->dead;
			pool->dead = v->next;
			pthread_mutex_unlock(&pool->lock);
			shell_destroy(v);
			pthread_mutex_lock(&pool->lock);
			pool->st.destroyed++;
			continue;
		}
		if (pool->nidle < pool->target && pool->last_error == 0) {
			pthread_mutex_unlock(&pool->lock);
			struct fork_vm *v = NULL;
			int r = shell_build(pool, &v);
			pthread_mutex_lock(&pool->lock);
			if (r) {
				/* Retry only when asked again (take() clears it),
				 * not in a tight loop against a broken /dev/kvm. */
				pool->last_error = r;
				pool->st.build_errors++;
				continue;
			}
			v->next = pool->idle;
			pool->idle = v;
			pool->nidle++;
			pool->st.built++;
			pthread_cond_broadcast(&pool->cond);
			continue;
		}
		pthread_cond_wait(&pool->cond, &pool->lock);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

int fork_vm_pool_init(struct fork_vm_pool *pool, const struct vmm_vm_config *cfg, unsigned target)
{
	memset(pool, 0, sizeof(*pool));
	pool->cfg = *cfg;
	pool->target = target;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->cond, NULL);
	/* One shell now, on this thread: a pool that cannot build one says
	 * why here rather than on the first request. */
	struct fork_vm *v = NULL;
	int r = shell_build(pool, &v);
	if (r)
		goto err;
	v->next = NULL;
	pool->idle = v;
	pool->nidle = 1;
	pool->st.built = 1;
	if ((r = -pthread_create(&pool->filler, NULL, filler_main, pool))) {
		vmm_errno(r, "VM shell pool: filler thread");
		goto err;
	}
	pool->filler_on = true;
	return 0;
err:
	fork_vm_pool_release(pool);
	return r;
}

void fork_vm_pool_set_target(struct fork_vm_pool *pool, unsigned target)
{
	pthread_mutex_lock(&pool->lock);
	pool->target = target;
	pool->last_error = 0;
	pthread_cond_broadcast(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
}

struct fork_vm *fork_vm_take(struct fork_vm_pool *pool, int *err)
{
	pthread_mutex_lock(&pool->lock);
	struct fork_vm *v = pool->idle;
	if (v) {
		pool->idle = v->next;
		pool->nidle--;
	} else {
		pool->st.misses++;
	}
	pool->st.taken++;
	pool->last_error = 0;
	pthread_cond_broadcast(&pool->cond);       /* refill */
	pthread_mutex_unlock(&pool->lock);
	if (!v) {
		int r = shell_build(pool, &v);
		if (r) {
			*err = r;
			return NULL;
		}
		pthread_mutex_lock(&pool->lock);
		pool->st.built++;
		pthread_mutex_unlock(&pool->lock);
	}
	v->next = NULL;
	return v;
}

void fork_vm_put(struct fork_vm *v)
{
	struct fork_vm_pool *pool = v->pool;
	/* Stop the guest now (it must not run on while it waits to be
	 * destroyed); the teardown itself is the filler's. */
	pthread_mutex_lock(&v->lock);
	if (v->cmd == FORK_VM_RUN)
		v->cmd = FORK_VM_PARK;
	pthread_mutex_unlock(&v->lock);
	vmm_vm_stop(&v->vm);
	pthread_mutex_lock(&pool->lock);
	if (pool->filler_on) {
		v->next = pool->dead;
		pool->dead = v;
		pthread_cond_broadcast(&pool->cond);
		v = NULL;
	}
	pthread_mutex_unlock(&pool->lock);
	if (v) {
		shell_destroy(v);
		pthread_mutex_lock(&pool->lock);
		pool->st.destroyed++;
		pthread_mutex_unlock(&pool->lock);
	}
}

void fork_vm_pool_get_stats(struct fork_vm_pool *pool, struct fork_vm_pool_stats *out)
{
	pthread_mutex_lock(&pool->lock);
	*out = pool->st;
	out->idle = pool->nidle;
	pthread_mutex_unlock(&pool->lock);
}

void fork_vm_pool_release(struct fork_vm_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	pool->stop = true;
	pthread_cond_broadcast(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
	if (pool->filler_on)
		pthread_join(pool->filler, NULL);
	pool->filler_on = false;
	struct fork_vm *lists[2] = {pool->idle, pool->dead};
	for (int i = 0; i < 2; i++) {
		while (lists[i]) {
			struct fork_vm *v = lists[i];
			lists[i] = v->next;
			shell_destroy(v);
			pool->st.destroyed++;
		}
	}
	pool->idle = pool->dead = NULL;
	pool->nidle = 0;
	pthread_cond_destroy(&pool->cond);
	pthread_mutex_destroy(&pool->lock);
}
