/* fuzz_worker_proto.c — libFuzzer target over what runtimed parses from a
 * (possibly compromised) uf-worker: the byte stream of its socket goes
 * through the frame decoder runtimed/wproc.c uses (proto/frame.h, fed in
 * input-chosen chunk sizes, at runtimed's UF_FRAME_MAX or a small maximum),
 * and every frame through uf_wmsg_decode() (proto/worker_msg.h), whose
 * promise is checked: a decoded message passes uf_wmsg_validate(), every
 * string and byte field is within its limit and readable, and it packs and
 * decodes again to the same message type and bytes.  (What function.c then
 * does with a valid message is not covered here.)
 *
 * Input: byte 0 picks the chunking, byte 1 the decoder's maximum, the rest
 * is the stream.  Seeds: tests/fuzz/worker/ (written by this file built with
 * -DFUZZ_WORKER_SEEDS: make fuzz-worker-seeds).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"
#include "proto/worker_msg.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifndef FUZZ_WORKER_SEEDS
static volatile uint64_t sink;

static void touch(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 0;
	for (size_t i = 0; i < n; i++)
		h = h * 31 + b[i];
	sink += h;
}

/* A decoded string is NUL-terminated within its limit. */
static void str(const char *s, size_t max)
{
	if (!s)
		return;
	size_t n = strnlen(s, max + 1);
	CHECK(n <= max);
	touch(s, n);
}

static void bytes(ProtobufCBinaryData b, size_t max)
{
	CHECK(b.len <= max);
	CHECK(b.len == 0 || b.data != NULL);
	touch(b.data, b.len);
}

static void touch_msg(const uf_wmsg *m)
{
	switch (m->msg_case) {
	case UFWORKER__WORKER_MSG__MSG_INVOKE:
		str(m->invoke->call_id, UF_WORKER_MAX_ID);
		str(m->invoke->content_type, UF_WORKER_MAX_NAME);
		bytes(m->invoke->event, UF_WORKER_MAX_BODY);
		break;
	case UFWORKER__WORKER_MSG__MSG_RESULT:
		str(m->result->call_id, UF_WORKER_MAX_ID);
		str(m->result->content_type, UF_WORKER_MAX_NAME);
		str(m->result->message, UF_WORKER_MAX_TEXT);
		bytes(m->result->body, UF_WORKER_MAX_BODY);
		bytes(m->result->logs, UF_WORKER_MAX_LOGS);
		touch(uf_wmsg_error_name(m->result->error_kind), 1);
		touch(uf_wmsg_start_name(m->result->start_type), 1);
		break;
	case UFWORKER__WORKER_MSG__MSG_BUILD_RESULT:
		str(m->build_result->message, UF_WORKER_MAX_TEXT);
		break;
	case UFWORKER__WORKER_MSG__MSG_PREEMPT:
		str(m->preempt->call_id, UF_WORKER_MAX_ID);
		break;
	case UFWORKER__WORKER_MSG__MSG_PREEMPTED:
		str(m->preempted->call_id, UF_WORKER_MAX_ID);
		break;
	case UFWORKER__WORKER_MSG__MSG_RESUME:
		str(m->resume->call_id, UF_WORKER_MAX_ID);
		break;
	case UFWORKER__WORKER_MSG__MSG_STATS:
		sink += m->stats->live + m->stats->warm + m->stats->busy + m->stats->invocations;
		break;
	case UFWORKER__WORKER_MSG__MSG_READY:
		sink += m->ready->pid + m->ready->template_bytes + m->ready->mem_bytes;
		break;
	default:
		break;
	}
}

/* Every decoded message must pack and decode back to the same bytes.  A
 * field-0 tag (0x80 0x00), which protobuf-c accepts and cannot re-encode, is
 * refused by uf_wmsg_decode (proto/pb_check.h); the input that found it is
 * kept in the corpus (worker/tag0). */
