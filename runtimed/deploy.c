/* deploy.c — deploys, template rebuilds and deletes.  A deploy stages the
 * spec and code (registry.h), runs `uf-worker build` (at most cfg.cpus
 * builds at once, the rest queue), swaps the staging directory in, starts a
 * worker on the new template and answers once that worker is ready: 201
 * created / 200 updated, 422 when the function's init failed (the previous
 * version keeps serving), 500 when the build failed otherwise. */
#include "runtimed/daemon.h"
#include "vmm/err.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct rt_deploy {
	struct rt_deploy *next;         /* in d->build_queue */
	struct rt_daemon *d;
	struct rt_fn *fn;
	struct gw_call *call;           /* NULL for a rebuild */
	struct rt_spec spec;            /* the version being deployed */
	bool is_new, rebuild, aborted, got_result, waiting_worker;
	char staging[PATH_MAX];         /* "" for a rebuild (builds in place) */
	struct rt_wproc *proc;
	Ufworker__BuildStatus status;
	char message[UF_WORKER_MAX_TEXT / 2];
};

static void answer(struct rt_deploy *dep, int status, const char *code, const char *msg)
{
	struct rt_daemon *d = dep->d;
	if (!dep->call)
		return;
	struct gw_deploy_result res = {.status = status, .error_code = code, .error_message = msg};
	if (status == 200 || status == 201) {
		res.function = rt_fn_json(dep->fn);
		d->deploys_ok++;
	} else {
		d->deploys_failed++;
	}
	gw_deploy_done(dep->call, &res);
	json_decref(res.function);
	dep->call = NULL;
}

/* A deploy that failed for want of space in the data directory is answered
 * 503 "insufficient_storage" (a condition of this server, not of the
 * function); whatever it wrote is removed by finish(). */
static bool no_space(int err, const char *msg)
{
	return err == -ENOSPC || err == -EDQUOT ||
	       (msg && (strstr(msg, strerror(ENOSPC)) || strstr(msg, strerror(EDQUOT))));
}

static void answer_no_space(struct rt_deploy *dep, const char *msg)
{
	char m[UF_WORKER_MAX_TEXT / 2 + 96];
	snprintf(m, sizeof(m), "the data directory is full; nothing was deployed: %.1900s", msg);
	answer(dep, 503, "insufficient_storage", m);
}

/* The deploy is over: detach it from its function and free it. */
static void finish(struct rt_deploy *dep)
{
	struct rt_fn *fn = dep->fn;
	if (fn->deploy == dep)
		fn->deploy = NULL;
	if (dep->staging[0])
		rt_reg_discard(dep->staging);
	if (dep->is_new && fn->state == RT_FN_NEW)
		fn->deleted = true; /* never became visible */
	rt_spec_free(&dep->spec);
	struct rt_daemon *d = dep->d;
	free(dep);
	rt_fn_maybe_free(fn);
	rt_daemon_check_stopped(d);
}

static void build_msg(struct rt_wproc *p, uf_wmsg *m, void *arg)
{
	struct rt_deploy *dep = arg;
	(void)p;
	if (m->msg_case != UFWORKER__WORKER_MSG__MSG_BUILD_RESULT)
		return;
	dep->got_result = true;
	dep->status = m->build_result->status;
	snprintf(dep->message, sizeof(dep->message), "%s", m->build_result->message);
}

static void start_next_build(struct rt_daemon *d);

