/* call.c — one invocation on its own thread: take a warm clone or make one,
 * send the agent the Invoke with the call's deadline, wait for the Result
 * (deadline + grace; past it the clone is killed: timeout), classify the
 * outcome, answer runtimed, destroy the clone.  A clone serves exactly one
 * call: nothing a handler leaves behind reaches the next one. */
#include "forker/worker/worker.h"
#include "proto/agent_client.h"
#include "vmm/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct call {
	struct worker_serve *s;
	uf_wmsg *msg;                   /* the Invoke; owned */
	uint64_t t_recv;
};

int worker_send(struct worker_serve *s, uf_wmsg *m)
{
	pthread_mutex_lock(&s->wlock);
	int r = uf_wmsg_send(s->sock, m, -1);
	pthread_mutex_unlock(&s->wlock);
	return r;
}

static void send_result(struct worker_serve *s, Ufworker__Result *res)
{
	uf_wmsg m = UFWORKER__WORKER_MSG__INIT;
	uf_wmsg_wrap(&m, UFWORKER__WORKER_MSG__MSG_RESULT, res);
	int r = worker_send(s, &m);
	if (r)
		fprintf(stderr, "uf-worker: result for %s not sent: %s\n", res->call_id, strerror(-r));
	atomic_fetch_add(&s->invocations, 1);
}

void worker_answer_error(struct worker_serve *s, const char *call_id, uint32_t status,
			 Ufworker__ErrorKind kind, const char *msg)
{
	Ufworker__Result res = UFWORKER__RESULT__INIT;
	res.call_id = (char *)call_id;
	res.status = status;
	res.error_kind = kind;
	res.message = (char *)msg;
	send_result(s, &res);
}

/* Outcome of an agent exchange that did not return a Result. */
static void classify_failure(struct worker_clone *c, int r, Ufworker__Result *res, char *msg,
			     size_t cap)
{
	if (r == -ETIMEDOUT) {
		res->status = 504;
		res->error_kind = UFWORKER__ERROR_KIND__ERROR_TIMEOUT;
		snprintf(msg, cap, "the handler did not answer within its deadline; the instance was killed");
		return;
	}
	res->status = 502;
	res->error_kind = UFWORKER__ERROR_KIND__ERROR_CRASHED;
	if (worker_clone_dead(c)) {
		const char *d = worker_clone_exit_detail(c);
		snprintf(msg, cap, "the instance stopped (%s)", d[0] ? d : "the guest exited");
	} else if (r == -EMSGSIZE) {    /* the frame header announced more: not read */
		snprintf(msg, cap, "response too large (over the %u-byte frame limit); the instance was destroyed",
			 UF_FRAME_MAX);
	} else
		snprintf(msg, cap, "the agent connection failed: %s", strerror(-r));
}

