/* watch.c — shut the agent connection of clones whose VM stopped during a
 * call (contract in watch.h). */
#include "forker/worker/watch.h"
#include "vmm/err.h"

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
			struct worker_clone *c = w->clones[i];
			if (c->fd >= 0 && worker_clone_dead(c))
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

bool wwatch_add(struct wwatch *w, struct worker_clone *c)
{
	pthread_mutex_lock(&w->lock);
	bool ok = w->n < WATCH_MAX;
	if (ok)
		w->clones[w->n++] = c;
	pthread_mutex_unlock(&w->lock);
	return ok;
}

void wwatch_remove(struct wwatch *w, struct worker_clone *c)
{
	pthread_mutex_lock(&w->lock);
	for (unsigned i = 0; i < w->n; i++)
		if (w->clones[i] == c) {
			w->clones[i] = w->clones[--w->n];
			break;
		}
	pthread_mutex_unlock(&w->lock);
}
