/* agent_client.c — host-side exchanges with the guest agent over a connected
 * fd (contracts in agent_client.h). */
#include "proto/agent_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What is left of a budget that started at t0 (-1 stays -1). */
static int left_ms(int64_t t0, int timeout_ms)
{
	if (timeout_ms < 0)
		return -1;
	int64_t left = t0 + timeout_ms - now_ms();
	return left > 0 ? (int)left : 0;
}

int agent_client_recv(int fd, uf_env **out, int timeout_ms)
{
	struct uf_frame f;
	uint32_t ver;

	*out = NULL;
	int rc = uf_frame_read(fd, &f, UF_FRAME_MAX, timeout_ms);
	if (rc == -EMSGSIZE) {
		(void)!uf_msg_send_error(fd, 1000, UFAGENT__ERROR_CODE__ERROR_TOO_LARGE,
					 "frame over %u bytes", UF_FRAME_MAX);
		return rc;
	}
	if (rc < 0)
		return rc;
	rc = uf_msg_decode(f.data, f.len, out, &ver);
	uf_frame_free(&f);
	if (rc == -EPROTONOSUPPORT)
		(void)!uf_msg_send_error(fd, 1000, UFAGENT__ERROR_CODE__ERROR_VERSION_MISMATCH,
					 "host speaks version %u, agent sent %u",
					 UF_AGENT_PROTO_VERSION, ver);
	else if (rc < 0 && rc != -ENOMEM)
		(void)!uf_msg_send_error(fd, 1000, uf_msg_errcode(rc), "bad frame from agent");
	return rc;
}

