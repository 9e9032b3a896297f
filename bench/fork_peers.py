"""fork_peers — one measured start of each peer of bench/fork.  Every
function starts one VM, measures spawn -> the agent's first response, checks
the answer, and ends the VM (cold boots: Shutdown, and the VMM must exit
cleanly; QEMU restores: killed, see qemu_restore); any failure raises
PeerError with the peer's own message.

  our_cold_boot      build/bin/uf-vm boot --invoke: our VMM boots the guest,
                     connects over vsock, Hello, one echo Invoke
  qemu_cold_boot     QEMU microvm boots the same guest; Hello and one echo
                     Invoke over virtio-serial
  qemu_template      QEMU microvm boots, the agent is asked to store a
                     marker, the host leaves the port, the VM is stopped
                     and migrated into a file (the restore peers' source)
  qemu_restore       QEMU microvm started with -incoming 'exec:cat FILE';
                     Hello, Fixup, one echo Invoke (the same exchange our
                     clones make), then the marker is read back to prove
                     the answer came from the restored guest, not a boot

Times are time.monotonic() differences in µs from just before the VMM
process was spawned.
"""
import os
import pty
import re
import select
import subprocess
import sys
import time

from agentwire import DIAG_CONTENT_TYPE, AgentError
from qemu_peer import QemuError, QemuGuest

PEER_TIMEOUT_S = 180


class PeerError(Exception):
    pass


def trace(msg):
    """BENCH_FORK_TRACE=1: every step on stderr (to find where a run hangs)."""
    if os.environ.get("BENCH_FORK_TRACE"):
        print(f"  [{time.monotonic():.3f}] {msg}", file=sys.stderr, flush=True)


def _us(t0, t1):
    return (t1 - t0) * 1e6


def echo_event(k):
    """A 64-byte event distinct per call: a stale or misrouted reply fails."""
    return (f"bench-fork echo {k:08d} ".encode() * 4)[:64]


def our_cold_boot(uf_vm, cfg, k, workdir):
    """uf-vm boot --invoke: its stdout is a pty (line-buffered), so the
    echoed answer arrives when the VMM prints it, not at its exit."""
    ev = echo_event(k).decode()
    errp = os.path.join(workdir, "uf-vm.err")
    cmd = [uf_vm, "boot", "--kernel", cfg.kernel, "--initrd", cfg.initrd,
           "--mem", str(cfg.mem_mib), "--cmdline", cfg.cmdline, "--console", "/dev/null",
           "--timeout", "120", "--invoke", ev]
    master, slave = pty.openpty()
    try:
        with open(errp, "w") as err:
            t0 = time.monotonic()
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=err)
        trace(f"ours cold boot {k}: uf-vm pid {p.pid}")
        os.close(slave)
        slave = -1
        out, t_first = b"", None
        deadline = t0 + PEER_TIMEOUT_S
        while b"\n" not in out:
            r, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
            if not r:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:          # EIO: the VMM exited, the pty is gone
                break
            if not chunk:
                break
            out += chunk
            if b"\n" in out:
                t_first = time.monotonic()
        trace(f"ours cold boot {k}: answer {'in' if t_first else 'NOT in'}; waiting for the exit")
        try:
            rc = p.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                raise PeerError(f"uf-vm pid {p.pid} still there 60 s after SIGKILL")
            rc = None
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    with open(errp) as f:
        err = f.read()
    answer = out.split(b"\n", 1)[0].rstrip(b"\r").decode(errors="replace")
    if rc != 0 or t_first is None or answer != ev:
        raise PeerError(f"uf-vm boot --invoke: exit {rc}, answer {answer[:80]!r}: {err.strip()[-500:]}")
    m = re.search(r"agent ready after ([0-9.]+) ms", err)
    return {"first_response_us": _us(t0, t_first),
            "ready_us": float(m.group(1)) * 1000 if m else None}


def _echo(conn, k, deadline):
    ev = echo_event(k)
    res = conn.invoke(f"fork-{k}", ev, deadline)
    if res["status"] != 200 or res["body"] != ev:
        raise PeerError(f"echo {k}: status {res['status']}, {len(res['body'])} bytes back")


def _diag(conn, cmd, k, deadline):
    res = conn.invoke(f"diag-{k}", cmd.encode(), deadline, DIAG_CONTENT_TYPE)
    return res["status"], res["body"].decode(errors="replace")


def _end(g, what):
    """Shutdown(0) was sent: QEMU must exit through isa-debug-exit, 1."""
    rc = g.finish(60)
    if rc != 1:
        raise PeerError(f"{what}: QEMU did not exit through the agent's Shutdown (exit {rc}): "
                        f"{g.stderr_text()[-500:]}")


