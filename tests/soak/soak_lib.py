"""soak_lib.py — the soak test's plumbing (tests/soak/soak.py drives it):
runtimed as a child process, HTTP requests (well-formed through
http.client, oversized and malformed ones on raw sockets), /metrics
parsing, the daemon's fd / thread / RSS counts from /proc, and the
processes and files the fault injector acts on.  Python 3 standard
library only (Debian's python3; no pip).
"""
import base64
import http.client
import json
import os
import re
import select
import signal
import socket
import subprocess
import time


class Runtimed:
    """A runtimed on a private data directory, its log in a file."""

    def __init__(self, bindir, data, port, log_path):
        self.bindir, self.data, self.port, self.log_path = bindir, data, port, log_path
        self.proc = None
        self.token = None

    def start(self, extra=()):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [os.path.join(self.bindir, "runtimed"), "--data", self.data,
             "--listen", f"127.0.0.1:{self.port}", *extra],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        for _ in range(600):
            try:
                if request(self.port, "GET", "/healthz", timeout=2)[0] == 200:
                    with open(os.path.join(self.data, "token")) as f:
                        self.token = f.read().strip()
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("runtimed did not come up (log: %s)" % self.log_path)

    @property
    def pid(self):
        return self.proc.pid

    def stop(self, timeout=120):
        """SIGTERM, wait; returns the exit status (None: had to SIGKILL)."""
        if not self.proc:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None
        finally:
            self.proc = None

    def auth(self):
        return {"Authorization": "Bearer " + self.token}

    def deploy(self, name, pkg_path, runtime, extra=None, timeout=900):
        with open(pkg_path, "rb") as f:
            code = base64.b64encode(f.read()).decode()
        spec = dict(extra or {}, runtime=runtime, code=code)
        hdrs = dict(self.auth(), **{"Content-Type": "application/json"})
        return request(self.port, "PUT", "/v1/functions/" + name,
                       json.dumps(spec).encode(), hdrs, timeout=timeout)

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


def request(port, method, path, body=b"", headers=None, timeout=120):
    """One request on its own connection: (status, headers (lower-case
    names), body bytes).  Raises OSError / http.client errors when no
    answer came."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def _status_line(buf):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", buf)
    return int(m.group(1)) if m else None


def raw_exchange(port, head, body_len=0, timeout=60):
    """Send head, then body_len zero bytes (stopping early if the server
    answers first: a 413 may come before the body is read); return the
    status of the first response, or None when the connection closed
    without one."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(head)
        chunk = b"\0" * 65536
        left = body_len
        got = b""
        deadline = time.monotonic() + timeout
        while left > 0:
            r, w, _ = select.select([s], [s], [], max(0.0, deadline - time.monotonic()))
            if r:
                break                       # an answer (or a close) came first
            if not w:
                return None
            try:
                left -= s.send(chunk[:min(left, len(chunk))])
            except (BrokenPipeError, ConnectionResetError):
                break
        while b"\r\n" not in got and time.monotonic() < deadline:
            try:
                part = s.recv(4096)
            except ConnectionResetError:
                break
            if not part:
                break
            got += part
        return _status_line(got)
    finally:
        s.close()


# Malformed requests: each must get exactly one "400" from the gateway.
MALFORMED = [
    b"THIS IS NOT HTTP\x00\x01\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"POST /v1/functions/hello-c/invoke HTTP/1.1\r\nHost: x\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\nxyz\r\n",
    b"GET /healthz HTTP/1.1\r\nHo\x00st: x\r\n\r\n",
    b"GET /healthz HTTP/9.9\r\n\r\n",
]


def parse_metrics(text):
    """{(name, ((label, value), ...)): float} from Prometheus text."""
    out = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        if not m:
            continue
        labels = tuple(sorted(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or "")))
        try:
            out[(m.group(1), labels)] = float(m.group(3))
        except ValueError:
            pass
    return out


def metric_by(metrics, name, key_label, **match):
    """{value of key_label: sample} for samples of name whose labels match."""
    out = {}
    for (n, labels), v in metrics.items():
        d = dict(labels)
        if n == name and all(d.get(k) == x for k, x in match.items()) and key_label in d:
            out[d[key_label]] = out.get(d[key_label], 0) + v
    return out


def proc_stats(pid):
    """(open fds, threads, RSS in KiB) of a process."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    threads = len(os.listdir(f"/proc/{pid}/task"))
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return fds, threads, rss


def _ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


def worker_pids(rtd_pid, fn):
    """runtimed's `uf-worker serve` children serving function fn (found by
    the template path on their command line).  Template builders
    (`uf-worker build`, also a deploy's or a rebuild's) are left alone: a
    builder killed during a rebuild leaves the function failed for good
    (runtimed rebuilds once), which the soak reports apart instead of
    tripping over it at random."""
    want = f"/functions/{fn}/template\0".encode()
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        args = cmd.split(b"\0")
        if (len(args) > 1 and args[0].endswith(b"uf-worker") and args[1] == b"serve" and want in cmd
                and _ppid(int(d)) == rtd_pid):
            out.append(int(d))
    return out


def corrupt_template(data, fn):
    """Truncate the function template's memory.bin to half its size (a
    snapshot file damaged on disk).  Returns a description."""
    path = os.path.join(data, "functions", fn, "template", "memory.bin")
    size = os.path.getsize(path)
    os.truncate(path, size // 2)
    return f"{path}: {size} -> {size // 2} bytes"
