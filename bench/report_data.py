"""report_data — bench/report's reading of build/bench/*.json: turns each
benchmark's figures into tables (title, header, rows), latency series for
CDF plots and bar groups for the peer comparisons.  Pure functions over
the decoded JSON (no files, no gnuplot), so they are unit-tested
(bench/report_test.py).

The JSON conventions (bench/benchlib.py write_result): common fields
benchmark, mode, caveat, host, time; flat figures named NAME_p50_us,
NAME_p99_us, NAME_p999_us, NAME_mean_us (or _ms), ratios as ratio_* keys
or a "ratios" object; bench/invoke and bench/burst nest theirs under
"rows".  Anything not understood is listed under "other figures", never
dropped silently.
"""
import re

COMMON = ("benchmark", "mode", "caveat", "host", "time", "unix_time", "where", "note")
STATS = ("p50", "p99", "p999", "mean")
_FLAT = re.compile(r"^(?P<name>.+?)_(?P<stat>p50|p99|p999|mean)_(?P<unit>us|ms)$")
ORDER = ("boot", "vsock", "fork_micro", "fork", "invoke", "burst")


def fmt_us(us):
    """µs -> a short human figure (µs, ms or s)."""
    if us is None:
        return "—"
    us = float(us)
    if us < 1000:
        return f"{us:.1f} µs" if us < 100 else f"{us:.0f} µs"
    if us < 1e6:
        return f"{us / 1e3:.1f} ms" if us < 1e5 else f"{us / 1e3:.0f} ms"
    return f"{us / 1e6:.2f} s"


def fmt_num(x):
    if isinstance(x, bool) or x is None:
        return str(x)
    if isinstance(x, float):
        return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"
    return str(x)


def fmt_counts(d):
    """{"200": 16, "503": 4} -> "200: 16, 503: 4" (a table cell)."""
    if not isinstance(d, dict):
        return "—"
    return ", ".join(f"{k}: {v}" for k, v in d.items()) or "none"


def flat_series(doc):
    """{name: {stat: µs}} from the flat NAME_STAT_UNIT keys (ms -> µs),
    in the document's order."""
    out = {}
    for k, v in doc.items():
        m = _FLAT.match(k)
        if not m or isinstance(v, (dict, list, bool)) or not isinstance(v, (int, float)):
            continue
        mult = 1000.0 if m.group("unit") == "ms" else 1.0
        out.setdefault(m.group("name"), {})[m.group("stat")] = float(v) * mult
    return out


def flat_ratios(doc):
    """[(name, value)] from ratio_* keys and a top-level "ratios" object."""
    out = [(k[len("ratio_"):], v) for k, v in doc.items()
           if k.startswith("ratio_") and isinstance(v, (int, float))]
    r = doc.get("ratios")
    if isinstance(r, dict):
        out += [(k, v) for k, v in r.items() if isinstance(v, (int, float))]
    return out


def other_scalars(doc):
    """Scalars that are neither common fields, percentile figures nor ratios."""
    out = []
    for k, v in doc.items():
        if k in COMMON or k.startswith("ratio_") or _FLAT.match(k):
            continue
        if isinstance(v, (str, int, float, bool)):
            out.append((k, v))
    return out


def invoke_series(doc):
    """bench/invoke: {"peer fn pool": {p50, p99, n}} from rows.PEER.FN[.POOL].latency_us."""
    out = {}

    def walk(node, path):
        if not isinstance(node, dict):
            return
        lu = node.get("latency_us")
        if isinstance(lu, dict) and "p50" in lu:
            out[" ".join(path)] = {k: float(lu[k]) for k in ("p50", "p99", "p999") if k in lu}
            if "n" in lu:
                out[" ".join(path)]["n"] = lu["n"]
            return
        for k, v in node.items():
            walk(v, path + [k])
    walk(doc.get("rows", {}), [])
    return out


def invoke_throughput(doc):
    """bench/invoke: [(row, connections, rps, non_2xx)] from the wrk_cN entries."""
    out = []

    def walk(node, path):
        if not isinstance(node, dict):
            return
        for k, v in node.items():
            if k.startswith("wrk_c") and isinstance(v, dict) and "rps" in v:
                out.append((" ".join(path), v.get("connections", k[5:]), v["rps"], v.get("non_2xx", 0)))
            else:
                walk(v, path + [k])
    walk(doc.get("rows", {}), [])
    return out


def burst_rows(doc):
    """bench/burst: [(mode, part, row)] for part in burst / open_loop."""
    out = []
    for mode, r in (doc.get("rows") or {}).items():
        for part in ("burst", "open_loop"):
            if isinstance(r.get(part), dict):
                out.append((mode, part, r[part]))
    return out


def burst_samples(doc):
    """bench/burst: {"MODE PART": sorted µs samples of the 200 answers}."""
    return {f"{m} {p}": sorted(float(x) for x in r.get("samples_us", []))
            for m, p, r in burst_rows(doc) if r.get("samples_us")}


def burst_shares(doc):
    """bench/burst: [(mode, share of completed work, share of sched run
    time)] of the weight-3 function (None where not measured)."""
    return [(m, r["share"].get("share_w3_completed"), r["share"].get("share_w3_run_us"))
            for m, r in (doc.get("rows") or {}).items() if isinstance(r.get("share"), dict)]


def cdf_points(samples):
    """Sorted samples -> [(value, fraction <= value)], the empirical CDF."""
    n = len(samples)
    return [(v, (i + 1) / n) for i, v in enumerate(sorted(samples))]


def pct_points(stats):
    """{p50, p99, p999} -> [(value, fraction)]: a CDF known at its
    percentiles only (plotted as such)."""
    frac = {"p50": 0.5, "p99": 0.99, "p999": 0.999}
    return sorted((stats[k], f) for k, f in frac.items() if k in stats)


def series_of(doc):
    """Every latency series of a benchmark: {label: {stat: µs}}."""
    if doc.get("benchmark") == "invoke":
        return invoke_series(doc)
    if doc.get("benchmark") == "burst":
        return {f"{m} {p}": r["latency_us"] for m, p, r in burst_rows(doc)
                if r.get("latency_us", {}).get("n")}
    return flat_series(doc)


def peer_bars(doc):
    """The peer comparison: [(label, p50 µs, p99 µs)] of the series that
    have both (what the bar chart shows)."""
    return [(k, v["p50"], v["p99"]) for k, v in series_of(doc).items()
            if "p50" in v and "p99" in v]


def table(doc):
    """The benchmark's main table: (header, rows) of its latency series."""
    s = series_of(doc)
    stats = [st for st in STATS if any(st in v for v in s.values())]
    rows = [[k] + [fmt_us(v.get(st)) for st in stats] for k, v in s.items()]
    return ["series"] + stats, rows


def sort_docs(docs):
    """Benchmarks in ORDER, unknown ones after them by name."""
    def key(d):
        b = d.get("benchmark", "")
        return (ORDER.index(b) if b in ORDER else len(ORDER), b)
    return sorted(docs, key=key)
