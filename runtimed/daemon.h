/* daemon.h — runtimed's state and the pieces that share it: the daemon
 * (daemon.c: function table, start-up from the registry, periodic timers,
 * graceful stop), each function's workers and calls (function.c), deploys,
 * rebuilds and deletes (deploy.c) and the gateway's ops (backend.c).
 *
 * Everything here lives on the libuv loop thread; nothing is locked.
 *
 * A function (struct rt_fn) has at most one current worker process (cur)
 * serving its template, plus older workers draining after a redeploy.
 * Every admitted invocation is a struct rt_call on the function's list
 * until it is answered exactly once (gw_invoke_done): by the worker's
 * Result, by 502 when the worker it was sent to dies, by 503 when it waited
 * too long in its queue, or by 504 when its deadline passed while it was
 * preempted or the worker never answered.
 *
 * Scheduling (dispatch.c over sched.h): an admitted call is queued in its
 * function's group and sent (Invoke) when the scheduler gives it a run
 * slot; a call preempted by the scheduler stays on its worker, paused, and
 * is resumed (Resume) when it gets a slot again.
 */
#ifndef RT_DAEMON_H
#define RT_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "gateway/backend.h"
#include "gateway/server.h"
#include "runtimed/config.h"
#include "runtimed/logs.h"
#include "runtimed/metrics.h"
#include "runtimed/registry.h"
#include "runtimed/sched.h"
#include "runtimed/spec.h"
#include "runtimed/wproc.h"

/* Past its deadline, a call sent to a worker is answered 504 after this
 * (the worker answers timeouts itself; this catches a stuck worker). */
#define RT_CALL_SLACK_MS      60000u
/* Worker restart backoff after a crash: doubles from 250 ms up to 30 s;
 * a worker that served RT_RESTART_RESET_MS resets it. */
#define RT_RESTART_MIN_MS     250u
#define RT_RESTART_MAX_MS     30000u
#define RT_RESTART_RESET_MS   30000u
#define RT_RETRY_AFTER_S      1u
/* The largest package: it travels in one agent Init frame (proto/frame.h's
 * 8 MiB, less room for the other fields). */
#define RT_CODE_MAX           (7u << 20)

enum rt_fn_state {
	RT_FN_NEW,          /* first deploy building: invisible (invoke: 404) */
	RT_FN_BUILDING,     /* template being (re)built, no worker yet */
	RT_FN_STARTING,     /* a worker is starting (calls queue) */
	RT_FN_READY,        /* the current worker is serving */
	RT_FN_FAILED,       /* no worker could be started; see last_error */
};

struct rt_fn;
struct rt_daemon;
struct rt_deploy;

struct rt_worker {
	struct rt_worker *next;         /* in fn->workers */
	struct rt_fn *fn;
	struct rt_wproc *proc;          /* NULL once exited */
	bool ready, draining, pool_sent;
	uint64_t started_ns;
	struct rt_pool_gauges gauges;   /* from its last Stats */
	uint64_t template_bytes, mem_bytes;
};

struct rt_call {
	struct rt_call *next, *prev;    /* in fn->calls */
	struct rt_fn *fn;
	struct gw_call *gw;
	char call_id[GW_CALL_ID_LEN + 1];
	const uint8_t *body;            /* gateway memory, valid until done */
	size_t len;
	const char *content_type;
	uint64_t t_admit_ns;
	struct sched_item si;           /* in the scheduler from admission to answer */
	uint64_t preempt_ns;            /* when the pending Preempt was sent */
	struct rt_worker *sent_to;      /* NULL until first dispatched */
	uint32_t mem_mb;                /* counted in d->mem_inflight_mb */
};

struct rt_fn {
	struct rt_fn *next;             /* in d->fns */
	struct rt_daemon *d;
	struct rt_spec spec;
	enum rt_fn_state state;
	struct rt_worker *cur;          /* current worker, or NULL */
	struct rt_worker *workers;      /* all live workers (cur included) */
	struct rt_call calls;           /* list head (sentinel) */
	uint32_t inflight;
	struct sched_member member;     /* its scheduling group (rt_fn_sched_sync) */
	struct rt_fmetrics m;
	struct rt_logs logs;
	struct rt_deploy *deploy;       /* deploy or rebuild in progress */
	bool deleted;                   /* removed: no new calls, freed when idle */
	bool rebuilt;                   /* a stale template was rebuilt once already */
	uv_timer_t restart_timer;
	bool timer_open;
	unsigned restart_ms;            /* next backoff */
	char last_error[256];
};

struct rt_daemon {
	uv_loop_t *loop;
	struct rt_config cfg;
	struct rt_registry reg;
	struct gw_server *gw;
	struct rt_fn *fns;
	unsigned builds_running;
	struct rt_deploy *build_queue;  /* waiting for a free build slot */
	uint64_t mem_inflight_mb;
	struct sched sched;
	uv_timer_t sched_timer;         /* next preemption / expiry, or a kick */
	bool sched_timer_open;
	bool loaded;                    /* start-up load finished */
	bool stopping;
	uv_timer_t tick;                /* stats requests, call sweeps */
	uv_signal_t sigterm, sigint;
	uint64_t deploys_ok, deploys_failed;
	int exit_status;
};

