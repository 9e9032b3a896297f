#!/usr/bin/env python3
"""tests/sched/load.py — closed-loop load for the scheduler suite: flood
threads call a function back to back (keep-alive connections) for a fixed
time, while an optional probe calls another function sequentially and
records each latency.  Prints one JSON object:

  {"flood": {FN: {"ok": N, "codes": {CODE: N}}}, "probe": [ms, ...],
   "probe_codes": {CODE: N}, "elapsed_s": S,
   "window": {FN: {"done": N, "run_us": US}}}

usage: load.py URL [--token T] [--warmup S] [--duration S]
               [--flood FN:THREADS:BODY]... [--probe FN:N:BODY]
Without a probe, the floods run --warmup seconds, then a window of
--duration seconds over which the calls each flooded function completed
and the growth of its scheduler run time (GET /v1/functions/FN, sched.
run_us_total; needs --token) are measured, both under saturation.  A
probe, when given, starts after the warm-up and ends the run once its N
calls are done.
"""
import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse


def call(conn, fn, body):
    conn.request("POST", f"/v1/functions/{fn}/invoke", body=body.encode())
    r = conn.getresponse()
    r.read()
    return r.status


def connect(url):
    u = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=300)


def flood(url, fn, body, stop, out, lock):
    conn = connect(url)
    while not stop.is_set():
        try:
            code = call(conn, fn, body)
        except (OSError, http.client.HTTPException):
            code = 0
            conn.close()
            conn = connect(url)
        if stop.is_set():
            break  # finished after the window: not counted
        with lock:
            out["codes"][str(code)] = out["codes"].get(str(code), 0) + 1
            out["ok"] += code == 200


def run_us(url, token, fn):
    conn = connect(url)
    conn.request("GET", f"/v1/functions/{fn}", headers={"Authorization": f"Bearer {token}"})
    r = conn.getresponse()
    j = json.loads(r.read())
    conn.close()
    return j["sched"]["run_us_total"]


def snapshot(a, res, lock):
    with lock:
        done = {fn: o["ok"] for fn, o in res["flood"].items()}
    return {fn: (done[fn], run_us(a.url, a.token, fn)) for fn in done}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--flood", action="append", default=[])
    ap.add_argument("--probe")
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--token", default="")
    a = ap.parse_args()
    stop, lock = threading.Event(), threading.Lock()
    res = {"flood": {}, "probe": [], "probe_codes": {}}
    threads = []
    for spec in a.flood:
        fn, n, body = spec.split(":", 2)
        out = res["flood"].setdefault(fn, {"ok": 0, "codes": {}})
        for _ in range(int(n)):
            t = threading.Thread(target=flood, args=(a.url, fn, body, stop, out, lock))
            t.start()
            threads.append(t)
    t0 = time.monotonic()
    if a.probe:
        fn, n, body = a.probe.split(":", 2)
        if a.flood:
            time.sleep(a.warmup)
        conn = connect(a.url)
        for _ in range(int(n)):
            s = time.monotonic()
            try:
                code = call(conn, fn, body)
            except (OSError, http.client.HTTPException):
                code = 0
                conn.close()
                conn = connect(a.url)
            res["probe"].append((time.monotonic() - s) * 1000)
            res["probe_codes"][str(code)] = res["probe_codes"].get(str(code), 0) + 1
    else:
        time.sleep(a.warmup)
        s0 = snapshot(a, res, lock)
        time.sleep(a.duration)
        s1 = snapshot(a, res, lock)
        res["window"] = {fn: {"done": s1[fn][0] - s0[fn][0], "run_us": s1[fn][1] - s0[fn][1]}
                         for fn in s0}
    stop.set()
    res["elapsed_s"] = time.monotonic() - t0
    for t in threads:
        t.join()
    json.dump(res, sys.stdout)
    print()


if __name__ == "__main__":
    main()
