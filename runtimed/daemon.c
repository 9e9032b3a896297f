/* daemon.c — runtimed's top level: the function table, start-up from the
 * registry (templates checked against the current kernel/initramfs/agent
 * hashes: reused, or rebuilt from the stored code), the periodic tick, and
 * the graceful stop on SIGTERM/SIGINT: stop accepting, let the gateway
 * finish the calls in flight, drain every worker, exit (contract in
 * daemon.h). */
#include "runtimed/daemon.h"
#include "snapshotter/snapshot.h"
#include "vmm/err.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK_MS        1000u
/* After the gateway is done, workers get this long to drain and exit. */
#define WORKER_EXIT_MS 15000u

struct rt_fn *rt_fn_find(struct rt_daemon *d, const char *name)
{
	/* A deleted function may still drain under the same name: it is no
	 * longer found; a new deploy of the name makes a new one. */
	for (struct rt_fn *fn = d->fns; fn; fn = fn->next)
		if (!fn->deleted && strcmp(fn->spec.name, name) == 0)
			return fn;
	return NULL;
}

struct rt_fn *rt_fn_new(struct rt_daemon *d, struct rt_spec *spec)
{
	struct rt_fn *fn = calloc(1, sizeof(*fn));
	if (!fn || rt_logs_init(&fn->logs)) {
		free(fn);
		rt_spec_free(spec);
		return NULL;
	}
	fn->d = d;
	fn->spec = *spec;
	fn->state = RT_FN_NEW;
	fn->calls.next = fn->calls.prev = &fn->calls;
	uv_timer_init(d->loop, &fn->restart_timer);
	fn->restart_timer.data = fn;
	fn->timer_open = true;
	fn->next = d->fns;
	d->fns = fn;
	return fn;
}

static void fn_timer_closed(uv_handle_t *h)
{
	struct rt_fn *fn = h->data;
	rt_logs_free(&fn->logs);
	rt_spec_free(&fn->spec);
	free(fn);
}

void rt_fn_maybe_free(struct rt_fn *fn)
{
	if (!fn->deleted || fn->workers || fn->calls.next != &fn->calls || fn->deploy ||
	    !fn->timer_open)
		return;
	struct rt_daemon *d = fn->d;
	for (struct rt_fn **pp = &d->fns; *pp; pp = &(*pp)->next)
		if (*pp == fn) {
			*pp = fn->next;
			break;
		}
	rt_fn_sched_leave(fn);
	fn->timer_open = false;
	uv_close((uv_handle_t *)&fn->restart_timer, fn_timer_closed);
}

bool rt_daemon_busy(const struct rt_daemon *d)
{
	if (d->builds_running || d->build_queue)
		return true;
	for (const struct rt_fn *fn = d->fns; fn; fn = fn->next)
		if (fn->workers || fn->deploy)
			return true;
	return false;
}

/* ---- start-up ---- */

/* A stored template that matches today's artifacts?  (The CPU check is
 * the worker's: it refuses with status 3 and the template is rebuilt.) */
static bool template_ok(struct rt_daemon *d, struct rt_fn *fn)
{
	char dir[PATH_MAX];
	if (rt_reg_path(&d->reg, fn->spec.name, "template", dir, sizeof(dir)))
		return false;
	struct snap_expect exp = {.origin = rt_config_origin(&d->cfg, fn->spec.runtime),
				  .skip_cpu_check = true};
	struct snap_image img;
	if (snap_open(dir, &exp, &img)) {
		fprintf(stderr, "runtimed: %s: template not usable: %s\n", fn->spec.name, vmm_strerror());
		return false;
	}
	snap_image_close(&img);
	return true;
}

static void load_one(void *arg, struct rt_spec *spec)
{
	struct rt_daemon *d = arg;
	struct rt_fn *fn = rt_fn_new(d, spec);
	if (!fn) {
		fprintf(stderr, "runtimed: out of memory loading a function\n");
		return;
	}
	fn->state = RT_FN_STARTING;
	if (!template_ok(d, fn)) {
		fn->rebuilt = true;
		if (rt_rebuild_start(fn) == 0)
			return;
	} else if (rt_fn_start_worker(fn) == 0) {
		return;
	}
	snprintf(fn->last_error, sizeof(fn->last_error), "%s", vmm_strerror());
	fn->state = RT_FN_FAILED;
	fprintf(stderr, "runtimed: %s: %s\n", fn->spec.name, fn->last_error);
}

/* Cached base/runtime templates made from artifacts that are gone (another
 * kernel, initramfs or agent) are never used again: remove them. */
static void prune_templates(struct rt_daemon *d)
{
	DIR *dir = opendir(d->reg.templates);
	if (!dir)
		return;
	struct dirent *e;
	while ((e = readdir(dir))) {
		char p[PATH_MAX];
		if (e->d_name[0] == '.' || strstr(e->d_name, ".lock") ||
		    (size_t)snprintf(p, sizeof(p), "%s/%s", d->reg.templates, e->d_name) >= sizeof(p))
			continue;
		bool keep = false;
		for (int i = 0; i < 2 && !keep; i++) {
			struct snap_expect exp = {.origin = i ? &d->cfg.origin_python : &d->cfg.origin,
						  .skip_cpu_check = true};
			struct snap_image img;
			if (snap_open(p, &exp, &img) == 0) {
				snap_image_close(&img);
				keep = true;
			}
		}
		if (!keep && strstr(e->d_name, ".tmp-") == NULL) {
			fprintf(stderr, "runtimed: removing stale template %s\n", e->d_name);
			rt_reg_discard(p);
		}
	}
	closedir(dir);
}