/* daemon.c */
/* Load the registry, start every function's worker (rebuilding stale
 * templates), start the HTTP gateway and the signal handlers; d->cfg must
 * be prepared (config.h).  0, or -errno (vmm_strerror()).  Either way, run
 * the loop to its end afterwards: it ends after a SIGTERM/SIGINT has
 * drained everything (or at once after a failed start). */
int rt_daemon_start(struct rt_daemon *d, uv_loop_t *loop) __attribute__((warn_unused_result));
/* The function of that name that is not deleted (it may still be RT_FN_NEW). */
struct rt_fn *rt_fn_find(struct rt_daemon *d, const char *name);
struct rt_fn *rt_fn_new(struct rt_daemon *d, struct rt_spec *spec); /* takes *spec */
/* Unlink and free a function that has no workers and no calls left. */
void rt_fn_maybe_free(struct rt_fn *fn);
/* An exited worker's wproc is gone: true while any function still has one. */
bool rt_daemon_busy(const struct rt_daemon *d);
void rt_daemon_check_stopped(struct rt_daemon *d);

/* function.c */
/* Admit and dispatch one invocation (the gateway's invoke op). */
void rt_fn_invoke(struct rt_fn *fn, struct gw_call *call, const struct gw_invoke *req);
/* Start a worker on the function's template (replacing cur; the previous
 * one drains).  0 or -errno. */
int rt_fn_start_worker(struct rt_fn *fn) __attribute__((warn_unused_result));
/* A rebuild of fn's template died before it could say how it went (the
 * builder was killed): start a worker again after the restart backoff; it
 * refuses the old template and the rebuild is tried again. */
void rt_fn_retry_later(struct rt_fn *fn);
/* Send Drain to every worker of fn. */
void rt_fn_drain_all(struct rt_fn *fn);
/* Send the spec's pool knobs to the current worker. */
void rt_fn_push_pool(struct rt_fn *fn);
/* Answer every call not sent to a worker yet. */
void rt_fn_fail_queued(struct rt_fn *fn, int status, const char *code, const char *msg);
/* Periodic: stats requests, queued calls that waited too long, stuck calls. */
void rt_fn_tick(struct rt_fn *fn, uint64_t now_ns);
/* Called by deploy.c when the current worker became ready (deploy waits). */
void rt_deploy_worker_ready(struct rt_fn *fn, bool ok, const char *why);
json_t *rt_fn_json(const struct rt_fn *fn);
const char *rt_fn_state_name(enum rt_fn_state s);

/* The worker new calls go to, or NULL (none ready). */
struct rt_worker *rt_fn_serving(struct rt_fn *fn);
/* Send a call's Invoke to w (it is then sent_to w).  0 or -errno. */
int rt_fn_send_call(struct rt_call *c, struct rt_worker *w) __attribute__((warn_unused_result));
/* Answer a call with an error (counted as throttled by `reason` unless
 * RT_THROTTLE_N) and free it. */
void rt_fn_fail_call(struct rt_call *c, int status, const char *code, const char *msg,
		     enum rt_throttle reason);

/* dispatch.c */
void rt_sched_setup(struct rt_daemon *d);
void rt_sched_close(struct rt_daemon *d);
/* Expire, dispatch and preempt what is due, and set the timer for what is
 * next.  Not from inside a scheduler walk: use rt_sched_kick there. */
void rt_sched_run(struct rt_daemon *d);
/* Run the scheduler from the loop soon (safe anywhere). */
void rt_sched_kick(struct rt_daemon *d);
/* Join (or move to) the group and weight of fn's spec.  0 or -errno. */
int rt_fn_sched_sync(struct rt_fn *fn) __attribute__((warn_unused_result));
void rt_fn_sched_leave(struct rt_fn *fn);
void rt_sched_preempted(struct rt_fn *fn, struct rt_worker *w, const Ufworker__Preempted *p);
/* GET /v1/functions/NAME's "sched" object. */
json_t *rt_fn_sched_json(const struct rt_fn *fn);
/* The per-group series and the slots (metrics.h). */
void rt_sched_metrics(struct rt_daemon *d, struct gw_buf *b);

/* deploy.c */
void rt_deploy_start(struct rt_daemon *d, struct gw_call *call, const struct gw_function_spec *g);
/* Rebuild fn's template from its stored code (stale at start). */
int rt_rebuild_start(struct rt_fn *fn) __attribute__((warn_unused_result));
/* DELETE: 204, 404, 409 (a deploy is in progress). */
int rt_fn_delete(struct rt_daemon *d, const char *name, struct gw_error *err);
/* Stop: kill builds in progress (their deploys are answered 503). */
void rt_deploy_abort_all(struct rt_daemon *d);

/* backend.c */
extern const struct gw_ops rt_backend_ops;

#endif
