#!/usr/bin/env python3
"""Tests of bench/fork's host-side helpers that need no VM: the agent
protocol codec (agentwire) against hand-assembled protobuf bytes and hostile
frames, and the figures (fork_report) from a driver JSON of uf-bench-fork's
shape.  Run: python3 bench/test_fork_helpers.py"""
import os
import socket
import struct
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agentwire  # noqa: E402
import benchlib  # noqa: E402
import fork_report  # noqa: E402
from agentwire import AgentConn, AgentError  # noqa: E402


def frame(payload):
    return struct.pack("<I", len(payload)) + payload


class Wire(unittest.TestCase):
    def setUp(self):
        self.host, self.agent = socket.socketpair()
        self.c = AgentConn(self.host)

    def tearDown(self):
        self.host.close()
        self.agent.close()

    def deadline(self):
        return time.monotonic() + 2

    def sent_frame(self):
        hdr = self.agent.recv(4)
        (n,) = struct.unpack("<I", hdr)
        body = b""
        while len(body) < n:
            body += self.agent.recv(n - len(body))
        return body

    def test_ping_bytes_and_pong(self):
        # Envelope{version=1, ping{nonce=300}}: 08 01 52 03 08 ac 02
        self.agent.sendall(frame(bytes([0x08, 0x01, 0x5a, 0x03, 0x08, 0xac, 0x02])))
        self.c.ping(300, self.deadline())
        self.assertEqual(self.sent_frame(), bytes([0x08, 0x01, 0x52, 0x03, 0x08, 0xac, 0x02]))

    def test_pong_with_other_nonce_refused(self):
        self.agent.sendall(frame(bytes([0x08, 0x01, 0x5a, 0x02, 0x08, 0x07])))
        with self.assertRaisesRegex(AgentError, "nonce 7"):
            self.c.ping(8, self.deadline())

    def test_hello_fields(self):
        hello = b"\x08\x01" + b"\x12\x03abc" + b"\x1a\x04echo" + b"\x20\x02"
        self.agent.sendall(frame(b"\x08\x01\x12" + bytes([len(hello)]) + hello))
        h = self.c.hello(self.deadline())
        self.assertEqual((h["build"], h["runtime"], h["state"]), ("abc", "echo", "READY"))

    def test_fixup_encodes_negative_free_int64_and_reads_ack(self):
        ack = b"\x08\x01\x18\x05"                      # ok, reseed_errno 5
        self.agent.sendall(frame(b"\x08\x01\x4a" + bytes([len(ack)]) + ack))
        r = self.c.fixup(b"\xaa" * 32, 1 << 40, self.deadline())
        self.assertEqual((r["ok"], r["reseed_errno"], r["clock_errno"]), (True, 5, 0))
        f = agentwire.parse_fields(self.sent_frame())
        fix = agentwire.parse_fields(f[8][0])
        self.assertEqual((fix[1][0], fix[2][0]), (b"\xaa" * 32, 1 << 40))

    def test_invoke_result_and_call_id_checked(self):
        res = b"\x0a\x02c1\x10\xc8\x01\x1a\x02hi"      # call c1, status 200, body hi
        self.agent.sendall(frame(b"\x08\x01\x32" + bytes([len(res)]) + res))
        r = self.c.invoke("c1", b"hi", self.deadline())
        self.assertEqual((r["status"], r["body"]), (200, b"hi"))
        self.agent.sendall(frame(b"\x08\x01\x32" + bytes([len(res)]) + res))
        with self.assertRaisesRegex(AgentError, "Result for call"):
            self.c.invoke("c2", b"hi", self.deadline())

    def test_error_frame_raises_with_message(self):
        err = b"\x08\x07\x12\x04nope"
        self.agent.sendall(frame(b"\x08\x01\x3a" + bytes([len(err)]) + err))
        with self.assertRaisesRegex(AgentError, "Error 7: nope"):
            self.c.hello(self.deadline())

    def test_hostile_frames(self):
        cases = [
            (struct.pack("<I", agentwire.FRAME_MAX + 1), "declared"),
            (frame(b"\x08\x02\x5a\x00"), "version 2"),
            (frame(b"\x08\x01\x5a\x05\x08"), "past the end"),
            (frame(b"\x08\x01"), "0 messages"),
            (frame(b"\x08\x01\x5a\x00\x12\x00"), "2 messages"),
            (frame(b"\x00\x01"), "field number 0"),
            (frame(b"\x08" + b"\xff" * 11), "varint"),
            (frame(b"\x08\x01\x0b"), "wire type 3"),
        ]
        for raw, why in cases:
            with self.subTest(why=why):
                a, b = socket.socketpair()
                try:
                    b.sendall(raw)
                    with self.assertRaisesRegex(AgentError, why):
                        AgentConn(a).recv(time.monotonic() + 2)
                finally:
                    a.close()
                    b.close()

    def test_eof_and_deadline(self):
        self.agent.sendall(b"\x05\x00")
        self.agent.shutdown(socket.SHUT_WR)
        with self.assertRaisesRegex(AgentError, "inside a frame"):
            self.c.recv(self.deadline())
        a, b = socket.socketpair()
        try:
            with self.assertRaisesRegex(AgentError, "timed out"):
                AgentConn(a).recv(time.monotonic() + 0.05)
        finally:
            a.close()
            b.close()


