"""qemu_peer — the QEMU microvm peer of bench/fork: one QEMU process running
the same vmlinux + initramfs as our VMM, its agent reachable over
virtio-serial (agent switch uf_transport=virtio-serial; the port "uf.agent"
on a unix-socket chardev, as in bench/vsock), optionally a QMP socket, and
optionally started from a migration stream (-incoming 'exec:cat FILE').

    g = QemuGuest(cfg, workdir, qmp=True)          # cfg: QemuConfig
    g.spawn()                                       # t_spawn = time.monotonic()
    conn = g.connect_agent(deadline)                # agentwire.AgentConn
    ...
    g.close_agent(); g.qmp_cmd("stop") ...
    g.finish(timeout)                               # reap; returns the exit code

Exit codes: the guest powers off through isa-debug-exit at 0xf4 (the
agent's Shutdown), which makes QEMU exit with (status << 1) | 1, so 1 for a
clean Shutdown(0).  A QemuGuest owns its process, its sockets and its
workdir files; release() kills and reaps whatever is left.
"""
import json
import os
import select
import socket
import subprocess
import time

from agentwire import AgentConn

QEMU = "qemu-system-x86_64"


class QemuError(Exception):
    pass


class QemuConfig:
    """What every QEMU process of one benchmark shares: the machine and its
    devices must be identical between the migration source and every
    restore, so they are built in one place."""

    def __init__(self, kernel, initrd, cmdline, mem_mib):
        self.kernel, self.initrd, self.cmdline, self.mem_mib = kernel, initrd, cmdline, mem_mib

    def argv(self, agent_sock, qmp_sock=None, incoming=None, console=None):
        # acpi=off: our guest kernel has no ACPI, and only without ACPI does
        # microvm put its virtio-mmio devices on the kernel command line.
        a = [QEMU, "-M", "microvm,x-option-roms=off,isa-serial=on,rtc=off,acpi=off",
             "-enable-kvm", "-cpu", "host", "-m", str(self.mem_mib), "-smp", "1",
             "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
             "-serial", f"file:{console}" if console else "null",
             "-kernel", self.kernel, "-initrd", self.initrd,
             "-append", self.cmdline + " uf_transport=virtio-serial",
             "-device", "isa-debug-exit,iobase=0xf4,iosize=1",
             "-device", "virtio-serial-device",
             "-chardev", f"socket,id=uf,path={agent_sock},server=on,wait=off",
             "-device", "virtserialport,chardev=uf,name=uf.agent",
             # The source is stopped before it is migrated; without the
             # global-state section a destination starts the guest as soon
             # as the stream is loaded (with it, it would stay paused like
             # the source and need a QMP "cont").  Only outgoing migration
             # reads this, so every process of the peer carries it.
             "-global", "migration.store-global-state=off"]
        if qmp_sock:
            a += ["-qmp", f"unix:{qmp_sock},server=on,wait=off"]
        if incoming:
            a += ["-incoming", incoming]
        return a


def _dial(path, deadline, proc):
    """Connect to a unix socket QEMU is about to create; retries (10 ms)
    until it accepts, QEMU dies, or the deadline passes."""
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
        if proc.poll() is not None:
            raise QemuError(f"QEMU exited ({proc.returncode}) before {os.path.basename(path)} "
                            f"accepted a connection")
        if time.monotonic() > deadline:
            raise QemuError(f"{path}: no listener before the deadline")
        time.sleep(0.01)


