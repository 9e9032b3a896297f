/* dispatch.c — the loop-thread side of the scheduler (runtimed/sched.h):
 * functions join their group, admitted calls are dispatched to their
 * worker when sched_pick gives them a run slot (Invoke, or Resume for a
 * preempted one), calls past their slice are preempted (Preempt /
 * Preempted), queued calls past their wait or deadline are answered, and
 * one timer wakes the loop for the next of these.  The scheduler's part of
 * GET /v1/functions/NAME and of /metrics is written here too. */
#include "runtimed/daemon.h"
#include "vmm/err.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define NS_PER_MS 1000000ull

static struct rt_call *call_of(const struct sched_item *it)
{
	return (struct rt_call *)((char *)it - offsetof(struct rt_call, si));
}

void rt_sched_setup(struct rt_daemon *d)
{
	const struct rt_config *c = &d->cfg;
	struct sched_config sc = {
		.off = c->sched_off, .slots = c->cpus, .queue_max = c->queue_max,
		.queue_timeout_ns = (uint64_t)c->queue_timeout_ms * NS_PER_MS,
		.slice_ns = (uint64_t)c->slice_ms * NS_PER_MS, .max_instances = c->max_instances,
	};
	sched_init(&d->sched, &sc);
	uv_timer_init(d->loop, &d->sched_timer);
	d->sched_timer.data = d;
	d->sched_timer_open = true;
}

void rt_sched_close(struct rt_daemon *d)
{
	if (!d->sched_timer_open)
		return;
	d->sched_timer_open = false;
	uv_timer_stop(&d->sched_timer);
	uv_close((uv_handle_t *)&d->sched_timer, NULL);
}

int rt_fn_sched_sync(struct rt_fn *fn)
{
	struct rt_daemon *d = fn->d;
	const char *group = rt_spec_group(&fn->spec);
	if (fn->member.g && strcmp(fn->member.g->name, group) != 0)
		sched_leave(&d->sched, &fn->member); /* its calls stay in the old group */
	if (!fn->member.g) {
		int r = sched_join(&d->sched, &fn->member, group, fn->spec.weight);
		if (r)
			return vmm_err(r, "%s: join scheduling group %s", fn->spec.name, group);
	} else if (fn->member.weight != fn->spec.weight) {
		sched_set_weight(&fn->member, fn->spec.weight);
	}
	return 0;
}

void rt_fn_sched_leave(struct rt_fn *fn)
{
	sched_leave(&fn->d->sched, &fn->member);
}

static int send_resume(struct rt_call *c)
{
	Ufworker__Resume rs = UFWORKER__RESUME__INIT;
	rs.call_id = c->call_id;
	uf_wmsg m = UFWORKER__WORKER_MSG__INIT;
	uf_wmsg_wrap(&m, UFWORKER__WORKER_MSG__MSG_RESUME, &rs);
	return rt_wproc_send(c->sent_to->proc, &m);
}

static bool can_run(const struct sched_item *it, void *arg)
{
	const struct rt_call *c = call_of(it);
	(void)arg;
	if (it->paused)
		return c->sent_to && c->sent_to->proc;
	return rt_fn_serving(c->fn) != NULL;
}

static void dispatch(struct rt_daemon *d, uint64_t now)
{
	struct sched_item *it;
	while ((it = sched_pick(&d->sched, now, can_run, NULL))) {
		struct rt_call *c = call_of(it);
		int r;
		if (it->paused) {
			r = send_resume(c);
		} else {
			/* The deadline the worker enforces runs from here. */
			it->deadline_ns = now + (uint64_t)c->fn->spec.timeout_ms * NS_PER_MS;
			r = rt_fn_send_call(c, rt_fn_serving(c->fn));
		}
		if (r) {
			/* The worker is going away: its exit answers or requeues. */
			sched_unpick(&d->sched, it);
			break;
		}
		rt_metrics_sched_wait(&c->fn->m, it->wait_ns / 1000);
	}
}

static void preempt(struct rt_daemon *d, uint64_t now)
{
	struct sched_item *it;
	while ((it = sched_preempt_due(&d->sched, now))) {
		struct rt_call *c = call_of(it);
		Ufworker__Preempt p = UFWORKER__PREEMPT__INIT;
		p.call_id = c->call_id;
		uf_wmsg m = UFWORKER__WORKER_MSG__INIT;
		uf_wmsg_wrap(&m, UFWORKER__WORKER_MSG__MSG_PREEMPT, &p);
		if (!c->sent_to || !c->sent_to->proc || rt_wproc_send(c->sent_to->proc, &m))
			sched_preempt_refused(it, now);
		else
			c->preempt_ns = now;
	}
}

static void expire(struct rt_daemon *d, uint64_t now)
{
	struct sched_item *it;
	while ((it = sched_expired(&d->sched, now))) {
		struct rt_call *c = call_of(it);
		if (it->paused)
			/* The worker's own deadline kills the paused clone; its
			 * late Result is dropped. */
			rt_fn_fail_call(c, 504, "timeout",
					"the call's deadline passed while it was preempted",
					RT_THROTTLE_N);
		else
			rt_fn_fail_call(c, 503, "queue_timeout",
					"the call waited in its group's queue too long (--queue-timeout-ms)",
					RT_THROTTLE_QUEUE_TIMEOUT);
	}
}

