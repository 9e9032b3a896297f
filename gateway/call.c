/* call.c — backend calls: completion results to responses, and the queue
 * from any thread back to the loop. */
#include "gateway/call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/session.h"

struct gw_call *gw_call_new(struct gw_core *core, enum gw_call_kind kind)
{
	struct gw_call *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->core = core;
	c->kind = kind;
	gw_buf_init(&c->body);
	gw_response_init(&c->resp);
	return c;
}

void gw_call_started(struct gw_call *call)
{
	call->core->calls_pending++;
}

static void call_free(struct gw_call *c)
{
	gw_buf_free(&c->body);
	gw_spec_free(&c->spec);
	gw_response_free(&c->resp);
	free(c);
}

static void push(struct gw_call *c)
{
	struct gw_core *core = c->core;
	c->next = NULL;
	pthread_mutex_lock(&core->lock);
	if (core->done_tail)
		core->done_tail->next = c;
	else
		core->done_head = c;
	core->done_tail = c;
	/* Wake under the lock: the loop cannot drain this call, see the
	 * server finish and free the async handle before the wake is over. */
	if (core->wake)
		core->wake(core->wake_arg);
	pthread_mutex_unlock(&core->lock);
}

static const char *start_name(enum gw_start_type t)
{
	switch (t) {
	case GW_START_CLONE: return "clone";
	case GW_START_WARM: return "warm";
	case GW_START_RESET: return "reset";
	case GW_START_NONE: break;
	}
	return NULL;
}

void gw_invoke_done(struct gw_call *call, const struct gw_invoke_result *res)
{
	struct gw_response *r = &call->resp;
	const char *start = start_name(res->start);
	bool unhandled = res->unhandled;

	if (res->error_code) {
		int st = res->status >= 400 && res->status <= 599 ? res->status : 502;
		gw_response_error(r, st, res->error_code, "%s",
				  res->error_message ? res->error_message : gw_status_reason(st));
	} else if (res->status < 200 || res->status > 599) {
		gw_response_error(r, 502, "unhandled", "the handler answered with invalid status %d",
				  res->status);
		unhandled = true;
	} else {
		gw_response_body(r, res->status, res->content_type, res->body, res->body_len);
	}
	gw_response_header(r, "X-Call-Id", "%s", call->call_id);
	if (start) {
		gw_response_header(r, "X-Start-Type", "%s", start);
		gw_response_header(r, "X-Restore-Us", "%llu", (unsigned long long)res->restore_us);
		gw_response_header(r, "X-Duration-Us", "%llu", (unsigned long long)res->duration_us);
	}
	if (r->status == 429 && res->retry_after_s)
		gw_response_header(r, "Retry-After", "%u", res->retry_after_s);
	if (unhandled)
		gw_response_header(r, "X-Function-Error", "unhandled");
	push(call);
}

void gw_deploy_done(struct gw_call *call, const struct gw_deploy_result *res)
{
	struct gw_response *r = &call->resp;
	int st = res->status;

	if (st == 200 || st == 201) {
		json_t *own = NULL;
		const json_t *body = res->function;
		if (!body) {
			own = json_pack("{s:s,s:s}", "name", call->name, "status",
					st == 201 ? "created" : "updated");
			body = own;
		}
		if (body)
			gw_response_json(r, st, body);
		else
			gw_response_error(r, 500, "internal", "out of memory");
		json_decref(own);
	} else {
		if (st < 400 || st > 599)
			st = 500;
		gw_response_error(r, st, res->error_code, "%s",
				  res->error_message ? res->error_message : gw_status_reason(st));
	}
	push(call);
}

void gw_calls_drain(struct gw_core *core)
{
	pthread_mutex_lock(&core->lock);
	struct gw_call *c = core->done_head;
	core->done_head = core->done_tail = NULL;
	pthread_mutex_unlock(&core->lock);

	while (c) {
		struct gw_call *next = c->next;
		if (core->calls_pending)
			core->calls_pending--;
		if (c->session)
			gw_session_call_done(c->session, c);
		call_free(c);
		c = next;
	}
}

void gw_calls_discard(struct gw_core *core)
{
	pthread_mutex_lock(&core->lock);
	struct gw_call *c = core->done_head;
	core->done_head = core->done_tail = NULL;
	pthread_mutex_unlock(&core->lock);
	while (c) {
		struct gw_call *next = c->next;
		call_free(c);
		c = next;
	}
}