class QemuGuest:
    _seq = 0

    def __init__(self, cfg, workdir, qmp=False, incoming=None, console=None):
        QemuGuest._seq += 1
        tag = f"q{os.getpid()}-{QemuGuest._seq}"
        self.agent_path = os.path.join(workdir, tag + ".agent")
        self.qmp_path = os.path.join(workdir, tag + ".qmp") if qmp else None
        self.err_path = os.path.join(workdir, tag + ".err")
        self.argv = cfg.argv(self.agent_path, self.qmp_path, incoming, console)
        self.proc = None
        self.agent_sock = None
        self.qmp_sock = None
        self.qmp_buf = b""
        self.t_spawn = None        # time.monotonic() just before spawning
        self.wall_spawn = None     # time.time() at the same moment
        self.events = []           # QMP events seen so far

    # ---- process ----

    def spawn(self):
        with open(self.err_path, "w") as err:
            self.t_spawn, self.wall_spawn = time.monotonic(), time.time()
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=err,
                                         stderr=err)

    def stderr_text(self):
        try:
            with open(self.err_path) as f:
                return f.read().strip()
        except OSError:
            return ""

    def private_kib(self):
        """Private memory of the QEMU process (guest RAM it touched plus
        QEMU's own), from /proc/PID/smaps_rollup; None when unreadable."""
        try:
            with open(f"/proc/{self.proc.pid}/smaps_rollup") as f:
                kib = 0
                for line in f:
                    if line.startswith(("Private_Clean:", "Private_Dirty:")):
                        kib += int(line.split()[1])
                return kib
        except (OSError, ValueError):
            return None

    def finish(self, timeout):
        """Wait for QEMU to exit on its own; kill it after `timeout` s.
        Returns its exit code (None if it had to be killed)."""
        self.close_agent()
        self._close_qmp()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.release()
            return None

    def release(self):
        self.close_agent()
        self._close_qmp()
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                raise QemuError(f"QEMU pid {self.proc.pid} still there 60 s after SIGKILL "
                                f"(stuck in the kernel?)")
        for p in (self.agent_path, self.qmp_path):     # the log stays for --keep
            if p:
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass

    # ---- the agent's virtio-serial port ----

    def connect_agent(self, deadline):
        self.agent_sock = _dial(self.agent_path, deadline, self.proc)
        return AgentConn(self.agent_sock)

    def close_agent(self):
        if self.agent_sock:
            self.agent_sock.close()
            self.agent_sock = None

    # ---- QMP ----

    def _qmp_line(self, deadline):
        while b"\n" not in self.qmp_buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise QemuError("QMP: no answer before the deadline")
            r, _, _ = select.select([self.qmp_sock], [], [], left)
            if r:
                chunk = self.qmp_sock.recv(65536)
                if not chunk:
                    raise QemuError("QMP: QEMU closed the monitor")
                self.qmp_buf += chunk
        line, self.qmp_buf = self.qmp_buf.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError:
            raise QemuError(f"QMP: not JSON: {line[:200]!r}")

    def qmp_connect(self, deadline):
        self.qmp_sock = _dial(self.qmp_path, deadline, self.proc)
        if "QMP" not in self._qmp_line(deadline):
            raise QemuError("QMP: no greeting")
        self.qmp_cmd("qmp_capabilities", deadline=deadline)

    def qmp_cmd(self, cmd, args=None, deadline=None):
        """Run one QMP command; returns its "return" value (events that
        arrive meanwhile are skipped)."""
        deadline = deadline or time.monotonic() + 60
        msg = {"execute": cmd}
        if args:
            msg["arguments"] = args
        self.qmp_sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._qmp_line(deadline)
            if "event" in r:
                self.events.append(r)
                continue
            if "error" in r:
                raise QemuError(f"QMP {cmd}: {r['error'].get('desc', r['error'])}")
            if "return" in r:
                return r["return"]

    def qmp_event_since_spawn(self, name, deadline):
        """Seconds from the spawn to QMP event `name` (by QEMU's own
        wall-clock timestamp on the event, so a late read does not
        matter); None if it did not come by the deadline."""
        while True:
            for e in self.events:
                if e.get("event") == name:
                    ts = e.get("timestamp", {})
                    return ts.get("seconds", 0) + ts.get("microseconds", 0) / 1e6 - self.wall_spawn
            try:
                r = self._qmp_line(deadline)
            except QemuError:
                return None
            if "event" in r:
                self.events.append(r)

    def _close_qmp(self):
        if self.qmp_sock:
            self.qmp_sock.close()
            self.qmp_sock = None

    def migrate_to_file(self, path, deadline):
        """Stop the VM and write its migration stream to `path` through
        exec:cat; waits for status "completed".  Returns QMP's final
        query-migrate answer."""
        self.qmp_cmd("stop", deadline=deadline)
        self.qmp_cmd("migrate", {"uri": f"exec:cat > {path}"}, deadline=deadline)
        while True:
            st = self.qmp_cmd("query-migrate", deadline=deadline)
            s = st.get("status")
            if s == "completed":
                return st
            if s in ("failed", "cancelled"):
                raise QemuError(f"migration {s}: {st.get('error-desc', '')}")
            if time.monotonic() > deadline:
                raise QemuError(f"migration still {s} at the deadline")
            time.sleep(0.05)
