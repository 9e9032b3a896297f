/* function.c — a function's workers and calls: start, restart with backoff
 * and drain workers; admit calls (429 past max_instances, 503 past the
 * memory budget, then the scheduler's checks: queue_full, instances), hand
 * them to the scheduler (dispatch.c), send them, and answer each exactly
 * once (see daemon.h). */
#include "runtimed/daemon.h"
#include "vmm/err.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_MS 1000000ull

static uint64_t now_ns(void)
{
	return uv_hrtime();
}

const char *rt_fn_state_name(enum rt_fn_state s)
{
	static const char *const n[] = {"new", "building", "starting", "ready", "failed"};
	return (unsigned)s < sizeof(n) / sizeof(n[0]) ? n[s] : "unknown";
}

static uint32_t vm_mem_mb(const struct rt_fn *fn)
{
	return (fn->spec.memory_mb + 1) & ~1u;
}

/* ---- answering calls ---- */

static void finish(struct rt_call *c, const struct gw_invoke_result *res)
{
	struct rt_fn *fn = c->fn;
	struct rt_daemon *d = fn->d;
	if (c->si.state != SCHED_NONE) {
		sched_remove(&d->sched, &c->si, now_ns());
		rt_sched_kick(d); /* a slot may be free */
	}
	fn->m.run_ns += c->si.ran_ns;
	c->prev->next = c->next;
	c->next->prev = c->prev;
	fn->inflight--;
	d->mem_inflight_mb -= c->mem_mb;
	gw_invoke_done(c->gw, res);
	free(c);
}

static void fail(struct rt_call *c, int status, const char *code, const char *msg,
		 enum rt_throttle reason, bool count_throttle)
{
	struct gw_invoke_result res = {.status = status, .error_code = code, .error_message = msg,
				       .unhandled = status == 502};
	if (status == 429 || reason == RT_THROTTLE_QUEUE_FULL ||
	    reason == RT_THROTTLE_QUEUE_TIMEOUT || reason == RT_THROTTLE_INSTANCES)
		res.retry_after_s = RT_RETRY_AFTER_S;
	if (count_throttle)
		c->fn->m.throttled[reason]++;
	rt_metrics_invocation(&c->fn->m, (uint32_t)status, -1, 0, 0, 0);
	rt_logs_add(&c->fn->logs, c->call_id, "runtime", msg, strlen(msg));
	finish(c, &res);
}

static int start_of(Ufworker__StartType t)
{
	switch (t) {
	case UFWORKER__START_TYPE__START_CLONE: return RT_START_CLONE;
	case UFWORKER__START_TYPE__START_WARM:  return RT_START_WARM;
	case UFWORKER__START_TYPE__START_RESET: return RT_START_RESET;
	default:                                return -1;
	}
}

static void complete(struct rt_fn *fn, struct rt_worker *w, const Ufworker__Result *r)
{
	struct rt_call *c;
	for (c = fn->calls.next; c != &fn->calls; c = c->next)
		if (c->sent_to == w && strcmp(c->call_id, r->call_id) == 0)
			break;
	if (c == &fn->calls)
		return; /* answered already (504 by the sweep): drop it */
	int start = start_of(r->start_type);
	struct gw_invoke_result res = {
		.status = (int)r->status, .body = r->body.data, .body_len = r->body.len,
		.content_type = r->content_type && r->content_type[0] ? r->content_type : NULL,
		.start = start < 0 ? GW_START_NONE : (enum gw_start_type)(start + 1),
		.restore_us = r->restore_us, .duration_us = r->duration_us,
	};
	const char *msg = r->message && r->message[0] ? r->message : NULL;
	switch (r->error_kind) {
	case UFWORKER__ERROR_KIND__ERROR_NONE:
		break;
	case UFWORKER__ERROR_KIND__ERROR_UNHANDLED:
	case UFWORKER__ERROR_KIND__ERROR_CRASHED:
		res.status = 502;
		res.error_code = "unhandled";
		res.unhandled = true;
		break;
	case UFWORKER__ERROR_KIND__ERROR_TIMEOUT:
		res.status = 504;
		res.error_code = "timeout";
		break;
	case UFWORKER__ERROR_KIND__ERROR_NO_CAPACITY:
		res.status = r->status == 429 ? 429 : 503;
		res.error_code = r->status == 429 ? "too_many_requests" : "unavailable";
		res.retry_after_s = RT_RETRY_AFTER_S;
		if (r->status == 429)
			fn->m.throttled[RT_THROTTLE_MAX_INSTANCES]++;
		break;
	default:
		res.status = 503;
		res.error_code = "unavailable";
		break;
	}
	res.error_message = res.error_code ? (msg ? msg : "the call failed") : NULL;
	if (r->logs.len)
		rt_logs_add(&fn->logs, c->call_id, "handler", r->logs.data, r->logs.len);
	if (res.error_code)
		rt_logs_add(&fn->logs, c->call_id, "runtime", res.error_message,
			    strlen(res.error_message));
	rt_metrics_invocation(&fn->m, (uint32_t)res.status, start, r->duration_us, r->restore_us,
			      r->queue_us);
	finish(c, &res);
}

