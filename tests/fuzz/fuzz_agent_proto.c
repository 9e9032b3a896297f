/* fuzz_agent_proto.c — libFuzzer target over the agent protocol's receive
 * path: the incremental frame decoder fed in input-chosen chunk sizes, then
 * envelope decoding and range checks of every frame it yields, then the
 * pack/decode round trip of whatever decoded.
 *
 * Input: byte 0 picks the chunking, byte 1 the decoder's maximum frame size,
 * the rest is the byte stream a peer would send.  Seeds: tests/fuzz/agent/
 * (written by tests/fuzz/gen_agent_seeds.c).
 *
 * Build and run (from the repo root, after `make host` generated the code):
 *   mkdir -p build/fuzz && clang -g -O1 -std=gnu11 -D_GNU_SOURCE -I. -Ibuild/gen -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all tests/fuzz/fuzz_agent_proto.c proto/frame.c proto/agent_msg.c build/gen/proto/agent.pb-c.c -lprotobuf-c -o build/fuzz/fuzz_agent_proto
 *   mkdir -p build/fuzz/agent-corpus && build/fuzz/fuzz_agent_proto -max_total_time=60 build/fuzz/agent-corpus tests/fuzz/agent
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/agent_msg.h"
#include "proto/frame.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink;

/* Read every byte a consumer could read, so the sanitizers see it. */
static void touch(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 0;
	for (size_t i = 0; i < n; i++)
		h = h * 31 + b[i];
	sink += h;
}

static void touch_str(const char *s)
{
	if (s)
		touch(s, strlen(s));
}

static void touch_env(const uf_env *e)
{
	switch (e->msg_case) {
	case UFAGENT__ENVELOPE__MSG_HELLO:
		touch_str(e->hello->agent_build);
		touch_str(e->hello->runtime);
		break;
	case UFAGENT__ENVELOPE__MSG_INIT:
		touch(e->init->package.data, e->init->package.len);
		touch_str(e->init->runtime);
		touch_str(e->init->handler);
		for (size_t i = 0; i < e->init->n_env; i++) {
			touch_str(e->init->env[i]->key);
			touch_str(e->init->env[i]->value);
		}
		break;
	case UFAGENT__ENVELOPE__MSG_INIT_RESULT:
		touch_str(e->init_result->error);
		break;
	case UFAGENT__ENVELOPE__MSG_INVOKE:
		touch_str(e->invoke->call_id);
		touch_str(e->invoke->content_type);
		touch(e->invoke->event.data, e->invoke->event.len);
		break;
	case UFAGENT__ENVELOPE__MSG_RESULT:
		touch_str(e->result->call_id);
		touch_str(e->result->content_type);
		touch_str(e->result->error);
		touch(e->result->body.data, e->result->body.len);
		touch(e->result->logs.data, e->result->logs.len);
		break;
	case UFAGENT__ENVELOPE__MSG_ERROR:
		touch_str(e->error->message);
		touch_str(uf_msg_errcode_name(e->error->code));
		sink += (uint64_t)uf_msg_errno(e->error->code);
		break;
	case UFAGENT__ENVELOPE__MSG_FIXUP:
		CHECK(e->fixup->entropy.len >= UF_AGENT_ENTROPY_MIN &&
		      e->fixup->entropy.len <= UF_AGENT_ENTROPY_MAX);
		touch(e->fixup->entropy.data, e->fixup->entropy.len);
		break;
	default:
		break;
	}
}

static void check_payload(const uint8_t *p, size_t n)
{
	uf_env *env, *again;
	uint32_t ver;
	struct uf_frame f1, f2;

	int rc = uf_msg_decode(p, n, &env, &ver);
	if (rc < 0) {
		CHECK(env == NULL);
		CHECK(rc == -EBADMSG || rc == -EPROTONOSUPPORT || rc == -ENOMSG ||
		      rc == -EINVAL || rc == -ENOMEM || rc == -EMSGSIZE);
		CHECK(rc != -EPROTONOSUPPORT || ver != UF_AGENT_PROTO_VERSION);
		touch_str(uf_msg_errcode_name(uf_msg_errcode(rc)));
		return;
	}
	CHECK(env && env->version == UF_AGENT_PROTO_VERSION);
	CHECK(uf_msg_validate(env) == 0);
	touch_str(uf_msg_type_name(env->msg_case));
	touch_env(env);

	/* What decoded re-encodes, decodes to the same type, and re-encodes to
	 * the same bytes (unknown fields included). */
	rc = uf_msg_pack(env, &f1);
	CHECK(rc == 0 || rc == -EMSGSIZE);
	if (rc == 0) {
		CHECK(uf_msg_decode(f1.data, f1.len, &again, NULL) == 0);
		CHECK(again->msg_case == env->msg_case);
		CHECK(uf_msg_pack(again, &f2) == 0);
		CHECK(f2.len == f1.len && memcmp(f1.data, f2.data, f1.len) == 0);
		uf_frame_free(&f2);
		uf_msg_free(again);
		uf_frame_free(&f1);
	}
	uf_msg_free(env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint8_t chunking = data[0], maxsel = data[1];
	data += 2;
	size -= 2;

	/* Odd selectors give small maxima so the oversize path is reachable. */
	size_t max = (maxsel & 1) ? 1 + (size_t)maxsel * 13 : 0;
	struct uf_frame_dec d;
	uf_frame_dec_init(&d, max);

	size_t off = 0;
	unsigned step = 0;
	while (off < size) {
		size_t chunk = (chunking & 0x80) ? size - off : 1 + (chunking + step++ * 7u) % 23u;
		if (chunk > size - off)
			chunk = size - off;
		size_t c = 0;
		int rc = 0;
		while (c < chunk) {
			size_t used;
			rc = uf_frame_dec_feed(&d, data + off + c, chunk - c, &used);
			CHECK(used <= chunk - c);
			c += used;
			if (rc < 0)
				break;
			if (rc == 0) {
				CHECK(c == chunk);
				continue;
			}
			struct uf_frame f;
			CHECK(uf_frame_dec_take(&d, &f) == 0);
			CHECK(f.len <= d.max);
			check_payload(f.data, f.len);
			uf_frame_free(&f);
		}
		if (rc < 0) { /* the server sends Error and closes here */
			CHECK(rc == -EMSGSIZE || rc == -ENOMEM);
			CHECK(d.buf == NULL);
			break;
		}
		off += chunk;
	}
	int eof = uf_frame_dec_eof(&d);
	CHECK(eof == 0 || eof == -EPIPE);
	uf_frame_dec_free(&d);

	/* The whole input as one payload, too. */
	check_payload(data, size);
	return 0;
}
