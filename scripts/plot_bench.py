#!/usr/bin/env python3
"""Latency against offered load, from frontdesk-load's --json reports (docs/BENCHMARKS.md).

    scripts/plot_bench.py OUT.png REPORT.json [REPORT.json ...]

Each report's sweep rows (relay, bot) become one line per series: p50 solid, p99 dashed, on a
log scale. Steps that saturated (median over a second, or more than 1% lost) are drawn hollow.
Run through scripts/plot-bench.sh, which installs matplotlib into a venv first.
"""
import json
import sys

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def series(report):
    """{series: [(rate, p50, p99, saturated)]} of one report's sweep rows."""
    out = {}
    for row in report["results"]:
        if row.get("rate") is None:
            continue
        m = row["median"]
        if m["p50_ms"] is None:  # nothing came back at all (NaN in the report)
            continue
        saturated = m["p50_ms"] > 1000 or m["lost"] * 100 > m["sent"]
        out.setdefault(row["series"], []).append((row["rate"], m["p50_ms"], m["p99_ms"], saturated))
    return {name: sorted(points) for name, points in out.items()}


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, paths = sys.argv[1], sys.argv[2:]
    reports = [json.load(open(p)) for p in paths]
    fig, axes = plt.subplots(1, len(reports), figsize=(6.5 * len(reports), 4.8), squeeze=False)
    for ax, report in zip(axes[0], reports):
        for i, (name, points) in enumerate(sorted(series(report).items())):
            colour = f"C{i}"
            rates = [p[0] for p in points]
            for k, (label, style) in enumerate([("p50", "-"), ("p99", "--")]):
                values = [p[1 + k] for p in points]
                ax.plot(rates, values, style, color=colour, label=f"{name} {label}")
                for (rate, *_, saturated), v in zip(points, values):
                    ax.plot([rate], [v], "o", color=colour, mfc="white" if saturated else colour)
        ax.set_xscale("log")
        ax.set_yscale("log")
        rates = sorted({p[0] for points in series(report).values() for p in points})
        ax.set_xticks(rates, [f"{r:,.0f}" for r in rates])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel("offered load, per second")
        ax.set_ylabel("latency from the planned send, ms")
        machine = report["machine"]
        ax.set_title(f"{report['profile']}: {machine['cpus']} CPUs, medians of {report['runs']} run(s)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.text(0.01, 0.01, "hollow: saturated (p50 > 1 s or > 1% lost)", fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