static void tick_cb(uv_timer_t *t)
{
	struct rt_daemon *d = t->data;
	uint64_t now = uv_hrtime();
	for (struct rt_fn *fn = d->fns, *next; fn; fn = next) {
		next = fn->next;
		rt_fn_tick(fn, now);
		rt_fn_maybe_free(fn);
	}
}

/* ---- stop ---- */

static void close_all(struct rt_daemon *d)
{
	rt_sched_close(d);
	uv_timer_stop(&d->tick);
	if (!uv_is_closing((uv_handle_t *)&d->tick))
		uv_close((uv_handle_t *)&d->tick, NULL);
	if (!uv_is_closing((uv_handle_t *)&d->sigterm))
		uv_close((uv_handle_t *)&d->sigterm, NULL);
	if (!uv_is_closing((uv_handle_t *)&d->sigint))
		uv_close((uv_handle_t *)&d->sigint, NULL);
	for (struct rt_fn *fn = d->fns; fn; fn = fn->next)
		fn->deleted = true;
	for (struct rt_fn *fn = d->fns, *next; fn; fn = next) {
		next = fn->next;
		rt_fn_maybe_free(fn);
	}
}

void rt_daemon_check_stopped(struct rt_daemon *d)
{
	if (!d->stopping || d->gw || rt_daemon_busy(d))
		return;
	close_all(d);
}

static void kill_workers(uv_timer_t *t)
{
	struct rt_daemon *d = t->data;
	for (struct rt_fn *fn = d->fns; fn; fn = fn->next)
		for (struct rt_worker *w = fn->workers; w; w = w->next)
			if (w->proc) {
				fprintf(stderr, "runtimed: %s: worker did not drain in time; killing it\n",
					fn->spec.name);
				rt_wproc_kill(w->proc, SIGKILL);
			}
}

static void gateway_done(struct gw_server *s, void *arg)
{
	struct rt_daemon *d = arg;
	gw_server_free(s);
	d->gw = NULL;
	for (struct rt_fn *fn = d->fns; fn; fn = fn->next) {
		uv_timer_stop(&fn->restart_timer);
		rt_fn_fail_queued(fn, 503, "unavailable", "runtimed is shutting down");
		rt_fn_drain_all(fn);
	}
	/* The tick timer, now a watchdog for stuck workers. */
	uv_timer_start(&d->tick, kill_workers, WORKER_EXIT_MS, WORKER_EXIT_MS);
	rt_daemon_check_stopped(d);
}

static void on_signal(uv_signal_t *h, int sig)
{
	struct rt_daemon *d = h->data;
	if (d->stopping) {
		fprintf(stderr, "runtimed: %s again: stopping now\n", strsignal(sig));
		kill_workers(&d->tick);
		rt_deploy_abort_all(d);
		return;
	}
	fprintf(stderr, "runtimed: %s: draining calls in flight (up to %u s)\n", strsignal(sig),
		d->cfg.drain_s);
	d->stopping = true;
	rt_deploy_abort_all(d);
	if (d->gw)
		gw_server_stop(d->gw, d->cfg.drain_s * 1000u, gateway_done, d);
	else
		rt_daemon_check_stopped(d);
}

int rt_daemon_start(struct rt_daemon *d, uv_loop_t *loop)
{
	d->loop = loop;
	int r = rt_reg_init(&d->reg, d->cfg.data);
	if (r)
		return r;
	prune_templates(d);
	uv_timer_init(loop, &d->tick);
	d->tick.data = d;
	rt_sched_setup(d);
	uv_signal_init(loop, &d->sigterm);
	uv_signal_init(loop, &d->sigint);
	d->sigterm.data = d->sigint.data = d;
	uv_signal_start(&d->sigterm, on_signal, SIGTERM);
	uv_signal_start(&d->sigint, on_signal, SIGINT);
	int n = rt_reg_load(&d->reg, load_one, d);
	if (n < 0) {
		close_all(d);
		return n;
	}
	d->loaded = true;
	struct gw_config gc;
	gw_config_defaults(&gc);
	gc.listen = d->cfg.listen;
	gc.token = d->cfg.token;
	r = gw_server_start(loop, &gc, &rt_backend_ops, d, &d->gw);
	if (r) {
		d->stopping = true;
		d->gw = NULL;
		rt_deploy_abort_all(d);
		for (struct rt_fn *fn = d->fns; fn; fn = fn->next)
			rt_fn_drain_all(fn);
		uv_timer_start(&d->tick, kill_workers, WORKER_EXIT_MS, WORKER_EXIT_MS);
		rt_daemon_check_stopped(d);
		return r;
	}
	uv_timer_start(&d->tick, tick_cb, TICK_MS, TICK_MS);
	fprintf(stderr, "runtimed: listening on http://%s (data %s, %d function%s)\n", d->cfg.listen,
		d->cfg.data, n, n == 1 ? "" : "s");
	return 0;
}
