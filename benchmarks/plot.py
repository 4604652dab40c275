"""Plot a results JSON: `python -m benchmarks.plot results.json out.png` (needs only matplotlib)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

COLORS = {"sluice": "#1f77b4", "sluice-cachefill": "#6baed6", "raw": "#7f7f7f", "celery": "#2ca02c"}


def _runtime_axes(fig: Any, data: dict[str, Any], axes: list[Any]) -> None:
    summary = data["summary"]
    throughput = [c for c in summary if c != "latency"]
    ax = axes[0]
    systems = sorted({s for c in throughput for s in summary[c]}, key=list(COLORS).index)
    width = 0.8 / max(1, len(systems))
    lowest = math.inf
    for j, s in enumerate(systems):
        xs, ys = [], []
        for i, c in enumerate(throughput):
            rate = summary[c].get(s, {}).get("rate", math.nan)
            if rate and not math.isnan(rate):
                xs.append(i + j * width)
                ys.append(rate)
        lowest = min([lowest, *ys])
        bars = ax.bar(xs, ys, width, label=s, color=COLORS.get(s))
        ax.bar_label(bars, labels=[f"{y:,.0f}" for y in ys], fontsize=7)
    ax.set_xticks([i + width * (len(systems) - 1) / 2 for i in range(len(throughput))], throughput)
    ax.set_yscale("log")
    if lowest < math.inf:
        ax.set_ylim(bottom=lowest / 4)  # bars on a log axis need a floor well below the smallest
    ax.set_ylabel("jobs/s end to end (log)")
    ax.set_title("throughput, 2 worker processes")
    ax.legend(fontsize=8)
    samples = data.get("latency_samples_ms") or {}
    ax = axes[1]
    for s, values in samples.items():
        if values:
            ordered = sorted(values)
            n = len(ordered)
            ax.plot(ordered, [(i + 1) / n for i in range(n)], label=s, color=COLORS.get(s))
    ax.set_xscale("log")
    ax.set_xlabel("enqueue → applied, ms (log)")
    ax.set_ylabel("fraction of jobs")
    opts = data.get("options", {})
    ax.set_title(f"latency CDF at {opts.get('latency_rate', 0):,.0f} jobs/s offered")
    for q in (0.5, 0.99):
        ax.axhline(q, color="#cccccc", linewidth=0.8, zorder=0)
    if any(samples.values()):
        ax.legend(fontsize=8)


def _history_axes(fig: Any, data: dict[str, Any], axes: list[Any]) -> None:
    """p50 per system for one chat turn appended and for a 100-message session read (log scale)."""
    summary = data["summary"]
    for ax, case, title in zip(
        axes, ("append", "read"), ("append one turn (app side)", "read a 100-message session"), strict=True
    ):
        systems = [
            s for s, v in summary.get(case, {}).items() if v.get("p50_ms") and not math.isnan(v["p50_ms"])
        ]
        values = [summary[case][s]["p50_ms"] for s in systems]
        bars = ax.bar(
            range(len(systems)),
            values,
            color=["#1f77b4" if s.startswith("sluice") else "#7f7f7f" for s in systems],
        )
        ax.bar_label(bars, labels=[f"{v:.3f}" for v in values], fontsize=7)
        ax.set_xticks(range(len(systems)), systems, rotation=20, fontsize=7)
        ax.set_yscale("log")
        ax.set_ylabel("p50 ms (log)")
        ax.set_title(title)


def plot(results: dict[str, Any], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suites = results["suites"]
    fig, axes = plt.subplots(len(suites), 2, figsize=(12, 4.5 * len(suites)), squeeze=False)
    for row, (name, suite) in enumerate(suites.items()):
        if name == "runtime":
            _runtime_axes(fig, suite["data"], list(axes[row]))
        elif name == "history":
            _history_axes(fig, suite["data"], list(axes[row]))
        elif name in ("caches", "foreground"):
            from benchmarks.cacheplot import AXES

            AXES[name](fig, suite["data"], list(axes[row]))
        elif name == "semantic":
            from benchmarks.semantic_plot import semantic_axes

            semantic_axes(fig, suite["data"], list(axes[row]))
        elif name == "vectors":
            from benchmarks.vector_plot import vector_axes

            vector_axes(fig, suite["data"], list(axes[row]))
    fig.suptitle(
        f"sluice benchmarks — {results['meta']['started']} ({results['meta']['redis']})", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


if __name__ == "__main__":
    plot(json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]))
