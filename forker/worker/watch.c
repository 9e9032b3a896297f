/* watch.c — shut the agent connection of clones whose VM stopped during a
 * call; pause and resume a call's vCPU (contract in watch.h). */
#include "forker/worker/watch.h"
#include "vmm/err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static void *watch_thread(void *arg)
{
	struct wwatch *w = arg;
	struct timespec ts = {0, WATCH_PERIOD_MS * 1000000L};
	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		for (unsigned i = 0; i < w->n; i++) {
			struct worker_clone *c = w->e[i].c;
			if (!w->e[i].paused && c->fd >= 0 && worker_clone_dead(c))
				shutdown(c->fd, SHUT_RDWR);
		}
		pthread_mutex_unlock(&w->lock);
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int wwatch_start(struct wwatch *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	int r = pthread_create(&w->thread, NULL, watch_thread, w);
	if (r)
		return vmm_errno(-r, "watch thread");
	w->started = true;
	return 0;
}

void wwatch_stop(struct wwatch *w)
{
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_mutex_unlock(&w->lock);
	if (w->started)
		pthread_join(w->thread, NULL);
	w->started = false;
	pthread_mutex_destroy(&w->lock);
}

bool wwatch_add(struct wwatch *w, struct worker_clone *c, const char *call_id)
{
	pthread_mutex_lock(&w->lock);
	bool ok = w->n < WATCH_MAX;
	if (ok) {
		struct wwatch_entry *e = &w->e[w->n++];
		e->c = c;
		snprintf(e->call_id, sizeof(e->call_id), "%s", call_id ? call_id : "");
		e->paused = false;
		e->run_from_ns = vmm_now_ns();
	}
	pthread_mutex_unlock(&w->lock);
	return ok;
}

void wwatch_remove(struct wwatch *w, struct worker_clone *c)
{
	pthread_mutex_lock(&w->lock);
	for (unsigned i = 0; i < w->n; i++)
		if (w->e[i].c == c) {
			w->e[i] = w->e[--w->n];
			break;
		}
	pthread_mutex_unlock(&w->lock);
}

/* The entry of a call (lock held); NULL when none. */
static struct wwatch_entry *find(struct wwatch *w, const char *call_id)
{
	if (!call_id || !call_id[0])
		return NULL;
	for (unsigned i = 0; i < w->n; i++)
		if (strcmp(w->e[i].call_id, call_id) == 0)
			return &w->e[i];
	return NULL;
}

int wwatch_pause(struct wwatch *w, const char *call_id, uint64_t *ran_us)
{
	int r = 0;
	*ran_us = 0;
	pthread_mutex_lock(&w->lock);
	struct wwatch_entry *e = find(w, call_id);
	if (!e)
		r = -ENOENT;
	else if (!e->paused && worker_clone_dead(e->c))
		r = -ESRCH;
	else if (!e->paused && (r = fork_vm_halt(e->c->vc.v, WATCH_HALT_MS)) == 0) {
		e->paused = true;
		*ran_us = (vmm_now_ns() - e->run_from_ns) / 1000;
	}
	pthread_mutex_unlock(&w->lock);
	return r;
}

bool wwatch_resume(struct wwatch *w, const char *call_id)
{
	bool r = false;
	pthread_mutex_lock(&w->lock);
	struct wwatch_entry *e = find(w, call_id);
	if (e && e->paused) {
		r = true;
		e->paused = false;
		e->run_from_ns = vmm_now_ns();
		fork_vm_run(e->c->vc.v);
	}
	pthread_mutex_unlock(&w->lock);
	return r;
}

void wwatch_resume_all(struct wwatch *w)
{
	pthread_mutex_lock(&w->lock);
	for (unsigned i = 0; i < w->n; i++)
		if (w->e[i].paused) {
			w->e[i].paused = false;
			w->e[i].run_from_ns = vmm_now_ns();
			fork_vm_run(w->e[i].c->vc.v);
		}
	pthread_mutex_unlock(&w->lock);
}