static void check_payload(const uint8_t *p, size_t n)
{
	uf_wmsg *m = NULL, *again = NULL;
	struct uf_frame f1, f2;
	int rc = uf_wmsg_decode(p, n, &m);
	if (rc < 0) {
		CHECK(rc == -EBADMSG || rc == -EPROTONOSUPPORT || rc == -ENOMSG || rc == -EINVAL ||
		      rc == -ENOMEM);
		return;
	}
	CHECK(m != NULL && m->version == UF_WORKER_PROTO_VERSION);
	CHECK(uf_wmsg_validate(m) == 0);
	touch(uf_wmsg_type_name(m->msg_case), 1);
	touch_msg(m);
	rc = uf_wmsg_pack(m, &f1);
	CHECK(rc == 0 || rc == -EMSGSIZE);
	if (rc == 0) {
		CHECK(uf_wmsg_decode(f1.data, f1.len, &again) == 0);
		CHECK(again->msg_case == m->msg_case);
		CHECK(uf_wmsg_pack(again, &f2) == 0);
		CHECK(f2.len == f1.len && memcmp(f1.data, f2.data, f1.len) == 0);
		uf_frame_free(&f2);
		uf_wmsg_free(again);
		uf_frame_free(&f1);
	}
	uf_wmsg_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint8_t chunking = data[0], maxsel = data[1];
	data += 2;
	size -= 2;

	/* Odd selectors give small maxima so the oversize path is reachable;
	 * even ones runtimed's own (UF_FRAME_MAX). */
	size_t max = (maxsel & 1) ? 1 + (size_t)maxsel * 13 : UF_FRAME_MAX;
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
			CHECK(f.len <= max);
			check_payload(f.data, f.len);
			uf_frame_free(&f);
		}
		if (rc < 0) { /* runtimed kills the worker here (protocol_error) */
			CHECK(rc == -EMSGSIZE || rc == -ENOMEM);
			break;
		}
		off += chunk;
	}
	int eof = uf_frame_dec_eof(&d);
	CHECK(eof == 0 || eof == -EPIPE);
	uf_frame_dec_free(&d);

	check_payload(data, size);   /* the whole input as one payload, too */
	return 0;
}
#else
/* The seed corpus: each seed is two selector bytes and a stream of framed
 * messages a worker sends (Ready, Stats, Result, BuildResult, Preempted). */
static uint8_t seed[1 << 16];
static size_t seed_len;

static void put(uf_wmsg *m)
{
	struct uf_frame f;
	CHECK(uf_wmsg_pack(m, &f) == 0);
	CHECK(seed_len + UF_FRAME_HDR_LEN + f.len <= sizeof seed);
	uf_frame_put_hdr(seed + seed_len, (uint32_t)f.len);
	memcpy(seed + seed_len + UF_FRAME_HDR_LEN, f.data, f.len);
	seed_len += UF_FRAME_HDR_LEN + f.len;
	uf_frame_free(&f);
}

static void write_seed(const char *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *fp = fopen(path, "wb");
	CHECK(fp && fwrite(seed, 1, seed_len, fp) == seed_len && fclose(fp) == 0);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "tests/fuzz/worker";
	uf_wmsg m = UFWORKER__WORKER_MSG__INIT;

	Ufworker__Ready ready = UFWORKER__READY__INIT;
	ready.pid = 42, ready.template_bytes = 1 << 20, ready.mem_bytes = 128 << 20, ready.warm = 1;
	Ufworker__Stats stats = UFWORKER__STATS__INIT;
	stats.live = 2, stats.warm = 1, stats.busy = 1, stats.invocations = 7;
	Ufworker__Result res = UFWORKER__RESULT__INIT;
	res.call_id = "c-1", res.status = 200, res.content_type = "text/plain";
	res.body.data = (uint8_t *)"hello, soak!\n", res.body.len = 13;
	res.logs.data = (uint8_t *)"log line\n", res.logs.len = 9;
	res.start_type = UFWORKER__START_TYPE__START_CLONE;
	res.restore_us = 1234;
	res.duration_us = 99;
	Ufworker__BuildResult br = UFWORKER__BUILD_RESULT__INIT;
	br.message = "built", br.template_bytes = 4096, br.build_us = 5;
	Ufworker__Preempted pre = UFWORKER__PREEMPTED__INIT;
	pre.call_id = "c-2", pre.ran_us = 10;

	seed[0] = 0x80, seed[1] = 0, seed_len = 2;
	uf_wmsg_wrap(&m, UFWORKER__WORKER_MSG__MSG_READY, &ready), put(&m);
	uf_wmsg_wrap(&m, UFWORKER__WORKER_MSG__MSG_STATS, &stats), put(&m);
	uf_wmsg_wrap(&m, UFWORKER__WORKER_MSG__MSG_RESULT, &res), put(&m);
	write_seed(dir, "serve");

	seed[0] = 3, seed[1] = 0, seed_len = 2;
	uf_wmsg_wrap(&m, UFWORKER__WORKER_MSG__MSG_BUILD_RESULT, &br), put(&m);
	write_seed(dir, "build");

	seed[0] = 5, seed[1] = 9, seed_len = 2;
	res.status = 502;
	res.error_kind = UFWORKER__ERROR_KIND__ERROR_CRASHED;
	res.message = "crashed";
	uf_wmsg_wrap(&m, UFWORKER__WORKER_MSG__MSG_RESULT, &res), put(&m);
	uf_wmsg_wrap(&m, UFWORKER__WORKER_MSG__MSG_PREEMPTED, &pre), put(&m);
	write_seed(dir, "error-small-max");
	return 0;
}
#endif
