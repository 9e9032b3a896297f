/* agent_msg.c — pack, decode and check agent-protocol envelopes (contracts
 * in agent_msg.h). */
#include "proto/agent_msg.h"
#include "proto/pb_check.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(UF_AGENT_PROTO_VERSION == UFAGENT__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT,
	       "agent_msg.h and agent.proto disagree on the protocol version");
_Static_assert(UF_AGENT_MAX_PAYLOAD + (64u << 10) + 4096u < UF_FRAME_MAX,
	       "a max payload plus its other fields must fit a frame");

void uf_msg_wrap(uf_env *env, Ufagent__Envelope__MsgCase c, void *msg)
{
	env->msg_case = c;
	/* Every oneof member is a message pointer sharing the same storage. */
	env->hello = msg;
}

static bool known_case(Ufagent__Envelope__MsgCase c)
{
	return c >= UFAGENT__ENVELOPE__MSG_HELLO && c <= UFAGENT__ENVELOPE__MSG_SHUTDOWN;
}

int uf_msg_pack(uf_env *env, struct uf_frame *out)
{
	out->data = NULL;
	out->len = 0;
	if (!known_case(env->msg_case) || !env->hello)
		return -EINVAL;
	env->version = UF_AGENT_PROTO_VERSION;
	size_t len = ufagent__envelope__get_packed_size(env);
	if (len > UF_FRAME_MAX)
		return -EMSGSIZE;
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	size_t n = ufagent__envelope__pack(env, buf);
	if (n != len) { /* cannot happen with a consistent generated file */
		free(buf);
		return -EIO;
	}
	out->data = buf;
	out->len = len;
	return 0;
}

int uf_msg_send(int fd, uf_env *env, int timeout_ms)
{
	struct uf_frame f;
	int rc = uf_msg_pack(env, &f);
	if (rc < 0)
		return rc;
	rc = uf_frame_write(fd, f.data, f.len, timeout_ms);
	uf_frame_free(&f);
	return rc;
}

/* ---- wire-format scan for the version ---- */

static int get_varint(const uint8_t *p, size_t len, size_t *off, uint64_t *v)
{
	uint64_t x = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (*off >= len)
			return -EBADMSG;
		uint8_t b = p[(*off)++];
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -EBADMSG; /* more than 10 bytes */
}

int uf_msg_peek_version(const uint8_t *p, size_t len, uint32_t *version)
{
	size_t off = 0;
	uint64_t key, v;

	*version = 0;
	while (off < len) {
		if (get_varint(p, len, &off, &key) < 0)
			return -EBADMSG;
		uint64_t field = key >> 3;
		if (field == 0)
			return -EBADMSG;
		switch (key & 7) {
		case 0: /* varint */
			if (get_varint(p, len, &off, &v) < 0)
				return -EBADMSG;
			if (field == 1)
				*version = (uint32_t)v; /* last one wins, as in protobuf */
			break;
		case 1: /* fixed64 */
			if (field == 1 || len - off < 8)
				return -EBADMSG;
			off += 8;
			break;
		case 2: /* length-delimited */
			if (field == 1 || get_varint(p, len, &off, &v) < 0 || v > len - off)
				return -EBADMSG;
			off += (size_t)v;
			break;
		case 5: /* fixed32 */
			if (field == 1 || len - off < 4)
				return -EBADMSG;
			off += 4;
			break;
		default: /* groups (3, 4) are not used by proto3; 6, 7 do not exist */
			return -EBADMSG;
		}
	}
	return 0;
}

/* ---- range checks ---- */

static bool str_ok(const char *s, size_t max)
{
	return !s || strnlen(s, max + 1) <= max;
}

static bool bytes_ok(const ProtobufCBinaryData *b, size_t max)
{
	return b->len <= max && (b->len == 0 || b->data);
}

static bool init_ok(const Ufagent__Init *m)
{
	if (!str_ok(m->runtime, UF_AGENT_MAX_NAME) || !str_ok(m->handler, UF_AGENT_MAX_NAME) ||
	    !bytes_ok(&m->package, UF_FRAME_MAX) || m->n_env > UF_AGENT_MAX_ENV)
		return false;
	for (size_t i = 0; i < m->n_env; i++) {
		const Ufagent__Init__EnvEntry *e = m->env[i];
		if (!e || !e->key || !e->key[0] || strchr(e->key, '=') ||
		    !str_ok(e->key, UF_AGENT_MAX_ENV_LEN) || !str_ok(e->value, UF_AGENT_MAX_ENV_LEN))
			return false;
	}
	return true;
}