void rt_fn_fail_call(struct rt_call *c, int status, const char *code, const char *msg,
		     enum rt_throttle reason)
{
	fail(c, status, code, msg, reason, reason != RT_THROTTLE_N);
}

/* ---- sending calls ---- */

int rt_fn_send_call(struct rt_call *c, struct rt_worker *w)
{
	Ufworker__Invoke inv = UFWORKER__INVOKE__INIT;
	inv.call_id = c->call_id;
	inv.event.data = (uint8_t *)c->body;
	inv.event.len = c->len;
	inv.content_type = (char *)c->content_type;
	inv.deadline_ms = c->fn->spec.timeout_ms;
	uf_wmsg m = UFWORKER__WORKER_MSG__INIT;
	uf_wmsg_wrap(&m, UFWORKER__WORKER_MSG__MSG_INVOKE, &inv);
	int r = rt_wproc_send(w->proc, &m);
	if (r == 0)
		c->sent_to = w;
	return r;
}

/* The worker new calls go to: the current one once ready, else the one it
 * replaces while that still serves (a redeploy in progress). */
struct rt_worker *rt_fn_serving(struct rt_fn *fn)
{
	if (fn->cur && fn->cur->ready && fn->cur->proc)
		return fn->cur;
	for (struct rt_worker *w = fn->workers; w; w = w->next)
		if (w->ready && w->proc && !w->draining)
			return w;
	return NULL;
}

void rt_fn_invoke(struct rt_fn *fn, struct gw_call *call, const struct gw_invoke *req)
{
	struct rt_daemon *d = fn->d;
	struct rt_call *c = calloc(1, sizeof(*c));
	if (!c) {
		struct gw_invoke_result res = {.status = 503, .error_code = "unavailable",
					       .error_message = "out of memory"};
		gw_invoke_done(call, &res);
		return;
	}
	c->fn = fn;
	c->gw = call;
	snprintf(c->call_id, sizeof(c->call_id), "%s", req->call_id);
	c->body = req->body;
	c->len = req->body_len;
	c->content_type = req->content_type;
	c->t_admit_ns = now_ns();
	c->next = &fn->calls;
	c->prev = fn->calls.prev;
	fn->calls.prev->next = c;
	fn->calls.prev = c;
	fn->inflight++;
	char msg[300];
	if (d->stopping) {
		fail(c, 503, "unavailable", "runtimed is shutting down", RT_THROTTLE_NOT_READY, true);
	} else if (fn->state == RT_FN_FAILED) {
		snprintf(msg, sizeof(msg), "the function cannot run: %s", fn->last_error);
		fail(c, 503, "unavailable", msg, RT_THROTTLE_NOT_READY, true);
	} else if (fn->inflight > fn->spec.pool.max_instances) {
		snprintf(msg, sizeof(msg), "%u calls of %s are in flight (max_instances)",
			 fn->spec.pool.max_instances, fn->spec.name);
		fail(c, 429, "too_many_requests", msg, RT_THROTTLE_MAX_INSTANCES, true);
	} else if (d->cfg.memory_mb && d->mem_inflight_mb + vm_mem_mb(fn) > d->cfg.memory_mb) {
		snprintf(msg, sizeof(msg), "the memory budget (%llu MiB) is in use",
			 (unsigned long long)d->cfg.memory_mb);
		fail(c, 503, "unavailable", msg, RT_THROTTLE_MEMORY, true);
	} else if (rt_fn_sched_sync(fn)) {
		fail(c, 503, "unavailable", vmm_strerror(), RT_THROTTLE_NOT_READY, true);
	} else {
		uint64_t deadline = c->t_admit_ns + (uint64_t)fn->spec.timeout_ms * NS_PER_MS;
		enum sched_refusal why = sched_admit(&d->sched, &fn->member, &c->si, 1, c->t_admit_ns,
						     deadline);
		switch (why) {
		case SCHED_OK:
			c->mem_mb = vm_mem_mb(fn);
			d->mem_inflight_mb += c->mem_mb;
			rt_sched_run(d);
			break;
		case SCHED_QUEUE_FULL:
			snprintf(msg, sizeof(msg), "the queue of group %s is full (%u calls, --queue-max)",
				 rt_spec_group(&fn->spec), d->sched.cfg.queue_max);
			fail(c, 503, "queue_full", msg, RT_THROTTLE_QUEUE_FULL, true);
			break;
		case SCHED_INSTANCES:
			snprintf(msg, sizeof(msg), "%u calls are admitted (--max-instances)",
				 d->sched.cfg.max_instances);
			fail(c, 503, "instances", msg, RT_THROTTLE_INSTANCES, true);
			break;
		case SCHED_TOO_WIDE:
			fail(c, 503, "unavailable", "the call needs more vCPUs than --cpus",
			     RT_THROTTLE_NOT_READY, true);
			break;
		}
	}
}

