/* worker_msg.c — pack, decode and check runtimed <-> worker messages
 * (contracts in worker_msg.h). */
#include "proto/worker_msg.h"
#include "proto/pb_check.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(UF_WORKER_PROTO_VERSION == UFWORKER__VERSION__VERSION_CURRENT,
	       "worker_msg.h and worker.proto disagree on the version");
_Static_assert(UF_WORKER_MAX_BODY + UF_WORKER_MAX_LOGS + 3 * UF_WORKER_MAX_TEXT < UF_FRAME_MAX,
	       "a maximal Result must fit a frame");

void uf_wmsg_wrap(uf_wmsg *m, Ufworker__WorkerMsg__MsgCase c, void *msg)
{
	m->msg_case = c;
	m->invoke = msg; /* every oneof member shares the same storage */
}

static bool known_case(Ufworker__WorkerMsg__MsgCase c)
{
	return c >= UFWORKER__WORKER_MSG__MSG_INVOKE && c <= UFWORKER__WORKER_MSG__MSG_RESUME;
}

static bool str_ok(const char *s, size_t max)
{
	return !s || strnlen(s, max + 1) <= max;
}

static bool bytes_ok(const ProtobufCBinaryData *b, size_t max)
{
	return b->len <= max && (b->len == 0 || b->data);
}

int uf_wmsg_validate(const uf_wmsg *m)
{
	if (!known_case(m->msg_case) || !m->invoke)
		return -EINVAL;
	bool ok = true;
	switch (m->msg_case) {
	case UFWORKER__WORKER_MSG__MSG_INVOKE:
		ok = str_ok(m->invoke->call_id, UF_WORKER_MAX_ID) &&
		     str_ok(m->invoke->content_type, UF_WORKER_MAX_NAME) &&
		     bytes_ok(&m->invoke->event, UF_WORKER_MAX_BODY);
		break;
	case UFWORKER__WORKER_MSG__MSG_RESULT:
		ok = str_ok(m->result->call_id, UF_WORKER_MAX_ID) &&
		     str_ok(m->result->content_type, UF_WORKER_MAX_NAME) &&
		     str_ok(m->result->message, UF_WORKER_MAX_TEXT) &&
		     bytes_ok(&m->result->body, UF_WORKER_MAX_BODY) &&
		     bytes_ok(&m->result->logs, UF_WORKER_MAX_LOGS) &&
		     m->result->status >= 100 && m->result->status <= 599;
		break;
	case UFWORKER__WORKER_MSG__MSG_POOL:
		ok = m->pool->max_instances >= 1;
		break;
	case UFWORKER__WORKER_MSG__MSG_BUILD_RESULT:
		ok = str_ok(m->build_result->message, UF_WORKER_MAX_TEXT);
		break;
	case UFWORKER__WORKER_MSG__MSG_PREEMPT:
		ok = str_ok(m->preempt->call_id, UF_WORKER_MAX_ID);
		break;
	case UFWORKER__WORKER_MSG__MSG_PREEMPTED:
		ok = str_ok(m->preempted->call_id, UF_WORKER_MAX_ID);
		break;
	case UFWORKER__WORKER_MSG__MSG_RESUME:
		ok = str_ok(m->resume->call_id, UF_WORKER_MAX_ID);
		break;
	default: /* stats_request, stats, ready, drain: every value is in range */
		break;
	}
	return ok ? 0 : -EINVAL;
}

int uf_wmsg_pack(uf_wmsg *m, struct uf_frame *out)
{
	out->data = NULL;
	out->len = 0;
	int rc = uf_wmsg_validate(m);
	if (rc < 0)
		return rc;
	m->version = UF_WORKER_PROTO_VERSION;
	size_t len = ufworker__worker_msg__get_packed_size(m);
	if (len > UF_FRAME_MAX)
		return -EMSGSIZE;
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	if (ufworker__worker_msg__pack(m, buf) != len) {
		free(buf);
		return -EIO;
	}
	out->data = buf;
	out->len = len;
	return 0;
}

int uf_wmsg_send(int fd, uf_wmsg *m, int timeout_ms)
{
	struct uf_frame f;
	int rc = uf_wmsg_pack(m, &f);
	if (rc < 0)
		return rc;
	rc = uf_frame_write(fd, f.data, f.len, timeout_ms);
	uf_frame_free(&f);
	return rc;
}

int uf_wmsg_decode(const uint8_t *p, size_t len, uf_wmsg **out)
{
	*out = NULL;
	if (len > UF_FRAME_MAX)
		return -EMSGSIZE;
	uf_wmsg *m = ufworker__worker_msg__unpack(NULL, len, p);
	if (!m)
		return -EBADMSG;
	int rc = 0;
	if (!uf_pb_unknown_fields_ok(&m->base))
		rc = -EBADMSG;  /* a field-0 tag (see pb_check.h) */
	else if (m->version != UF_WORKER_PROTO_VERSION)
		rc = -EPROTONOSUPPORT;
	else if (!known_case(m->msg_case))
		rc = -ENOMSG;
	else
		rc = uf_wmsg_validate(m);
	if (rc < 0) {
		uf_wmsg_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

int uf_wmsg_recv(int fd, uf_wmsg **out, int timeout_ms)
{
	struct uf_frame f;
	*out = NULL;
	int rc = uf_frame_read(fd, &f, UF_FRAME_MAX, timeout_ms);
	if (rc < 0)
		return rc;
	rc = uf_wmsg_decode(f.data, f.len, out);
	uf_frame_free(&f);
	return rc;
}

void uf_wmsg_free(uf_wmsg *m)
{
	if (m)
		ufworker__worker_msg__free_unpacked(m, NULL);
}

const char *uf_wmsg_type_name(Ufworker__WorkerMsg__MsgCase c)
{
	static const char *const names[] = {
		[UFWORKER__WORKER_MSG__MSG_INVOKE] = "invoke",
		[UFWORKER__WORKER_MSG__MSG_RESULT] = "result",
		[UFWORKER__WORKER_MSG__MSG_POOL] = "pool",
		[UFWORKER__WORKER_MSG__MSG_STATS_REQUEST] = "stats_request",
		[UFWORKER__WORKER_MSG__MSG_STATS] = "stats",
		[UFWORKER__WORKER_MSG__MSG_READY] = "ready",
		[UFWORKER__WORKER_MSG__MSG_DRAIN] = "drain",
		[UFWORKER__WORKER_MSG__MSG_BUILD_RESULT] = "build_result",
		[UFWORKER__WORKER_MSG__MSG_PREEMPT] = "preempt",
		[UFWORKER__WORKER_MSG__MSG_PREEMPTED] = "preempted",
		[UFWORKER__WORKER_MSG__MSG_RESUME] = "resume",
	};
	return known_case(c) ? names[c] : "unknown";
}

const char *uf_wmsg_error_name(Ufworker__ErrorKind k)
{
	static const char *const names[] = {
		"none", "unhandled", "timeout", "crashed", "no_capacity", "internal", "draining",
	};
	return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "unknown";
}

const char *uf_wmsg_start_name(Ufworker__StartType t)
{
	switch (t) {
	case UFWORKER__START_TYPE__START_CLONE: return "clone";
	case UFWORKER__START_TYPE__START_WARM:  return "warm";
	case UFWORKER__START_TYPE__START_RESET: return "reset";
	default:                                return "";
	}
}
