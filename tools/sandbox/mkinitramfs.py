#!/usr/bin/env python3
"""mkinitramfs.py — builds the KVM sandbox's initramfs pieces (newc cpio,
uncompressed, without root: device nodes are written as cpio headers).

  mkinitramfs.py base --moddir DIR --init FILE --modules a,b --net-modules c \
                      --out FILE
      /init, /dev/console, /modules/*.ko and /modules/order: the modules'
      dependency closure (from each .ko's .modinfo `depends=`), dependencies
      first.  Modules needed only for networking are marked " net" in the
      order file; init loads them only when the run wants a NIC.
  mkinitramfs.py cfg --dir SRCDIR --out FILE
      SRCDIR's regular files as /ufcfg/NAME (appended per run).
  mkinitramfs.py deps --moddir DIR --modules a,b
      prints the load order (for debugging).
  mkinitramfs.py vmlinux --in VMLINUZ --out FILE
      extracts the uncompressed ELF vmlinux from a bzImage (xz or gzip
      payload), so QEMU boots it through its PVH entry: no decompression
      under TCG (saves ~1.5 s a boot).

Errors: one line on stderr, exit 1.
"""
import os
import stat
import struct
import sys


def die(msg):
    sys.stderr.write("sandbox: %s\n" % msg)
    sys.exit(1)


def norm(name):
    return name.replace("-", "_")


def modinfo(path):
    """Returns the .modinfo key/value pairs of an ELF64 .ko as a list."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise ValueError("%s: not an ELF64 file" % path)
    e_shoff, = struct.unpack_from("<Q", data, 0x28)
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def section(i):
        off = e_shoff + i * e_shentsize
        name, _typ, _flags, _addr, offset, size = struct.unpack_from("<IIQQQQ", data, off)
        return name, offset, size

    _, stroff, _ = section(e_shstrndx)
    for i in range(e_shnum):
        name, offset, size = section(i)
        end = data.index(b"\0", stroff + name)
        if data[stroff + name:end] == b".modinfo":
            out = []
            for item in data[offset:offset + size].split(b"\0"):
                if b"=" in item:
                    k, v = item.split(b"=", 1)
                    out.append((k.decode(), v.decode(errors="replace")))
            return out
    return []


def index_modules(moddir):
    idx = {}
    for root, _dirs, files in os.walk(moddir):
        for fn in files:
            if fn.endswith(".ko"):
                idx[norm(fn[:-3])] = os.path.join(root, fn)
    if not idx:
        die("no kernel modules (*.ko) under %s" % moddir)
    return idx


_aliases = None


def resolve_alias(idx, name):
    """Module providing alias `name` (e.g. softdep "crc32c" -> crc32c_generic),
    or None.  Scans every module's .modinfo once, only when needed."""
    global _aliases
    if _aliases is None:
        _aliases = {}
        for mod, path in sorted(idx.items()):
            try:
                for k, v in modinfo(path):
                    if k == "alias":
                        _aliases.setdefault(v, []).append(mod)
            except (OSError, ValueError):
                pass
    cands = _aliases.get(name) or _aliases.get("crypto-" + name) or []
    generic = [c for c in cands if c.endswith("_generic")]
    return (generic or cands or [None])[0]


def load_order(idx, names):
    """Dependency closure of names, dependencies before dependents."""
    order, state = [], {}

    def visit(n, chain):
        n = norm(n)
        if state.get(n) == "done":
            return
        if state.get(n) == "busy":
            die("module dependency cycle: %s" % " -> ".join(chain + [n]))
        if n not in idx:
            die("kernel module %s not found%s" % (n, " (needed by %s)" % chain[-1] if chain else ""))
        state[n] = "busy"
        info = modinfo(idx[n])
        deps = []
        for k, v in info:
            if k == "depends" and v:
                deps += [d for d in v.split(",") if d]
            elif k == "softdep":
                # "pre: a b post: c": only pre soft dependencies that exist
                mode = None
                for tok in v.split():
                    if tok.endswith(":"):
                        mode = tok[:-1]
                    elif mode == "pre":
                        if norm(tok) in idx:
                            deps.append(tok)
                        else:
                            alt = resolve_alias(idx, tok)
                            if alt:
                                deps.append(alt)
        for d in deps:
            visit(d, chain + [n])
        state[n] = "done"
        order.append(n)

    for n in names:
        visit(n, [])
    return order


