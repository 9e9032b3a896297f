/* pb_check.h — checks on decoded protobuf-c messages that protobuf-c itself
 * does not make, shared by the agent protocol (agent_msg.c) and the
 * runtimed <-> worker protocol (worker_msg.c).  Owns no state.
 */
#ifndef UF_PB_CHECK_H
#define UF_PB_CHECK_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

/* protobuf-c 1.4.1 accepts a multi-byte varint tag that encodes field 0
 * (e.g. 0x80 0x00) as an unknown field, and would re-encode it as 0x00,
 * which it then refuses (found by fuzz_agent_proto and fuzz_worker_proto).
 * Field 0 does not exist in protobuf: false when m or any message nested in
 * it (at most 4 levels deep, more than our schemas use) carries one. */
bool uf_pb_unknown_fields_ok(const ProtobufCMessage *m);

#endif