/* Receive the answer of type `want`; an Error frame becomes its errno. */
static int recv_expect(int fd, Ufagent__Envelope__MsgCase want, uf_env **out, int timeout_ms)
{
	int rc = agent_client_recv(fd, out, timeout_ms);
	if (rc < 0)
		return rc;
	if ((*out)->msg_case == want)
		return 0;
	if ((*out)->msg_case == UFAGENT__ENVELOPE__MSG_ERROR)
		rc = uf_msg_errno((*out)->error->code);
	else {
		(void)!uf_msg_send_error(fd, 1000, UFAGENT__ERROR_CODE__ERROR_UNEXPECTED,
					 "expected %s, got %s", uf_msg_type_name(want),
					 uf_msg_type_name((*out)->msg_case));
		rc = -EPROTO;
	}
	uf_msg_free(*out);
	*out = NULL;
	return rc;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

int agent_client_hello(int fd, struct agent_hello *out, int timeout_ms)
{
	uf_env *env;
	memset(out, 0, sizeof *out);
	int rc = recv_expect(fd, UFAGENT__ENVELOPE__MSG_HELLO, &env, timeout_ms);
	if (rc < 0)
		return rc;
	const Ufagent__Hello *h = env->hello;
	out->version = h->protocol_version;
	copy_str(out->build, sizeof out->build, h->agent_build);
	copy_str(out->runtime, sizeof out->runtime, h->runtime);
	out->state = h->state;
	uf_msg_free(env);
	/* The envelope version was checked; the Hello repeats it for logs. */
	return out->version == UF_AGENT_PROTO_VERSION ? 0 : -EPROTONOSUPPORT;
}

int agent_client_init(int fd, const struct agent_init_req *req,
		      struct agent_init_result *out, int timeout_ms)
{
	int64_t t0 = now_ms();
	int rc;

	memset(out, 0, sizeof *out);
	if (req->n_env > UF_AGENT_MAX_ENV)
		return -EINVAL;
	Ufagent__Init__EnvEntry *ents = calloc(req->n_env ? req->n_env : 1, sizeof *ents);
	Ufagent__Init__EnvEntry **ptrs = calloc(req->n_env ? req->n_env : 1, sizeof *ptrs);
	char **keys = calloc(req->n_env ? req->n_env : 1, sizeof *keys);
	rc = (ents && ptrs && keys) ? 0 : -ENOMEM;
	for (size_t i = 0; rc == 0 && i < req->n_env; i++) {
		const char *kv = req->env[i];
		const char *eq = kv ? strchr(kv, '=') : NULL;
		if (!eq) {
			rc = -EINVAL;
			break;
		}
		keys[i] = strndup(kv, (size_t)(eq - kv));
		if (!keys[i]) {
			rc = -ENOMEM;
			break;
		}
		ufagent__init__env_entry__init(&ents[i]);
		ents[i].key = keys[i];
		ents[i].value = (char *)eq + 1;
		ptrs[i] = &ents[i];
	}
	if (rc == 0) {
		Ufagent__Init init = UFAGENT__INIT__INIT;
		init.package.data = (uint8_t *)req->package;
		init.package.len = req->package_len;
		init.runtime = (char *)(req->runtime ? req->runtime : "");
		init.handler = (char *)(req->handler ? req->handler : "");
		init.n_env = req->n_env;
		init.env = ptrs;
		init.memory_mb = req->memory_mb;
		init.timeout_ms = req->timeout_ms;
		uf_env env = UFAGENT__ENVELOPE__INIT;
		uf_msg_wrap(&env, UFAGENT__ENVELOPE__MSG_INIT, &init);
		rc = uf_msg_validate(&env);
		if (rc == 0)
			rc = uf_msg_send(fd, &env, timeout_ms);
	}
	for (size_t i = 0; keys && i < req->n_env; i++)
		free(keys[i]);
	free(keys);
	free(ptrs);
	free(ents);
	if (rc < 0)
		return rc;

	uf_env *ans;
	rc = recv_expect(fd, UFAGENT__ENVELOPE__MSG_INIT_RESULT, &ans, left_ms(t0, timeout_ms));
	if (rc < 0)
		return rc;
	out->ok = ans->init_result->ok;
	copy_str(out->error, sizeof out->error, ans->init_result->error);
	out->duration_us = ans->init_result->duration_us;
	uf_msg_free(ans);
	return 0;
}

void agent_result_free(struct agent_result *r)
{
	uf_msg_free(r->env_);
	memset(r, 0, sizeof *r);
}

int agent_client_invoke_req(int fd, const struct agent_invoke *req, struct agent_result *out)
{
	int timeout = req->timeout_ms;
	int64_t t0 = now_ms();
	int rc;

	memset(out, 0, sizeof *out);
	if (timeout < 0 && req->deadline_ms > 0)
		timeout = req->deadline_ms > (uint64_t)(INT32_MAX - AGENT_CLIENT_GRACE_MS)
				  ? -1
				  : (int)req->deadline_ms + AGENT_CLIENT_GRACE_MS;

	Ufagent__Invoke inv = UFAGENT__INVOKE__INIT;
	inv.call_id = (char *)(req->call_id ? req->call_id : "");
	inv.deadline_ms = req->deadline_ms;
	inv.event.data = (uint8_t *)req->event;
	inv.event.len = req->len;
	inv.content_type = (char *)(req->content_type ? req->content_type : "");
	uf_env env = UFAGENT__ENVELOPE__INIT;
	uf_msg_wrap(&env, UFAGENT__ENVELOPE__MSG_INVOKE, &inv);
	rc = uf_msg_validate(&env);
	if (rc < 0)
		return rc;
	rc = uf_msg_send(fd, &env, timeout);
	if (rc < 0)
		return rc;

	uf_env *ans;
	rc = recv_expect(fd, UFAGENT__ENVELOPE__MSG_RESULT, &ans, left_ms(t0, timeout));
	if (rc < 0)
		return rc;
	const Ufagent__Result *res = ans->result;
	if (strcmp(res->call_id, inv.call_id) != 0) {
		(void)!uf_msg_send_error(fd, 1000, UFAGENT__ERROR_CODE__ERROR_UNEXPECTED,
					 "result for call %.64s, expected %.64s", res->call_id,
					 inv.call_id);
		uf_msg_free(ans);
		return -EPROTO;
	}
	out->call_id = res->call_id;
	out->status = res->status;
	out->body = res->body.data;
	out->body_len = res->body.len;
	out->logs = res->logs.data;
	out->logs_len = res->logs.len;
	out->content_type = res->content_type ? res->content_type : "";
	out->error = res->error ? res->error : "";
	out->handler_us = res->handler_us;
	out->env_ = ans;
	return 0;
}

int agent_client_invoke(int fd, const char *call_id, const void *event, size_t len,
			uint64_t deadline_ms, struct agent_result *out)
{
	struct agent_invoke req = {
		.call_id = call_id, .event = event, .len = len,
		.deadline_ms = deadline_ms, .timeout_ms = -1,
	};
	return agent_client_invoke_req(fd, &req, out);
}

int agent_client_fixup(int fd, const void *entropy, size_t len, int64_t realtime_ns,
		       struct agent_fixup_ack *ack, int timeout_ms)
{
	int64_t t0 = now_ms();
	memset(ack, 0, sizeof *ack);

	Ufagent__Fixup fx = UFAGENT__FIXUP__INIT;
	fx.entropy.data = (uint8_t *)entropy;
	fx.entropy.len = len;
	fx.realtime_ns = realtime_ns;
	uf_env env = UFAGENT__ENVELOPE__INIT;
	uf_msg_wrap(&env, UFAGENT__ENVELOPE__MSG_FIXUP, &fx);
	int rc = uf_msg_validate(&env);
	if (rc < 0)
		return rc;
	rc = uf_msg_send(fd, &env, timeout_ms);
	if (rc < 0)
		return rc;

	uf_env *ans;
	rc = recv_expect(fd, UFAGENT__ENVELOPE__MSG_FIXUP_ACK, &ans, left_ms(t0, timeout_ms));
	if (rc < 0)
		return rc;
	ack->ok = ans->fixup_ack->ok;
	ack->entropy_errno = ans->fixup_ack->entropy_errno;
	ack->reseed_errno = ans->fixup_ack->reseed_errno;
	ack->clock_errno = ans->fixup_ack->clock_errno;
	uf_msg_free(ans);
	return 0;
}

int agent_client_ping(int fd, int timeout_ms)
{
	int64_t t0 = now_ms();
	Ufagent__Ping ping = UFAGENT__PING__INIT;
	if (getrandom(&ping.nonce, sizeof ping.nonce, GRND_NONBLOCK) != sizeof ping.nonce)
		ping.nonce = (uint64_t)t0 ^ 0x9e3779b97f4a7c15ull;
	uf_env env = UFAGENT__ENVELOPE__INIT;
	uf_msg_wrap(&env, UFAGENT__ENVELOPE__MSG_PING, &ping);
	int rc = uf_msg_send(fd, &env, timeout_ms);
	if (rc < 0)
		return rc;

	uf_env *ans;
	rc = recv_expect(fd, UFAGENT__ENVELOPE__MSG_PONG, &ans, left_ms(t0, timeout_ms));
	if (rc < 0)
		return rc;
	rc = ans->pong->nonce == ping.nonce ? 0 : -EPROTO;
	uf_msg_free(ans);
	return rc;
}

int agent_client_shutdown(int fd, uint32_t status, int timeout_ms)
{
	if (status > 255)
		return -EINVAL;
	Ufagent__Shutdown sd = UFAGENT__SHUTDOWN__INIT;
	sd.status = status;
	uf_env env = UFAGENT__ENVELOPE__INIT;
	uf_msg_wrap(&env, UFAGENT__ENVELOPE__MSG_SHUTDOWN, &sd);
	return uf_msg_send(fd, &env, timeout_ms);
}
