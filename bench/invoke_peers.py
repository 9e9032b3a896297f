"""invoke_peers — the peers of bench/invoke, each measured per request from
"start something" to "the whole answer read", in µs (time.monotonic()):

  fresh_python   a new `python3` process per request that imports the
                 handler module from the unpacked package and calls
                 handle(event, context) (the event on stdin, the answer on
                 stdout, encoded as the guest's python runtime does)
  CriuPeer       one python3 server process imports the handler and waits
                 in accept() on 127.0.0.1:PORT; it is dumped by `criu dump`
                 (which kills it).  Per request: `criu restore` from the same
                 images (criu stays its parent and reaps it), connect, send
                 the event, read the answer; the restored process answers one
                 request and exits
  qemu_fresh     a fresh QEMU microvm per request booting the same vmlinux
                 + python initramfs as our templates, the agent over
                 virtio-serial: Hello, Init (the package: the import), one
                 Invoke, Shutdown

Every answer is checked by the caller's `check`; a failure raises
PeerError with the peer's own message.
"""
import os
import socket
import subprocess
import sys
import tarfile
import time

from agentwire import AgentError, _field_bytes, _field_varint, _one, _text
from qemu_peer import QemuError, QemuGuest

F_INIT, F_INIT_RESULT = 3, 4
HERE = os.path.dirname(os.path.abspath(__file__))

# What the guest's python runtime does with a handler's return value
# (functions/README.md): bytes as they are, str as UTF-8, anything else JSON.
_ENCODE = (
    "def _enc(r):\n"
    "    import json\n"
    "    if isinstance(r, (bytes, bytearray)): return bytes(r)\n"
    "    if isinstance(r, str): return r.encode()\n"
    "    return json.dumps(r).encode()\n")

_FRESH = (
    "import sys\nsys.path.insert(0, sys.argv[1])\n" + _ENCODE +
    "out = sys.stdout.buffer\n"
    "sys.stdout = sys.stderr\n"          # the handler's prints are logs, not the answer
    "import handler\n"
    "ev = sys.stdin.buffer.read()\n"
    "ctx = {'call_id': 'peer', 'content_type': '', 'deadline_ms': 0, 'status': 200}\n"
    "out.write(_enc(handler.handle(ev, ctx)))\n")

_SERVER = (
    "import os, socket, sys\nsys.path.insert(0, sys.argv[1])\n" + _ENCODE +
    "import handler\n"
    "s = socket.socket()\n"
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('127.0.0.1', int(sys.argv[2])))\n"
    "s.listen(1)\n"
    "os.write(int(sys.argv[3]), b'R')\n"
    "os.close(int(sys.argv[3]))\n"
    "c, _ = s.accept()\n"
    "ev = b''\n"
    "while True:\n"
    "    b = c.recv(65536)\n"
    "    if not b: break\n"
    "    ev += b\n"
    "ctx = {'call_id': 'criu', 'content_type': '', 'deadline_ms': 0, 'status': 200}\n"
    "c.sendall(_enc(handler.handle(ev, ctx)))\n"
    "c.close()\n")


class PeerError(Exception):
    pass


def unpack(package, dest):
    """The package into dest (our own example packages: trusted input)."""
    os.makedirs(dest, exist_ok=True)
    with tarfile.open(package) as t:
        t.extractall(dest, filter="data")
    return dest


def fresh_python(fn_dir, event, check):
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-c", _FRESH, fn_dir], input=event,
                       capture_output=True, timeout=600)
    t1 = time.monotonic()
    if p.returncode != 0 or not check(p.stdout):
        raise PeerError(f"fresh python3: exit {p.returncode}, out {p.stdout[:200]!r}, "
                        f"err {p.stderr.decode(errors='replace')[-300:]}")
    return (t1 - t0) * 1e6


def _recv_all(c):
    out = b""
    while True:
        b = c.recv(65536)
        if not b:
            return out
        out += b


