/* metrics.h — what runtimed counts per function, and its Prometheus text
 * form for GET /metrics (the gateway's metrics hook appends it):
 *
 *   uf_invocations_total{function,code}          counter
 *   uf_invocation_duration_seconds{function}     histogram (handler round trip)
 *   uf_restore_duration_seconds{function}        histogram (clone made + fixed up)
 *   uf_queue_wait_seconds{function}              histogram (admitted -> clone in hand)
 *   uf_starts_total{function,type}               counter (clone, warm, reset)
 *   uf_throttled_total{function,reason}          counter (max_instances, memory, not_ready,
 *                                                queue_full, queue_timeout, instances)
 *   uf_worker_restarts_total{function}           counter
 *   uf_pool_instances{function,state}            gauge (live, warm, busy; from the worker)
 *   uf_inflight{function}                        gauge (admitted calls not answered yet)
 *
 * and per scheduling group (runtimed/sched.h), from rt_metrics_group_write:
 *
 *   unifork_sched_queue_depth{group}             gauge (queued calls, paused included)
 *   unifork_sched_running{group}                 gauge (calls holding run slots)
 *   unifork_sched_queue_wait_seconds{group}      histogram (queued until dispatched, each time)
 *   unifork_sched_run_seconds_total{group}       counter (run-slot time used)
 *   unifork_sched_preemptions_total{group}       counter
 *   unifork_sched_slots{state="busy|free"}       gauge (rt_metrics_slots_write)
 *
 * Plus rings of recent durations and scheduler queue waits for the
 * summaries in GET /v1/functions/NAME.  Loop thread only.
 */
#ifndef RT_METRICS_H
#define RT_METRICS_H

#include <jansson.h>
#include <stdint.h>

#include "gateway/buf.h"

#define RT_HIST_BUCKETS 16
#define RT_CODES_MAX    24
#define RT_RECENT       256

enum rt_throttle { RT_THROTTLE_MAX_INSTANCES, RT_THROTTLE_MEMORY, RT_THROTTLE_NOT_READY,
		   RT_THROTTLE_QUEUE_FULL, RT_THROTTLE_QUEUE_TIMEOUT, RT_THROTTLE_INSTANCES,
		   RT_THROTTLE_N };
enum rt_start { RT_START_CLONE, RT_START_WARM, RT_START_RESET, RT_START_N };

struct rt_hist {
	uint64_t count;
	double sum;                     /* seconds */
	uint64_t le[RT_HIST_BUCKETS];   /* non-cumulative; +Inf is count */
};

struct rt_fmetrics {
	struct { uint32_t code; uint64_t n; } codes[RT_CODES_MAX];
	uint32_t ncodes;
	struct rt_hist duration, restore, queue;
	uint64_t starts[RT_START_N];
	uint64_t throttled[RT_THROTTLE_N];
	uint64_t worker_restarts;
	uint64_t recent_us[RT_RECENT];  /* ring of durations, for p50/p99 */
	uint32_t recent_n, recent_head;
	/* Scheduler: queue waits (each dispatch), slot time, preemptions. */
	struct rt_hist sched_wait;
	uint64_t wait_us[RT_RECENT];
	uint32_t wait_n, wait_head;
	uint64_t run_ns, preemptions;
	uint64_t preempt_rtt_ns;        /* Preempt sent -> Preempted (paused), summed */
};

struct rt_pool_gauges {
	uint32_t live, warm, busy, inflight;
};

void rt_metrics_invocation(struct rt_fmetrics *m, uint32_t code, int start /* rt_start or -1 */,
			   uint64_t duration_us, uint64_t restore_us, uint64_t queue_us);
void rt_hist_observe(struct rt_hist *h, double seconds);

/* Append one function's series (HELP/TYPE lines when `first`). */
void rt_metrics_write(struct gw_buf *b, const char *function, const struct rt_fmetrics *m,
		      const struct rt_pool_gauges *g, int first);
/* {"invocations": N, "p50_ms": x, "p99_ms": y, "count": n} over the ring. */
json_t *rt_metrics_latency_json(const struct rt_fmetrics *m);
uint64_t rt_metrics_total(const struct rt_fmetrics *m);
const char *rt_throttle_name(enum rt_throttle t);

/* One scheduler dispatch of the function's call after wait_us in a queue. */
void rt_metrics_sched_wait(struct rt_fmetrics *m, uint64_t wait_us);
/* {"p50": us, "p99": us, "count": n} over the queue-wait ring (count: all). */
json_t *rt_metrics_wait_json(const struct rt_fmetrics *m);
/* {"max_instances": n, "queue_full", "queue_timeout", "memory", "instances",
 *  "not_ready"}. */
json_t *rt_metrics_throttled_json(const struct rt_fmetrics *m);

struct rt_group_sample {
	const char *group;
	uint32_t queued, running;
	uint64_t run_ns, preemptions;
	struct rt_hist wait;            /* summed over its functions */
};
/* Append one group's series (HELP/TYPE lines when `first`). */
void rt_metrics_group_write(struct gw_buf *b, const struct rt_group_sample *g, int first);
void rt_metrics_slots_write(struct gw_buf *b, uint32_t busy, uint32_t free_slots);
/* a += b, bucket by bucket. */
void rt_hist_add(struct rt_hist *a, const struct rt_hist *b);

#endif