def driver_json(failed=0, total=1000.0):
    step = lambda v: {"p50": v, "p99": 2 * v, "mean": 1.5 * v}  # noqa: E731
    ser = lambda t: {"take": step(1), "map": step(10), "prefetch": step(0), "total": step(t)}  # noqa: E731
    return {"clones": 10, "failed": failed, "mode": "sandbox", "us": ser(total),
            "prefetch": ser(total / 2), "reset": ser(total / 4),
            "samples": {"plain": 5, "prefetch": 5, "reset": 3},
            "private_kib": {"p50": 400, "max": 500}, "snapshot_bytes": 123}


class Report(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.old_out = fork_report.OUT
        fork_report.OUT = self.tmp.name          # no fork_micro.json there
        self.peers = {"ours_boot": fork_report.summary([30000.0, 40000.0]),
                      "qemu_boot": fork_report.summary([60000.0, 80000.0]),
                      "qemu_restore": fork_report.summary([9000.0, 11000.0]),
                      "qemu_restore_resumed": None, "qemu_restore_hello": None}

    def tearDown(self):
        fork_report.OUT = self.old_out
        self.tmp.cleanup()

    def test_ratios_goals_and_series(self):
        res, micro = fork_report.build({}, driver_json(), None, self.peers, [70000], {})
        self.assertIsNone(micro)
        self.assertEqual(res["ratio_qemu_boot_p50_over_clone"], 60.0)     # 60000 / 1000
        self.assertEqual(res["ratio_qemu_boot_p99_over_clone"], 40.0)     # 80000 / 2000
        self.assertEqual(res["ratio_qemu_restore_p50_over_clone"], 9.0)
        self.assertEqual(res["ratio_qemu_restore_p50_over_prefetch"], 18.0)
        # Goals are judged on the prefetching clones (uf-worker's way):
        # 120x and 18x there, though the plain clones' restore ratio is 9x.
        self.assertTrue(res["goal_qemu_boot_50x_met"])
        self.assertTrue(res["goal_qemu_restore_10x_met"])
        self.assertEqual(res["ours_reset_total_p50_us"], 250.0)
        self.assertEqual(res["ours_clone_private_kib_p50"], 400)
        self.assertEqual(res["qemu_restore_private_kib_p50"], 70000)

    def test_failed_clones_meet_no_goal(self):
        res, _ = fork_report.build({}, driver_json(failed=1, total=10.0), None, self.peers, [], {})
        self.assertGreater(res["ratio_qemu_restore_p50_over_clone"], 10)
        self.assertFalse(res["goal_qemu_restore_10x_met"])
        self.assertFalse(res["goal_qemu_boot_50x_met"])

    def test_without_ours(self):
        res, _ = fork_report.build({}, None, "not built", self.peers, [], {})
        self.assertEqual(res["ours_status"], "not built")
        self.assertFalse(any(k.startswith(("ratio_", "goal_")) for k in res))

    def test_micro_figures_read(self):
        with open(os.path.join(self.tmp.name, "fork_micro.json"), "w") as f:
            f.write('{"clone_sync_total_p50_us": 111, "clone_sync_total_p99_us": 175, "n": 9}')
        res, micro = fork_report.build({}, None, "x", self.peers, [], {})
        self.assertEqual((micro["p50"], res["micro_guest_clone_native_p99_us"]), (111, 175))

    def test_percentile_matches_benchlib(self):
        xs = [float(x) for x in range(1, 101)]
        s = fork_report.summary(xs)
        self.assertEqual((s["p50"], s["p99"]), (benchlib.pct(xs, 50), benchlib.pct(xs, 99)))
        self.assertEqual((s["p50"], s["p99"]), (50.0, 99.0))


if __name__ == "__main__":
    unittest.main()
