"""fork_report — bench/fork's figures: flatten our clone driver's JSON and
the peers' samples into build/bench/fork.json, compute the ratios
(peer / ours, larger is better) and the goals, print the table.

Our driver (build/bin/uf-bench-fork, bench/fork_bench.c) reports series of
steps, each {p50, p99, mean} in µs: "us" (plain clones: the headline),
"prefetch" (clones that prefetch the recorded working set; the driver
alternates the two), "reset" (reset in place of one clone).  Every series
and step it reports is carried over; ratios are taken against both kinds;
goals against the prefetching clones, which is how uf-worker starts its
clones (the deploy records the template's working set).
"""
import json
import os

from benchlib import OUT, mode, pct, write_result

SERIES = (("us", "clone", "ours: clone (shell..echo answer)"),
          ("prefetch", "prefetch", "ours: clone + prefetch (..echo answer)"),
          ("reset", "reset", "ours: reset in place (..echo answer)"))
PEERS = (("ours_boot", "ours: cold boot (spawn..echo answer)", True),
         ("qemu_boot", "QEMU microvm cold boot (spawn..echo)", True),
         ("qemu_restore", "QEMU restore, -incoming exec:cat (..echo)", True),
         ("qemu_restore_resumed", "  spawn..guest resumed (stream loaded)", False),
         ("qemu_restore_hello", "  spawn..Hello", False))
RATIO_PEERS = [k for k, _, r in PEERS if r]
GOALS = {"qemu_boot": 50.0, "qemu_restore": 10.0}


def summary(xs):
    return {"n": len(xs), "p50": pct(xs, 50), "p99": pct(xs, 99),
            "mean": sum(xs) / len(xs)} if xs else None


def micro_figures():
    """The micro-guest clone latency of bench/fork-micro's last run."""
    for name in ("fork_micro.json", "fork-micro.json"):
        try:
            with open(os.path.join(OUT, name)) as f:
                m = json.load(f)
            return {"p50": m["clone_sync_total_p50_us"], "p99": m["clone_sync_total_p99_us"],
                    "n": m.get("n"), "mode": m.get("mode"), "time": m.get("time")}
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


def _series(ours, key):
    s = ours.get(key) if ours else None
    return s if isinstance(s, dict) and isinstance(s.get("total"), dict) else None


def _n(ours, key):
    n = (ours.get("samples") or {}).get({"us": "plain"}.get(key, key))
    return n if n is not None else (ours.get("clones") if key == "us" else None)


def build(info, ours, ours_err, peers, rest_priv, samples):
    """fork.json's figures (a flat dict)."""
    res = dict(info)
    res["ours_status"] = ours_err or "ok"
    for key, s in peers.items():
        if s:
            res[f"{key}_n"] = s["n"]
            for p in ("p50", "p99", "mean"):
                res[f"{key}_{p}_us"] = round(s[p], 1)
    if rest_priv:
        res["qemu_restore_private_kib_p50"] = pct(rest_priv, 50)
        res["qemu_restore_private_kib_max"] = max(rest_priv)
    if ours:
        for k in ("clones", "failed", "snapshot_bytes", "working_set_pages",
                  "working_set_written_pages", "pool", "samples"):
            if k in ours:
                res[f"ours_{k}"] = ours[k]
        res["ours_driver_mode"] = ours.get("mode")
        for key, name, _ in SERIES:
            for step, v in (_series(ours, key) or {}).items():
                for p in ("p50", "p99", "mean"):
                    if isinstance(v, dict) and v.get(p) is not None:
                        res[f"ours_{name}_{step}_{p}_us"] = v[p]
        for p in ("p50", "max"):
            if (ours.get("private_kib") or {}).get(p) is not None:
                res[f"ours_clone_private_kib_{p}"] = ours["private_kib"][p]
        for key, name, _ in (SERIES[0], SERIES[1]):
            s = _series(ours, key)
            for peer in RATIO_PEERS:
                for p in ("p50", "p99"):
                    if s and peers.get(peer) and s["total"].get(p):
                        res[f"ratio_{peer}_{p}_over_{name}"] = round(
                            peers[peer][p] / s["total"][p], 2)
        for peer, goal in GOALS.items():
            r = res.get(f"ratio_{peer}_p50_over_prefetch")
            # A run with failed clones meets no goal, whatever its figures.
            res[f"goal_{peer}_{goal:g}x_met"] = (r is not None and r >= goal
                                                 and ours.get("failed") == 0)
    micro = micro_figures()
    if micro:
        res["micro_guest_clone_native_p50_us"] = micro["p50"]
        res["micro_guest_clone_native_p99_us"] = micro["p99"]
        res["micro_guest_clone_native_source"] = (
            f"build/bench/fork_micro.json ({micro['mode']}, {micro['time']}; not this run)")
    res["samples_us"] = {k: [round(x, 1) for x in v] for k, v in samples.items()}
    return res, micro