/* The build is in place (staging swapped in, or rebuilt in place): run it. */
static void go_live(struct rt_deploy *dep)
{
	struct rt_fn *fn = dep->fn;
	if (dep->rebuild) {
		char cur[PATH_MAX], next[PATH_MAX];
		int r = rt_reg_path(&dep->d->reg, fn->spec.name, "template", cur, sizeof(cur));
		if (r == 0)
			r = rt_reg_path(&dep->d->reg, fn->spec.name, "template.new", next, sizeof(next));
		if (r == 0)
			r = rt_swap_dir(next, cur);
		if (r) {
			snprintf(fn->last_error, sizeof(fn->last_error), "rebuild: %s", vmm_strerror());
			fn->state = RT_FN_FAILED;
			finish(dep);
			return;
		}
	} else {
		int r = rt_reg_commit(&dep->d->reg, fn->spec.name, dep->staging);
		if (r) {
			if (no_space(r, vmm_strerror()))
				answer_no_space(dep, vmm_strerror());
			else
				answer(dep, 500, "internal", vmm_strerror());
			finish(dep);
			return;
		}
		dep->staging[0] = 0;
		rt_spec_free(&fn->spec);
		fn->spec = dep->spec;
		memset(&dep->spec, 0, sizeof(dep->spec));
		fn->rebuilt = false;
		fn->restart_ms = 0;
		if (fn->state == RT_FN_NEW || fn->state == RT_FN_FAILED)
			fn->state = RT_FN_STARTING;
	}
	if (rt_fn_start_worker(fn)) {
		snprintf(fn->last_error, sizeof(fn->last_error), "%s", vmm_strerror());
		if (!fn->cur)
			fn->state = RT_FN_FAILED;
		answer(dep, 500, "internal", fn->last_error);
		finish(dep);
		return;
	}
	dep->waiting_worker = true;
}

static void build_exit(struct rt_wproc *p, int64_t status, int sig, void *arg)
{
	struct rt_deploy *dep = arg;
	struct rt_daemon *d = dep->d;
	struct rt_fn *fn = dep->fn;
	(void)p;
	dep->proc = NULL;
	d->builds_running--;
	start_next_build(d);
	if (dep->aborted || d->stopping) {
		answer(dep, 503, "unavailable", "runtimed is shutting down");
		finish(dep);
		return;
	}
	bool ok = dep->got_result && dep->status == UFWORKER__BUILD_STATUS__BUILD_OK && !sig &&
		  status == 0;
	if (ok) {
		go_live(dep);
		return;
	}
	char msg[UF_WORKER_MAX_TEXT / 2 + 64];
	if (!dep->got_result)
		snprintf(msg, sizeof(msg), "the template build died (%s %lld)",
			 sig ? "signal" : "status", sig ? (long long)sig : (long long)status);
	else
		snprintf(msg, sizeof(msg), "%s", dep->message);
	bool init = dep->got_result && dep->status == UFWORKER__BUILD_STATUS__BUILD_INIT_FAILED;
	fprintf(stderr, "runtimed: %s: %s %s: %s\n", fn->spec.name[0] ? fn->spec.name : dep->spec.name,
		dep->rebuild ? "rebuild" : "deploy", init ? "init failed" : "failed", msg);
	if (dep->rebuild) {
		snprintf(fn->last_error, sizeof(fn->last_error), "template rebuild failed: %.200s", msg);
		fn->state = RT_FN_FAILED;
		/* A builder that died without a verdict (killed, crashed) may
		 * well succeed next time; a build that failed does not. */
		if (!dep->got_result && !fn->deleted)
			rt_fn_retry_later(fn);
	}
	if (!init && no_space(0, msg))
		answer_no_space(dep, msg);
	else
		answer(dep, init ? 422 : 500, init ? "init_failed" : "internal", msg);
	finish(dep);
}

