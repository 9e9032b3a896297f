"""benchlib — what every benchmark shares: percentiles, the KVM mode, and
writing build/bench/NAME.json (figures under plain names, ratios as
peer/ours so that larger is better)."""
import json
import math
import os
import platform
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "build", "bench")


def pct(xs, p):
    """Nearest-rank percentile of a non-empty list."""
    s = sorted(xs)
    k = max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))
    return s[k]


def mode():
    return os.environ.get("UNIFORK_KVM_MODE", "unknown")


def write_result(name, figures):
    os.makedirs(OUT, exist_ok=True)
    doc = {
        "benchmark": name,
        "mode": mode(),
        "caveat": ("sandbox: QEMU TCG with nested SVM, 20-100x slower than hardware and noisy; "
                   "compare ratios measured in the same run") if mode() == "sandbox" else "",
        "host": platform.node(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **figures,
    }
    path = os.path.join(OUT, name + ".json")
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(path + ".tmp", path)
    return path