def qemu_cold_boot(qcfg, k, workdir):
    g = QemuGuest(qcfg, workdir)
    try:
        g.spawn()
        deadline = g.t_spawn + PEER_TIMEOUT_S
        conn = g.connect_agent(deadline)
        h = conn.hello(deadline)
        t_hello = time.monotonic()
        _echo(conn, k, deadline)
        t_first = time.monotonic()
        trace(f"QEMU cold boot {k}: pid {g.proc.pid} answered; Shutdown")
        if h["runtime"] != "echo":
            raise PeerError(f"QEMU guest's agent runs {h['runtime']!r}, not echo")
        conn.shutdown(0)
        _end(g, "cold boot")
        return {"hello_us": _us(g.t_spawn, t_hello), "first_response_us": _us(g.t_spawn, t_first)}
    except (AgentError, QemuError, OSError) as e:
        raise PeerError(f"QEMU cold boot: {e}; QEMU said: {g.stderr_text()[-500:]}")
    finally:
        g.release()


def qemu_template(qcfg, workdir, stream, marker, settle_s):
    """Boot, store `marker` in the agent (diag set), leave the port, let
    the agent go back to waiting for a host for settle_s, stop, migrate to
    `stream`.  Returns figures about the capture."""
    g = QemuGuest(qcfg, workdir, qmp=True)
    try:
        g.spawn()
        deadline = g.t_spawn + PEER_TIMEOUT_S
        g.qmp_connect(deadline)
        conn = g.connect_agent(deadline)
        conn.hello(deadline)
        t_ready = time.monotonic()
        st, body = _diag(conn, f"set bench_marker {marker}", 0, deadline)
        if st != 200:
            raise PeerError(f"diag set: status {st}: {body}")
        conn.ping(1, deadline)
        g.close_agent()
        trace(f"QEMU template: pid {g.proc.pid} marker set; migrating")
        time.sleep(settle_s)
        t0 = time.monotonic()
        mig = g.migrate_to_file(stream, time.monotonic() + PEER_TIMEOUT_S)
        t1 = time.monotonic()
        try:
            g.qmp_cmd("quit", deadline=time.monotonic() + 10)
        except QemuError:
            pass                      # QEMU may close the monitor before answering
        rc = g.finish(30)
        if rc not in (0, None):
            raise PeerError(f"template QEMU exit {rc} after quit: {g.stderr_text()[-500:]}")
        return {"boot_to_hello_us": _us(g.t_spawn, t_ready), "migrate_us": _us(t0, t1),
                "stream_bytes": os.path.getsize(stream),
                "migrate_total_ms": mig.get("total-time")}
    except (AgentError, QemuError, OSError) as e:
        raise PeerError(f"QEMU template: {e}; QEMU said: {g.stderr_text()[-500:]}")
    finally:
        g.release()


def qemu_restore(qcfg, k, workdir, stream, marker):
    g = QemuGuest(qcfg, workdir, qmp=True, incoming=f"exec:cat {stream}")
    try:
        g.spawn()
        deadline = g.t_spawn + PEER_TIMEOUT_S
        # QMP only to learn when the guest resumed (the RESUME event after
        # the stream was loaded); it is idle while the agent is timed.
        g.qmp_connect(deadline)
        conn = g.connect_agent(deadline)
        h = conn.hello(deadline)
        t_hello = time.monotonic()
        ack = conn.fixup(os.urandom(32), time.time_ns(), deadline)
        t_fix = time.monotonic()
        _echo(conn, k, deadline)
        t_first = time.monotonic()
        trace(f"QEMU restore {k}: pid {g.proc.pid} answered")
        # Not timed: prove this is the migrated guest.  A cold boot has no
        # marker (404) and would have greeted as a fresh agent.
        st, body = _diag(conn, "get bench_marker", k, deadline)
        if st != 200 or body != marker:
            raise PeerError(f"restore {k}: the guest does not hold the template's marker "
                            f"(status {st}, {body[:80]!r}): not the migrated guest")
        if not ack["ok"]:
            raise PeerError(f"restore {k}: Fixup failed in the guest: {ack}")
        priv = g.private_kib()
        trace(f"QEMU restore {k}: verified; killing")
        resumed = g.qmp_event_since_spawn("RESUME", time.monotonic() + 5)
        # Killed, not shut down: in the sandbox a guest restored by QEMU
        # gets SIGSEGV on the agent's outb to the exit port (ioperm'd at
        # boot; fine in a cold boot and in our clones), so its Shutdown
        # ends in a panic rather than a clean exit.  Our clones are
        # destroyed too.
        return {"hello_us": _us(g.t_spawn, t_hello), "fixup_us": _us(g.t_spawn, t_fix),
                "first_response_us": _us(g.t_spawn, t_first), "private_kib": priv,
                "resumed_us": resumed * 1e6 if resumed is not None else None,
                "hello_state": h["state"]}
    except (AgentError, QemuError, OSError) as e:
        raise PeerError(f"QEMU restore: {e}; QEMU said: {g.stderr_text()[-500:]}")
    finally:
        g.release()
