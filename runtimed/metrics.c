/* metrics.c — per-function counters and histograms, Prometheus text
 * (contract in metrics.h). */
#include "runtimed/metrics.h"
#include "gateway/metrics.h"

#include <stdlib.h>
#include <string.h>

static const double bounds[RT_HIST_BUCKETS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
	0.25, 0.5, 1, 2.5, 5, 10, 30, 120,
};
static const char *const throttle_names[RT_THROTTLE_N] = {"max_instances", "memory", "not_ready",
							  "queue_full", "queue_timeout",
							  "instances"};
static const char *const start_names[RT_START_N] = {"clone", "warm", "reset"};

void rt_hist_observe(struct rt_hist *h, double s)
{
	h->count++;
	h->sum += s;
	for (int i = 0; i < RT_HIST_BUCKETS; i++)
		if (s <= bounds[i]) {
			h->le[i]++;
			break;
		}
}

void rt_metrics_invocation(struct rt_fmetrics *m, uint32_t code, int start, uint64_t duration_us,
			   uint64_t restore_us, uint64_t queue_us)
{
	uint32_t i;
	for (i = 0; i < m->ncodes && m->codes[i].code != code; i++)
		;
	if (i == m->ncodes && m->ncodes < RT_CODES_MAX)
		m->codes[m->ncodes++].code = code;
	if (i < m->ncodes)
		m->codes[i].n++;
	if (start < 0)
		return; /* no instance ran it: no timings */
	if (start < RT_START_N)
		m->starts[start]++;
	rt_hist_observe(&m->duration, (double)duration_us / 1e6);
	rt_hist_observe(&m->queue, (double)queue_us / 1e6);
	if (start == RT_START_CLONE)
		rt_hist_observe(&m->restore, (double)restore_us / 1e6);
	m->recent_us[m->recent_head] = duration_us;
	m->recent_head = (m->recent_head + 1) % RT_RECENT;
	if (m->recent_n < RT_RECENT)
		m->recent_n++;
}

uint64_t rt_metrics_total(const struct rt_fmetrics *m)
{
	uint64_t n = 0;
	for (uint32_t i = 0; i < m->ncodes; i++)
		n += m->codes[i].n;
	return n;
}

static void hist(struct gw_buf *b, const char *name, const char *fn, const struct rt_hist *h)
{
	gw_prom_hist(b, name, "function", fn, bounds, h->le, RT_HIST_BUCKETS, h->count, h->sum);
}

