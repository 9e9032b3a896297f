/* test_worker_proto.c — the runtimed <-> worker protocol (proto/worker_msg.h)
 * and runtimed's side of a worker process (runtimed/wproc.h) against a
 * stand-in child, plus the worker's argument helpers. */
#include "forker/worker/build.h"
#include "forker/worker/worker.h"
#include "proto/worker_msg.h"
#include "runtimed/wproc.h"
#include "tests/unit/ut.h"

#include <signal.h>
#include <string.h>

static uf_wmsg *roundtrip(uf_wmsg *m)
{
	struct uf_frame f;
	UT_EQ(uf_wmsg_pack(m, &f), 0);
	uf_wmsg *out = NULL;
	UT_EQ(uf_wmsg_decode(f.data, f.len, &out), 0);
	uf_frame_free(&f);
	UT_ASSERT(out);
	return out;
}

UT_TEST(wmsg_result_roundtrip)
{
	Ufworker__Result r = UFWORKER__RESULT__INIT;
	r.call_id = "0123456789abcdef";
	r.status = 418;
	r.body.data = (uint8_t *)"tea";
	r.body.len = 3;
	r.logs.data = (uint8_t *)"a\nb\n";
	r.logs.len = 4;
	r.content_type = "text/x-teapot";
	r.start_type = UFWORKER__START_TYPE__START_WARM;
	r.restore_us = 17;
	r.duration_us = 99;
	r.error_kind = UFWORKER__ERROR_KIND__ERROR_UNHANDLED;
	r.message = "boom";
	uf_wmsg m = UFWORKER__WORKER_MSG__INIT;
	uf_wmsg_wrap(&m, UFWORKER__WORKER_MSG__MSG_RESULT, &r);
	uf_wmsg *o = roundtrip(&m);
	UT_EQ(o->msg_case, UFWORKER__WORKER_MSG__MSG_RESULT);
	UT_ASSERT(strcmp(o->result->call_id, r.call_id) == 0);
	UT_EQ(o->result->status, 418);
	UT_EQ(o->result->body.len, 3);
	UT_ASSERT(memcmp(o->result->body.data, "tea", 3) == 0);
	UT_EQ(o->result->logs.len, 4);
	UT_EQ(o->result->start_type, UFWORKER__START_TYPE__START_WARM);
	UT_EQ(o->result->restore_us, 17);
	UT_EQ(o->result->duration_us, 99);
	UT_EQ(o->result->error_kind, UFWORKER__ERROR_KIND__ERROR_UNHANDLED);
	UT_ASSERT(strcmp(o->result->message, "boom") == 0);
	UT_ASSERT(strcmp(uf_wmsg_start_name(o->result->start_type), "warm") == 0);
	UT_ASSERT(strcmp(uf_wmsg_error_name(o->result->error_kind), "unhandled") == 0);
	uf_wmsg_free(o);
}

UT_TEST(wmsg_refuses_out_of_range)
{
	struct uf_frame f;
	Ufworker__Result r = UFWORKER__RESULT__INIT;
	r.call_id = "x";
	r.status = 600; /* not an HTTP status */
	uf_wmsg m = UFWORKER__WORKER_MSG__INIT;
	uf_wmsg_wrap(&m, UFWORKER__WORKER_MSG__MSG_RESULT, &r);
	UT_EQ(uf_wmsg_pack(&m, &f), -EINVAL);

	char id[UF_WORKER_MAX_ID + 2];
	memset(id, 'a', sizeof(id) - 1);
	id[sizeof(id) - 1] = 0;
	Ufworker__Invoke inv = UFWORKER__INVOKE__INIT;
	inv.call_id = id;
	uf_wmsg_wrap(&m, UFWORKER__WORKER_MSG__MSG_INVOKE, &inv);
	UT_EQ(uf_wmsg_pack(&m, &f), -EINVAL);

	Ufworker__PoolConfig pc = UFWORKER__POOL_CONFIG__INIT; /* max_instances 0 */
	uf_wmsg_wrap(&m, UFWORKER__WORKER_MSG__MSG_POOL, &pc);
	UT_EQ(uf_wmsg_pack(&m, &f), -EINVAL);

	uf_wmsg empty = UFWORKER__WORKER_MSG__INIT;
	UT_EQ(uf_wmsg_pack(&empty, &f), -EINVAL);
}

