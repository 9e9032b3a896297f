/* api.c — the routes: checks at the end of the headers, then each route's
 * handler (backend calls, JSON in and out). */
#include "gateway/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/auth.h"
#include "gateway/call.h"
#include "gateway/session.h"
#include "gateway/spec.h"

static size_t body_limit(const struct gw_core *c, enum gw_body_class b)
{
	switch (b) {
	case GW_BODY_INVOKE: return c->cfg.max_invoke_body;
	case GW_BODY_DEPLOY: return c->cfg.max_deploy_body;
	case GW_BODY_CONTROL: break;
	}
	return c->cfg.max_control_body;
}

static void early(struct gw_request *req, int status, const char *code, const char *msg)
{
	req->early_status = status;
	req->early_code = code;
	snprintf(req->early_msg, sizeof(req->early_msg), "%s", msg);
}

int gw_api_precheck(struct gw_core *core, struct gw_request *req)
{
	struct gw_match *m = &req->match;

	gw_route_match(req->method, req->path, req->path_len, m);
	req->body_limit = body_limit(core, m->body);
	if (m->status == 404)
		early(req, 404, "not_found", "no such route");
	else if (m->status == 405)
		early(req, 405, "method_not_allowed", "method not allowed on this route");
	else if (m->status == 400)
		early(req, 400, "bad_request", "invalid function name (want [a-z0-9][a-z0-9_-]{0,62})");
	else if ((m->control || (m->invoke && core->cfg.invoke_auth)) &&
		 !gw_auth_ok(core->cfg.token, req->authorization))
		early(req, 401, "unauthorized", "missing or wrong bearer token");
	else if (req->has_length && req->content_length > req->body_limit)
		early(req, 413, "payload_too_large", "request body over the limit");
	if (!req->early_status)
		return 0;
	if (req->chunked || req->content_length > 0 || req->early_status == 413)
		return req->early_status;       /* answer now, never read the body */
	req->body_limit = 0;
	return 0;
}

/* ---- synchronous routes ---- */

/* Returns 0: answered synchronously. */
static int not_implemented(struct gw_response *resp)
{
	gw_response_error(resp, 501, "not_implemented", "the backend does not implement this call");
	return 0;
}

static int out_of_memory(struct gw_response *resp)
{
	gw_response_error(resp, 503, "unavailable", "out of memory");
	return 0;
}

/* A synchronous op's status + JSON (or error) into the response. */
static void sync_result(struct gw_response *resp, int status, json_t *out, const struct gw_error *err)
{
	if (status >= 200 && status < 300) {
		if (out)
			gw_response_json(resp, status, out);
		else
			gw_response_body(resp, status, NULL, NULL, 0);
	} else {
		if (status < 400 || status > 599)
			status = 500;
		gw_response_error(resp, status, err->code, "%s",
				  err->message[0] ? err->message : gw_status_reason(status));
	}
	json_decref(out);
}

static void serve_ready(struct gw_core *core, struct gw_response *resp)
{
	struct gw_error err = {0};
	int st = 200;

	if (core->stopping) {
		gw_response_error(resp, 503, "unavailable", "stopping");
		return;
	}
	if (core->ops->ready)
		st = core->ops->ready(core->ctx, &err);
	if (st >= 200 && st < 300) {
		json_t *o = json_pack("{s:s}", "status", "ready");
		sync_result(resp, 200, o, &err);
	} else {
		sync_result(resp, st == 500 ? 500 : 503, NULL, &err);
	}
}

static void serve_metrics(struct gw_core *core, struct gw_response *resp)
{
	struct gw_buf text;

	gw_buf_init(&text);
	gw_metrics_render(&core->metrics, &text);
	if (core->ops->metrics)
		core->ops->metrics(core->ctx, &text);
	if (gw_buf_error(&text))
		gw_response_error(resp, 500, "internal", "cannot render the metrics");
	else
		gw_response_body(resp, 200, "text/plain; version=0.0.4; charset=utf-8", text.data, text.len);
	gw_buf_free(&text);
}

/* ?tail=N (1..GW_LOGS_TAIL_MAX); other parameters are ignored. */
static int parse_tail(const char *query, unsigned *tail)
{
	*tail = GW_LOGS_TAIL_DEFAULT;
	for (const char *p = query; p && *p;) {
		const char *amp = strchr(p, '&');
		size_t n = amp ? (size_t)(amp - p) : strlen(p);
		if (n > 5 && !strncmp(p, "tail=", 5)) {
			unsigned long v = 0;
			for (size_t i = 5; i < n; i++) {
				if (p[i] < '0' || p[i] > '9' || v > GW_LOGS_TAIL_MAX)
					return -EINVAL;
				v = v * 10 + (unsigned long)(p[i] - '0');
			}
			if (v < 1 || v > GW_LOGS_TAIL_MAX)
				return -EINVAL;
			*tail = (unsigned)v;
		} else if (n >= 4 && !strncmp(p, "tail", 4) && (n == 4 || p[4] == '=')) {
			return -EINVAL;
		}
		p = amp ? amp + 1 : NULL;
	}
	return 0;
}

static void serve_logs(struct gw_core *core, const struct gw_request *req, struct gw_response *resp)
{
	struct gw_error err = {0};
	unsigned tail;
	char *text = NULL;
	size_t len = 0;

	if (parse_tail(req->query, &tail)) {
		gw_response_error(resp, 400, "bad_request", "tail must be an integer in [1, %u]", GW_LOGS_TAIL_MAX);
		return;
	}
	if (!core->ops->logs) {
		not_implemented(resp);
		return;
	}
	int st = core->ops->logs(core->ctx, req->match.name, tail, &text, &len, &err);
	if (st >= 200 && st < 300)
		gw_response_body(resp, 200, "application/x-ndjson", text, text ? len : 0);
	else
		sync_result(resp, st, NULL, &err);
	free(text);
}