/* ---- workers ---- */

static void drain_worker(struct rt_worker *w);

static void worker_msg(struct rt_wproc *p, uf_wmsg *m, void *arg)
{
	struct rt_worker *w = arg;
	struct rt_fn *fn = w->fn;
	(void)p;
	switch (m->msg_case) {
	case UFWORKER__WORKER_MSG__MSG_READY:
		w->ready = true;
		w->template_bytes = m->ready->template_bytes;
		w->mem_bytes = m->ready->mem_bytes;
		w->gauges.warm = w->gauges.live = m->ready->warm;
		if (w == fn->cur) {
			fn->state = RT_FN_READY;
			fn->last_error[0] = 0;
			/* Its template is good: one that is refused later
			 * (damaged on disk) may be rebuilt again. */
			fn->rebuilt = false;
			/* The workers it replaces finish what they have. */
			for (struct rt_worker *o = fn->workers; o; o = o->next)
				if (o != w)
					drain_worker(o);
			rt_deploy_worker_ready(fn, true, NULL);
			rt_sched_run(fn->d);
		}
		break;
	case UFWORKER__WORKER_MSG__MSG_RESULT:
		complete(fn, w, m->result);
		rt_sched_run(fn->d);
		break;
	case UFWORKER__WORKER_MSG__MSG_PREEMPTED:
		rt_sched_preempted(fn, w, m->preempted);
		break;
	case UFWORKER__WORKER_MSG__MSG_STATS:
		w->gauges.live = m->stats->live;
		w->gauges.warm = m->stats->warm;
		w->gauges.busy = m->stats->busy;
		break;
	default:
		fprintf(stderr, "runtimed: %s: unexpected %s from its worker\n", fn->spec.name,
			uf_wmsg_type_name(m->msg_case));
		break;
	}
}

static void restart_cb(uv_timer_t *t)
{
	struct rt_fn *fn = t->data;
	if (fn->deleted || fn->d->stopping || fn->cur || fn->deploy)
		return;
	if (rt_fn_start_worker(fn)) {
		snprintf(fn->last_error, sizeof(fn->last_error), "%s", vmm_strerror());
		fn->state = RT_FN_FAILED;
	}
}

static void schedule_restart(struct rt_fn *fn, uint64_t up_ms)
{
	if (up_ms >= RT_RESTART_RESET_MS || fn->restart_ms < RT_RESTART_MIN_MS)
		fn->restart_ms = RT_RESTART_MIN_MS;
	unsigned delay = fn->restart_ms;
	fn->restart_ms = fn->restart_ms * 2 > RT_RESTART_MAX_MS ? RT_RESTART_MAX_MS : fn->restart_ms * 2;
	fn->m.worker_restarts++;
	uv_timer_start(&fn->restart_timer, restart_cb, delay, 0);
}