UT_TEST(wmsg_decode_checks_version_and_bytes)
{
	/* A valid Drain with the version changed by hand. */
	Ufworker__Drain dr = UFWORKER__DRAIN__INIT;
	uf_wmsg m = UFWORKER__WORKER_MSG__INIT;
	uf_wmsg_wrap(&m, UFWORKER__WORKER_MSG__MSG_DRAIN, &dr);
	struct uf_frame f;
	UT_EQ(uf_wmsg_pack(&m, &f), 0);
	UT_ASSERT(f.len >= 2 && f.data[0] == 0x08 && f.data[1] == UF_WORKER_PROTO_VERSION);
	f.data[1] = 7;
	uf_wmsg *o = (uf_wmsg *)1;
	UT_EQ(uf_wmsg_decode(f.data, f.len, &o), -EPROTONOSUPPORT);
	UT_ASSERT(o == NULL);
	uf_frame_free(&f);

	static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
	UT_EQ(uf_wmsg_decode(junk, sizeof(junk), &o), -EBADMSG);
	static const uint8_t only_version[] = {0x08, 0x01};
	UT_EQ(uf_wmsg_decode(only_version, sizeof(only_version), &o), -ENOMSG);

	/* A valid Drain followed by an over-long tag naming field 0 (0x80 0x00,
	 * varint value 0): protobuf-c keeps it as an unknown field it cannot
	 * re-encode; decode refuses it (proto/pb_check.h). */
	UT_EQ(uf_wmsg_pack(&m, &f), 0);
	uint8_t tagged[64];
	UT_ASSERT(f.len + 3 <= sizeof(tagged));
	memcpy(tagged, f.data, f.len);
	memcpy(tagged + f.len, (const uint8_t[]){0x80, 0x00, 0x00}, 3);
	UT_EQ(uf_wmsg_decode(tagged, f.len, &o), 0);
	uf_wmsg_free(o);
	UT_EQ(uf_wmsg_decode(tagged, f.len + 3, &o), -EBADMSG);
	UT_ASSERT(o == NULL);
	uf_frame_free(&f);
}

UT_TEST(worker_origin_arg)
{
	struct snap_origin o;
	char arg[3 * 65 + 3];
	memset(arg, 0, sizeof(arg));
	memset(arg, 'a', 64);
	strcat(arg, "::");
	memset(arg + strlen(arg), '0', 63);
	strcat(arg, "1");
	UT_EQ(worker_parse_origin(arg, &o), 0);
	UT_EQ(o.kernel[0], 0xaa);
	UT_EQ(o.kernel[31], 0xaa);
	UT_ASSERT(!snap_hash_known(o.initrd));
	UT_EQ(o.agent[31], 0x01);
	UT_EQ(worker_parse_origin("::", &o), 0);
	UT_ASSERT(!snap_hash_known(o.kernel));
	UT_EQ(worker_parse_origin("abc::", &o), -EINVAL);    /* short hash */
	UT_EQ(worker_parse_origin(":", &o), -EINVAL);        /* two fields */
	UT_EQ(worker_parse_origin(":::", &o), -EINVAL);      /* four fields */
}

UT_TEST(worker_build_key_covers_inputs)
{
	struct build_req a = {.cmdline = "console=ttyS0", .mem_mb = 128};
	struct build_req b = a;
	char ka[17], kb[17];
	build_key(&a, ka);
	build_key(&b, kb);
	UT_EQ(strlen(ka), 16);
	UT_ASSERT(strcmp(ka, kb) == 0);
	b.origin.kernel[5] = 1;     /* another kernel */
	build_key(&b, kb);
	UT_ASSERT(strcmp(ka, kb) != 0);
	b = a;
	b.origin.agent[0] = 9;      /* another agent */
	build_key(&b, kb);
	UT_ASSERT(strcmp(ka, kb) != 0);
	b = a;
	b.mem_mb = 256;
	build_key(&b, kb);
	UT_ASSERT(strcmp(ka, kb) != 0);
}