def write(info, ours, ours_err, peers, rest_priv, samples):
    res, micro = build(info, ours, ours_err, peers, rest_priv, samples)
    path = write_result("fork", res)
    print_table(res, ours, ours_err, micro, peers)
    print(f"-> {path}")
    return res


def ms(us):
    """13 columns: µs below a millisecond, else ms."""
    if us is None:
        return f"{'-':>13}"
    return f"{us:10.1f} us" if us < 1000 else f"{us / 1e3:10.2f} ms"


def print_table(res, ours, ours_err, micro, peers):
    print(f"\nclone-to-first-agent-response, mode {mode()}; ratios = row / ours clone "
          f"(plain; + prefetch in brackets), same percentile:")
    print(f"{'':44}{'n':>6}{'p50':>14}{'p99':>14}{'x p50':>16}{'x p99':>16}")

    def ratio(peer, p):
        r, rp = (res.get(f"ratio_{peer}_{p}_over_{s}") for s in ("clone", "prefetch"))
        if r is None:
            return f"{'':>16}"
        return f"{r:8.1f}x" + (f" [{rp:.0f}x]" if rp is not None else "").rjust(8)

    def row(label, n, p50, p99, peer=None):
        print(f"{label:44}{n if n is not None else '':>6}{ms(p50)}{ms(p99)}"
              + (ratio(peer, "p50") + ratio(peer, "p99") if peer else ""))

    if ours:
        for key, _, label in SERIES:
            s = _series(ours, key)
            if not s:
                continue
            row(label, _n(ours, key), s["total"].get("p50"), s["total"].get("p99"))
            for step, v in s.items():
                # Steps a kind does not take (a plain clone's prefetch, a
                # reset's take and map) are reported as zeros: left out.
                if step != "total" and isinstance(v, dict) and (v.get("p50") or v.get("p99")):
                    row(f"  {step.replace('_', ' ')}", None, v.get("p50"), v.get("p99"))
        if ours.get("failed"):
            print(f"  FAILED clones: {ours['failed']} of {ours.get('clones')}")
    else:
        print(f"{'ours: clone':44}  not measured: {ours_err}")
    for key, label, r in PEERS:
        s = peers.get(key)
        if s:
            row(label, s["n"], s["p50"], s["p99"], key if r else None)
    if micro:
        row("micro-guest clone, native (fork_micro.json)", micro["n"], micro["p50"], micro["p99"])
    pk = (ours or {}).get("private_kib")
    print("per-clone private memory: " + (f"ours p50 {pk.get('p50')} KiB, max {pk.get('max')} KiB"
                                          if pk else "ours not measured")
          + (f"; a QEMU restore's process (guest RAM + QEMU) p50 "
             f"{res['qemu_restore_private_kib_p50']} KiB" if "qemu_restore_private_kib_p50" in res
             else ""))
    for peer, goal in GOALS.items():
        r = res.get(f"ratio_{peer}_p50_over_prefetch")
        if r is not None:
            met = res[f"goal_{peer}_{goal:g}x_met"]
            print(f"goal: {peer.replace('_', ' ')} / ours clone (with prefetch, as uf-worker "
                  f"clones) >= {goal:g}x at p50: {r:.1f}x, "
                  f"{'met' if met else 'NOT met'}{' (clones failed)' if ours.get('failed') else ''}")
    nb = peers["qemu_boot"]["n"] if peers.get("qemu_boot") else 0
    nr = peers["qemu_restore"]["n"] if peers.get("qemu_restore") else 0
    print(f"(QEMU: {nb} cold boots and {nr} restores against {ours.get('clones') if ours else 0} "
          f"clones: each QEMU start takes seconds here.  The micro-guest row is bench/fork-micro's "
          f"last run, natively on the host, not this run.)")
