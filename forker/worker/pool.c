/* pool.c — the warm pool, capacity accounting and the refill/expiry thread
 * (contract in pool.h). */
#include "forker/worker/pool.h"
#include "vmm/err.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS 1000000000ull
/* After a failed refill, wait this long before the next try. */
#define REFILL_BACKOFF_NS (2 * NS)

struct wpool_item {
	struct wpool_item *next;
	struct worker_clone c;
};

static struct wpool_item *item_of(struct worker_clone *c)
{
	return (struct wpool_item *)((char *)c - offsetof(struct wpool_item, c));
}

static void item_free(struct wpool_item *it)
{
	if (!it)
		return;
	worker_clone_destroy(&it->c);
	free(it);
}

int wpool_init(struct wpool *p, const struct worker_tmpl *t, const struct wpool_knobs *k)
{
	memset(p, 0, sizeof(*p));
	p->tmpl = t;
	p->knobs = *k;
	if (p->knobs.max_instances == 0)
		p->knobs.max_instances = 1;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int r = pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (r)
		return vmm_errno(-r, "pool: condition variable");
	pthread_mutex_init(&p->lock, NULL);
	return 0;
}

static void timed_wait(struct wpool *p, uint64_t until_ns)
{
	if (!until_ns) {
		pthread_cond_wait(&p->cond, &p->lock);
		return;
	}
	struct timespec ts = {.tv_sec = (time_t)(until_ns / NS), .tv_nsec = (long)(until_ns % NS)};
	pthread_cond_timedwait(&p->cond, &p->lock, &ts);
}

/* Take warm clones that must go (expired, or above min_warm) off the list;
 * returns them chained, and sets *next_ns to the next expiry (0: none). */
static struct wpool_item *detach_excess(struct wpool *p, uint64_t now, uint64_t *next_ns)
{
	struct wpool_item *gone = NULL, **pp = &p->warm;
	uint64_t ttl = (uint64_t)p->knobs.idle_timeout_s * NS;
	uint32_t kept = 0;
	*next_ns = 0;
	while (*pp) {
		struct wpool_item *it = *pp;
		bool expired = ttl && now - it->c.created_ns >= ttl;
		if (expired || kept >= p->knobs.min_warm) {
			*pp = it->next;
			it->next = gone;
			gone = it;
			p->nwarm--;
			if (expired)
				p->expired++;
			continue;
		}
		kept++;
		if (ttl && (!*next_ns || it->c.created_ns + ttl < *next_ns))
			*next_ns = it->c.created_ns + ttl;
		pp = &it->next;
	}
	return gone;
}

