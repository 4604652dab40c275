"""Plots of the caches and foreground suites (matplotlib only: `benchmarks.plot` calls these)."""

from __future__ import annotations

import math
from typing import Any

SLUICE, PEER = "#1f77b4", "#7f7f7f"


def _bars(ax: Any, labels: list[str], values: list[float], title: str, ylabel: str) -> None:
    colors = [SLUICE if label.startswith("sluice") else PEER for label in labels]
    bars = ax.bar(range(len(values)), values, color=colors)
    ax.bar_label(bars, labels=[f"{v:,.0f}" if v >= 10 else f"{v:.1f}" for v in values], fontsize=7)
    ax.set_xticks(range(len(labels)), labels, rotation=25, ha="right", fontsize=7)
    ax.set_yscale("log")
    if values:
        ax.set_ylim(bottom=min(values) / 3)  # bars on a log axis need a floor below the smallest
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)


def _ok(m: dict[str, Any], key: str) -> bool:
    v = m.get(key)
    return bool(m.get("ok")) and isinstance(v, int | float) and not math.isnan(v) and v > 0


def caches_axes(fig: Any, data: dict[str, Any], axes: list[Any]) -> None:
    """Left: exact lookup and update p50 per system; right: semantic lookup p50 per size."""
    ms = data.get("measurements", [])
    exact = [m for m in ms if m.get("case") in ("exact", "update") and _ok(m, "p50_us")]
    _bars(
        axes[0],
        [f"{m['system']} ({m['case']})" for m in exact],
        [m["p50_us"] for m in exact],
        "exact lookup (hit) and update, p50",
        "µs (log)",
    )
    semantic = [m for m in ms if str(m.get("case", "")).startswith("semantic") and _ok(m, "p50_us")]
    _bars(
        axes[1],
        [f"{m['system']} @ {m.get('size', 0):,}" for m in semantic],
        [m["p50_us"] for m in semantic],
        "semantic lookup p50 (embedding excluded)",
        "µs (log)",
    )


def foreground_axes(fig: Any, data: dict[str, Any], axes: list[Any]) -> None:
    """p99 idle and busy per variant, for exact (left) and semantic (right) lookups."""
    ms = [m for m in data.get("measurements", []) if m.get("ok") and m.get("kind")]
    for ax, kind in zip(axes, ("exact", "semantic"), strict=True):
        rows = [m for m in ms if m["kind"] == kind]
        xs = range(len(rows))
        idle = [m["idle"]["p99_us"] for m in rows]
        busy = [m["busy"]["p99_us"] for m in rows]
        ax.bar([x - 0.2 for x in xs], idle, 0.4, label="idle p99", color="#9ecae1")
        bars = ax.bar([x + 0.2 for x in xs], busy, 0.4, label="busy p99", color=SLUICE)
        ax.bar_label(bars, labels=[f"x{m['p99_ratio']:.1f}" for m in rows], fontsize=7)
        ax.set_xticks(list(xs), [m["variant"] for m in rows], rotation=25, ha="right", fontsize=7)
        ax.set_yscale("log")
        if idle:
            ax.set_ylim(bottom=min(idle + busy) / 3)
        ax.set_ylabel("µs (log)")
        ax.set_title(f"{kind} lookup p99 while 2 workers index (target: at most 2x idle)", fontsize=9)
        ax.legend(fontsize=7)


AXES = {"caches": caches_axes, "foreground": foreground_axes}
