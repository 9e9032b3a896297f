/* backend.c — runtimed's side of gateway/backend.h: the ops table the
 * gateway calls on the loop thread, mapped onto functions (function.c),
 * deploys (deploy.c), the registry, logs and metrics. */
#include "runtimed/daemon.h"
#include "tools/sandbox/probe.h"
#include "vmm/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RT_VERSION "0.1.0"

/* A function the API shows: not deleted, not a first deploy in progress. */
static struct rt_fn *visible(struct rt_daemon *d, const char *name)
{
	struct rt_fn *fn = rt_fn_find(d, name);
	return fn && fn->state != RT_FN_NEW ? fn : NULL;
}

static int not_found(struct gw_error *err, const char *name)
{
	err->code = "not_found";
	snprintf(err->message, sizeof(err->message), "no function named %s", name);
	return 404;
}

static void op_invoke(void *ctx, struct gw_call *call, const struct gw_invoke *req)
{
	struct rt_daemon *d = ctx;
	struct rt_fn *fn = visible(d, req->function);
	if (!fn) {
		char msg[GW_NAME_MAX + 32];
		snprintf(msg, sizeof(msg), "no function named %s", req->function);
		struct gw_invoke_result res = {.status = 404, .error_code = "not_found",
					       .error_message = msg};
		gw_invoke_done(call, &res);
		return;
	}
	rt_fn_invoke(fn, call, req);
}

static void op_deploy(void *ctx, struct gw_call *call, const struct gw_function_spec *spec)
{
	rt_deploy_start(ctx, call, spec);
}

static int op_list(void *ctx, json_t **out, struct gw_error *err)
{
	struct rt_daemon *d = ctx;
	json_t *arr = json_array();
	for (struct rt_fn *fn = d->fns; arr && fn; fn = fn->next) {
		if (fn->deleted || fn->state == RT_FN_NEW)
			continue;
		json_t *j = rt_fn_json(fn);
		if (!j || json_array_append_new(arr, j)) {
			json_decref(arr);
			arr = NULL;
		}
	}
	*out = arr ? json_pack("{s:o}", "functions", arr) : NULL;
	if (!*out) {
		err->code = "internal";
		snprintf(err->message, sizeof(err->message), "out of memory");
		return 500;
	}
	return 200;
}

static int op_get(void *ctx, const char *name, json_t **out, struct gw_error *err)
{
	struct rt_fn *fn = visible(ctx, name);
	if (!fn)
		return not_found(err, name);
	*out = rt_fn_json(fn);
	if (!*out) {
		snprintf(err->message, sizeof(err->message), "out of memory");
		return 500;
	}
	return 200;
}

static int op_remove(void *ctx, const char *name, struct gw_error *err)
{
	return rt_fn_delete(ctx, name, err);
}

static int op_set_pool(void *ctx, const char *name, const struct gw_pool_update *u, json_t **out,
		       struct gw_error *err)
{
	struct rt_daemon *d = ctx;
	struct rt_fn *fn = visible(d, name);
	if (!fn)
		return not_found(err, name);
	struct rt_pool p = fn->spec.pool;
	if (u->has_min_warm)
		p.min_warm = u->pool.min_warm;
	if (u->has_max_instances)
		p.max_instances = u->pool.max_instances;
	if (u->has_idle_timeout_s)
		p.idle_timeout_s = u->pool.idle_timeout_s;
	if (p.min_warm > p.max_instances || p.max_instances < 1) {
		err->code = "bad_request";
		snprintf(err->message, sizeof(err->message),
			 "min_warm (%u) must not exceed max_instances (%u)", p.min_warm, p.max_instances);
		return 400;
	}
	struct rt_pool old = fn->spec.pool;
	uint32_t old_weight = fn->spec.weight;
	fn->spec.pool = p;
	if (u->has_weight)
		fn->spec.weight = u->weight;
	if (rt_reg_save_spec(&d->reg, &fn->spec)) {
		fn->spec.pool = old;
		fn->spec.weight = old_weight;
		err->code = "internal";
		snprintf(err->message, sizeof(err->message), "%s", vmm_strerror());
		return 500;
	}
	rt_fn_push_pool(fn);
	if (fn->member.g)
		sched_set_weight(&fn->member, fn->spec.weight);
	*out = rt_pool_to_json(&p);
	if (*out && json_object_set_new(*out, "weight", json_integer((json_int_t)fn->spec.weight))) {
		json_decref(*out);
		*out = NULL;
	}
	if (!*out) {
		err->code = "internal";
		snprintf(err->message, sizeof(err->message), "out of memory");
		return 500;
	}
	return 200;
}

