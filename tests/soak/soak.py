#!/usr/bin/env python3
"""soak.py — the soak and fault-injection test (tests/soak/run.sh starts it,
in the KVM sandbox here).  Starts runtimed on a private data directory,
deploys the example functions and the soak's own fault function, then for
--seconds drives mixed invocations from --clients threads while a fault
thread injects faults at random:

  kill-worker   SIGKILL one of runtimed's uf-worker processes
  corrupt       truncate a function template's memory.bin, then kill its
                worker so that it must reopen it (today: the worker refuses
                the template, exit 3, and runtimed rebuilds it once from the
                stored code)
and the load itself carries the per-request faults: clones that crash
(502) or spin past their deadline (504), oversized bodies (413) and
malformed HTTP (400).

At the end it checks: every request got exactly one response, and the
client's per-function, per-status counts equal runtimed's
uf_invocations_total (and the gateway's 400/413 counts); every answer is an
allowed status for its kind (a 502/503 of a well-behaved function only while
a fault hit that function); every 200 is byte-correct; after the load stops
and the pools settle, runtimed's fds and threads are back at their baseline
and its RSS within the tolerance.  Prints the seed (UNIFORK_SOAK_SEED
replays the same choices), what was injected, the status counts and the leak
check; the last line is "N passed, N failed".
"""
import argparse
import json
import os
import random
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import soak_lib as L  # noqa: E402

BIG_MAX = 1 << 20
BODY_LIMIT = 6 << 20
# RSS after the load may stay above the baseline without any leak: a body
# of up to 6 MiB (request or answer) passes through runtimed's buffers, and
# glibc keeps freed heap (and, after freeing an mmapped chunk, raises its
# mmap threshold so the next big ones come from the heap it then keeps).
# Two such bodies plus 4 MiB of allocator slack: 16 MiB.  A leak smaller
# than that over this run is LeakSanitizer's to find (SOAK_BIN=build/san/bin:
# its report in runtimed's log fails the run).
RSS_TOLERANCE_KB = 16 << 10


