/* agent_msg.h — agent-protocol messages over frames: pack an Envelope into a
 * frame payload, decode a payload into a checked Envelope, and map protocol
 * errors between negative errnos (our API) and ufagent.ErrorCode (the wire).
 * The message types are the protoc-c ones from proto/agent.proto
 * (Ufagent__*), shared by host and guest.
 *
 * Decoding trusts nothing: the version is checked before the message is
 * unpacked, and every string, byte field and number with a documented range
 * (proto/README.md "Limits") is checked after.  A decoded envelope can be
 * used without further bounds checks.
 */
#ifndef UF_PROTO_AGENT_MSG_H
#define UF_PROTO_AGENT_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "proto/agent.pb-c.h"
#include "proto/frame.h"

/* Must equal ufagent.ProtocolVersion.PROTOCOL_VERSION_CURRENT. */
#define UF_AGENT_PROTO_VERSION      1u
/* The vsock port the agent listens on. */
#define UF_AGENT_VSOCK_PORT         5000u

/* Limits (proto/README.md).  Event and body sizes up to UF_AGENT_MAX_PAYLOAD
 * are guaranteed to fit a frame; the frame maximum is the hard limit. */
#define UF_AGENT_MAX_PAYLOAD        (6u << 20)
#define UF_AGENT_MAX_LOGS           (64u << 10)  /* agent keeps the tail */
#define UF_AGENT_MAX_ID             128u         /* call_id */
#define UF_AGENT_MAX_NAME           256u         /* runtime, handler, build, content type */
#define UF_AGENT_MAX_TEXT           4096u        /* error strings */
#define UF_AGENT_MAX_ENV            1024u        /* Init.env entries */
#define UF_AGENT_MAX_ENV_LEN        (32u << 10)  /* one env key or value */
#define UF_AGENT_ENTROPY_MIN        32u
#define UF_AGENT_ENTROPY_MAX        64u

typedef Ufagent__Envelope uf_env;

/* Point `env` at `msg` as its one message of type `c` (msg must outlive the
 * envelope's use; nothing is copied). */
void uf_msg_wrap(uf_env *env, Ufagent__Envelope__MsgCase c, void *msg);

/* Pack `env` (its version is stamped UF_AGENT_PROTO_VERSION) into a malloc'd
 * payload.  Returns 0, -EMSGSIZE (over UF_FRAME_MAX), -EINVAL (no message
 * set), -ENOMEM. */
int uf_msg_pack(uf_env *env, struct uf_frame *out) UF_WUR;

/* Pack and write one frame.  Errors as uf_msg_pack and uf_frame_write. */
int uf_msg_send(int fd, uf_env *env, int timeout_ms) UF_WUR;

/* Decode a frame payload.  On success *out is a checked envelope (free with
 * uf_msg_free).  Returns 0 or:
 *   -EBADMSG          not a valid Envelope (bad wire format)
 *   -EPROTONOSUPPORT  version != UF_AGENT_PROTO_VERSION (missing counts as 0);
 *                     *peer_version (may be NULL) says which
 *   -ENOMSG           no message type this build knows is set
 *   -EINVAL           a field outside its documented range
 *   -ENOMEM
 * *out is NULL on error. */
int uf_msg_decode(const uint8_t *p, size_t len, uf_env **out,
		  uint32_t *peer_version) UF_WUR;

/* Read one frame and decode it: errors of uf_frame_read and uf_msg_decode. */
int uf_msg_recv(int fd, uf_env **out, int timeout_ms) UF_WUR;

void uf_msg_free(uf_env *env);

/* The version field of an encoded Envelope without unpacking it (no
 * allocation): 0 with *version set (0 if absent), or -EBADMSG when the
 * top level is not valid protobuf wire format. */
int uf_msg_peek_version(const uint8_t *p, size_t len, uint32_t *version) UF_WUR;

/* Check the documented ranges of a decoded (or about to be sent) envelope:
 * 0 or -EINVAL. */
int uf_msg_validate(const uf_env *env) UF_WUR;

/* The wire code for an error from this API (frame or decode), and back:
 * uf_msg_errno(code) is the negative errno a client reports when the peer
 * sent Error{code} (-EREMOTEIO for codes without a closer errno). */
Ufagent__ErrorCode uf_msg_errcode(int neg_errno);
int uf_msg_errno(Ufagent__ErrorCode code);

/* Short names for logs: "invoke", "fixup_ack", ..., "unknown". */
const char *uf_msg_type_name(Ufagent__Envelope__MsgCase c);
const char *uf_msg_errcode_name(Ufagent__ErrorCode code);

/* Send Error{code, printf-style message} (truncated to UF_AGENT_MAX_TEXT).
 * The caller closes the connection afterwards. */
int uf_msg_send_error(int fd, int timeout_ms, Ufagent__ErrorCode code,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5))) UF_WUR;

#endif