static int op_logs(void *ctx, const char *name, unsigned tail, char **ndjson, size_t *len,
		   struct gw_error *err)
{
	struct rt_fn *fn = visible(ctx, name);
	if (!fn)
		return not_found(err, name);
	if (rt_logs_ndjson(&fn->logs, tail, ndjson, len)) {
		snprintf(err->message, sizeof(err->message), "out of memory");
		return 500;
	}
	return 200;
}

static int op_info(void *ctx, json_t **out, struct gw_error *err)
{
	struct rt_daemon *d = ctx;
	static char probe[200];
	if (!probe[0]) {
		struct kvm_probe_result pr;
		kvm_probe_run("/dev/kvm", "/sys/module", &pr);
		kvm_probe_format(&pr, probe, sizeof(probe));
	}
	const char *mode = getenv("UNIFORK_KVM_MODE");
	if (!mode || !*mode)
		mode = strcmp(probe, "hardware") == 0 ? "hardware" : "unusable";
	unsigned n = 0;
	for (struct rt_fn *fn = d->fns; fn; fn = fn->next)
		n += !fn->deleted && fn->state != RT_FN_NEW;
	*out = json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:I, s:{s:s, s:s, s:s}}", "version",
			 RT_VERSION, "kvm_mode", mode, "kvm_probe", probe, "functions", (json_int_t)n,
			 "data", d->cfg.data, "cpus", (json_int_t)d->cfg.cpus, "memory_mb",
			 (json_int_t)d->cfg.memory_mb, "guest", "kernel", d->cfg.kernel, "initrd",
			 d->cfg.initrd, "initrd_python", d->cfg.initrd_python);
	if (!*out) {
		snprintf(err->message, sizeof(err->message), "out of memory");
		return 500;
	}
	return 200;
}

/* Ready once the registry is loaded and no function is still waiting for
 * its first worker (functions that failed do not hold readiness back). */
static int op_ready(void *ctx, struct gw_error *err)
{
	struct rt_daemon *d = ctx;
	if (!d->loaded || d->stopping) {
		snprintf(err->message, sizeof(err->message), "runtimed is %s",
			 d->stopping ? "stopping" : "loading its functions");
		return 503;
	}
	for (struct rt_fn *fn = d->fns; fn; fn = fn->next)
		if (!fn->deleted && (fn->state == RT_FN_BUILDING || fn->state == RT_FN_STARTING)) {
			snprintf(err->message, sizeof(err->message), "function %s is %s", fn->spec.name,
				 rt_fn_state_name(fn->state));
			return 503;
		}
	return 200;
}

static void op_metrics(void *ctx, struct gw_buf *b)
{
	struct rt_daemon *d = ctx;
	unsigned n = 0;
	int first = 1;
	for (struct rt_fn *fn = d->fns; fn; fn = fn->next) {
		if (fn->deleted || fn->state == RT_FN_NEW)
			continue;
		n++;
		struct rt_pool_gauges g = fn->cur ? fn->cur->gauges : (struct rt_pool_gauges){0};
		g.inflight = fn->inflight;
		rt_metrics_write(b, fn->spec.name, &fn->m, &g, first);
		first = 0;
	}
	gw_buf_printf(b, "# HELP uf_functions Functions deployed.\n# TYPE uf_functions gauge\n"
			 "uf_functions %u\n", n);
	gw_buf_printf(b, "# HELP uf_deploys_total Deploys answered, by result.\n"
			 "# TYPE uf_deploys_total counter\n"
			 "uf_deploys_total{result=\"ok\"} %llu\nuf_deploys_total{result=\"failed\"} %llu\n",
		      (unsigned long long)d->deploys_ok, (unsigned long long)d->deploys_failed);
	rt_sched_metrics(d, b);
	gw_buf_printf(b, "# HELP uf_memory_inflight_mb Guest memory of calls in flight.\n"
			 "# TYPE uf_memory_inflight_mb gauge\nuf_memory_inflight_mb %llu\n",
		      (unsigned long long)d->mem_inflight_mb);
}

const struct gw_ops rt_backend_ops = {
	.invoke = op_invoke,
	.deploy = op_deploy,
	.list = op_list,
	.get = op_get,
	.remove = op_remove,
	.set_pool = op_set_pool,
	.logs = op_logs,
	.info = op_info,
	.ready = op_ready,
	.metrics = op_metrics,
};
