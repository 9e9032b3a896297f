"""report_plots — bench/report's PNG plots, drawn by gnuplot (Debian's
gnuplot-nox; the pngcairo terminal, which needs no display):

  NAME-bars.png   p50 and p99 of every latency series of a benchmark side by
                  side (log scale): ours against the peers of the same run
  burst-share.png the weight-3 function's share under bench/burst, per mode
  NAME-cdf.png    latency CDFs: the empirical CDF where the JSON carries
                  samples (bench/burst), else the CDF known at its p50/p99/
                  p99.9 points (drawn as points joined by lines)

Data and scripts go next to the PNGs (DIR/plots/NAME-*.dat, .gp) so a plot
can be redrawn or inspected by hand.  plot_*() return the PNG's file name,
or None when gnuplot is missing or failed (the report says so).
"""
import os
import shutil
import subprocess

import report_data as rd

MAX_CDF_SERIES = 12


def _q(s):
    return '"' + str(s).replace('"', "'") + '"'


def _gnuplot(gp_path, script):
    with open(gp_path, "w") as f:
        f.write(script)
    if not shutil.which("gnuplot"):
        return "gnuplot not found (Debian package gnuplot-nox)"
    p = subprocess.run(["gnuplot", gp_path], capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        return f"gnuplot exit {p.returncode}: {p.stderr.strip()[-300:]}"
    return None


def plot_bars(name, bars, out_dir, errors):
    """bars: [(label, p50 µs, p99 µs)]."""
    if not bars:
        return None
    pd = os.path.join(out_dir, "plots")
    os.makedirs(pd, exist_ok=True)
    dat = os.path.join(pd, f"{name}-bars.dat")
    with open(dat, "w") as f:
        for label, p50, p99 in bars:
            f.write(f"{_q(label)} {p50 / 1e3:.6g} {p99 / 1e3:.6g}\n")
    png = f"{name}-bars.png"
    width = max(640, min(1600, 90 * len(bars) + 200))
    err = _gnuplot(os.path.join(pd, f"{name}-bars.gp"), f"""\
set terminal pngcairo size {width},520 noenhanced font ",10"
set output {_q(os.path.join(out_dir, png))}
set title {_q(name + ": p50 and p99 latency per series (log scale)")}
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set ylabel "ms"
set grid ytics
set xtics rotate by -30 scale 0
set bmargin 10
set key top left
plot {_q(dat)} using 2:xtic(1) title "p50", "" using 3 title "p99"
""")
    if err:
        errors.append(f"{png}: {err}")
        return None
    return png


def plot_cdf(name, curves, out_dir, errors, empirical):
    """curves: {label: [(µs, fraction)]}; empirical: steps, else points."""
    curves = {k: v for k, v in curves.items() if v}
    if not curves:
        return None
    labels = list(curves)[:MAX_CDF_SERIES]
    pd = os.path.join(out_dir, "plots")
    os.makedirs(pd, exist_ok=True)
    dat = os.path.join(pd, f"{name}-cdf.dat")
    with open(dat, "w") as f:
        for label in labels:
            for us, fr in curves[label]:
                f.write(f"{us / 1e3:.6g} {fr:.6g}\n")
            f.write("\n\n")
    style = "with steps lw 2" if empirical else "with linespoints lw 2 pt 7"
    plots = ", ".join(f"{_q(dat)} index {i} using 1:2 {style} title {_q(lb)}"
                      for i, lb in enumerate(labels))
    png = f"{name}-cdf.png"
    what = "empirical CDF of the 200 answers" if empirical else "CDF at p50 / p99 / p99.9"
    err = _gnuplot(os.path.join(pd, f"{name}-cdf.gp"), f"""\
set terminal pngcairo size 900,520 noenhanced font ",10"
set output {_q(os.path.join(out_dir, png))}
set title {_q(f"{name}: latency, {what}")}
set logscale x
set xlabel "latency (ms, log scale)"
set ylabel "fraction of calls"
set yrange [0:1.02]
set grid
set key outside right
plot {plots}
""")
    if err:
        errors.append(f"{png}: {err}")
        return None
    return png


def plot_share(shares, out_dir, errors):
    """bench/burst: shares [(mode, work share, run-time share)] of the
    weight-3 function, against the fair 0.75."""
    if not shares:
        return None
    pd = os.path.join(out_dir, "plots")
    os.makedirs(pd, exist_ok=True)
    dat = os.path.join(pd, "burst-share.dat")
    with open(dat, "w") as f:
        for mode, work, run in shares:
            f.write(f"{_q(mode)} {work if work is not None else '?'} {run if run is not None else '?'}\n")
    png = "burst-share.png"
    err = _gnuplot(os.path.join(pd, "burst-share.gp"), f"""\
set terminal pngcairo size 640,420 noenhanced font ",10"
set output {_q(os.path.join(out_dir, png))}
set title "share of the weight-3 function (weights 1 and 3, both saturated)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set datafile missing "?"
set yrange [0:1]
set grid ytics
set key top left
plot {_q(dat)} using 2:xtic(1) title "completed work", "" using 3 title "sched run time", \\
     0.75 with lines dt 2 lw 2 title "fair (0.75)"
""")
    if err:
        errors.append(f"{png}: {err}")
        return None
    return png


def plots_for(doc, out_dir, errors):
    """Every plot of one benchmark -> [png file names]."""
    name = doc.get("benchmark", "unknown")
    out = [plot_bars(name, rd.peer_bars(doc), out_dir, errors)]
    samples = rd.burst_samples(doc) if name == "burst" else {}
    if samples:
        out.append(plot_cdf(name, {k: rd.cdf_points(v) for k, v in samples.items()},
                            out_dir, errors, True))
        out.append(plot_share(rd.burst_shares(doc), out_dir, errors))
    else:
        out.append(plot_cdf(name, {k: rd.pct_points(v) for k, v in rd.series_of(doc).items()},
                            out_dir, errors, False))
    return [p for p in out if p]
