#!/usr/bin/env python3
"""gen_pkg_seeds.py — write the seed inputs of fuzz_pkg (tests/fuzz/pkg/).

Each seed is one mode byte then a package (fuzz_pkg.c): mode 0 = a tar
stream the harness gzips, mode 1 = bytes passed as they are (gzip layer).
Deterministic (fixed mtimes, owners), so re-running rewrites the same files.

    python3 tests/fuzz/gen_pkg_seeds.py tests/fuzz/pkg
"""
import gzip
import io
import os
import sys
import tarfile


def tar(entries, fmt=tarfile.GNU_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for kind, name, extra in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 0
            ti.uid = ti.gid = 0
            if kind == "file":
                ti.size = len(extra)
                ti.mode = 0o644
                t.addfile(ti, io.BytesIO(extra))
            elif kind == "exe":
                ti.size = len(extra)
                ti.mode = 0o755
                t.addfile(ti, io.BytesIO(extra))
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                t.addfile(ti)
            elif kind == "sym":
                ti.type = tarfile.SYMTYPE
                ti.linkname = extra
                t.addfile(ti)
            elif kind == "hard":
                ti.type = tarfile.LNKTYPE
                ti.linkname = extra
                t.addfile(ti)
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
                t.addfile(ti)
    return buf.getvalue()


def main(out):
    os.makedirs(out, exist_ok=True)
    seeds = {
        "hello": b"\0" + tar([("file", "handler.py", b"def handle(e):\n    return e\n")]),
        "tree": b"\0" + tar([
            ("dir", "lib", None), ("dir", "lib/sub", None),
            ("file", "lib/sub/a.txt", b"a" * 700),
            ("exe", "bin.sh", b"#!/bin/sh\necho hi\n"),
            ("sym", "lib/link", "sub/a.txt"),
            ("hard", "hard.txt", "lib/sub/a.txt"),
        ]),
        "longname-gnu": b"\0" + tar([("file", "d/" + "n" * 200 + "/" + "m" * 120, b"x")]),
        "longname-pax": b"\0" + tar([("file", "p/" + "q" * 300, b"pax"),
                                      ("sym", "p/l", "q" * 150)], fmt=tarfile.PAX_FORMAT),
        "ustar": b"\0" + tar([("dir", "./", None), ("file", "./a//b/./c", b"ustar")],
                             fmt=tarfile.USTAR_FORMAT),
        "refused-dotdot": b"\0" + tar([("file", "../escape", b"no")]),
        "refused-abslink": b"\0" + tar([("sym", "l", "/etc/passwd"), ("file", "l/x", b"no")]),
        "refused-fifo": b"\0" + tar([("fifo", "f", None)]),
        "refused-hardlink": b"\0" + tar([("hard", "h", "missing")]),
        "gzip-real": b"\1" + gzip.compress(tar([("file", "handler.so", b"\x7fELF" + b"\0" * 60)]), mtime=0),
        "gzip-truncated": b"\1" + gzip.compress(tar([("file", "t", b"t" * 3000)]), mtime=0)[:-9],
        "gzip-two-members": b"\1" + gzip.compress(tar([("file", "a", b"1")]), mtime=0) * 2,
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fuzz/pkg")