int uf_msg_validate(const uf_env *env)
{
	if (!known_case(env->msg_case) || !env->hello)
		return -EINVAL;
	bool ok = true;
	switch (env->msg_case) {
	case UFAGENT__ENVELOPE__MSG_HELLO:
		ok = str_ok(env->hello->agent_build, UF_AGENT_MAX_NAME) &&
		     str_ok(env->hello->runtime, UF_AGENT_MAX_NAME);
		break;
	case UFAGENT__ENVELOPE__MSG_INIT:
		ok = init_ok(env->init);
		break;
	case UFAGENT__ENVELOPE__MSG_INIT_RESULT:
		ok = str_ok(env->init_result->error, UF_AGENT_MAX_TEXT);
		break;
	case UFAGENT__ENVELOPE__MSG_INVOKE:
		ok = str_ok(env->invoke->call_id, UF_AGENT_MAX_ID) &&
		     str_ok(env->invoke->content_type, UF_AGENT_MAX_NAME) &&
		     bytes_ok(&env->invoke->event, UF_FRAME_MAX);
		break;
	case UFAGENT__ENVELOPE__MSG_RESULT:
		ok = str_ok(env->result->call_id, UF_AGENT_MAX_ID) &&
		     str_ok(env->result->content_type, UF_AGENT_MAX_NAME) &&
		     str_ok(env->result->error, UF_AGENT_MAX_TEXT) &&
		     bytes_ok(&env->result->body, UF_FRAME_MAX) &&
		     bytes_ok(&env->result->logs, UF_AGENT_MAX_LOGS) &&
		     env->result->status >= 100 && env->result->status <= 599;
		break;
	case UFAGENT__ENVELOPE__MSG_ERROR:
		ok = str_ok(env->error->message, UF_AGENT_MAX_TEXT);
		break;
	case UFAGENT__ENVELOPE__MSG_FIXUP:
		ok = env->fixup->entropy.len >= UF_AGENT_ENTROPY_MIN &&
		     bytes_ok(&env->fixup->entropy, UF_AGENT_ENTROPY_MAX) &&
		     env->fixup->realtime_ns > 0;
		break;
	case UFAGENT__ENVELOPE__MSG_SHUTDOWN:
		ok = env->shutdown->status <= 255;
		break;
	default: /* fixup_ack, ping, pong: every value is in range */
		break;
	}
	return ok ? 0 : -EINVAL;
}

/* ---- decode ---- */

int uf_msg_decode(const uint8_t *p, size_t len, uf_env **out, uint32_t *peer_version)
{
	uint32_t ver;
	int rc;

	*out = NULL;
	if (peer_version)
		*peer_version = 0;
	if (len > UF_FRAME_MAX)
		return -EMSGSIZE;
	/* Version first: a newer peer's envelope must be refused as a version
	 * mismatch even if the rest would not unpack under this schema. */
	rc = uf_msg_peek_version(p, len, &ver);
	if (rc < 0)
		return rc;
	if (peer_version)
		*peer_version = ver;
	if (ver != UF_AGENT_PROTO_VERSION)
		return -EPROTONOSUPPORT;

	uf_env *env = ufagent__envelope__unpack(NULL, len, p);
	if (!env)
		return -EBADMSG; /* protobuf-c does not tell ENOMEM apart */
	if (!uf_pb_unknown_fields_ok(&env->base)) {
		uf_msg_free(env);
		return -EBADMSG;
	}
	if (env->msg_case == UFAGENT__ENVELOPE__MSG__NOT_SET || !known_case(env->msg_case)) {
		uf_msg_free(env);
		return -ENOMSG;
	}
	rc = uf_msg_validate(env);
	if (rc < 0) {
		uf_msg_free(env);
		return rc;
	}
	*out = env;
	return 0;
}

