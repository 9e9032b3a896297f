"""invoke_http — bench/invoke's side of runtimed: start it on a temporary
data directory (as tests/e2e/run.sh does), deploy packages, set pools,
sequential keep-alive latency, and wrk throughput.

    rt = Runtimed(bin_dir, workdir, port); rt.start()
    rt.deploy(name, package, runtime)           # waits for the 201/200
    rt.set_pool(name, min_warm, max_instances)  # and rt.wait_warm(name, n)
    lat = rt.latency(name, body, n, check)      # {"us": [...], "start_types": {...}}
    thr = wrk_throughput(url, body, conns, secs, workdir)
    rt.stop()

Every answer is checked: a status other than 200, or a body that `check`
rejects, raises BenchError with what came back.  Times are
time.monotonic() differences in µs, request sent -> whole body read.
"""
import base64
import http.client
import json
import os
import re
import shutil
import subprocess
import time


class BenchError(Exception):
    pass


class Runtimed:
    def __init__(self, bin_dir, workdir, port, args=()):
        self.bin = os.path.join(bin_dir, "runtimed")
        self.args = list(args)              # more runtimed flags
        self.data = os.path.join(workdir, "data")
        self.log = os.path.join(workdir, "runtimed.log")
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc = None
        self.token = ""

    def log_tail(self, n=10):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def start(self, timeout_s=60):
        with open(self.log, "a") as lf:
            self.proc = subprocess.Popen([self.bin, "--data", self.data, "--listen",
                                          f"127.0.0.1:{self.port}"] + self.args,
                                         stdin=subprocess.DEVNULL, stdout=lf, stderr=lf)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                st, _, _ = self._req("GET", "/healthz", timeout=2)
                if st == 200:
                    with open(os.path.join(self.data, "token")) as f:
                        self.token = f.read().strip()
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise BenchError(f"runtimed did not come up (exit {self.proc.poll()}): {self.log_tail()}")

    def stop(self):
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def _req(self, method, path, body=None, auth=False, timeout=600):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            h = {"Content-Type": "application/json"} if body is not None else {}
            if auth:
                h["Authorization"] = f"Bearer {self.token}"
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return r.status, r.read(), r
        finally:
            c.close()

    def deploy(self, name, package, runtime, min_warm=0, max_instances=64, extra=None):
        """extra: more fields of the deploy JSON (e.g. weight, env)."""
        with open(package, "rb") as f:
            code = base64.b64encode(f.read()).decode()
        spec = {"runtime": runtime, "code": code, "timeout_ms": 60000,
                "pool": {"min_warm": min_warm, "max_instances": max_instances,
                         "idle_timeout_s": 3600}, **(extra or {})}
        st, body, _ = self._req("PUT", f"/v1/functions/{name}", json.dumps(spec).encode(), True)
        if st not in (200, 201):
            raise BenchError(f"deploy {name}: HTTP {st}: {body[:300]!r}; runtimed: {self.log_tail(5)}")

    def info(self, name):
        st, body, _ = self._req("GET", f"/v1/functions/{name}", auth=True, timeout=30)
        if st != 200:
            raise BenchError(f"GET {name}: HTTP {st}: {body[:300]!r}")
        return json.loads(body)

    def set_pool(self, name, min_warm, max_instances):
        doc = {"min_warm": min_warm, "max_instances": max_instances, "idle_timeout_s": 3600}
        st, body, _ = self._req("PUT", f"/v1/functions/{name}/pool", json.dumps(doc).encode(),
                                True, timeout=60)
        if st not in (200, 201, 204):
            raise BenchError(f"pool {name}: HTTP {st}: {body[:300]!r}")

    def wait_warm(self, name, n, timeout_s):
        """Until `n` clones of `name` are warm; returns how many are."""
        deadline = time.monotonic() + timeout_s
        warm = 0
        while time.monotonic() < deadline:
            warm = int(self.info(name).get("instances", {}).get("warm", 0))
            if warm >= n:
                break
            time.sleep(0.2)
        return warm

    def wait_idle(self, name, timeout_s):
        """Until no call of `name` is in flight (wrk leaves calls behind
        when it stops: a client that goes away does not cancel its call);
        returns how many still are."""
        deadline = time.monotonic() + timeout_s
        while True:
            busy = int(self.info(name).get("instances", {}).get("inflight", 0))
            if busy == 0 or time.monotonic() > deadline:
                return busy
            time.sleep(0.2)

    def latency(self, name, body, n, check, before=None):
        """n sequential POSTs on one keep-alive connection.  before(): run
        ahead of each call, not timed (the warm rows wait there for the
        pool to refill)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        us, types = [], {}
        try:
            for i in range(n):
                if before:
                    before()
                t0 = time.monotonic()
                c.request("POST", f"/v1/functions/{name}/invoke", body=body)
                r = c.getresponse()
                out = r.read()
                t1 = time.monotonic()
                if r.status != 200 or not check(out):
                    raise BenchError(f"{name} call {i}: HTTP {r.status}: {out[:300]!r}; "
                                     f"runtimed: {self.log_tail(5)}")
                st = r.getheader("X-Start-Type", "?")
                types[st] = types.get(st, 0) + 1
                us.append((t1 - t0) * 1e6)
        finally:
            c.close()
        return {"us": us, "start_types": types}


_WRK_LUA = 'wrk.method = "POST"\nwrk.body = {body}\n'


def wrk_throughput(url, body, conns, secs, workdir):
    """wrk -t min(2,conns) -c conns -d secs, POST body.  Returns
    requests/s of answers that were 2xx, plus wrk's counts."""
    wrk = shutil.which("wrk")
    if not wrk:
        raise BenchError("wrk not found (Debian package wrk)")
    lua = os.path.join(workdir, "post.lua")
    with open(lua, "w") as f:
        f.write(_WRK_LUA.format(body=json.dumps(body.decode())))
    cmd = [wrk, "-t", str(min(2, conns)), "-c", str(conns), "-d", f"{secs}s",
           "--timeout", "60s", "-s", lua, url]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 120)
    if p.returncode != 0:
        raise BenchError(f"wrk exit {p.returncode}: {p.stderr.strip()[-300:]}")
    return dict(parse_wrk(p.stdout), connections=conns)


def parse_wrk(out):
    """wrk's summary -> rps (2xx answers per second), requests, non_2xx,
    socket_errors, seconds.  Raises BenchError on anything else."""
    m = re.search(r"(\d+) requests in ([0-9.]+)(us|ms|s|m)", out)
    if not m:
        raise BenchError(f"wrk output not understood: {out[-300:]}")
    total = int(m.group(1))
    dur = float(m.group(2)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(3)]
    bad = 0
    m2 = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m2:
        bad = int(m2.group(1))
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    nerr = sum(int(x) for x in errs.groups()) if errs else 0
    return {"rps": (total - bad) / dur if dur > 0 else 0.0, "requests": total,
            "non_2xx": bad, "socket_errors": nerr, "seconds": dur}
