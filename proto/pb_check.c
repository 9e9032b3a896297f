/* pb_check.c — see pb_check.h. */
#include "proto/pb_check.h"

#include <stddef.h>
#include <stdint.h>

#define PB_CHECK_DEPTH_MAX 4

static bool fields_ok(const ProtobufCMessage *m, int depth)
{
	if (depth > PB_CHECK_DEPTH_MAX)
		return false;
	for (unsigned i = 0; i < m->n_unknown_fields; i++)
		if (m->unknown_fields[i].tag == 0)
			return false;
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];
		if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + fd->quantifier_offset);
			ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *)(base + fd->offset);
			for (size_t j = 0; j < n; j++)
				if (arr[j] && !fields_ok(arr[j], depth + 1))
					return false;
			continue;
		}
		if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)(base + fd->quantifier_offset) != fd->id)
			continue;
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)(base + fd->offset);
		if (sub && !fields_ok(sub, depth + 1))
			return false;
	}
	return true;
}

bool uf_pb_unknown_fields_ok(const ProtobufCMessage *m)
{
	return fields_ok(m, 0);
}