static int spawn_build(struct rt_deploy *dep)
{
	struct rt_daemon *d = dep->d;
	const struct rt_spec *s = dep->rebuild ? &dep->fn->spec : &dep->spec;
	char base[PATH_MAX], out[PATH_MAX + 16], pkg[PATH_MAX + 16], env[PATH_MAX + 16];
	char mem[16], tmo[16], fd[] = "3";
	int r = 0;
	if (dep->rebuild)
		r = rt_reg_path(&d->reg, s->name, NULL, base, sizeof(base));
	else
		snprintf(base, sizeof(base), "%s", dep->staging);
	if (r)
		return r;
	/* A rebuild goes next to the template it replaces (go_live swaps). */
	snprintf(out, sizeof(out), "%s/%s", base, dep->rebuild ? "template.new" : "template");
	if (dep->rebuild)
		rt_reg_discard(out);
	snprintf(pkg, sizeof(pkg), "%s/code.tar.gz", base);
	snprintf(env, sizeof(env), "%s/env", base);
	snprintf(mem, sizeof(mem), "%u", (s->memory_mb + 1) & ~1u);
	snprintf(tmo, sizeof(tmo), "%u", s->timeout_ms);
	char *argv[32];
	int n = 0;
	argv[n++] = d->cfg.worker;
	argv[n++] = "build";
	argv[n++] = "--fd";
	argv[n++] = fd;
	argv[n++] = "--templates";
	argv[n++] = d->reg.templates;
	argv[n++] = "--kernel";
	argv[n++] = d->cfg.kernel;
	argv[n++] = "--initrd";
	argv[n++] = (char *)rt_config_initrd(&d->cfg, s->runtime);
	if (d->cfg.agent[0]) {
		argv[n++] = "--agent";
		argv[n++] = d->cfg.agent;
	}
	argv[n++] = "--out";
	argv[n++] = out;
	argv[n++] = "--runtime";
	argv[n++] = (char *)s->runtime;
	argv[n++] = "--handler";
	argv[n++] = (char *)s->handler;
	argv[n++] = "--package";
	argv[n++] = pkg;
	argv[n++] = "--env-file";
	argv[n++] = env;
	argv[n++] = "--mem-mb";
	argv[n++] = mem;
	argv[n++] = "--timeout-ms";
	argv[n++] = tmo;
	argv[n] = NULL;
	static const struct rt_wproc_cbs cbs = {.on_msg = build_msg, .on_exit = build_exit};
	r = rt_wproc_spawn(d->loop, argv, &cbs, dep, &dep->proc);
	if (r == 0)
		d->builds_running++;
	return r;
}

static void start_or_fail(struct rt_deploy *dep)
{
	if (spawn_build(dep) == 0)
		return;
	char msg[300];
	snprintf(msg, sizeof(msg), "cannot start the template build: %s", vmm_strerror());
	if (dep->rebuild) {
		snprintf(dep->fn->last_error, sizeof(dep->fn->last_error), "%.250s", msg);
		dep->fn->state = RT_FN_FAILED;
	}
	answer(dep, 500, "internal", msg);
	finish(dep);
}

static void start_next_build(struct rt_daemon *d)
{
	while (d->build_queue && d->builds_running < d->cfg.cpus && !d->stopping) {
		struct rt_deploy *dep = d->build_queue;
		d->build_queue = dep->next;
		dep->next = NULL;
		start_or_fail(dep);
	}
}

static void enqueue(struct rt_deploy *dep)
{
	struct rt_deploy **pp = &dep->d->build_queue;
	while (*pp)
		pp = &(*pp)->next;
	*pp = dep;
	start_next_build(dep->d);
}

void rt_deploy_start(struct rt_daemon *d, struct gw_call *call, const struct gw_function_spec *g)
{
	struct gw_deploy_result res = {.status = 500, .error_code = "internal"};
	if (d->stopping) {
		res = (struct gw_deploy_result){503, "unavailable", "runtimed is shutting down", NULL};
		gw_deploy_done(call, &res);
		return;
	}
	if (g->code_len > RT_CODE_MAX) {
		char msg[160];
		snprintf(msg, sizeof(msg), "the package is %zu bytes; at most %u fit the agent's Init",
			 g->code_len, RT_CODE_MAX);
		res = (struct gw_deploy_result){413, "payload_too_large", msg, NULL};
		gw_deploy_done(call, &res);
		return;
	}
	struct rt_deploy *dep = calloc(1, sizeof(*dep));
	if (!dep || rt_spec_from_gw(&dep->spec, g)) {
		free(dep);
		res = (struct gw_deploy_result){400, "bad_request", "the spec was refused", NULL};
		gw_deploy_done(call, &res);
		return;
	}
	dep->d = d;
	dep->call = call;
	struct rt_fn *fn = rt_fn_find(d, g->name);
	if (fn && fn->deploy) {
		rt_spec_free(&dep->spec);
		free(dep);
		res = (struct gw_deploy_result){409, "conflict",
			"a deploy of this function is in progress", NULL};
		gw_deploy_done(call, &res);
		return;
	}
	dep->is_new = !fn || fn->state == RT_FN_NEW;
	dep->spec.version = fn ? fn->spec.version + 1 : 1;
	if (fn)
		dep->spec.created_unix = fn->spec.created_unix;
	if (!fn) {
		struct rt_spec copy;
		if (rt_spec_copy(&copy, &dep->spec) || !(fn = rt_fn_new(d, &copy))) {
			rt_spec_free(&dep->spec);
			free(dep);
			res.error_message = "out of memory";
			gw_deploy_done(call, &res);
			return;
		}
	}
	dep->fn = fn;
	fn->deploy = dep;
	int r = rt_reg_stage(&d->reg, &dep->spec, g->code, g->code_len, dep->staging);
	if (r) {
		if (no_space(r, vmm_strerror()))
			answer_no_space(dep, vmm_strerror());
		else
			answer(dep, 500, "internal", vmm_strerror());
		finish(dep);
		return;
	}
	enqueue(dep);
}