static void serve_pool(struct gw_core *core, const struct gw_request *req, struct gw_response *resp)
{
	struct gw_pool_update upd;
	struct gw_error err = {0};
	char why[256];
	json_t *out = NULL;

	if (gw_pool_update_parse(&upd, req->body.data ? req->body.data : "", req->body.len, why, sizeof(why))) {
		gw_response_error(resp, 400, "bad_request", "%s", why);
		return;
	}
	if (!core->ops->set_pool) {
		not_implemented(resp);
		return;
	}
	int st = core->ops->set_pool(core->ctx, req->match.name, &upd, &out, &err);
	sync_result(resp, st, out, &err);
}

/* ---- asynchronous routes ---- */

static int serve_invoke(struct gw_core *core, struct gw_session *s, struct gw_request *req,
			struct gw_response *resp)
{
	if (!core->ops->invoke)
		return not_implemented(resp);
	struct gw_call *c = gw_call_new(core, GW_CALL_INVOKE);
	if (!c)
		return out_of_memory(resp);
	snprintf(c->name, sizeof(c->name), "%s", req->match.name);
	gw_core_call_id(core, c->call_id);
	snprintf(c->content_type, sizeof(c->content_type), "%s",
		 req->content_type[0] ? req->content_type : "application/octet-stream");
	c->body = req->body;                    /* the call takes the body */
	gw_buf_init(&req->body);
	c->invoke = (struct gw_invoke){
		.function = c->name,
		.call_id = c->call_id,
		.body = (const uint8_t *)c->body.data,
		.body_len = c->body.len,
		.content_type = c->content_type,
	};
	gw_session_attach(s, c);
	gw_call_started(c);
	core->ops->invoke(core->ctx, c, &c->invoke);
	return 1;
}

static int serve_deploy(struct gw_core *core, struct gw_session *s, struct gw_request *req,
			struct gw_response *resp)
{
	char why[256];

	if (!core->ops->deploy)
		return not_implemented(resp);
	struct gw_call *c = gw_call_new(core, GW_CALL_DEPLOY);
	if (!c)
		return out_of_memory(resp);
	snprintf(c->name, sizeof(c->name), "%s", req->match.name);
	int r = gw_spec_parse(&c->spec, c->name, req->body.data ? req->body.data : "", req->body.len,
			      why, sizeof(why));
	gw_buf_free(&req->body);                /* the spec holds its own copies */
	if (r) {
		gw_response_error(resp, r == -ENOMEM ? 503 : 400, r == -ENOMEM ? "unavailable" : "bad_request",
				  "%s", why);
		gw_response_free(&c->resp);
		gw_spec_free(&c->spec);
		free(c);
		return 0;
	}
	gw_session_attach(s, c);
	gw_call_started(c);
	core->ops->deploy(core->ctx, c, &c->spec.fs);
	return 1;
}

int gw_api_serve(struct gw_core *core, struct gw_session *s, struct gw_request *req,
		 struct gw_response *resp)
{
	struct gw_error err = {0};
	json_t *out = NULL;
	const char *name = req->match.name;
	int st;

	if (req->early_status) {
		gw_response_error(resp, req->early_status, req->early_code, "%s", req->early_msg);
		if (req->early_status == 405 && req->match.allow)
			gw_response_header(resp, "Allow", "%s", req->match.allow);
		return 0;
	}
	switch (req->match.route) {
	case GW_ROUTE_HEALTHZ:
		out = json_pack("{s:s}", "status", "ok");
		sync_result(resp, 200, out, &err);
		return 0;
	case GW_ROUTE_READYZ:
		serve_ready(core, resp);
		return 0;
	case GW_ROUTE_METRICS:
		serve_metrics(core, resp);
		return 0;
	case GW_ROUTE_INFO:
		if (!core->ops->info)
			return not_implemented(resp);
		st = core->ops->info(core->ctx, &out, &err);
		sync_result(resp, st, out, &err);
		return 0;
	case GW_ROUTE_FUNCTIONS:
		if (!core->ops->list)
			return not_implemented(resp);
		st = core->ops->list(core->ctx, &out, &err);
		sync_result(resp, st, out, &err);
		return 0;
	case GW_ROUTE_FUNCTION:
		if (req->method == GW_M_PUT)
			return serve_deploy(core, s, req, resp);
		if (req->method == GW_M_DELETE) {
			if (!core->ops->remove)
				return not_implemented(resp);
			st = core->ops->remove(core->ctx, name, &err);
			sync_result(resp, st >= 200 && st < 300 ? 204 : st, NULL, &err);
			return 0;
		}
		if (!core->ops->get)
			return not_implemented(resp);
		st = core->ops->get(core->ctx, name, &out, &err);
		sync_result(resp, st, out, &err);
		return 0;
	case GW_ROUTE_POOL:
		serve_pool(core, req, resp);
		return 0;
	case GW_ROUTE_LOGS:
		serve_logs(core, req, resp);
		return 0;
	case GW_ROUTE_INVOKE:
	case GW_ROUTE_INVOKE_ALIAS:
		return serve_invoke(core, s, req, resp);
	case GW_ROUTE_NONE:
	case GW_ROUTE_COUNT:
		break;
	}
	gw_response_error(resp, 404, "not_found", "no such route");
	return 0;
}
