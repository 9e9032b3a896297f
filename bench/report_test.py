#!/usr/bin/env python3
"""Tests of bench/report's JSON reading (report_data), the burst client's
response parser and LCG check (burstlib, bench/burst), and one report
written end to end from hand-made JSON.  Run: python3 bench/report_test.py
(bench/test-all runs every bench test; tests/run runs that)."""
import importlib.machinery
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import report_data as rd  # noqa: E402
from burstlib import ParseError, classify, parse_response  # noqa: E402

BURST = importlib.machinery.SourceFileLoader("bench_burst", os.path.join(HERE, "burst")).load_module()


def lcg(n):
    x = 1
    for _ in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
    return x


class Flat(unittest.TestCase):
    def test_series_group_stats_and_convert_ms(self):
        doc = {"benchmark": "boot", "ours_boot_p50_us": 10, "ours_boot_p99_us": 30.5,
               "ours_hello_p50_ms": 2.5, "qemu_x_mean_us": 7, "n": 20,
               "ours_rtt_p50_rounds_us": [1, 2], "qemu_restore_private_kib_p50": 9}
        s = rd.flat_series(doc)
        self.assertEqual(s, {"ours_boot": {"p50": 10.0, "p99": 30.5},
                             "ours_hello": {"p50": 2500.0}, "qemu_x": {"mean": 7.0}})
        self.assertEqual(list(s), ["ours_boot", "ours_hello", "qemu_x"])   # document order

    def test_other_scalars_keep_what_is_not_a_series(self):
        doc = {"benchmark": "b", "time": "t", "ours_boot_p50_us": 1, "ratio_a": 2.0, "n": 20,
               "qemu_restore_private_kib_p50": 9, "list": [1]}
        self.assertEqual(rd.other_scalars(doc), [("n", 20), ("qemu_restore_private_kib_p50", 9)])

    def test_ratios_from_keys_and_object(self):
        doc = {"ratio_boot_p50_qemu_over_ours": 3.4, "ratio_bad": "x", "ratios": {"a/b": 0.5}}
        self.assertEqual(rd.flat_ratios(doc), [("boot_p50_qemu_over_ours", 3.4), ("a/b", 0.5)])

    def test_fmt_us(self):
        self.assertEqual(rd.fmt_us(None), "—")
        self.assertEqual(rd.fmt_us(12.34), "12.3 µs")
        self.assertEqual(rd.fmt_us(2506.7), "2.5 ms")
        self.assertEqual(rd.fmt_us(258794), "259 ms")
        self.assertEqual(rd.fmt_us(1050814), "1.05 s")

    def test_fmt_counts(self):
        self.assertEqual(rd.fmt_counts({"200": 16, "503": 4}), "200: 16, 503: 4")
        self.assertEqual(rd.fmt_counts({}), "none")
        self.assertEqual(rd.fmt_counts(None), "—")

    def test_table_columns_only_for_stats_present(self):
        h, rows = rd.table({"benchmark": "x", "a_p50_us": 5, "a_p99_us": 9, "b_p50_us": 3})
        self.assertEqual(h, ["series", "p50", "p99"])
        self.assertEqual(rows, [["a", "5.0 µs", "9.0 µs"], ["b", "3.0 µs", "—"]])


class Nested(unittest.TestCase):
    INVOKE = {"benchmark": "invoke", "rows": {
        "ours": {"hello-c": {"clone": {"latency_us": {"p50": 100, "p99": 200, "n": 20},
                                       "wrk_c4": {"rps": 3.5, "non_2xx": 1, "connections": 4}}}},
        "fresh_python3": {"hello-python": {"latency_us": {"p50": 30, "p99": 40, "n": 10}}}}}

    def test_invoke_series_and_bars(self):
        s = rd.series_of(self.INVOKE)
        self.assertEqual(s["ours hello-c clone"], {"p50": 100.0, "p99": 200.0, "n": 20})
        self.assertEqual(rd.peer_bars(self.INVOKE), [("ours hello-c clone", 100.0, 200.0),
                                                      ("fresh_python3 hello-python", 30.0, 40.0)])

    def test_invoke_throughput(self):
        self.assertEqual(rd.invoke_throughput(self.INVOKE), [("ours hello-c clone", 4, 3.5, 1)])

    def test_burst_rows_samples_and_series(self):
        doc = {"benchmark": "burst", "rows": {
            "fair": {"burst": {"latency_us": {"p50": 5, "n": 3}, "samples_us": [9, 1, 5]},
                     "open_loop": {"latency_us": {"n": 0}}, "share": {"completed": {}}},
            "off": {"burst": {"latency_us": {"p50": 7, "n": 1}, "samples_us": [7]}}}}
        self.assertEqual([(m, p) for m, p, _ in rd.burst_rows(doc)],
                         [("fair", "burst"), ("fair", "open_loop"), ("off", "burst")])
        self.assertEqual(rd.burst_samples(doc), {"fair burst": [1.0, 5.0, 9.0], "off burst": [7.0]})
        self.assertEqual(list(rd.series_of(doc)), ["fair burst", "off burst"])   # n=0 left out

    def test_burst_shares(self):
        doc = {"rows": {"fair": {"share": {"share_w3_completed": 0.74, "share_w3_run_us": 0.76}},
                        "off": {"share": {"share_w3_completed": 0.5, "share_w3_run_us": None}},
                        "x": {"burst": {}}}}
        self.assertEqual(rd.burst_shares(doc), [("fair", 0.74, 0.76), ("off", 0.5, None)])

    def test_cdf_points(self):
        self.assertEqual(rd.cdf_points([30, 10, 20, 40]),
                         [(10, 0.25), (20, 0.5), (30, 0.75), (40, 1.0)])
        self.assertEqual(rd.pct_points({"p99": 9, "p50": 2, "n": 5}), [(2, 0.5), (9, 0.99)])

    def test_order(self):
        docs = [{"benchmark": b} for b in ("zz", "burst", "boot", "fork", "aa", "fork_micro")]
        self.assertEqual([d["benchmark"] for d in rd.sort_docs(docs)],
                         ["boot", "fork_micro", "fork", "burst", "aa", "zz"])


