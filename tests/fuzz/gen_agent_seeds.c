/* gen_agent_seeds.c — writes the seed corpus of fuzz_agent_proto into
 * tests/fuzz/agent/: each seed is the fuzzer's 2 control bytes followed by
 * one or more valid frames of the agent protocol (plus a few edge cases).
 *
 *   gcc -std=gnu11 -D_GNU_SOURCE -I. -Ibuild/gen tests/fuzz/gen_agent_seeds.c proto/frame.c proto/agent_msg.c build/gen/proto/agent.pb-c.c -lprotobuf-c -o build/gen_agent_seeds && build/gen_agent_seeds tests/fuzz/agent
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/agent_msg.h"

static uint8_t stream[1 << 16];
static size_t slen;

static void begin(uint8_t chunking, uint8_t maxsel)
{
	stream[0] = chunking;
	stream[1] = maxsel;
	slen = 2;
}

static void add(Ufagent__Envelope__MsgCase c, void *msg)
{
	uf_env env = UFAGENT__ENVELOPE__INIT;
	struct uf_frame f;
	uf_msg_wrap(&env, c, msg);
	if (uf_msg_pack(&env, &f) != 0 || slen + 4 + f.len > sizeof stream)
		abort();
	uf_frame_put_hdr(stream + slen, (uint32_t)f.len);
	memcpy(stream + slen + 4, f.data, f.len);
	slen += 4 + f.len;
	uf_frame_free(&f);
}

static void add_raw(const void *p, size_t n)
{
	if (slen + n > sizeof stream)
		abort();
	memcpy(stream + slen, p, n);
	slen += n;
}

static void put(const char *dir, const char *name)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(stream, 1, slen, f) != slen || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "tests/fuzz/agent";
	uint8_t bytes[256];
	for (size_t i = 0; i < sizeof bytes; i++)
		bytes[i] = (uint8_t)(i * 37 + 11);

	Ufagent__Hello h = UFAGENT__HELLO__INIT;
	h.protocol_version = UF_AGENT_PROTO_VERSION;
	h.agent_build = "seed";
	h.runtime = "echo";
	h.state = UFAGENT__AGENT_STATE__AGENT_STATE_READY;
	begin(0x80, 0);
	add(UFAGENT__ENVELOPE__MSG_HELLO, &h);
	put(dir, "hello");

	Ufagent__Init in = UFAGENT__INIT__INIT;
	Ufagent__Init__EnvEntry e1 = UFAGENT__INIT__ENV_ENTRY__INIT, e2 = UFAGENT__INIT__ENV_ENTRY__INIT;
	Ufagent__Init__EnvEntry *ep[2] = { &e1, &e2 };
	e1.key = "PATH";
	e1.value = "/bin";
	e2.key = "MODE";
	e2.value = "x=y";
	in.package.data = bytes;
	in.package.len = 200;
	in.runtime = "python";
	in.handler = "handler.handle";
	in.n_env = 2;
	in.env = ep;
	in.memory_mb = 128;
	in.timeout_ms = 3000;
	begin(3, 0);
	add(UFAGENT__ENVELOPE__MSG_INIT, &in);
	put(dir, "init");

	Ufagent__Invoke iv = UFAGENT__INVOKE__INIT;
	iv.call_id = "call-1";
	iv.deadline_ms = 3000;
	iv.event.data = bytes;
	iv.event.len = 64;
	iv.content_type = "application/json";
	Ufagent__Ping ping = UFAGENT__PING__INIT;
	ping.nonce = 0x0102030405060708ull;
	Ufagent__Fixup fx = UFAGENT__FIXUP__INIT;
	fx.entropy.data = bytes;
	fx.entropy.len = 48;
	fx.realtime_ns = 1700000000000000000ll;
	Ufagent__Shutdown sd = UFAGENT__SHUTDOWN__INIT;
	sd.status = 3;
	begin(5, 0);
	add(UFAGENT__ENVELOPE__MSG_FIXUP, &fx);
	add(UFAGENT__ENVELOPE__MSG_PING, &ping);
	add(UFAGENT__ENVELOPE__MSG_INVOKE, &iv);
	add(UFAGENT__ENVELOPE__MSG_SHUTDOWN, &sd);
	put(dir, "session");

	Ufagent__Result r = UFAGENT__RESULT__INIT;
	r.call_id = "call-1";
	r.status = 200;
	r.body.data = bytes;
	r.body.len = 100;
	r.logs.data = bytes + 100;
	r.logs.len = 20;
	r.handler_us = 1234;
	r.content_type = "text/plain";
	Ufagent__FixupAck fa = UFAGENT__FIXUP_ACK__INIT;
	fa.reseed_errno = 1;
	Ufagent__Pong pong = UFAGENT__PONG__INIT;
	pong.nonce = 9;
	Ufagent__InitResult ir = UFAGENT__INIT_RESULT__INIT;
	ir.error = "no such module";
	ir.duration_us = 5;
	begin(0x80, 0);
	add(UFAGENT__ENVELOPE__MSG_INIT_RESULT, &ir);
	add(UFAGENT__ENVELOPE__MSG_FIXUP_ACK, &fa);
	add(UFAGENT__ENVELOPE__MSG_RESULT, &r);
	add(UFAGENT__ENVELOPE__MSG_PONG, &pong);
	put(dir, "replies");

	Ufagent__Error er = UFAGENT__ERROR__INIT;
	er.code = UFAGENT__ERROR_CODE__ERROR_VERSION_MISMATCH;
	er.message = "host speaks 1";
	begin(1, 0);
	add(UFAGENT__ENVELOPE__MSG_ERROR, &er);
	put(dir, "error");

	/* Edge cases: a version-2 envelope, an unknown message type, an empty
	 * frame, and a declared length over a small maximum. */
	static const uint8_t v2[] = { 4, 0, 0, 0, 0x08, 0x02, 0x52, 0x00 };
	static const uint8_t unk[] = { 5, 0, 0, 0, 0x08, 0x01, 0x9a, 0x06, 0x00 };
	static const uint8_t empty[] = { 0, 0, 0, 0 };
	static const uint8_t big[] = { 0xff, 0xff, 0x00, 0x00, 0x08, 0x01 };
	begin(2, 0);
	add_raw(v2, sizeof v2);
	add_raw(unk, sizeof unk);
	add_raw(empty, sizeof empty);
	put(dir, "odd");
	begin(0x80, 1);
	add_raw(big, sizeof big);
	put(dir, "oversized");
	return 0;
}