def _big_pattern(n):
    """Bytes 'a' + (i*7 + i//251) % 26 for i < n, built in blocks of 251
    (byte-wise python is far too slow under TCG)."""
    shift = [bytes.maketrans(bytes(range(26)), bytes(ord("a") + (x + s) % 26 for x in range(26)))
             for s in range(26)]
    base = [bytes(((o + j) * 7) % 26 for j in range(251)) for o in range(26)]
    out = [base[(251 * q) % 26].translate(shift[q % 26]) for q in range(n // 251 + 1)]
    return b"".join(out)[:n]


BIG = _big_pattern(BIG_MAX)
PRIMES = [p for p in range(2, 5000) if all(p % d for d in range(2, int(p ** 0.5) + 1))]


def heavy_expect(n):
    return {"prime": PRIMES[n % len(PRIMES)], "decimal": "3.3", "subject": f"prime #{n}",
            "sqlite": f"v{n % 100}"}


class Soak:
    def __init__(self, a, rtd, fns):
        self.a, self.rtd, self.fns = a, rtd, fns
        self.lock = threading.Lock()
        self.records = []
        self.faults = []                    # (t, kind, function, detail)
        self.corrupted = set()
        self.heavy_const = None
        self.stop = threading.Event()
        self.next_id = self.first_id = 0

    # ------------------------------------------------------------ kinds --
    def kinds(self):
        k = []
        f = self.fns
        if "hello-c" in f:
            k.append(("hello-c", 25))
        if "hello-exec" in f:
            k.append(("hello-exec", 15))
        if "hello-python" in f:
            k.append(("hello-python", 12))
        if "heavy-python" in f:
            k.append(("heavy-python", 8))
        k += [("soak-echo", 10), ("soak-big", 8), ("soak-crash", 5), ("soak-spin", 3),
              ("oversized", 4), ("malformed", 5)]
        return k

    def one(self, kind, rng):
        """Build, send and judge one request of this kind."""
        fn = {"soak-spin": "soak-spin"}.get(kind, "soak-fault" if kind.startswith("soak-") else kind)
        rec = {"kind": kind, "fn": fn}
        with self.lock:
            rec["id"] = self.next_id
            self.next_id += 1
        rec["t0"] = time.monotonic()
        try:
            self._send(kind, rng, rec)
        except Exception as e:              # no answer at all
            rec["status"], rec["err"] = None, f"{type(e).__name__}: {e}"
        rec["t1"] = time.monotonic()
        with self.lock:
            self.records.append(rec)
        return rec

    def _send(self, kind, rng, rec):
        port = self.a.port
        if kind == "malformed":
            rec["fn"] = None
            rec["status"] = L.raw_exchange(port, rng.choice(L.MALFORMED))
            return
        if kind == "oversized":
            rec["fn"] = "hello-c" if "hello-c" in self.fns else "soak-fault"
            head = (f"POST /v1/functions/{rec['fn']}/invoke HTTP/1.1\r\nHost: soak\r\n"
                    f"Content-Length: {BODY_LIMIT + 1 + rng.randrange(1 << 20)}\r\n\r\n").encode()
            rec["status"] = L.raw_exchange(port, head, BODY_LIMIT + 1)
            return
        word = "w%d-%d" % (rec["id"], rng.randrange(1 << 30))
        if kind in ("hello-c", "hello-python", "hello-exec"):
            body, want = word.encode(), f"{self.fns[kind]['greeting']}, {word}!\n".encode()
        elif kind == "heavy-python":
            n = rng.randrange(1000)
            body, want = f"<req><n>{n}</n></req>".encode(), heavy_expect(n)
        elif kind == "soak-echo":
            body, want = word.encode(), b"soak:" + word.encode()
        elif kind == "soak-big":
            n = rng.randrange(BIG_MAX)
            body, want = f"big {n}".encode(), BIG[:n]
        else:
            body, want = kind[5:].encode(), None       # crash / spin
        st, hdrs, got = L.request(port, "POST", f"/v1/functions/{rec['fn']}/invoke", body,
                                  timeout=300)
        rec["status"], rec["call_id"] = st, hdrs.get("x-call-id")
        if st != 200:
            rec["answer"] = got[:160].decode("utf-8", "replace").strip()
            return
        if kind == "heavy-python":
            rec["bad_body"] = self._check_heavy(got, want)
        elif got != want:
            rec["bad_body"] = f"{len(got)} bytes {got[:60]!r}, expected {len(want)} {want[:60]!r}"

    def _check_heavy(self, got, want):
        try:
            j = json.loads(got)
        except ValueError:
            return f"not JSON: {got[:80]!r}"
        for k, v in want.items():
            if j.get(k) != v and not (k == "sqlite" and j.get(k) is None):
                return f"{k}={j.get(k)!r}, expected {v!r}"
        # fixed at the snapshot: every clone says the same (sqlite missing
        # from the guest's stdlib shows as null, and then always)
        const = (j.get("modules"), j.get("import_seconds"), j.get("sqlite") is None)
        with self.lock:
            if self.heavy_const is None:
                self.heavy_const = const
        return None if const == self.heavy_const else f"{const} differs from {self.heavy_const}"

    # ------------------------------------------------------------- load --
    def client(self, idx, deadline):
        rng = random.Random(self.a.seed * 1000 + idx)
        kinds = self.kinds()
        names, weights = [k for k, _ in kinds], [w for _, w in kinds]
        while time.monotonic() < deadline:
            self.one(rng.choices(names, weights)[0], rng)

    def injector(self, deadline):
        rng = random.Random(self.a.seed * 1000 + 999)
        corruptible = [f for f in ("hello-c", "hello-exec", "soak-fault") if f in self.fns]
        n = 0
        while not self.stop.wait(rng.uniform(*self.a.fault_gap)):
            if time.monotonic() > deadline - 5:
                break
            n += 1
            fn = rng.choice(sorted(self.fns))
            left = [f for f in corruptible if f not in self.corrupted]
            # the first corruption comes early (the second fault), then some
            # more at random; each template at most once (a rebuild is done
            # once per function and runtimed life: a second damage would
            # leave the function failed, by design)
            # A fault's time is taken before it is done: a call it broke may
            # be answered (502) before the injector gets to note it.
            if left and (n == 2 or (n > 2 and rng.random() < 0.25)):
                fn = rng.choice(left)
                self.corrupted.add(fn)
                t = time.monotonic()
                detail = L.corrupt_template(self.a.data, fn)
                self.fault(t, "corrupt", fn, detail)
            pids = L.worker_pids(self.rtd.pid, fn)
            t = time.monotonic()
            if pids:
                pid = rng.choice(pids)
                os.kill(pid, signal.SIGKILL)
                self.fault(t, "kill-worker", fn, f"pid {pid}")
            else:
                self.fault(t, "kill-worker-none", fn, "no worker running (restarting)")

    def fault(self, t, kind, fn, detail):
        with self.lock:
            self.faults.append((t, kind, fn, detail))
        print(f"  fault at {t - self.t_start:6.1f} s: {kind} {fn}: {detail}", flush=True)

    def run_load(self):
        self.t_start = time.monotonic()
        deadline = self.t_start + self.a.seconds
        ths = [threading.Thread(target=self.client, args=(i, deadline)) for i in range(self.a.clients)]
        inj = threading.Thread(target=self.injector, args=(deadline,))
        for t in ths + [inj]:
            t.start()
        for t in ths:
            t.join()
        self.stop.set()
        inj.join()

    # ----------------------------------------------------------- checks --
    def fault_windows(self):
        """Per function: [(fault time, recovered time)], recovered = start of
        the first 200 of that function sent after the fault (or +inf)."""
        out = {}
        oks = sorted((r["t0"], r["fn"]) for r in self.records if r.get("status") == 200)
        for t, kind, fn, _ in self.faults:
            if kind == "kill-worker-none":
                continue
            rec = next((t0 for t0, f in oks if f == fn and t0 > t), float("inf"))
            out.setdefault(fn, []).append((t, rec))
        return out

    def allowed(self, rec, windows):
        kind, st = rec["kind"], rec["status"]
        if kind == "malformed":
            return st == 400
        if kind == "oversized":
            return st == 413
        hit = any(rec["t1"] >= t and rec["t0"] <= r for t, r in windows.get(rec["fn"], []))
        if hit and st in (502, 503):
            return True
        return st == {"soak-crash": 502, "soak-spin": 504}.get(kind, 200)


class Checks:
    def __init__(self):
        self.passed = self.failed = 0

    def __call__(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print(f"ok   {what}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL {what}{': ' + detail if detail else ''}", flush=True)
        return ok


def progress(a, rtd, soak, stop):
    """Every 20 s: requests so far, calls in flight, workers, load."""
    t0 = time.monotonic()
    while not stop.wait(20):
        try:
            m = L.parse_metrics(L.request(a.port, "GET", "/metrics", timeout=10)[2].decode())
            infl = {k: int(v) for k, v in L.metric_by(m, "uf_inflight", "function").items() if v}
        except Exception as e:              # a progress line is no check
            infl = f"metrics: {e}"
        nw = sum(len(L.worker_pids(rtd.pid, f)) for f in soak.fns)
        with open("/proc/loadavg") as f:
            load = f.read().split()[0]
        last = (rtd.log_text().strip().splitlines() or [""])[-1][:100]
        print(f"  .. {time.monotonic() - t0:5.0f} s: {len(soak.records)} answered, in flight {infl}, "
              f"{nw} workers, load {load}; log: {last}", flush=True)


def deploy_all(a, rtd, ck):
    """Deploy what is built; returns {name: {greeting}} of the deployed."""
    fn_dir = "build/functions"
    table = [
        ("hello-c", f"{fn_dir}/hello-c.tar.gz", "native", {"env": {"GREETING": "hi"}}, "hi"),
        ("hello-exec", f"{fn_dir}/hello-exec.tar.gz", "exec", {"env": {"GREETING": "yo"}}, "yo"),
        ("hello-python", f"{fn_dir}/hello-python.tar.gz", "python", {"env": {"GREETING": "hej"}}, "hej"),
        ("heavy-python", f"{fn_dir}/heavy-python.tar.gz", "python", {}, None),
        # the fault function twice: generous deadline (1 MiB answers on a
        # loaded machine), and a short one for the calls that spin
        ("soak-fault", a.fault_pkg, "native", {"timeout_ms": 60000}, None),
        ("soak-spin", a.fault_pkg, "native", {"timeout_ms": 2000}, None),
    ]
    fns = {}
    for name, pkg, rt, extra, greeting in table:
        if not os.path.exists(pkg) or (rt == "python" and not os.path.exists(a.python_initramfs)):
            print(f"skip {name}: {pkg} or the python initramfs not built")
            continue
        extra = dict(extra)
        extra.setdefault("timeout_ms", 60000)
        t0 = time.monotonic()
        st, _, body = rtd.deploy(name, pkg, rt, extra)
        if ck(st == 201, f"deploy {name} ({time.monotonic() - t0:.0f} s)", f"HTTP {st} {body[:200]!r}"):
            fns[name] = {"greeting": greeting}
    return fns


def settle_stats(pid, want, seconds):
    """Poll until fds and threads are back to want's (bounded); returns the last."""
    end = time.monotonic() + seconds
    while True:
        now = L.proc_stats(pid)
        if now[:2] == want[:2] or time.monotonic() > end:
            return now
        time.sleep(1)


def invoke_metrics(m):
    """{(function, code): count} from uf_invocations_total."""
    out = {}
    for (n, labels), v in m.items():
        d = dict(labels)
        if n == "uf_invocations_total":
            out[(d.get("function"), d.get("code"))] = v
    return out


def http_metrics(m, code):
    return sum(v for (n, labels), v in m.items()
               if n == "uf_http_requests_total" and dict(labels).get("code") == code)


def report(soak, ck, m0, m1, rtd):
    recs = soak.records
    windows = soak.fault_windows()
    print(f"faults injected: {len(soak.faults)}")
    for kind in sorted({f[1] for f in soak.faults}):
        fns = sorted(f[2] for f in soak.faults if f[1] == kind)
        print(f"  {kind}: {len(fns)} ({', '.join(fns)})")
    counts = {}
    for r in recs:
        counts.setdefault(r["kind"], {}).setdefault(str(r["status"]), 0)
        counts[r["kind"]][str(r["status"])] += 1
    print(f"requests: {len(recs)}")
    for k in sorted(counts):
        print(f"  {k:13s} " + " ".join(f"{s}:{n}" for s, n in sorted(counts[k].items())))
    # one response each
    ids = [r["id"] for r in recs]
    noans = [r for r in recs if r["status"] is None]
    ck(len(ids) == len(set(ids)) == soak.next_id - soak.first_id and not noans,
       f"every request got exactly one response ({len(recs)})",
       f"{len(noans)} without an answer, e.g. {noans[0] if noans else ''}")
    cids = [r["call_id"] for r in recs if r.get("call_id")]
    ck(len(cids) == len(set(cids)), f"call ids unique ({len(cids)})",
       f"{len(cids) - len(set(cids))} repeated")
    bad = [r for r in recs if r["status"] is not None and not soak.allowed(r, windows)]
    ck(not bad, "every status allowed for its kind",
       f"{len(bad)} not, e.g. " + "; ".join(f"{r['kind']} -> {r['status']} from "
                                            f"{r['t0'] - soak.t_start:.1f} to {r['t1'] - soak.t_start:.1f} s"
                                            f" ({r.get('answer', '')})" for r in bad[:5]))
    wrong = [r for r in recs if r.get("bad_body")]
    ok200 = sum(1 for r in recs if r["status"] == 200)
    ck(not wrong, f"every 200 byte-correct ({ok200})",
       f"{len(wrong)} wrong, e.g. {wrong[0]['kind']}: {wrong[0]['bad_body']}" if wrong else "")
    # client counts against runtimed's
    client = {}
    for r in recs:
        if r["kind"] not in ("malformed", "oversized") and r["status"] is not None:
            key = (r["fn"], str(r["status"]))
            client[key] = client.get(key, 0) + 1
    i0, i1 = invoke_metrics(m0), invoke_metrics(m1)
    server = {k: int(i1[k] - i0.get(k, 0)) for k in i1 if i1[k] - i0.get(k, 0)}
    diff = {k: (client.get(k, 0), server.get(k, 0)) for k in set(client) | set(server)
            if client.get(k, 0) != server.get(k, 0)}
    ck(not diff, "client counts = runtimed's uf_invocations_total", f"(client, runtimed): {diff}")
    for code, kind in (("400", "malformed"), ("413", "oversized")):
        n = sum(1 for r in recs if r["kind"] == kind and r["status"] == int(code))
        got = http_metrics(m1, code) - http_metrics(m0, code)
        ck(got == n, f"{n} {kind} = the gateway's {code} count", f"gateway counted {got}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default=os.environ.get("SOAK_BIN", "build/bin"))
    p.add_argument("--work", required=True)
    p.add_argument("--fault-pkg", required=True)
    p.add_argument("--python-initramfs", default="build/guest/initramfs-python.cpio")
    p.add_argument("--port", type=int, default=int(os.environ.get("SOAK_PORT", "18090")))
    p.add_argument("--seconds", type=float, default=float(os.environ.get("UNIFORK_SOAK_SECONDS", "150")))
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--recover-seconds", type=float, default=300,
                   help="after the load, how long each function may take to answer again")
    p.add_argument("--seed", type=int, default=int(os.environ.get("UNIFORK_SOAK_SEED", "0")) or
                   int.from_bytes(os.urandom(4), "little"))
    a = p.parse_args()
    a.data = os.path.join(a.work, "data")
    a.fault_gap = (max(3.0, a.seconds / 30), max(6.0, a.seconds / 12))
    print(f"soak: seed {a.seed} (UNIFORK_SOAK_SEED={a.seed} replays), {a.seconds:.0f} s of load, "
          f"{a.clients} clients, runtimed from {a.bin}", flush=True)
    ck = Checks()
    rtd = L.Runtimed(a.bin, a.data, a.port, os.environ.get("SOAK_LOG") or os.path.join(a.work, "runtimed.log"))
    try:
        rtd.start()
        run(a, rtd, ck)
    except Exception as e:
        ck(False, "soak ran to the end", f"{type(e).__name__}: {e}")
    finally:
        rc = rtd.stop()
        ck(rc == 0, "runtimed stopped cleanly on SIGTERM", f"exit {rc}")
        log = rtd.log_text()
        san = [ln for ln in log.splitlines() if "AddressSanitizer" in ln or "runtime error:" in ln
               or "LeakSanitizer" in ln]
        ck(not san, "no sanitizer report in runtimed's log", "; ".join(san[:3]))
        rebuilt = [ln for ln in log.splitlines() if "rebuilding its template" in ln]
        print(f"runtimed log: {len(log.splitlines())} lines, {len(rebuilt)} rebuilds")
        if ck.failed:
            print("runtimed log tail:\n" + "\n".join("  | " + ln for ln in log.splitlines()[-25:]))
    print(f"{ck.passed} passed, {ck.failed} failed")
    return 0 if ck.failed == 0 else 1


def run(a, rtd, ck):
    soak = Soak(a, rtd, {})
    stop = threading.Event()
    threading.Thread(target=progress, args=(a, rtd, soak, stop), daemon=True).start()
    try:
        soak.fns = deploy_all(a, rtd, ck)
        if "soak-fault" not in soak.fns or "soak-spin" not in soak.fns:
            raise RuntimeError("the fault function did not deploy")
        load_and_check(a, rtd, ck, soak, soak.fns)
    finally:
        stop.set()


def load_and_check(a, rtd, ck, soak, fns):
    # Warm up: every kind once, so that what runtimed creates lazily (libuv's
    # thread pool, buffers, per-function metrics) exists before the baseline.
    rng = random.Random(a.seed)
    for kind, _ in soak.kinds():
        r = soak.one(kind, rng)
        print(f"  warm-up {kind}: {r['status']} in {r['t1'] - r['t0']:.1f} s"
              f"{' ' + r['err'] if r.get('err') else ''}", flush=True)
    soak.records.clear()
    soak.first_id = soak.next_id
    time.sleep(3)
    base = L.proc_stats(rtd.pid)
    print(f"baseline: {base[0]} fds, {base[1]} threads, RSS {base[2] // 1024} MiB", flush=True)
    m0 = L.parse_metrics(L.request(a.port, "GET", "/metrics")[2].decode())
    soak.run_load()
    print(f"load done: {len(soak.records)} requests in {time.monotonic() - soak.t_start:.0f} s", flush=True)
    # Recovery: each function (the corrupted ones rebuilt) answers right again.
    for fn in sorted(fns):
        if fn == "soak-spin":
            continue                        # answers 504 by design
        kind = "soak-echo" if fn == "soak-fault" else fn
        end, rec = time.monotonic() + a.recover_seconds, None
        while time.monotonic() < end:
            rec = soak.one(kind, rng)
            if rec["status"] == 200:
                break
            time.sleep(2)
        ck(rec and rec["status"] == 200 and not rec.get("bad_body"),
           f"{fn} answers after the load" + (" (template rebuilt)" if fn in soak.corrupted else ""),
           f"last: {rec and rec['status']} {rec and rec.get('bad_body')}")
    m1 = L.parse_metrics(L.request(a.port, "GET", "/metrics")[2].decode())
    report(soak, ck, m0, m1, rtd)
    rebuilds = rtd.log_text().count("rebuilding its template")
    ck(rebuilds == len(soak.corrupted), f"each corrupted template rebuilt ({sorted(soak.corrupted)})",
       f"{rebuilds} rebuilds logged")
    now = settle_stats(rtd.pid, base, 120)
    print(f"after: {now[0]} fds, {now[1]} threads, RSS {now[2] // 1024} MiB "
          f"(baseline {base[0]}, {base[1]}, {base[2] // 1024} MiB; RSS tolerance "
          f"{RSS_TOLERANCE_KB // 1024} MiB)")
    ck(now[0] == base[0], "fds back at the baseline", f"{now[0]} vs {base[0]}")
    ck(now[1] == base[1], "threads back at the baseline", f"{now[1]} vs {base[1]}")
    ck(now[2] <= base[2] + RSS_TOLERANCE_KB, "RSS back within the tolerance",
       f"{now[2]} KiB vs {base[2]} KiB")


if __name__ == "__main__":
    sys.exit(main())