static void *pool_thread(void *arg)
{
	struct wpool *p = arg;
	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		uint64_t now = vmm_now_ns(), next = 0;
		struct wpool_item *gone = detach_excess(p, now, &next);
		if (gone) {
			pthread_mutex_unlock(&p->lock);
			while (gone) {
				struct wpool_item *n = gone->next;
				item_free(gone);
				gone = n;
			}
			pthread_mutex_lock(&p->lock);
			continue;
		}
		uint32_t used = p->busy + p->nwarm + p->starting;
		bool want = p->nwarm + p->starting < p->knobs.min_warm && used < p->knobs.max_instances;
		if (want && now >= p->fail_until_ns) {
			p->starting++;
			pthread_mutex_unlock(&p->lock);
			struct wpool_item *it = calloc(1, sizeof(*it));
			int r = it ? worker_clone_start(&it->c, p->tmpl) : -ENOMEM;
			if (r) {
				fprintf(stderr, "uf-worker: warm clone: %s\n",
					r == -ENOMEM ? "out of memory" : vmm_strerror());
				free(it);
			}
			pthread_mutex_lock(&p->lock);
			p->starting--;
			if (r) {
				p->clone_failures++;
				p->fail_until_ns = vmm_now_ns() + REFILL_BACKOFF_NS;
			} else {
				it->next = p->warm;
				p->warm = it;
				p->nwarm++;
			}
			pthread_cond_broadcast(&p->cond);
			continue;
		}
		if (want && (!next || p->fail_until_ns < next))
			next = p->fail_until_ns;
		timed_wait(p, next);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int wpool_start(struct wpool *p)
{
	int r = pthread_create(&p->thread, NULL, pool_thread, p);
	if (r)
		return vmm_errno(-r, "pool: thread");
	p->thread_started = true;
	return 0;
}

void wpool_release(struct wpool *p)
{
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	if (p->thread_started)
		pthread_join(p->thread, NULL);
	p->thread_started = false;
	while (p->warm) {
		struct wpool_item *n = p->warm->next;
		item_free(p->warm);
		p->warm = n;
	}
	p->nwarm = 0;
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
}

void wpool_set_knobs(struct wpool *p, const struct wpool_knobs *k)
{
	pthread_mutex_lock(&p->lock);
	p->knobs = *k;
	if (p->knobs.max_instances == 0)
		p->knobs.max_instances = 1;
	p->fail_until_ns = 0;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

bool wpool_admit(struct wpool *p)
{
	pthread_mutex_lock(&p->lock);
	bool ok = !p->stop && p->busy < p->knobs.max_instances;
	if (ok)
		p->busy++;
	pthread_mutex_unlock(&p->lock);
	return ok;
}

int wpool_take(struct wpool *p, struct worker_clone **out, bool *warm)
{
	*out = NULL;
	*warm = false;
	pthread_mutex_lock(&p->lock);
	struct wpool_item *it = p->warm;
	if (it) {
		p->warm = it->next;
		p->nwarm--;
		p->warm_starts++;
		/* The room it held in the pool is the call's now: refill. */
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	if (it) {
		it->next = NULL;
		*out = &it->c;
		*warm = true;
		return 0;
	}
	it = calloc(1, sizeof(*it));
	if (!it)
		return vmm_err(-ENOMEM, "clone: out of memory");
	/* A clone that cannot be made (or stalls) is destroyed; a fresh one
	 * from the same template usually works. */
	int r = -EAGAIN;
	for (int attempt = 1; attempt <= WPOOL_CLONE_ATTEMPTS && r; attempt++) {
		r = worker_clone_start(&it->c, p->tmpl);
		pthread_mutex_lock(&p->lock);
		if (r)
			p->clone_failures++;
		else
			p->clone_starts++;
		pthread_mutex_unlock(&p->lock);
		if (r && attempt < WPOOL_CLONE_ATTEMPTS)
			fprintf(stderr, "uf-worker: clone attempt %d failed (%s); trying again\n",
				attempt, vmm_strerror());
	}
	if (r) {
		free(it);
		return r;
	}
	*out = &it->c;
	return 0;
}

void wpool_finish(struct wpool *p, struct worker_clone *c)
{
	if (c)
		item_free(item_of(c));
	pthread_mutex_lock(&p->lock);
	if (p->busy)
		p->busy--;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void wpool_wait_idle(struct wpool *p)
{
	pthread_mutex_lock(&p->lock);
	while (p->busy)
		pthread_cond_wait(&p->cond, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

uint32_t wpool_wait_warm(struct wpool *p, uint32_t n, int timeout_ms)
{
	uint64_t until = vmm_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	pthread_mutex_lock(&p->lock);
	while (p->nwarm < n && !p->stop && p->fail_until_ns == 0 && vmm_now_ns() < until)
		timed_wait(p, until);
	uint32_t have = p->nwarm;
	pthread_mutex_unlock(&p->lock);
	return have;
}

void wpool_stats(struct wpool *p, struct wpool_stats *out)
{
	pthread_mutex_lock(&p->lock);
	*out = (struct wpool_stats){
		.live = p->busy + p->nwarm, .warm = p->nwarm, .busy = p->busy,
		.starting = p->starting, .clone_starts = p->clone_starts,
		.warm_starts = p->warm_starts, .clone_failures = p->clone_failures,
		.expired = p->expired, .knobs = p->knobs,
	};
	pthread_mutex_unlock(&p->lock);
}