static void *call_thread(void *arg)
{
	struct call *cl = arg;
	struct worker_serve *s = cl->s;
	Ufworker__Invoke *inv = cl->msg->invoke;
	Ufworker__Result res = UFWORKER__RESULT__INIT;
	char msg[UF_WORKER_MAX_TEXT / 4] = "";
	struct agent_result ar = {0};
	bool have_ar = false;
	res.call_id = inv->call_id;

	struct worker_clone *c = NULL;
	bool warm = false;
	int r = wpool_take(&s->pool, &c, &warm);
	uint64_t t_clone = vmm_now_ns();
	res.queue_us = (t_clone - cl->t_recv) / 1000;
	if (r) {
		res.status = 503;
		res.error_kind = UFWORKER__ERROR_KIND__ERROR_NO_CAPACITY;
		snprintf(msg, sizeof(msg), "no instance could be started: %s", vmm_strerror());
		goto answer;
	}
	res.start_type = warm ? UFWORKER__START_TYPE__START_WARM : UFWORKER__START_TYPE__START_CLONE;
	res.restore_us = warm ? 0 : c->restore_us;
	uint32_t deadline = inv->deadline_ms ? inv->deadline_ms : s->default_deadline_ms;
	struct agent_invoke req = {
		.call_id = inv->call_id, .event = inv->event.data, .len = inv->event.len,
		.deadline_ms = deadline, .content_type = inv->content_type,
		.timeout_ms = deadline ? (int)(deadline + WORKER_DEADLINE_GRACE_MS) : -1,
	};
	uint64_t t0 = vmm_now_ns();
	bool watched = wwatch_add(&s->watch, c, inv->call_id);
	r = agent_client_invoke_req(c->fd, &req, &ar);
	res.duration_us = (vmm_now_ns() - t0) / 1000;
	if (watched)
		wwatch_remove(&s->watch, c);
	if (r) {
		classify_failure(c, r, &res, msg, sizeof(msg));
		if (res.error_kind == UFWORKER__ERROR_KIND__ERROR_TIMEOUT)
			atomic_fetch_add(&s->timeouts, 1);
		else
			atomic_fetch_add(&s->crashes, 1);
		goto answer;
	}
	have_ar = true;
	res.status = ar.status;
	res.body.data = (uint8_t *)ar.body;
	res.body.len = ar.body_len;
	res.logs.data = (uint8_t *)ar.logs;
	res.logs.len = ar.logs_len > UF_WORKER_MAX_LOGS ? UF_WORKER_MAX_LOGS : ar.logs_len;
	res.content_type = (char *)ar.content_type;
	if (ar.body_len > UF_WORKER_MAX_BODY) {
		res.body.len = 0;
		res.status = 502;
		res.error_kind = UFWORKER__ERROR_KIND__ERROR_UNHANDLED;
		snprintf(msg, sizeof(msg), "the handler's answer is over %u bytes", UF_WORKER_MAX_BODY);
	} else if (ar.error && ar.error[0]) {
		res.status = 502;
		res.error_kind = UFWORKER__ERROR_KIND__ERROR_UNHANDLED;
		snprintf(msg, sizeof(msg), "%s", ar.error);
	}
answer:
	res.message = msg;
	if (res.status < 100 || res.status > 599)
		res.status = 502;
	send_result(s, &res);
	if (have_ar)
		agent_result_free(&ar);
	/* The first call served well teaches the template its working set
	 * (the handler's pages too, which the deploy's Ping did not touch);
	 * after the answer, so off the caller's latency. */
	if (have_ar && res.status < 500 && !(ar.error && ar.error[0]) &&
	    !atomic_exchange(&s->ws_learned, true) && worker_tmpl_learn_ws(&s->tmpl, c))
		fprintf(stderr, "uf-worker: working set not learned: %s\n", vmm_strerror());
	/* Destroying the clone (after the answer: off the caller's latency)
	 * frees the call's slot. */
	wpool_finish(&s->pool, c);
	uf_wmsg_free(cl->msg);
	free(cl);
	atomic_fetch_sub(&s->threads, 1);
	return NULL;
}

void worker_call_start(struct worker_serve *s, uf_wmsg *invoke)
{
	struct call *cl = calloc(1, sizeof(*cl));
	pthread_attr_t at;
	pthread_t th;
	int r = cl ? 0 : ENOMEM;
	if (cl) {
		cl->s = s;
		cl->msg = invoke;
		cl->t_recv = vmm_now_ns();
		atomic_fetch_add(&s->threads, 1);
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		r = pthread_create(&th, &at, call_thread, cl);
		pthread_attr_destroy(&at);
		if (r == 0)
			return;
		atomic_fetch_sub(&s->threads, 1);
	}
	char m[96];
	snprintf(m, sizeof(m), "the worker could not start a call thread: %s", strerror(r));
	worker_answer_error(s, invoke->invoke->call_id, 503, UFWORKER__ERROR_KIND__ERROR_INTERNAL, m);
	wpool_finish(&s->pool, NULL);
	uf_wmsg_free(invoke);
	free(cl);
}