class CriuPeer:
    """Owns its image directory's contents and every process it starts."""

    def __init__(self, fn_dir, workdir, port):
        self.fn_dir, self.port = fn_dir, port
        self.img = os.path.join(workdir, "criu-img")
        os.makedirs(self.img, exist_ok=True)
        self.criu = "criu"

    def _log(self, name):
        try:
            with open(os.path.join(self.img, name), errors="replace") as f:
                lines = f.readlines()
        except OSError:
            return "(no log)"
        errs = [ln for ln in lines if "Error" in ln or "rror (" in ln]
        return "".join((errs[:6] or lines[-6:])).strip()

    def prepare(self):
        """Start the server, wait for its import to finish, dump it.
        Returns the dump's duration in µs."""
        r, w = os.pipe()
        try:
            # setsid: its own session, so criu dumps a whole tree that
            # does not share our terminal (no --shell-job).
            srv = subprocess.Popen(["setsid", sys.executable, "-c", _SERVER, self.fn_dir,
                                    str(self.port), str(w)], pass_fds=[w],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
            os.close(w)
            w = -1
            ready = os.read(r, 1)
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)
        if ready != b"R":
            srv.kill()
            srv.wait()
            raise PeerError("CRIU peer: the python server died during its import")
        t0 = time.monotonic()
        d = subprocess.run([self.criu, "dump", "-t", str(srv.pid), "-D", self.img,
                            "-o", "dump.log"], capture_output=True, text=True, timeout=600)
        t1 = time.monotonic()
        if d.returncode != 0:
            srv.kill()
            srv.wait()
            raise PeerError(f"criu dump: exit {d.returncode}: {self._log('dump.log')}")
        srv.wait(timeout=60)     # criu dump kills the dumped tree
        return (t1 - t0) * 1e6

    def request(self, k, event, check):
        t0 = time.monotonic()
        rp = subprocess.Popen([self.criu, "restore", "-D", self.img, "-o", f"restore-{k}.log"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        try:
            deadline = t0 + 300
            while True:
                try:
                    c = socket.create_connection(("127.0.0.1", self.port), timeout=300)
                    break
                except OSError:
                    if rp.poll() is not None:
                        raise PeerError(f"criu restore: exit {rp.returncode} before the server "
                                        f"listened: {self._log(f'restore-{k}.log')}")
                    if time.monotonic() > deadline:
                        raise PeerError("criu restore: the server never listened")
                    time.sleep(0.001)
            try:
                c.sendall(event)
                c.shutdown(socket.SHUT_WR)
                out = _recv_all(c)
            finally:
                c.close()
            t1 = time.monotonic()
            rc = rp.wait(timeout=120)
        finally:
            if rp.poll() is None:
                rp.kill()
                rp.wait()
        if not check(out) or rc != 0:
            raise PeerError(f"CRIU restore {k}: criu exit {rc}, answer {out[:200]!r}: "
                            f"{self._log(f'restore-{k}.log')}")
        os.unlink(os.path.join(self.img, f"restore-{k}.log"))
        return (t1 - t0) * 1e6


def _init(conn, package, runtime, memory_mb, deadline):
    body = (_field_bytes(1, package) + _field_bytes(2, runtime.encode()) +
            _field_varint(5, memory_mb) + _field_varint(6, 60000))
    conn.send(F_INIT, body)
    f = conn.expect(F_INIT_RESULT, deadline)
    if not _one(f, 1, 0):
        raise PeerError(f"Init failed in the QEMU guest: {_text(f, 2)}")


def qemu_fresh(qcfg, workdir, package, runtime, event, check, k):
    """Returns {"total_us", "hello_us"}: spawn -> answer, spawn -> Hello."""
    g = QemuGuest(qcfg, workdir)
    try:
        g.spawn()
        deadline = g.t_spawn + 600
        conn = g.connect_agent(deadline)
        conn.hello(deadline)
        t_hello = time.monotonic()
        _init(conn, package, runtime, qcfg.mem_mib, deadline)
        res = conn.invoke(f"qemu-{k}", event, deadline)
        t1 = time.monotonic()
        if res["status"] != 200 or not check(res["body"]):
            raise PeerError(f"QEMU fresh VM {k}: status {res['status']}, body "
                            f"{res['body'][:200]!r}, error {res['error']!r}")
        conn.shutdown(0)
        rc = g.finish(60)
        if rc != 1:
            raise PeerError(f"QEMU fresh VM {k}: no clean Shutdown (exit {rc})")
        return {"total_us": (t1 - g.t_spawn) * 1e6, "hello_us": (t_hello - g.t_spawn) * 1e6}
    except (AgentError, QemuError, OSError) as e:
        raise PeerError(f"QEMU fresh VM {k}: {e}; QEMU said: {g.stderr_text()[-400:]}")
    finally:
        g.release()