int rt_rebuild_start(struct rt_fn *fn)
{
	struct rt_deploy *dep = calloc(1, sizeof(*dep));
	if (!dep)
		return vmm_err(-ENOMEM, "rebuild: out of memory");
	dep->d = fn->d;
	dep->fn = fn;
	dep->rebuild = true;
	fn->deploy = dep;
	if (!fn->cur)
		fn->state = RT_FN_BUILDING;
	fprintf(stderr, "runtimed: %s: rebuilding its template\n", fn->spec.name);
	enqueue(dep);
	return 0;
}

void rt_deploy_worker_ready(struct rt_fn *fn, bool ok, const char *why)
{
	struct rt_deploy *dep = fn->deploy;
	if (!dep || !dep->waiting_worker)
		return;
	if (ok) {
		answer(dep, dep->is_new ? 201 : 200, NULL, NULL);
	} else {
		char msg[400];
		snprintf(msg, sizeof(msg), "the function's worker did not start: %s", why);
		answer(dep, 500, "internal", msg);
	}
	finish(dep);
}

int rt_fn_delete(struct rt_daemon *d, const char *name, struct gw_error *err)
{
	struct rt_fn *fn = rt_fn_find(d, name);
	if (!fn || fn->state == RT_FN_NEW) {
		err->code = "not_found";
		snprintf(err->message, sizeof(err->message), "no function named %s", name);
		return 404;
	}
	if (fn->deploy) {
		err->code = "conflict";
		snprintf(err->message, sizeof(err->message), "a deploy of %s is in progress", name);
		return 409;
	}
	if (rt_reg_remove(&d->reg, name)) {
		err->code = "internal";
		snprintf(err->message, sizeof(err->message), "%s", vmm_strerror());
		return 500;
	}
	fn->deleted = true;
	uv_timer_stop(&fn->restart_timer);
	rt_fn_drain_all(fn);
	/* Calls not sent yet have no worker to go to any more. */
	rt_fn_fail_queued(fn, 404, "not_found", "the function was deleted");
	rt_fn_maybe_free(fn);
	return 204;
}

void rt_deploy_abort_all(struct rt_daemon *d)
{
	while (d->build_queue) {
		struct rt_deploy *dep = d->build_queue;
		d->build_queue = dep->next;
		answer(dep, 503, "unavailable", "runtimed is shutting down");
		finish(dep);
	}
	for (struct rt_fn *fn = d->fns, *next; fn; fn = next) {
		next = fn->next; /* finish() may free fn */
		struct rt_deploy *dep = fn->deploy;
		if (!dep)
			continue;
		if (dep->proc) {
			dep->aborted = true;
			rt_wproc_kill(dep->proc, SIGKILL);
		} else if (dep->waiting_worker) {
			answer(dep, 503, "unavailable", "runtimed is shutting down");
			finish(dep);
		}
	}
}
