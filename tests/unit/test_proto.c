/* test_proto.c — framing (blocking and incremental) and envelope
 * encode/decode of the agent protocol: round trips, truncation, oversized
 * and hostile input, version and type checks, range checks. */
#include "tests/unit/ut.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto/agent_msg.h"
#include "proto/frame.h"

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(rng_next(&s) >> 24);
}

static void pair(int sv[2])
{
	UT_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
}

/* Fork a writer that sends `n` raw bytes on fd, then closes it. */
static pid_t spawn_writer(int fd, const void *p, size_t n)
{
	fflush(NULL);
	pid_t pid = fork();
	UT_ASSERT(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		const uint8_t *b = p;
		while (n) {
			ssize_t w = write(fd, b, n);
			if (w <= 0)
				_exit(1);
			b += w;
			n -= (size_t)w;
		}
		_exit(0);
	}
	return pid;
}

static void reap(pid_t pid)
{
	int st;
	UT_ASSERT(waitpid(pid, &st, 0) == pid);
	UT_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static const size_t sizes[] = {
	0, 1, 3, 4, 5, 255, 4096, 65535, 65536, 65537, (1u << 20) + 7,
	6u << 20, UF_FRAME_MAX,
};
#define NSIZES (sizeof sizes / sizeof sizes[0])

UT_TEST(proto_frame_roundtrip_sizes)
{
	int sv[2];
	pair(sv);
	fflush(NULL);
	pid_t pid = fork();
	UT_ASSERT(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(sv[0]);
		uint8_t *buf = malloc(UF_FRAME_MAX);
		for (size_t i = 0; i < NSIZES; i++) {
			fill(buf, sizes[i], i);
			if (uf_frame_write(sv[1], buf, sizes[i], 20000) != 0)
				_exit(1);
		}
		free(buf);
		_exit(0);
	}
	close(sv[1]);
	uint8_t *want = malloc(UF_FRAME_MAX);
	for (size_t i = 0; i < NSIZES; i++) {
		struct uf_frame f;
		UT_EQ(uf_frame_read(sv[0], &f, 0, 20000), 0);
		UT_EQ(f.len, sizes[i]);
		fill(want, sizes[i], i);
		UT_ASSERT(f.len == 0 || memcmp(f.data, want, f.len) == 0);
		uf_frame_free(&f);
	}
	struct uf_frame f;
	UT_EQ(uf_frame_read(sv[0], &f, 0, 5000), UF_FRAME_CLOSED);
	UT_ASSERT(f.data == NULL && f.len == 0);
	free(want);
	reap(pid);
}

UT_TEST(proto_frame_decoder_chunks)
{
	/* 60 frames, sizes mixed, one of 6 MiB, fed in random chunks. */
	enum { N = 60 };
	size_t len[N], total = 0;
	uint64_t s = 42;
	for (int i = 0; i < N; i++) {
		len[i] = i == 30 ? (6u << 20) : (i % 7 == 0 ? 0 : rng_next(&s) % 200000);
		total += UF_FRAME_HDR_LEN + len[i];
	}
	uint8_t *stream = malloc(total), *p = stream;
	for (int i = 0; i < N; i++) {
		uf_frame_put_hdr(p, (uint32_t)len[i]);
		fill(p + UF_FRAME_HDR_LEN, len[i], (uint64_t)i + 100);
		p += UF_FRAME_HDR_LEN + len[i];
	}
	uint8_t *want = malloc(6u << 20);
	for (int mode = 0; mode < 2; mode++) {
		struct uf_frame_dec d;
		uf_frame_dec_init(&d, 0);
		int got = 0;
		size_t off = 0;
		while (off < total) {
			size_t chunk = mode == 0 ? 1 + rng_next(&s) % 70000 : 1 + rng_next(&s) % 3;
			if (mode == 1 && off > 200000)
				chunk = 1 + rng_next(&s) % 9000; /* keep the tiny mode fast */
			if (chunk > total - off)
				chunk = total - off;
			size_t c_off = 0;
			while (c_off < chunk) {
				size_t used;
				int rc = uf_frame_dec_feed(&d, stream + off + c_off, chunk - c_off, &used);
				UT_ASSERT(rc >= 0);
				c_off += used;
				if (rc == 1) {
					struct uf_frame f;
					UT_EQ(uf_frame_dec_take(&d, &f), 0);
					UT_ASSERT(got < N);
					UT_EQ(f.len, len[got]);
					fill(want, f.len, (uint64_t)got + 100);
					UT_ASSERT(f.len == 0 || memcmp(f.data, want, f.len) == 0);
					uf_frame_free(&f);
					got++;
				} else {
					UT_EQ(c_off, chunk); /* 0: took everything offered */
				}
			}
			off += chunk;
		}
		UT_EQ(got, N);
		UT_EQ(uf_frame_dec_eof(&d), 0);
		uf_frame_dec_free(&d);
	}
	free(want);
	free(stream);
}

UT_TEST(proto_frame_eof_mid_frame)
{
	uint8_t raw[4 + 50];
	struct uf_frame f;
	int sv[2];

	uf_frame_put_hdr(raw, 100);
	memset(raw + 4, 0xab, 50);
	/* Cut in the header, cut in the payload, nothing at all. */
	size_t cuts[] = { 2, sizeof raw, 0 };
	int want[] = { -EPIPE, -EPIPE, UF_FRAME_CLOSED };
	for (int i = 0; i < 3; i++) {
		pair(sv);
		pid_t pid = spawn_writer(sv[1], raw, cuts[i]);
		close(sv[1]);
		UT_EQ(uf_frame_read(sv[0], &f, 0, 5000), want[i]);
		UT_ASSERT(f.data == NULL);
		close(sv[0]);
		reap(pid);

		struct uf_frame_dec d;
		size_t used;
		uf_frame_dec_init(&d, 0);
		UT_ASSERT(uf_frame_dec_feed(&d, raw, cuts[i], &used) == 0);
		UT_EQ(used, cuts[i]);
		UT_EQ(uf_frame_dec_eof(&d), i < 2 ? -EPIPE : 0);
		uf_frame_dec_free(&d);
	}
}

UT_TEST(proto_frame_oversized_refused)
{
	uint32_t decl[] = { UF_FRAME_MAX + 1, 0xffffffffu, 16u << 20 };
	for (int i = 0; i < 3; i++) {
		int sv[2];
		uint8_t hdr[4];
		struct uf_frame f;
		pair(sv);
		uf_frame_put_hdr(hdr, decl[i]);
		UT_EQ(write(sv[1], hdr, 4), 4);
		/* The peer stays open and silent: waiting for the payload would
		 * time out; refusing from the header alone returns at once. */
		UT_EQ(uf_frame_read(sv[0], &f, 0, 2000), -EMSGSIZE);
		UT_ASSERT(f.data == NULL);
		close(sv[0]);
		close(sv[1]);

		struct uf_frame_dec d;
		size_t used;
		uf_frame_dec_init(&d, 0);
		UT_EQ(uf_frame_dec_feed(&d, hdr, 4, &used), -EMSGSIZE);
		UT_ASSERT(d.buf == NULL && d.cap == 0); /* nothing allocated */
		UT_EQ(uf_frame_dec_feed(&d, hdr, 4, &used), -EMSGSIZE); /* sticky */
		UT_EQ(used, 0);
		uf_frame_dec_free(&d);
	}
	/* A caller's smaller maximum is honoured too. */
	int sv[2];
	uint8_t hdr[4];
	struct uf_frame f;
	pair(sv);
	uf_frame_put_hdr(hdr, 1001);
	UT_EQ(write(sv[1], hdr, 4), 4);
	UT_EQ(uf_frame_read(sv[0], &f, 1000, 2000), -EMSGSIZE);
	close(sv[0]);
	close(sv[1]);
	/* Writers refuse too: nothing goes out. */
	pair(sv);
	UT_EQ(uf_frame_write(sv[1], hdr, UF_FRAME_MAX + 1u, 1000), -EMSGSIZE);
	close(sv[1]);
	UT_EQ(uf_frame_read(sv[0], &f, 0, 1000), UF_FRAME_CLOSED);
	close(sv[0]);
}

UT_TEST(proto_frame_big_declared_stall)
{
	/* A peer that declares the maximum and sends little pins little memory
	 * (decoder) and is cut off by the deadline (blocking read). */
	uint8_t raw[4 + 10] = { 0 };
	uf_frame_put_hdr(raw, UF_FRAME_MAX);
	struct uf_frame_dec d;
	size_t used;
	uf_frame_dec_init(&d, 0);
	UT_EQ(uf_frame_dec_feed(&d, raw, sizeof raw, &used), 0);
	UT_EQ(used, sizeof raw);
	UT_ASSERT(d.cap <= (64u << 10));
	UT_EQ(uf_frame_dec_eof(&d), -EPIPE);
	uf_frame_dec_free(&d);

	int sv[2];
	struct uf_frame f;
	pair(sv);
	UT_EQ(write(sv[1], raw, sizeof raw), (ssize_t)sizeof raw);
	UT_EQ(uf_frame_read(sv[0], &f, 0, 300), -ETIMEDOUT);
	UT_ASSERT(f.data == NULL);
	close(sv[0]);
	close(sv[1]);
}

/* ---- envelopes ---- */

static uf_env *roundtrip(uf_env *env)
{
	struct uf_frame f;
	uf_env *out;
	UT_EQ(uf_msg_pack(env, &f), 0);
	UT_EQ(uf_msg_decode(f.data, f.len, &out, NULL), 0);
	UT_EQ(out->version, UF_AGENT_PROTO_VERSION);
	UT_EQ(out->msg_case, env->msg_case);
	uf_frame_free(&f);
	return out;
}

UT_TEST(proto_msg_roundtrip_all)
{
	uf_env env = UFAGENT__ENVELOPE__INIT, *o;

	Ufagent__Hello h = UFAGENT__HELLO__INIT;
	h.protocol_version = 1;
	h.agent_build = "b1";
	h.runtime = "echo";
	h.state = UFAGENT__AGENT_STATE__AGENT_STATE_READY;
	uf_msg_wrap(&env, UFAGENT__ENVELOPE__MSG_HELLO, &h);
	o = roundtrip(&env);
	UT_ASSERT(strcmp(o->hello->runtime, "echo") == 0 && strcmp(o->hello->agent_build, "b1") == 0);
	UT_EQ(o->hello->state, UFAGENT__AGENT_STATE__AGENT_STATE_READY);
	uf_msg_free(o);

	Ufagent__Init in = UFAGENT__INIT__INIT;
	Ufagent__Init__EnvEntry e1 = UFAGENT__INIT__ENV_ENTRY__INIT, *ep[1] = { &e1 };
	e1.key = "K";
	e1.value = "v=1";
	uint8_t pkg[300];
	fill(pkg, sizeof pkg, 7);
	in.package.data = pkg;
	in.package.len = sizeof pkg;
	in.runtime = "python";
	in.handler = "handler.handle";
	in.n_env = 1;
	in.env = ep;
	in.memory_mb = 128;
	in.timeout_ms = 3000;
	uf_msg_wrap(&env, UFAGENT__ENVELOPE__MSG_INIT, &in);
	o = roundtrip(&env);
	UT_EQ(o->init->package.len, sizeof pkg);
	UT_ASSERT(memcmp(o->init->package.data, pkg, sizeof pkg) == 0);
	UT_EQ(o->init->n_env, 1);
	UT_ASSERT(strcmp(o->init->env[0]->key, "K") == 0 && strcmp(o->init->env[0]->value, "v=1") == 0);
	UT_EQ(o->init->memory_mb, 128);
	UT_EQ(o->init->timeout_ms, 3000);
	uf_msg_free(o);

	Ufagent__Invoke iv = UFAGENT__INVOKE__INIT;
	iv.call_id = "c-1";
	iv.deadline_ms = 1500;
	iv.event.data = pkg;
	iv.event.len = 10;
	iv.content_type = "text/plain";
	uf_msg_wrap(&env, UFAGENT__ENVELOPE__MSG_INVOKE, &iv);
	o = roundtrip(&env);
	UT_ASSERT(strcmp(o->invoke->call_id, "c-1") == 0);
	UT_EQ(o->invoke->deadline_ms, 1500);
	UT_ASSERT(o->invoke->event.len == 10 && memcmp(o->invoke->event.data, pkg, 10) == 0);
	uf_msg_free(o);

	Ufagent__Result r = UFAGENT__RESULT__INIT;
	r.call_id = "c-1";
	r.status = 404;
	r.body.data = pkg;
	r.body.len = 5;
	r.logs.data = pkg + 5;
	r.logs.len = 6;
	r.handler_us = 77;
	r.error = "boom";
	uf_msg_wrap(&env, UFAGENT__ENVELOPE__MSG_RESULT, &r);
	o = roundtrip(&env);
	UT_EQ(o->result->status, 404);
	UT_ASSERT(o->result->logs.len == 6 && memcmp(o->result->logs.data, pkg + 5, 6) == 0);
	UT_EQ(o->result->handler_us, 77);
	UT_ASSERT(strcmp(o->result->error, "boom") == 0);
	uf_msg_free(o);

	Ufagent__Fixup fx = UFAGENT__FIXUP__INIT;
	fx.entropy.data = pkg;
	fx.entropy.len = 48;
	fx.realtime_ns = 1700000000123456789ll;
	uf_msg_wrap(&env, UFAGENT__ENVELOPE__MSG_FIXUP, &fx);
	o = roundtrip(&env);
	UT_ASSERT(o->fixup->entropy.len == 48 && memcmp(o->fixup->entropy.data, pkg, 48) == 0);
	UT_EQ(o->fixup->realtime_ns, 1700000000123456789ll);
	uf_msg_free(o);

	Ufagent__FixupAck fa = UFAGENT__FIXUP_ACK__INIT;
	fa.reseed_errno = EPERM;
	uf_msg_wrap(&env, UFAGENT__ENVELOPE__MSG_FIXUP_ACK, &fa);
	o = roundtrip(&env);
	UT_EQ(o->fixup_ack->reseed_errno, EPERM);
	UT_EQ(o->fixup_ack->ok, 0);
	uf_msg_free(o);

	Ufagent__Ping pi = UFAGENT__PING__INIT;
	pi.nonce = 0xfeedface12345678ull;
	uf_msg_wrap(&env, UFAGENT__ENVELOPE__MSG_PING, &pi);
	o = roundtrip(&env);
	UT_ASSERT(o->ping->nonce == 0xfeedface12345678ull);
	uf_msg_free(o);

	Ufagent__Shutdown sd = UFAGENT__SHUTDOWN__INIT; /* all defaults: empty sub-message */
	uf_msg_wrap(&env, UFAGENT__ENVELOPE__MSG_SHUTDOWN, &sd);
	o = roundtrip(&env);
	UT_EQ(o->shutdown->status, 0);
	uf_msg_free(o);

	Ufagent__Error er = UFAGENT__ERROR__INIT;
	er.code = UFAGENT__ERROR_CODE__ERROR_TOO_LARGE;
	er.message = "x";
	uf_msg_wrap(&env, UFAGENT__ENVELOPE__MSG_ERROR, &er);
	o = roundtrip(&env);
	UT_EQ(o->error->code, UFAGENT__ERROR_CODE__ERROR_TOO_LARGE);
	uf_msg_free(o);
}

static int dec(const uint8_t *p, size_t n, uint32_t *ver)
{
	uf_env *e;
	int rc = uf_msg_decode(p, n, &e, ver);
	if (rc == 0)
		uf_msg_free(e);
	else
		UT_ASSERT(e == NULL);
	return rc;
}

UT_TEST(proto_msg_malformed)
{
	/* version 1, then field 10 (ping) declared 5 bytes long with 1 there */
	static const uint8_t trunc[] = { 0x08, 0x01, 0x52, 0x05, 0x08 };
	/* field 1 as length-delimited */
	static const uint8_t v_wt[] = { 0x0a, 0x01, 0x01 };
	/* ping field sent as a varint (wrong wire type for a known field) */
	static const uint8_t ping_wt[] = { 0x08, 0x01, 0x50, 0x01 };
	/* an 11-byte varint */
	static const uint8_t long_vi[] = { 0x08, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81,
					   0x81, 0x81, 0x81, 0x81, 0x01 };
	/* ping's nonce field truncated inside the sub-message */
	static const uint8_t sub_trunc[] = { 0x08, 0x01, 0x52, 0x02, 0x08, 0x81 };
	UT_EQ(dec(trunc, sizeof trunc, NULL), -EBADMSG);
	UT_EQ(dec(v_wt, sizeof v_wt, NULL), -EBADMSG);
	UT_EQ(dec(ping_wt, sizeof ping_wt, NULL), -EBADMSG);
	UT_EQ(dec(long_vi, sizeof long_vi, NULL), -EBADMSG);
	UT_EQ(dec(sub_trunc, sizeof sub_trunc, NULL), -EBADMSG);
	/* field 0 spelled as a two-byte varint inside ping: protobuf-c takes
	 * it as an unknown field; we refuse it (found by the fuzzer) */
	static const uint8_t tag0[] = { 0x08, 0x01, 0x52, 0x03, 0x80, 0x00, 0x14 };
	UT_EQ(dec(tag0, sizeof tag0, NULL), -EBADMSG);

	/* Every prefix of a valid Invoke and random garbage: an error or a
	 * checked envelope, never a crash. */
	Ufagent__Invoke iv = UFAGENT__INVOKE__INIT;
	uint8_t ev[64];
	fill(ev, sizeof ev, 3);
	iv.call_id = "abc";
	iv.event.data = ev;
	iv.event.len = sizeof ev;
	uf_env env = UFAGENT__ENVELOPE__INIT;
	uf_msg_wrap(&env, UFAGENT__ENVELOPE__MSG_INVOKE, &iv);
	struct uf_frame f;
	UT_EQ(uf_msg_pack(&env, &f), 0);
	for (size_t n = 0; n < f.len; n++)
		UT_ASSERT(dec(f.data, n, NULL) < 0);
	UT_EQ(dec(f.data, f.len, NULL), 0);
	uint64_t s = 9;
	for (int i = 0; i < 20000; i++) {
		uint8_t junk[48];
		size_t n = rng_next(&s) % sizeof junk;
		fill(junk, n, (uint64_t)i);
		if (n >= 2) {
			junk[0] = 0x08; /* version 1 so the unpacker runs */
			junk[1] = 0x01;
		}
		(void)dec(junk, n, NULL);
	}
	uf_frame_free(&f);
}

UT_TEST(proto_msg_version_and_type)
{
	uint32_t ver;
	/* version 2 + ping */
	static const uint8_t v2[] = { 0x08, 0x02, 0x52, 0x00 };
	/* version 7 + fields this schema would reject (ping as a fixed64) */
	static const uint8_t v7[] = { 0x08, 0x07, 0x51, 1, 2, 3, 4, 5, 6, 7, 8 };
	/* no version at all, ping */
	static const uint8_t v0[] = { 0x52, 0x00 };
	/* version 1, only an unknown field 99 (bytes): a newer message type */
	static const uint8_t unk[] = { 0x08, 0x01, 0x9a, 0x06, 0x02, 0xaa, 0xbb };
	/* version 1 and nothing else */
	static const uint8_t empty[] = { 0x08, 0x01 };
	UT_EQ(dec(v2, sizeof v2, &ver), -EPROTONOSUPPORT);
	UT_EQ(ver, 2);
	UT_EQ(dec(v7, sizeof v7, &ver), -EPROTONOSUPPORT);
	UT_EQ(ver, 7);
	UT_EQ(dec(v0, sizeof v0, &ver), -EPROTONOSUPPORT);
	UT_EQ(ver, 0);
	UT_EQ(dec(NULL, 0, &ver), -EPROTONOSUPPORT);
	UT_EQ(dec(unk, sizeof unk, &ver), -ENOMSG);
	UT_EQ(ver, 1);
	UT_EQ(dec(empty, sizeof empty, NULL), -ENOMSG);

	/* Unknown fields next to known ones are ignored: ping{nonce=5, f9=..}
	 * plus envelope field 50. */
	static const uint8_t extra[] = { 0x08, 0x01, 0x52, 0x05, 0x08, 0x05, 0x4a, 0x01, 0x00,
					 0x90, 0x03, 0x01 };
	uf_env *e;
	UT_EQ(uf_msg_decode(extra, sizeof extra, &e, NULL), 0);
	UT_EQ(e->msg_case, UFAGENT__ENVELOPE__MSG_PING);
	UT_EQ(e->ping->nonce, 5);
	uf_msg_free(e);
}

static int check(Ufagent__Envelope__MsgCase c, void *m)
{
	uf_env env = UFAGENT__ENVELOPE__INIT;
	uf_msg_wrap(&env, c, m);
	struct uf_frame f;
	int rc = uf_msg_pack(&env, &f);
	UT_EQ(rc, 0);
	rc = dec(f.data, f.len, NULL);
	uf_frame_free(&f);
	return rc;
}

UT_TEST(proto_msg_ranges)
{
	uint8_t b[100] = { 0 };
	char id[UF_AGENT_MAX_ID + 2];
	memset(id, 'a', sizeof id - 1);
	id[sizeof id - 1] = '\0';

	Ufagent__Fixup fx = UFAGENT__FIXUP__INIT;
	fx.entropy.data = b;
	fx.realtime_ns = 1;
	fx.entropy.len = 31;
	UT_EQ(check(UFAGENT__ENVELOPE__MSG_FIXUP, &fx), -EINVAL);
	fx.entropy.len = 65;
	UT_EQ(check(UFAGENT__ENVELOPE__MSG_FIXUP, &fx), -EINVAL);
	fx.entropy.len = 32;
	UT_EQ(check(UFAGENT__ENVELOPE__MSG_FIXUP, &fx), 0);
	fx.realtime_ns = 0;
	UT_EQ(check(UFAGENT__ENVELOPE__MSG_FIXUP, &fx), -EINVAL);

	Ufagent__Invoke iv = UFAGENT__INVOKE__INIT;
	iv.call_id = id;
	UT_EQ(check(UFAGENT__ENVELOPE__MSG_INVOKE, &iv), -EINVAL);
	id[UF_AGENT_MAX_ID] = '\0';
	UT_EQ(check(UFAGENT__ENVELOPE__MSG_INVOKE, &iv), 0);

	Ufagent__Init in = UFAGENT__INIT__INIT;
	Ufagent__Init__EnvEntry e1 = UFAGENT__INIT__ENV_ENTRY__INIT, *ep[1] = { &e1 };
	in.n_env = 1;
	in.env = ep;
	e1.key = "A=B";
	e1.value = "";
	UT_EQ(check(UFAGENT__ENVELOPE__MSG_INIT, &in), -EINVAL);
	e1.key = "";
	UT_EQ(check(UFAGENT__ENVELOPE__MSG_INIT, &in), -EINVAL);
	e1.key = "A";
	UT_EQ(check(UFAGENT__ENVELOPE__MSG_INIT, &in), 0);

	Ufagent__Shutdown sd = UFAGENT__SHUTDOWN__INIT;
	sd.status = 256;
	UT_EQ(check(UFAGENT__ENVELOPE__MSG_SHUTDOWN, &sd), -EINVAL);

	Ufagent__Result r = UFAGENT__RESULT__INIT;
	r.status = 0;
	UT_EQ(check(UFAGENT__ENVELOPE__MSG_RESULT, &r), -EINVAL);
	r.status = 200;
	r.logs.data = malloc(UF_AGENT_MAX_LOGS + 1);
	r.logs.len = UF_AGENT_MAX_LOGS + 1;
	memset(r.logs.data, 'x', r.logs.len);
	UT_EQ(check(UFAGENT__ENVELOPE__MSG_RESULT, &r), -EINVAL);
	free(r.logs.data);

	/* Packing: no message set, and the frame size limit. */
	uf_env env = UFAGENT__ENVELOPE__INIT;
	struct uf_frame f;
	UT_EQ(uf_msg_pack(&env, &f), -EINVAL);
	Ufagent__Invoke big = UFAGENT__INVOKE__INIT;
	big.event.data = calloc(1, UF_FRAME_MAX);
	big.event.len = UF_AGENT_MAX_PAYLOAD;
	uf_msg_wrap(&env, UFAGENT__ENVELOPE__MSG_INVOKE, &big);
	UT_EQ(uf_msg_pack(&env, &f), 0);
	UT_ASSERT(f.len <= UF_FRAME_MAX);
	uf_frame_free(&f);
	big.event.len = UF_FRAME_MAX;
	UT_EQ(uf_msg_pack(&env, &f), -EMSGSIZE);
	UT_ASSERT(f.data == NULL);
	free(big.event.data);
}

UT_TEST(proto_msg_error_codes)
{
	for (int c = 1; c <= 7; c++)
		UT_EQ(uf_msg_errcode(uf_msg_errno((Ufagent__ErrorCode)c)), c);
	UT_EQ(uf_msg_errno(UFAGENT__ERROR_CODE__ERROR_INTERNAL), -EREMOTEIO);
	UT_EQ(uf_msg_errno((Ufagent__ErrorCode)999), -EREMOTEIO);
	UT_EQ(uf_msg_errcode(-ENOMEM), UFAGENT__ERROR_CODE__ERROR_INTERNAL);
	UT_ASSERT(strcmp(uf_msg_errcode_name((Ufagent__ErrorCode)999), "unknown") == 0);
	UT_ASSERT(strcmp(uf_msg_type_name(UFAGENT__ENVELOPE__MSG_FIXUP_ACK), "fixup_ack") == 0);
	UT_ASSERT(strcmp(uf_msg_type_name((Ufagent__Envelope__MsgCase)77), "unknown") == 0);
}