/* ---- wproc against stand-in children ---- */

struct seen {
	int msgs;
	Ufworker__WorkerMsg__MsgCase last;
	uint32_t pid;
	int exits;
	int64_t status;
	int sig;
	struct rt_wproc *w;
};

static void on_msg(struct rt_wproc *w, uf_wmsg *m, void *arg)
{
	struct seen *s = arg;
	s->msgs++;
	s->last = m->msg_case;
	if (m->msg_case == UFWORKER__WORKER_MSG__MSG_READY)
		s->pid = m->ready->pid;
	/* Echoed back once: now make the child go away. */
	rt_wproc_kill(w, SIGTERM);
}

static void on_exit_cb(struct rt_wproc *w, int64_t status, int sig, void *arg)
{
	struct seen *s = arg;
	s->exits++;
	s->status = status;
	s->sig = sig;
}

UT_TEST(wproc_frames_both_ways)
{
	uv_loop_t loop;
	UT_EQ(uv_loop_init(&loop), 0);
	struct seen s = {0};
	/* The child echoes every byte on its fd 3 back. */
	char *argv[] = {"/bin/sh", "-c", "exec cat <&3 >&3", NULL};
	static const struct rt_wproc_cbs cbs = {on_msg, on_exit_cb};
	UT_EQ(rt_wproc_spawn(&loop, argv, &cbs, &s, &s.w), 0);
	UT_ASSERT(rt_wproc_pid(s.w) > 0);
	Ufworker__Ready rd = UFWORKER__READY__INIT;
	rd.pid = 4242;
	uf_wmsg m = UFWORKER__WORKER_MSG__INIT;
	uf_wmsg_wrap(&m, UFWORKER__WORKER_MSG__MSG_READY, &rd);
	UT_EQ(rt_wproc_send(s.w, &m), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	UT_EQ(s.msgs, 1);
	UT_EQ(s.last, UFWORKER__WORKER_MSG__MSG_READY);
	UT_EQ(s.pid, 4242);
	UT_EQ(s.exits, 1);
	UT_EQ(s.sig, SIGTERM);
	UT_EQ(s.status, -1);
	UT_EQ(uv_loop_close(&loop), 0);
}

UT_TEST(wproc_kills_a_child_that_breaks_framing)
{
	uv_loop_t loop;
	UT_EQ(uv_loop_init(&loop), 0);
	struct seen s = {0};
	/* A header declaring 4 GiB, then silence: the decoder refuses it
	 * from the header alone and the child is killed. */
	char *argv[] = {"/bin/sh", "-c", "printf '\\377\\377\\377\\377' >&3; exec sleep 30", NULL};
	static const struct rt_wproc_cbs cbs = {on_msg, on_exit_cb};
	UT_EQ(rt_wproc_spawn(&loop, argv, &cbs, &s, &s.w), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	UT_EQ(s.msgs, 0);
	UT_EQ(s.exits, 1);
	UT_EQ(s.sig, SIGKILL);
	UT_EQ(uv_loop_close(&loop), 0);
}

UT_TEST(wproc_clean_exit_status)
{
	uv_loop_t loop;
	UT_EQ(uv_loop_init(&loop), 0);
	struct seen s = {0};
	char *argv[] = {"/bin/sh", "-c", "exit 4", NULL};
	static const struct rt_wproc_cbs cbs = {on_msg, on_exit_cb};
	UT_EQ(rt_wproc_spawn(&loop, argv, &cbs, &s, &s.w), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	UT_EQ(s.exits, 1);
	UT_EQ(s.sig, 0);
	UT_EQ(s.status, 4);
	char *bad[] = {"/nonexistent/uf-worker", NULL};
	struct rt_wproc *w = NULL;
	UT_ASSERT(rt_wproc_spawn(&loop, bad, &cbs, &s, &w) < 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	UT_EQ(s.exits, 1); /* no exit callback for a child that never ran */
	UT_EQ(uv_loop_close(&loop), 0);
}
