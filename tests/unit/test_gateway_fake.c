/* test_gateway_fake.c — the fake backend of the gateway tests (no tests of
 * its own): behaviour by function name, see test_gateway_harness.h. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/test_gateway_harness.h"
#include "tests/unit/ut.h"

void gwt_echo_result(struct gw_call *call, const void *body, size_t len, const char *ct)
{
	struct gw_invoke_result res = {
		.status = 200, .body = body, .body_len = len, .content_type = ct,
		.start = GW_START_CLONE, .restore_us = 12, .duration_us = 34,
	};
	gw_invoke_done(call, &res);
}

struct thread_job {
	struct gw_call *call;
	char *body;
	size_t len;
};

static void *complete_thread(void *arg)
{
	struct thread_job *j = arg;
	gwt_echo_result(j->call, j->body, j->len, "application/octet-stream");
	free(j->body);
	free(j);
	return NULL;
}

static void fake_invoke(void *ctx, struct gw_call *call, const struct gw_invoke *req)
{
	struct fake *f = ctx;
	const char *n = req->function;

	pthread_mutex_lock(&f->lock);
	f->invokes++;
	snprintf(f->last_name, sizeof(f->last_name), "%s", n);
	snprintf(f->last_call_id, sizeof(f->last_call_id), "%s", req->call_id);
	snprintf(f->last_ct, sizeof(f->last_ct), "%s", req->content_type);
	f->last_body_len = req->body_len;
	pthread_mutex_unlock(&f->lock);

	struct gw_invoke_result res = {0};
	if (!strcmp(n, "echo")) {
		gwt_echo_result(call, req->body, req->body_len, req->content_type);
	} else if (!strcmp(n, "thread") || !strcmp(n, "hold")) {
		char *copy = malloc(req->body_len + 1);
		UT_ASSERT(copy);
		if (req->body_len)
			memcpy(copy, req->body, req->body_len);
		if (!strcmp(n, "hold")) {
			pthread_mutex_lock(&f->lock);
			UT_ASSERT(f->nheld < GWT_HELD_MAX);
			f->held[f->nheld] = call;
			f->held_body[f->nheld] = copy;
			f->held_len[f->nheld] = req->body_len;
			f->nheld++;
			pthread_cond_broadcast(&f->cond);
			pthread_mutex_unlock(&f->lock);
			return;
		}
		struct thread_job *j = malloc(sizeof(*j));
		UT_ASSERT(j);
		*j = (struct thread_job){call, copy, req->body_len};
		pthread_t th;
		UT_EQ(pthread_create(&th, NULL, complete_thread, j), 0);
		pthread_detach(th);
	} else if (!strcmp(n, "busy")) {
		res = (struct gw_invoke_result){.status = 429, .error_code = "too_many_requests",
						.error_message = "over max_instances", .retry_after_s = 7};
		gw_invoke_done(call, &res);
	} else if (!strcmp(n, "crash")) {
		res = (struct gw_invoke_result){.status = 502, .error_code = "unhandled",
						.error_message = "handler crashed", .unhandled = true,
						.start = GW_START_WARM, .restore_us = 1, .duration_us = 2};
		gw_invoke_done(call, &res);
	} else if (!strcmp(n, "slow")) {
		res = (struct gw_invoke_result){.status = 504, .error_code = "timeout",
						.error_message = "deadline passed"};
		gw_invoke_done(call, &res);
	} else if (!strcmp(n, "missing")) {
		res = (struct gw_invoke_result){.status = 404, .error_code = "not_found",
						.error_message = "no function missing"};
		gw_invoke_done(call, &res);
	} else if (!strncmp(n, "status-", 7)) {
		res = (struct gw_invoke_result){.status = atoi(n + 7), .body = "handler says", .body_len = 12,
						.content_type = "text/plain", .start = GW_START_RESET};
		gw_invoke_done(call, &res);
	} else {
		res = (struct gw_invoke_result){.status = 404, .error_code = "not_found", .error_message = "?"};
		gw_invoke_done(call, &res);
	}
}

struct deploy_job {
	struct gw_call *call;
	int status;
};

static void *deploy_thread(void *arg)
{
	struct deploy_job *j = arg;
	struct gw_deploy_result res = {.status = j->status};
	gw_deploy_done(j->call, &res);
	free(j);
	return NULL;
}

static void fake_deploy(void *ctx, struct gw_call *call, const struct gw_function_spec *s)
{
	struct fake *f = ctx;
	pthread_mutex_lock(&f->lock);
	f->deploys++;
	snprintf(f->last_name, sizeof(f->last_name), "%s", s->name);
	f->d_runtime = (int)s->runtime;
	snprintf(f->d_handler, sizeof(f->d_handler), "%s", s->handler);
	f->d_code_len = s->code_len;
	memcpy(f->d_code, s->code, s->code_len < sizeof(f->d_code) ? s->code_len : sizeof(f->d_code));
	f->d_memory_mb = s->memory_mb;
	f->d_timeout_ms = s->timeout_ms;
	f->d_env_n = (unsigned)s->n_env;
	if (s->n_env)
		snprintf(f->d_env0, sizeof(f->d_env0), "%s=%s", s->env[0].name, s->env[0].value);
	f->d_pool = s->pool;
	pthread_mutex_unlock(&f->lock);

	if (!strcmp(s->name, "bad-init")) {
		struct gw_deploy_result res = {.status = 422, .error_code = "init_failed",
					       .error_message = "init hook exited with 3"};
		gw_deploy_done(call, &res);
		return;
	}
	if (!strcmp(s->name, "exists")) {
		json_t *fn = json_pack("{s:s,s:s}", "name", "exists", "state", "ready");
		struct gw_deploy_result res = {.status = 200, .function = fn};
		gw_deploy_done(call, &res);
		json_decref(fn);
		return;
	}
	struct deploy_job *j = malloc(sizeof(*j));
	UT_ASSERT(j);
	*j = (struct deploy_job){call, 201};
	pthread_t th;
	UT_EQ(pthread_create(&th, NULL, deploy_thread, j), 0);
	pthread_detach(th);
}

static void bump(struct fake *f, int *counter)
{
	pthread_mutex_lock(&f->lock);
	(*counter)++;
	pthread_mutex_unlock(&f->lock);
}

static int missing(const char *name, struct gw_error *err)
{
	err->code = "not_found";
	snprintf(err->message, sizeof(err->message), "no function %s", name);
	return 404;
}

static int fake_list(void *ctx, json_t **out, struct gw_error *err)
{
	struct fake *f = ctx;
	bump(f, &f->lists);
	*out = json_pack("{s:[{s:s},{s:s}]}", "functions", "name", "a", "name", "b");
	return 200;
}

static int fake_get(void *ctx, const char *name, json_t **out, struct gw_error *err)
{
	struct fake *f = ctx;
	bump(f, &f->gets);
	if (!strcmp(name, "missing"))
		return missing(name, err);
	*out = json_pack("{s:s,s:s}", "name", name, "state", "ready");
	return 200;
}

static int fake_remove(void *ctx, const char *name, struct gw_error *err)
{
	struct fake *f = ctx;
	bump(f, &f->removes);
	return strcmp(name, "missing") ? 204 : missing(name, err);
}

static int fake_set_pool(void *ctx, const char *name, const struct gw_pool_update *u, json_t **out,
			 struct gw_error *err)
{
	struct fake *f = ctx;
	bump(f, &f->pools);
	if (!strcmp(name, "missing"))
		return missing(name, err);
	pthread_mutex_lock(&f->lock);
	f->last_upd = *u;
	pthread_mutex_unlock(&f->lock);
	*out = json_pack("{s:i}", "max_instances", u->has_max_instances ? (int)u->pool.max_instances : -1);
	return 200;
}

static int fake_logs(void *ctx, const char *name, unsigned tail, char **text, size_t *len,
		     struct gw_error *err)
{
	struct fake *f = ctx;
	bump(f, &f->logs);
	if (!strcmp(name, "missing"))
		return missing(name, err);
	f->last_tail = tail;
	*text = strdup("{\"line\":\"one\"}\n{\"line\":\"two\"}\n");
	*len = strlen(*text);
	return 200;
}

static int fake_info(void *ctx, json_t **out, struct gw_error *err)
{
	struct fake *f = ctx;
	bump(f, &f->infos);
	*out = json_pack("{s:s,s:s}", "version", "test", "kvm_mode", "fake");
	return 200;
}

static int fake_ready(void *ctx, struct gw_error *err)
{
	struct fake *f = ctx;
	bump(f, &f->readies);
	pthread_mutex_lock(&f->lock);
	bool not_ready = f->not_ready;
	pthread_mutex_unlock(&f->lock);
	if (not_ready) {
		snprintf(err->message, sizeof(err->message), "no runtime template yet");
		return 503;
	}
	return 200;
}

static void fake_metrics(void *ctx, struct gw_buf *out)
{
	gw_buf_puts(out, "# TYPE uf_fake_metric gauge\nuf_fake_metric 42\n");
}

const struct gw_ops gwt_ops = {
	.invoke = fake_invoke, .deploy = fake_deploy, .list = fake_list, .get = fake_get,
	.remove = fake_remove, .set_pool = fake_set_pool, .logs = fake_logs, .info = fake_info,
	.ready = fake_ready, .metrics = fake_metrics,
};