static void timer_cb(uv_timer_t *t)
{
	rt_sched_run(t->data);
}

void rt_sched_run(struct rt_daemon *d)
{
	uint64_t now = uv_hrtime();
	expire(d, now);
	dispatch(d, now);
	preempt(d, now);
	if (!d->sched_timer_open)
		return;
	uint64_t next = sched_next_event(&d->sched, now);
	if (next == UINT64_MAX) {
		uv_timer_stop(&d->sched_timer);
		return;
	}
	/* At least 1 ms: a timer re-armed at 0 from its own callback would
	 * run again before the loop polls for I/O. */
	uint64_t ms = next > now ? (next - now + NS_PER_MS - 1) / NS_PER_MS : 1;
	if (ms == 0)
		ms = 1;
	uv_timer_start(&d->sched_timer, timer_cb, ms, 0);
}

void rt_sched_preempted(struct rt_fn *fn, struct rt_worker *w, const Ufworker__Preempted *p)
{
	struct rt_daemon *d = fn->d;
	for (struct rt_call *c = fn->calls.next; c != &fn->calls; c = c->next) {
		if (c->sent_to != w || strcmp(c->call_id, p->call_id) != 0)
			continue;
		if (c->si.state != SCHED_RUNNING || !c->si.preempt_sent)
			return; /* not asked (a confused worker): ignore */
		uint64_t now = uv_hrtime();
		if (p->not_paused) {
			sched_preempt_refused(&c->si, now);
		} else {
			sched_preempted(&d->sched, &c->si, now, p->ran_us * 1000);
			fn->m.preemptions++;
			fn->m.preempt_rtt_ns += now - c->preempt_ns;
		}
		rt_sched_run(d);
		return;
	}
	/* Answered meanwhile (its Result came first): nothing to do. */
}

json_t *rt_fn_sched_json(const struct rt_fn *fn)
{
	uint32_t queued = 0, running = 0, paused = 0;
	for (const struct rt_call *c = fn->calls.next; c != &fn->calls; c = c->next) {
		running += c->si.state == SCHED_RUNNING;
		queued += c->si.state == SCHED_QUEUED;
		paused += c->si.state == SCHED_QUEUED && c->si.paused;
	}
	const struct sched_group *g = fn->member.g;
	json_t *wait = rt_metrics_wait_json(&fn->m);
	json_t *thr = rt_metrics_throttled_json(&fn->m);
	json_t *j = wait && thr ? json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:O, s:O}",
					    "group", rt_spec_group(&fn->spec),
					    "weight", (json_int_t)fn->spec.weight,
					    "group_weight", (json_int_t)(g ? g->weight : fn->spec.weight),
					    "queued", (json_int_t)queued, "running", (json_int_t)running,
					    "paused", (json_int_t)paused,
					    "run_us_total", (json_int_t)(fn->m.run_ns / 1000),
					    "preemptions", (json_int_t)fn->m.preemptions,
					    "queue_wait_us", wait, "throttled", thr)
				: NULL;
	json_decref(wait);
	json_decref(thr);
	/* What a preemption costs: Preempt sent until the vCPU is parked and
	 * Preempted is back (mean, microseconds). */
	uint64_t rtt = fn->m.preemptions ? fn->m.preempt_rtt_ns / fn->m.preemptions / 1000 : 0;
	if (j && json_object_set_new(j, "preempt_rtt_us", json_integer((json_int_t)rtt))) {
		json_decref(j);
		return NULL;
	}
	if (j && json_object_set_new(j, "tenant", fn->spec.tenant[0] ? json_string(fn->spec.tenant)
								      : json_null())) {
		json_decref(j);
		return NULL;
	}
	return j;
}

void rt_sched_metrics(struct rt_daemon *d, struct gw_buf *b)
{
	int first = 1;
	for (const struct sched_group *g = d->sched.groups; g; g = g->next) {
		struct rt_group_sample s = {.group = g->name, .queued = g->nqueued,
					    .running = g->nrunning, .run_ns = g->run_ns_total,
					    .preemptions = g->preemptions};
		for (const struct rt_fn *fn = d->fns; fn; fn = fn->next)
			if (fn->member.g == g)
				rt_hist_add(&s.wait, &fn->m.sched_wait);
		rt_metrics_group_write(b, &s, first);
		first = 0;
	}
	uint32_t slots = d->sched.cfg.off ? d->sched.busy : d->sched.cfg.slots;
	rt_metrics_slots_write(b, d->sched.busy, slots > d->sched.busy ? slots - d->sched.busy : 0);
}

void rt_sched_kick(struct rt_daemon *d)
{
	if (d->sched_timer_open)
		uv_timer_start(&d->sched_timer, timer_cb, 0, 0);
}
