#!/usr/bin/env python3
"""Tests of bench/invoke's helpers that need no VM: wrk's summary parser,
the fresh-python3 driver's answer encoding (the guest runtime's rules) with
a handler that also prints, and package unpacking.
Run: python3 bench/invoke_test.py"""
import os
import sys
import tarfile
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from invoke_http import BenchError, parse_wrk  # noqa: E402
from invoke_peers import PeerError, fresh_python, unpack  # noqa: E402

WRK = """Running 5s test @ http://127.0.0.1:18190/v1/functions/hello-c/invoke
  2 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   210.11ms   20.00ms 300.00ms   80.00%
  57 requests in 5.02s, 9.10KB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:     11.35
Transfer/sec:      1.81KB
"""


class Wrk(unittest.TestCase):
    def test_counts(self):
        r = parse_wrk(WRK)
        self.assertEqual(r["requests"], 57)
        self.assertEqual(r["non_2xx"], 7)
        self.assertEqual(r["socket_errors"], 3)
        self.assertAlmostEqual(r["rps"], 50 / 5.02)

    def test_minutes_and_clean(self):
        r = parse_wrk("  120 requests in 1.00m, 1KB read\n")
        self.assertEqual(r["non_2xx"], 0)
        self.assertAlmostEqual(r["rps"], 2.0)

    def test_garbage(self):
        with self.assertRaises(BenchError):
            parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


HANDLER = '''
print("import-time noise")
def handle(event, context):
    print("call noise", context["call_id"])
    if event == b"bytes":
        return b"\\x00raw"
    if event == b"text":
        return "t\\u00e9xt"
    if event == b"boom":
        raise ValueError("boom")
    return {"len": len(event)}
'''


class FreshPython(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        src = os.path.join(self.tmp.name, "src")
        os.makedirs(src)
        with open(os.path.join(src, "handler.py"), "w") as f:
            f.write(HANDLER)
        self.pkg = os.path.join(self.tmp.name, "fn.tar.gz")
        with tarfile.open(self.pkg, "w:gz") as t:
            t.add(os.path.join(src, "handler.py"), "handler.py")
        self.dir = unpack(self.pkg, os.path.join(self.tmp.name, "fn"))

    def tearDown(self):
        self.tmp.cleanup()

    def answer(self, event):
        got = []
        fresh_python(self.dir, event, lambda b: got.append(b) or True)
        return got[0]

    def test_encoding_and_prints_are_not_the_answer(self):
        self.assertEqual(self.answer(b"bytes"), b"\x00raw")
        self.assertEqual(self.answer(b"text"), "t\u00e9xt".encode())
        self.assertEqual(self.answer(b"abcd"), b'{"len": 4}')

    def test_failures_raise(self):
        with self.assertRaises(PeerError):
            fresh_python(self.dir, b"boom", lambda b: True)
        with self.assertRaises(PeerError):
            fresh_python(self.dir, b"bytes", lambda b: b == b"something else")


if __name__ == "__main__":
    unittest.main()