static void head(struct gw_buf *b, int first, const char *name, const char *type, const char *help)
{
	if (first)
		gw_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Function names are [a-z0-9_-]: nothing to escape in label values. */
void rt_metrics_write(struct gw_buf *b, const char *fn, const struct rt_fmetrics *m,
		      const struct rt_pool_gauges *g, int first)
{
	head(b, first, "uf_invocations_total", "counter", "Invocations answered, by HTTP status.");
	for (uint32_t i = 0; i < m->ncodes; i++)
		gw_buf_printf(b, "uf_invocations_total{function=\"%s\",code=\"%u\"} %llu\n", fn,
			      m->codes[i].code, (unsigned long long)m->codes[i].n);
	head(b, first, "uf_invocation_duration_seconds", "histogram",
	     "Invoke sent to the agent until its Result.");
	hist(b, "uf_invocation_duration_seconds", fn, &m->duration);
	head(b, first, "uf_restore_duration_seconds", "histogram",
	     "Clone restored, connected and fixed up (cold starts).");
	hist(b, "uf_restore_duration_seconds", fn, &m->restore);
	head(b, first, "uf_queue_wait_seconds", "histogram", "Call admitted until a clone was in hand.");
	hist(b, "uf_queue_wait_seconds", fn, &m->queue);
	head(b, first, "uf_starts_total", "counter", "Instances that served calls, by start type.");
	for (int i = 0; i < RT_START_N; i++)
		gw_buf_printf(b, "uf_starts_total{function=\"%s\",type=\"%s\"} %llu\n", fn,
			      start_names[i], (unsigned long long)m->starts[i]);
	head(b, first, "uf_throttled_total", "counter", "Calls refused before reaching an instance.");
	for (int i = 0; i < RT_THROTTLE_N; i++)
		gw_buf_printf(b, "uf_throttled_total{function=\"%s\",reason=\"%s\"} %llu\n", fn,
			      throttle_names[i], (unsigned long long)m->throttled[i]);
	head(b, first, "uf_worker_restarts_total", "counter", "Worker processes restarted after dying.");
	gw_buf_printf(b, "uf_worker_restarts_total{function=\"%s\"} %llu\n", fn,
		      (unsigned long long)m->worker_restarts);
	head(b, first, "uf_pool_instances", "gauge", "Instances of the function's worker.");
	gw_buf_printf(b, "uf_pool_instances{function=\"%s\",state=\"live\"} %u\n", fn, g->live);
	gw_buf_printf(b, "uf_pool_instances{function=\"%s\",state=\"warm\"} %u\n", fn, g->warm);
	gw_buf_printf(b, "uf_pool_instances{function=\"%s\",state=\"busy\"} %u\n", fn, g->busy);
	head(b, first, "uf_inflight", "gauge", "Calls admitted and not answered yet.");
	gw_buf_printf(b, "uf_inflight{function=\"%s\"} %u\n", fn, g->inflight);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* p50 and p99 of the first n values of a ring (microseconds). */
static void pctl(const uint64_t *ring, uint32_t n, uint64_t *p50, uint64_t *p99)
{
	uint64_t v[RT_RECENT];
	*p50 = *p99 = 0;
	if (!n)
		return;
	memcpy(v, ring, sizeof(v[0]) * n);
	qsort(v, n, sizeof(v[0]), cmp_u64);
	*p50 = v[(n - 1) / 2];
	*p99 = v[(n * 99 + 99) / 100 - 1];
}

json_t *rt_metrics_latency_json(const struct rt_fmetrics *m)
{
	uint32_t n = m->recent_n;
	uint64_t u50, u99;
	pctl(m->recent_us, n, &u50, &u99);
	double p50 = (double)u50 / 1000.0, p99 = (double)u99 / 1000.0;
	return json_pack("{s:I, s:I, s:f, s:f}", "invocations", (json_int_t)rt_metrics_total(m),
			 "sampled", (json_int_t)n, "p50_ms", p50, "p99_ms", p99);
}

const char *rt_throttle_name(enum rt_throttle t)
{
	return (unsigned)t < RT_THROTTLE_N ? throttle_names[t] : "unknown";
}

void rt_metrics_sched_wait(struct rt_fmetrics *m, uint64_t wait_us)
{
	rt_hist_observe(&m->sched_wait, (double)wait_us / 1e6);
	m->wait_us[m->wait_head] = wait_us;
	m->wait_head = (m->wait_head + 1) % RT_RECENT;
	if (m->wait_n < RT_RECENT)
		m->wait_n++;
}

json_t *rt_metrics_wait_json(const struct rt_fmetrics *m)
{
	uint64_t p50, p99;
	pctl(m->wait_us, m->wait_n, &p50, &p99);
	return json_pack("{s:I, s:I, s:I}", "p50", (json_int_t)p50, "p99", (json_int_t)p99, "count",
			 (json_int_t)m->sched_wait.count);
}

json_t *rt_metrics_throttled_json(const struct rt_fmetrics *m)
{
	json_t *j = json_object();
	for (int i = 0; j && i < RT_THROTTLE_N; i++)
		if (json_object_set_new(j, throttle_names[i], json_integer((json_int_t)m->throttled[i]))) {
			json_decref(j);
			return NULL;
		}
	return j;
}

void rt_hist_add(struct rt_hist *a, const struct rt_hist *b)
{
	a->count += b->count;
	a->sum += b->sum;
	for (int i = 0; i < RT_HIST_BUCKETS; i++)
		a->le[i] += b->le[i];
}

/* Group names are function or tenant names: nothing to escape. */
void rt_metrics_group_write(struct gw_buf *b, const struct rt_group_sample *g, int first)
{
	const char *n = g->group;
	head(b, first, "unifork_sched_queue_depth", "gauge", "Calls queued (paused ones included).");
	gw_buf_printf(b, "unifork_sched_queue_depth{group=\"%s\"} %u\n", n, g->queued);
	head(b, first, "unifork_sched_running", "gauge", "Calls holding run slots.");
	gw_buf_printf(b, "unifork_sched_running{group=\"%s\"} %u\n", n, g->running);
	head(b, first, "unifork_sched_queue_wait_seconds", "histogram",
	     "Queued until dispatched to a run slot (each dispatch).");
	gw_prom_hist(b, "unifork_sched_queue_wait_seconds", "group", n, bounds, g->wait.le,
		     RT_HIST_BUCKETS, g->wait.count, g->wait.sum);
	head(b, first, "unifork_sched_run_seconds_total", "counter", "Run-slot time used.");
	gw_buf_printf(b, "unifork_sched_run_seconds_total{group=\"%s\"} %.9g\n", n,
		      (double)g->run_ns / 1e9);
	head(b, first, "unifork_sched_preemptions_total", "counter", "Calls preempted and requeued.");
	gw_buf_printf(b, "unifork_sched_preemptions_total{group=\"%s\"} %llu\n", n,
		      (unsigned long long)g->preemptions);
}

void rt_metrics_slots_write(struct gw_buf *b, uint32_t busy, uint32_t free_slots)
{
	gw_buf_printf(b, "# HELP unifork_sched_slots Run slots (--cpus).\n"
			 "# TYPE unifork_sched_slots gauge\n"
			 "unifork_sched_slots{state=\"busy\"} %u\nunifork_sched_slots{state=\"free\"} %u\n",
		      busy, free_slots);
}
