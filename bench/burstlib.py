"""burstlib — the HTTP client side of bench/burst and tests/burst: many
concurrent invocations (a burst), an open-loop load at a fixed arrival
rate, the parsing of exactly one HTTP/1.1 response per connection, and the
daemon's fd count and RSS from /proc.

Every call is one connection with "Connection: close": the request is sent,
then everything up to EOF is read (bounded by a client-side timeout) and
must parse as exactly one complete response (status line, headers,
Content-Length body, nothing after it).  A call that times out, is reset,
or answers something else is recorded with `error` set, never dropped.

Times are time.monotonic() seconds; latencies in µs.  In the open loop a
call's latency runs from its *scheduled* send time, not from when the
client got round to sending it: a client that falls behind does not hide
the server's queueing (no coordinated omission).
"""
import asyncio
import os
import resource
import time


class ParseError(Exception):
    pass


def parse_response(data):
    """bytes read until EOF -> (status, headers{lower: value}, body).
    Raises ParseError unless `data` is exactly one complete response with a
    Content-Length (what runtimed always sends) and nothing after it."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise ParseError(f"no end of headers in {len(data)} bytes")
    lines = data[:end].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or \
            len(parts[1]) != 3 or not parts[1].isdigit():
        raise ParseError(f"bad status line {lines[0][:80]!r}")
    status = int(parts[1])
    headers = {}
    for ln in lines[1:]:
        k, sep, v = ln.partition(b":")
        if not sep or not k or k != k.strip():
            raise ParseError(f"bad header line {ln[:80]!r}")
        headers[k.decode("latin-1").lower()] = v.strip().decode("latin-1")
    cl = headers.get("content-length")
    if cl is None or not cl.isdigit():
        raise ParseError(f"no usable Content-Length ({cl!r})")
    body = data[end + 4:]
    n = int(cl)
    if len(body) < n:
        raise ParseError(f"body cut short: {len(body)} of {n} bytes")
    if len(body) > n:
        raise ParseError(f"{len(body) - n} bytes after the response (a second response?)")
    return status, headers, body


def request_bytes(path, body, port):
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode() + body


async def one_call(port, path, body, timeout_s, start=None):
    """One invocation on its own connection.  start: the scheduled send
    time (monotonic); latency counts from it (default: now)."""
    t0 = time.monotonic() if start is None else start
    res = {"path": path, "sent": body, "status": None, "body": b"", "error": None, "us": None}
    w = None
    try:
        async def run():
            nonlocal w
            r, w = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
            w.write(request_bytes(path, body, port))
            await w.drain()
            chunks = []
            while True:
                c = await r.read(65536)
                if not c:
                    break
                chunks.append(c)
            return b"".join(chunks)
        data = await asyncio.wait_for(run(), timeout_s)
        res["us"] = (time.monotonic() - t0) * 1e6
        res["status"], res["headers"], res["body"] = parse_response(data)
    except asyncio.TimeoutError:
        res["error"] = f"no complete answer within {timeout_s} s (hung)"
    except ParseError as e:
        res["error"] = f"bad answer: {e}"
    except OSError as e:
        res["error"] = f"socket: {e.__class__.__name__}: {e}"
    finally:
        if w is not None:
            w.close()
    return res


def raise_nofile(n):
    """The client holds n sockets at once: raise RLIMIT_NOFILE to fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))


def burst(port, calls, timeout_s):
    """calls: [(path, body)], all started at once.  -> (results, seconds)."""
    raise_nofile(len(calls))

    async def go():
        return await asyncio.gather(*(one_call(port, p, b, timeout_s) for p, b in calls))
    t0 = time.monotonic()
    res = asyncio.run(go())
    return res, time.monotonic() - t0


def open_loop(port, path, body, rate, seconds, timeout_s):
    """Fixed arrival rate: call i is due at t0 + i/rate, sent then however
    many calls are still out.  -> (results, seconds from the first send to
    the last answer)."""
    n = max(1, int(rate * seconds))
    raise_nofile(n)

    async def go():
        loop_t0 = time.monotonic() + 0.05
        tasks = []
        for i in range(n):
            due = loop_t0 + i / rate
            d = due - time.monotonic()
            if d > 0:
                await asyncio.sleep(d)
            tasks.append(asyncio.ensure_future(one_call(port, path, body, timeout_s, due)))
        return await asyncio.gather(*tasks), loop_t0
    res, t0 = asyncio.run(go())
    return res, time.monotonic() - t0


def classify(results, check):
    """-> {"status": {code: n}, "errors": [msg...], "bad_bodies": n}.
    check(result) says whether a 200 answer's body is right (result["sent"]
    is the request body, result["body"] the answer's)."""
    st, errors, bad = {}, [], 0
    for r in results:
        if r["error"]:
            errors.append(r["error"])
            continue
        st[str(r["status"])] = st.get(str(r["status"]), 0) + 1
        if r["status"] == 200 and not check(r):
            bad += 1
    return {"status": dict(sorted(st.items())), "errors": errors, "bad_bodies": bad}


def proc_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def proc_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    raise ValueError(f"no VmRSS in /proc/{pid}/status")