class Response(unittest.TestCase):
    def test_one_complete_response(self):
        st, h, b = parse_response(b"HTTP/1.1 429 Too Many\r\nRetry-After: 1\r\n"
                                  b"Content-Length: 3\r\n\r\nabc")
        self.assertEqual((st, h["retry-after"], b), (429, "1", b"abc"))

    def test_rejects(self):
        bad = [b"", b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n",               # no end of headers
               b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab",             # short body
               b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab",             # trailing bytes
               b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",  # two
               b"HTTP/1.1 200 OK\r\n\r\n",                                     # no length
               b"HTTP/1.1 20x OK\r\nContent-Length: 0\r\n\r\n",
               b"SPDY 200 OK\r\nContent-Length: 0\r\n\r\n",
               b"HTTP/1.1 200 OK\r\nbroken header\r\nContent-Length: 0\r\n\r\n"]
        for data in bad:
            with self.assertRaises(ParseError, msg=data):
                parse_response(data)

    def test_classify(self):
        res = [{"path": "/a", "sent": b"x", "status": 200, "body": b"x!", "error": None},
               {"path": "/a", "sent": b"y", "status": 200, "body": b"z!", "error": None},
               {"path": "/a", "sent": b"y", "status": 503, "body": b"", "error": None},
               {"path": "/a", "sent": b"y", "status": None, "body": b"", "error": "hung"}]
        c = classify(res, lambda r: r["body"] == r["sent"] + b"!")
        self.assertEqual(c, {"status": {"200": 2, "503": 1}, "errors": ["hung"], "bad_bodies": 1})


class Burst(unittest.TestCase):
    def test_spin_expect_matches_the_loop(self):
        for n in (0, 1, 2, 3, 17, 1000, 4097):
            self.assertEqual(BURST.spin_expect(n), lcg(n), n)

    def test_ratios_off_over_fair(self):
        def row(p99, ok):
            return {"latency_us": {"p50": 10, "p99": p99, "p999": p99}, "ok_per_s": ok}
        rows = {"fair": {"burst": row(100, 4.0), "open_loop": row(50, 2.0)},
                "off": {"burst": row(300, 2.0), "open_loop": row(50, 0)}}
        r = BURST.ratios(rows)
        self.assertEqual(r["burst.p99.off_over_fair"], 3.0)
        self.assertEqual(r["burst.ok_per_s.fair_over_off"], 2.0)
        self.assertEqual(r["open_loop.p50.off_over_fair"], 1.0)
        self.assertNotIn("open_loop.ok_per_s.fair_over_off", r)        # off had none: no ratio
        self.assertEqual(BURST.ratios({"default": rows["fair"]}), {})


class Report(unittest.TestCase):
    def test_report_from_json(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "boot.json"), "w") as f:
                json.dump({"benchmark": "boot", "mode": "sandbox", "time": "T1",
                           "ours_boot_p50_us": 1000, "ours_boot_p99_us": 2000,
                           "qemu_boot_p50_us": 3000, "qemu_boot_p99_us": 9000,
                           "ratio_boot_p50_qemu_over_ours": 3.0}, f)
            with open(os.path.join(d, "junk.json"), "w") as f:
                f.write("{not json")
            p = subprocess.run([sys.executable, os.path.join(HERE, "report"), "--dir", d],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(os.path.join(d, "report.md")) as f:
                md = f.read()
            self.assertIn("## boot", md)
            self.assertIn("Measured T1 on the KVM sandbox", md)
            self.assertIn("| ours_boot | 1.0 ms | 2.0 ms |", md)
            self.assertIn("| boot_p50_qemu_over_ours | 3 |", md)
            self.assertIn("junk.json: unreadable", md)
            if "gnuplot not found" not in md:
                self.assertIn("![boot-bars.png](boot-bars.png)", md)
                with open(os.path.join(d, "boot-bars.png"), "rb") as f:
                    self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")


if __name__ == "__main__":
    unittest.main()
