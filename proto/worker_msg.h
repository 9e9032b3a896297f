/* worker_msg.h — runtimed <-> worker messages (proto/worker.proto) over
 * frames (proto/frame.h): pack a WorkerMsg into a frame payload, decode a
 * payload into a checked WorkerMsg, and send one on a blocking fd.
 *
 * Both ends distrust each other only as far as memory safety goes: decode
 * checks the version, that exactly one known message is set, and every
 * string and byte field against the limits below, so a decoded message can
 * be used without further bounds checks.
 */
#ifndef UF_PROTO_WORKER_MSG_H
#define UF_PROTO_WORKER_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "proto/frame.h"
#include "proto/worker.pb-c.h"

/* Must equal ufworker.Version.VERSION_CURRENT. */
#define UF_WORKER_PROTO_VERSION   1u

#define UF_WORKER_MAX_ID          128u          /* call_id */
#define UF_WORKER_MAX_NAME        256u          /* content type */
#define UF_WORKER_MAX_TEXT        4096u         /* messages */
#define UF_WORKER_MAX_LOGS        (64u << 10)
#define UF_WORKER_MAX_BODY        (6u << 20)    /* event, result body */

typedef Ufworker__WorkerMsg uf_wmsg;

/* Point `m` at `msg` as its one message of type `c` (nothing copied). */
void uf_wmsg_wrap(uf_wmsg *m, Ufworker__WorkerMsg__MsgCase c, void *msg);

/* Pack `m` (version stamped) into a malloc'd payload: 0, -EINVAL (no or an
 * unknown message set, or a field over its limit), -EMSGSIZE, -ENOMEM. */
int uf_wmsg_pack(uf_wmsg *m, struct uf_frame *out) UF_WUR;

/* Pack and write one frame on a blocking or nonblocking fd. */
int uf_wmsg_send(int fd, uf_wmsg *m, int timeout_ms) UF_WUR;

/* Decode a payload: 0 with *out set (free with uf_wmsg_free), or -EBADMSG
 * (wire format), -EPROTONOSUPPORT (version), -ENOMSG (no known message),
 * -EINVAL (a field over its limit). */
int uf_wmsg_decode(const uint8_t *p, size_t len, uf_wmsg **out) UF_WUR;

/* Read one frame and decode it. */
int uf_wmsg_recv(int fd, uf_wmsg **out, int timeout_ms) UF_WUR;

/* Range checks decode applies (also before sending): 0 or -EINVAL. */
int uf_wmsg_validate(const uf_wmsg *m) UF_WUR;

void uf_wmsg_free(uf_wmsg *m);

const char *uf_wmsg_type_name(Ufworker__WorkerMsg__MsgCase c);
/* "none", "unhandled", "timeout", "crashed", "no_capacity", "internal",
 * "draining"; "unknown" otherwise. */
const char *uf_wmsg_error_name(Ufworker__ErrorKind k);
/* "clone", "warm", "reset"; "" otherwise. */
const char *uf_wmsg_start_name(Ufworker__StartType t);

#endif