class Cpio:
    def __init__(self, f):
        self.f = f
        self.ino = 1000

    def _entry(self, name, mode, data=b"", rdev=(0, 0)):
        self.ino += 1
        nameb = name.encode() + b"\0"
        hdr = "070701" + "".join("%08X" % v for v in (
            self.ino, mode, 0, 0, 2 if stat.S_ISDIR(mode) else 1, 0, len(data),
            0, 0, rdev[0], rdev[1], len(nameb), 0))
        self.f.write(hdr.encode() + nameb)
        self.f.write(b"\0" * ((4 - (110 + len(nameb)) % 4) % 4))
        self.f.write(data)
        self.f.write(b"\0" * ((4 - len(data) % 4) % 4))

    def dir(self, name, perm=0o755):
        self._entry(name, stat.S_IFDIR | perm)

    def file(self, name, data, perm=0o644):
        self._entry(name, stat.S_IFREG | perm, data)

    def chardev(self, name, major, minor, perm=0o600):
        self._entry(name, stat.S_IFCHR | perm, rdev=(major, minor))

    def close(self):
        self._entry("TRAILER!!!", 0)


def names_arg(s):
    return [n for n in (s or "").replace(" ", ",").split(",") if n]


def cmd_base(args):
    idx = index_modules(args["--moddir"])
    base = load_order(idx, names_arg(args.get("--modules")))
    net = [m for m in load_order(idx, names_arg(args.get("--net-modules"))) if m not in base]
    with open(args["--init"], "rb") as f:
        init = f.read()
    tmp = args["--out"] + ".tmp.%d" % os.getpid()
    with open(tmp, "wb") as f:
        c = Cpio(f)
        for d in ("dev", "proc", "sys", "newroot", "modules"):
            c.dir(d)
        c.chardev("dev/console", 5, 1)
        c.chardev("dev/null", 1, 3, 0o666)
        c.file("init", init, 0o755)
        lines = []
        for m in base + net:
            fn = m + ".ko"
            with open(idx[m], "rb") as mf:
                c.file("modules/" + fn, mf.read())
            lines.append(fn + (" net" if m in net else ""))
        c.file("modules/order", ("\n".join(lines) + "\n").encode())
        c.close()
    os.rename(tmp, args["--out"])


def cmd_cfg(args):
    src = args["--dir"]
    with open(args["--out"], "wb") as f:
        c = Cpio(f)
        c.dir("ufcfg")
        for fn in sorted(os.listdir(src)):
            p = os.path.join(src, fn)
            if os.path.isfile(p):
                with open(p, "rb") as g:
                    c.file("ufcfg/" + fn, g.read())
        c.close()


def cmd_deps(args):
    idx = index_modules(args["--moddir"])
    print("\n".join(load_order(idx, names_arg(args.get("--modules")))))


def cmd_vmlinux(args):
    import gzip
    import lzma
    import zlib
    with open(args["--in"], "rb") as f:
        data = f.read()
    out = None
    for magic, kind in ((b"\xfd7zXZ\x00", "xz"), (b"\x1f\x8b\x08", "gzip")):
        pos = data.find(magic)
        while pos >= 0 and out is None:
            try:
                if kind == "xz":
                    cand = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[pos:])
                else:
                    cand = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[pos:])
                if cand[:4] == b"\x7fELF":
                    out = cand
            except (lzma.LZMAError, zlib.error, gzip.BadGzipFile, EOFError):
                pass
            pos = data.find(magic, pos + 1)
        if out is not None:
            break
    if out is None:
        die("no xz or gzip compressed ELF kernel found in %s" % args["--in"])
    tmp = args["--out"] + ".tmp.%d" % os.getpid()
    with open(tmp, "wb") as f:
        f.write(out)
    os.rename(tmp, args["--out"])


def main(argv):
    cmds = {"base": cmd_base, "cfg": cmd_cfg, "deps": cmd_deps, "vmlinux": cmd_vmlinux}
    if len(argv) < 2 or argv[1] not in cmds:
        die("usage: mkinitramfs.py base|cfg|deps|vmlinux --opt value ...")
    args, rest = {}, argv[2:]
    if len(rest) % 2:
        die("mkinitramfs.py: options come in pairs")
    for i in range(0, len(rest), 2):
        args[rest[i]] = rest[i + 1]
    try:
        cmds[argv[1]](args)
    except KeyError as e:
        die("mkinitramfs.py %s: missing option %s" % (argv[1], e))
    except (OSError, ValueError) as e:
        die("mkinitramfs.py %s: %s" % (argv[1], e))


if __name__ == "__main__":
    main(sys.argv)
