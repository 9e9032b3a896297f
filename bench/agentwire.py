"""agentwire — the host side of the agent protocol (proto/README.md) in plain
Python, for benchmarks that talk to an agent behind a unix socket (a QEMU
guest's virtio-serial chardev).  It encodes and decodes only the few
messages the benchmarks need, straight from the protobuf wire format of
proto/agent.proto (no protobuf package needed); nothing here is used by the
runtime itself.

Everything read from the socket is checked: frame lengths against
FRAME_MAX, every protobuf length and varint against the bytes that arrived;
a malformed frame raises AgentError.

    c = AgentConn(sock)                 # a connected stream socket
    hello = c.hello(deadline)           # {"runtime": ..., "state": ...}
    c.ping(nonce, deadline)             # Pong's nonce must match
    ack = c.fixup(entropy, realtime_ns, deadline)
    res = c.invoke(call_id, event, deadline, content_type="")
    c.shutdown(status)

Deadlines are time.monotonic() values.
"""
import select
import struct
import time

PROTO_VERSION = 1
FRAME_MAX = 8 << 20
DIAG_CONTENT_TYPE = "application/x-unifork-diag"   # guest-agent/handler.h

# Envelope oneof field numbers (proto/agent.proto).
F_HELLO, F_INVOKE, F_RESULT, F_ERROR = 2, 5, 6, 7
F_FIXUP, F_FIXUP_ACK, F_PING, F_PONG, F_SHUTDOWN = 8, 9, 10, 11, 12
NAMES = {2: "Hello", 3: "Init", 4: "InitResult", 5: "Invoke", 6: "Result", 7: "Error",
         8: "Fixup", 9: "FixupAck", 10: "Ping", 11: "Pong", 12: "Shutdown"}
STATES = {0: "UNSPECIFIED", 1: "FRESH", 2: "READY", 3: "FAILED"}


class AgentError(Exception):
    """The agent answered with an Error, broke the protocol, closed the
    stream, or missed the deadline."""


# ---- protobuf wire format: the subset agent.proto uses ----

def _varint(n):
    if n < 0:
        n &= (1 << 64) - 1            # int64: two's complement, 10 bytes
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field_varint(num, v):
    return _varint(num << 3) + _varint(v)


def _field_bytes(num, b):
    return _varint(num << 3 | 2) + _varint(len(b)) + b


def _read_varint(buf, i):
    n, shift = 0, 0
    while True:
        if i >= len(buf):
            raise AgentError("malformed frame: varint runs past the end")
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, i
        shift += 7
        if shift >= 70:
            raise AgentError("malformed frame: varint longer than 10 bytes")


def parse_fields(buf):
    """A message's fields as {number: [values]}: ints for varint and fixed
    fields, bytes for length-delimited ones."""
    fields, i = {}, 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise AgentError("malformed frame: field number 0")
        if wt == 0:
            v, i = _read_varint(buf, i)
        elif wt == 2:
            ln, i = _read_varint(buf, i)
            if ln > len(buf) - i:
                raise AgentError("malformed frame: field length past the end")
            v, i = bytes(buf[i:i + ln]), i + ln
        elif wt in (1, 5):
            w = 8 if wt == 1 else 4
            if w > len(buf) - i:
                raise AgentError("malformed frame: fixed field past the end")
            v, i = int.from_bytes(buf[i:i + w], "little"), i + w
        else:
            raise AgentError(f"malformed frame: wire type {wt}")
        fields.setdefault(num, []).append(v)
    return fields


def _one(fields, num, default):
    v = fields.get(num)
    return v[-1] if v else default


def _text(fields, num):
    return _one(fields, num, b"").decode("utf-8", "replace")


def envelope(msg_field, body):
    return _field_varint(1, PROTO_VERSION) + _field_bytes(msg_field, body)


# ---- one connection ----

class AgentConn:
    """Frames over a connected stream socket (not owned: the caller closes
    it).  One request at a time."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AgentError("timed out waiting for the agent")
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                continue
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise AgentError("the agent closed the stream" if not self.buf
                                 else "the agent closed the stream inside a frame")
            self.buf += chunk

    def recv(self, deadline):
        """The next envelope as (message field number, its fields)."""
        self._fill(4, deadline)
        (ln,) = struct.unpack_from("<I", self.buf)
        if ln > FRAME_MAX:
            raise AgentError(f"frame of {ln} bytes declared (max {FRAME_MAX})")
        self._fill(4 + ln, deadline)
        payload = bytes(self.buf[4:4 + ln])
        del self.buf[:4 + ln]
        env = parse_fields(payload)
        ver = _one(env, 1, 0)
        if ver != PROTO_VERSION:
            raise AgentError(f"agent speaks protocol version {ver}, not {PROTO_VERSION}")
        msgs = [(k, v[-1]) for k, v in env.items() if k != 1 and isinstance(v[-1], bytes)]
        if len(msgs) != 1:
            raise AgentError(f"envelope carries {len(msgs)} messages, not 1")
        num, body = msgs[0]
        fields = parse_fields(body)
        if num == F_ERROR:
            raise AgentError(f"agent Error {_one(fields, 1, 0)}: {_text(fields, 2)}")
        return num, fields

    def send(self, msg_field, body):
        payload = envelope(msg_field, body)
        self.sock.sendall(struct.pack("<I", len(payload)) + payload)

    def expect(self, want, deadline):
        num, fields = self.recv(deadline)
        if num != want:
            raise AgentError(f"expected {NAMES.get(want, want)}, got {NAMES.get(num, num)}")
        return fields

    def hello(self, deadline):
        f = self.expect(F_HELLO, deadline)
        return {"protocol_version": _one(f, 1, 0), "build": _text(f, 2),
                "runtime": _text(f, 3), "state": STATES.get(_one(f, 4, 0), "?")}

    def ping(self, nonce, deadline):
        self.send(F_PING, _field_varint(1, nonce))
        got = _one(self.expect(F_PONG, deadline), 1, 0)
        if got != nonce:
            raise AgentError(f"Pong carries nonce {got}, sent {nonce}")

    def fixup(self, entropy, realtime_ns, deadline):
        self.send(F_FIXUP, _field_bytes(1, entropy) + _field_varint(2, realtime_ns))
        f = self.expect(F_FIXUP_ACK, deadline)
        return {"ok": bool(_one(f, 1, 0)), "entropy_errno": _one(f, 2, 0),
                "reseed_errno": _one(f, 3, 0), "clock_errno": _one(f, 4, 0)}

    def invoke(self, call_id, event, deadline, content_type=""):
        body = _field_bytes(1, call_id.encode()) + _field_bytes(3, event)
        if content_type:
            body += _field_bytes(4, content_type.encode())
        self.send(F_INVOKE, body)
        f = self.expect(F_RESULT, deadline)
        res = {"call_id": _text(f, 1), "status": _one(f, 2, 0), "body": _one(f, 3, b""),
               "error": _text(f, 7)}
        if res["call_id"] != call_id:
            raise AgentError(f"Result for call {res['call_id']!r}, sent {call_id!r}")
        return res

    def shutdown(self, status=0):
        self.send(F_SHUTDOWN, _field_varint(1, status))