void rt_fn_retry_later(struct rt_fn *fn)
{
	fn->rebuilt = false;
	schedule_restart(fn, 0);
}

static void worker_exit(struct rt_wproc *p, int64_t status, int sig, void *arg)
{
	struct rt_worker *w = arg;
	struct rt_fn *fn = w->fn;
	struct rt_daemon *d = fn->d;
	(void)p;
	w->proc = NULL;
	for (struct rt_worker **pp = &fn->workers; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	char why[160];
	if (sig)
		snprintf(why, sizeof(why), "the worker was killed by signal %d", sig);
	else
		snprintf(why, sizeof(why), "the worker exited with status %lld", (long long)status);
	bool clean = !sig && status == 0 && w->draining;
	if (!clean)
		fprintf(stderr, "runtimed: %s: %s\n", fn->spec.name, why);
	for (struct rt_call *c = fn->calls.next, *n; c != &fn->calls; c = n) {
		n = c->next;
		if (c->sent_to == w)
			fail(c, 502, "unhandled", "the function's worker process died during the call",
			     RT_THROTTLE_NOT_READY, false);
	}
	if (fn->cur == w) {
		fn->cur = NULL;
		uint64_t up_ms = (now_ns() - w->started_ns) / NS_PER_MS;
		if (!w->ready) {
			snprintf(fn->last_error, sizeof(fn->last_error), "%s before it was ready", why);
			rt_deploy_worker_ready(fn, false, fn->last_error);
		}
		if (!fn->deleted && !d->stopping && !w->draining && !fn->deploy) {
			/* Status 3: the template was refused (stale or from
			 * another CPU): rebuild it once from the stored code. */
			if (!sig && status == 3 && !fn->rebuilt) {
				fn->rebuilt = true;
				if (rt_rebuild_start(fn)) {
					snprintf(fn->last_error, sizeof(fn->last_error), "rebuild: %s",
						 vmm_strerror());
					fn->state = RT_FN_FAILED;
				}
			} else {
				fn->state = rt_fn_serving(fn) ? RT_FN_READY
					    : w->ready ? RT_FN_STARTING : RT_FN_FAILED;
				schedule_restart(fn, up_ms);
			}
		}
	}
	free(w);
	rt_fn_maybe_free(fn);
	rt_daemon_check_stopped(d);
}

static void drain_worker(struct rt_worker *w)
{
	if (w->draining || !w->proc)
		return;
	w->draining = true;
	Ufworker__Drain dr = UFWORKER__DRAIN__INIT;
	uf_wmsg m = UFWORKER__WORKER_MSG__INIT;
	uf_wmsg_wrap(&m, UFWORKER__WORKER_MSG__MSG_DRAIN, &dr);
	if (rt_wproc_send(w->proc, &m))
		rt_wproc_kill(w->proc, SIGKILL);
}

void rt_fn_drain_all(struct rt_fn *fn)
{
	for (struct rt_worker *w = fn->workers; w; w = w->next)
		drain_worker(w);
}

int rt_fn_start_worker(struct rt_fn *fn)
{
	struct rt_daemon *d = fn->d;
	char tmpl[PATH_MAX], origin[3 * 65 + 4], fd[] = "3", tmo[16], mw[16], mi[16], it[16];
	int r = rt_reg_path(&d->reg, fn->spec.name, "template", tmpl, sizeof(tmpl));
	if (r)
		return r;
	rt_config_origin_arg(rt_config_origin(&d->cfg, fn->spec.runtime), origin, sizeof(origin));
	snprintf(tmo, sizeof(tmo), "%u", fn->spec.timeout_ms);
	snprintf(mw, sizeof(mw), "%u", fn->spec.pool.min_warm);
	snprintf(mi, sizeof(mi), "%u", fn->spec.pool.max_instances);
	snprintf(it, sizeof(it), "%u", fn->spec.pool.idle_timeout_s);
	char *argv[] = {d->cfg.worker, "serve", "--fd", fd, "--template", tmpl, "--origin", origin,
			"--timeout-ms", tmo, "--min-warm", mw, "--max-instances", mi,
			"--idle-timeout-s", it, NULL};
	struct rt_worker *w = calloc(1, sizeof(*w));
	if (!w)
		return vmm_err(-ENOMEM, "worker: out of memory");
	w->fn = fn;
	w->started_ns = now_ns();
	static const struct rt_wproc_cbs cbs = {.on_msg = worker_msg, .on_exit = worker_exit};
	r = rt_wproc_spawn(d->loop, argv, &cbs, w, &w->proc);
	if (r) {
		free(w);
		return r;
	}
	/* The worker it replaces keeps serving until this one is ready. */
	w->next = fn->workers;
	fn->workers = w;
	fn->cur = w;
	if (!rt_fn_serving(fn))
		fn->state = RT_FN_STARTING;
	return 0;
}

void rt_fn_push_pool(struct rt_fn *fn)
{
	if (!fn->cur || !fn->cur->proc)
		return;
	Ufworker__PoolConfig pc = UFWORKER__POOL_CONFIG__INIT;
	pc.min_warm = fn->spec.pool.min_warm;
	pc.max_instances = fn->spec.pool.max_instances;
	pc.idle_timeout_s = fn->spec.pool.idle_timeout_s;
	uf_wmsg m = UFWORKER__WORKER_MSG__INIT;
	uf_wmsg_wrap(&m, UFWORKER__WORKER_MSG__MSG_POOL, &pc);
	if (rt_wproc_send(fn->cur->proc, &m))
		fprintf(stderr, "runtimed: %s: pool change not sent (worker going away)\n",
			fn->spec.name);
}

void rt_fn_fail_queued(struct rt_fn *fn, int status, const char *code, const char *msg)
{
	for (struct rt_call *c = fn->calls.next, *n; c != &fn->calls; c = n) {
		n = c->next;
		if (!c->sent_to)
			fail(c, status, code, msg, RT_THROTTLE_NOT_READY, false);
	}
}

void rt_fn_tick(struct rt_fn *fn, uint64_t now)
{
	for (struct rt_worker *w = fn->workers; w; w = w->next) {
		if (!w->ready || !w->proc || w->draining)
			continue;
		Ufworker__StatsRequest sr = UFWORKER__STATS_REQUEST__INIT;
		uf_wmsg m = UFWORKER__WORKER_MSG__INIT;
		uf_wmsg_wrap(&m, UFWORKER__WORKER_MSG__MSG_STATS_REQUEST, &sr);
		if (rt_wproc_send(w->proc, &m))
			continue; /* the worker is going away: its exit says the rest */
	}
	/* Queued calls expire in the scheduler; a dispatched one whose worker
	 * says nothing long past its deadline is answered here. */
	for (struct rt_call *c = fn->calls.next, *n; c != &fn->calls; c = n) {
		n = c->next;
		if (c->si.state == SCHED_RUNNING && c->si.deadline_ns &&
		    now > c->si.deadline_ns + (uint64_t)RT_CALL_SLACK_MS * NS_PER_MS)
			fail(c, 504, "timeout", "the function's worker did not answer in time",
			     RT_THROTTLE_NOT_READY, false);
	}
}

json_t *rt_fn_json(const struct rt_fn *fn)
{
	json_t *j = rt_spec_to_json(&fn->spec);
	if (!j)
		return NULL;
	const struct rt_worker *w = fn->cur;
	struct rt_pool_gauges g = w ? w->gauges : (struct rt_pool_gauges){0};
	json_object_set_new(j, "state", json_string(rt_fn_state_name(fn->state)));
	json_object_set_new(j, "template_bytes", json_integer(w ? (json_int_t)w->template_bytes : 0));
	json_object_set_new(j, "instances", json_pack("{s:I, s:I, s:I, s:I}", "live", (json_int_t)g.live,
						      "warm", (json_int_t)g.warm, "busy",
						      (json_int_t)g.busy, "inflight",
						      (json_int_t)fn->inflight));
	json_object_set_new(j, "latency", rt_metrics_latency_json(&fn->m));
	json_object_set_new(j, "sched", rt_fn_sched_json(fn));
	if (fn->last_error[0])
		json_object_set_new(j, "error", json_string(fn->last_error));
	return j;
}