int uf_msg_recv(int fd, uf_env **out, int timeout_ms)
{
	struct uf_frame f;
	*out = NULL;
	int rc = uf_frame_read(fd, &f, UF_FRAME_MAX, timeout_ms);
	if (rc < 0)
		return rc;
	rc = uf_msg_decode(f.data, f.len, out, NULL);
	uf_frame_free(&f);
	return rc;
}

void uf_msg_free(uf_env *env)
{
	if (env)
		ufagent__envelope__free_unpacked(env, NULL);
}

/* ---- errors ---- */

Ufagent__ErrorCode uf_msg_errcode(int neg_errno)
{
	switch (neg_errno) {
	case -EBADMSG:         return UFAGENT__ERROR_CODE__ERROR_MALFORMED;
	case -EMSGSIZE:        return UFAGENT__ERROR_CODE__ERROR_TOO_LARGE;
	case -EPROTONOSUPPORT: return UFAGENT__ERROR_CODE__ERROR_VERSION_MISMATCH;
	case -ENOMSG:          return UFAGENT__ERROR_CODE__ERROR_UNKNOWN_MESSAGE;
	case -EPROTO:          return UFAGENT__ERROR_CODE__ERROR_UNEXPECTED;
	case -EINVAL:          return UFAGENT__ERROR_CODE__ERROR_INVALID;
	case -EAGAIN:          return UFAGENT__ERROR_CODE__ERROR_NOT_READY;
	default:               return UFAGENT__ERROR_CODE__ERROR_INTERNAL;
	}
}

int uf_msg_errno(Ufagent__ErrorCode code)
{
	switch (code) {
	case UFAGENT__ERROR_CODE__ERROR_MALFORMED:        return -EBADMSG;
	case UFAGENT__ERROR_CODE__ERROR_TOO_LARGE:        return -EMSGSIZE;
	case UFAGENT__ERROR_CODE__ERROR_VERSION_MISMATCH: return -EPROTONOSUPPORT;
	case UFAGENT__ERROR_CODE__ERROR_UNKNOWN_MESSAGE:  return -ENOMSG;
	case UFAGENT__ERROR_CODE__ERROR_UNEXPECTED:       return -EPROTO;
	case UFAGENT__ERROR_CODE__ERROR_INVALID:          return -EINVAL;
	case UFAGENT__ERROR_CODE__ERROR_NOT_READY:        return -EAGAIN;
	default:                                          return -EREMOTEIO;
	}
}

const char *uf_msg_type_name(Ufagent__Envelope__MsgCase c)
{
	static const char *const names[] = {
		[UFAGENT__ENVELOPE__MSG_HELLO] = "hello",
		[UFAGENT__ENVELOPE__MSG_INIT] = "init",
		[UFAGENT__ENVELOPE__MSG_INIT_RESULT] = "init_result",
		[UFAGENT__ENVELOPE__MSG_INVOKE] = "invoke",
		[UFAGENT__ENVELOPE__MSG_RESULT] = "result",
		[UFAGENT__ENVELOPE__MSG_ERROR] = "error",
		[UFAGENT__ENVELOPE__MSG_FIXUP] = "fixup",
		[UFAGENT__ENVELOPE__MSG_FIXUP_ACK] = "fixup_ack",
		[UFAGENT__ENVELOPE__MSG_PING] = "ping",
		[UFAGENT__ENVELOPE__MSG_PONG] = "pong",
		[UFAGENT__ENVELOPE__MSG_SHUTDOWN] = "shutdown",
	};
	return known_case(c) ? names[c] : "unknown";
}

const char *uf_msg_errcode_name(Ufagent__ErrorCode code)
{
	static const char *const names[] = {
		"unspecified", "malformed", "too_large", "version_mismatch",
		"unknown_message", "unexpected", "invalid", "not_ready", "internal",
	};
	return ((unsigned)code < sizeof names / sizeof names[0]) ? names[code] : "unknown";
}

int uf_msg_send_error(int fd, int timeout_ms, Ufagent__ErrorCode code, const char *fmt, ...)
{
	char text[UF_AGENT_MAX_TEXT + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);

	Ufagent__Error err = UFAGENT__ERROR__INIT;
	err.code = code;
	err.message = text;
	uf_env env = UFAGENT__ENVELOPE__INIT;
	uf_msg_wrap(&env, UFAGENT__ENVELOPE__MSG_ERROR, &err);
	return uf_msg_send(fd, &env, timeout_ms);
}
