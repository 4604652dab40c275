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
    """p99 busy / idle against the ingest rate (share of the ungoverned one), per backend, for
    exact lookups (left) and vector queries (right); one point per duty-cycle setting."""
    ms = [m for m in data.get("measurements", []) if m.get("ok") and m.get("kind")]
    colors = {"search": SLUICE, "vsets": "#ff7f0e"}
    for ax, kind in zip(axes, ("exact", "vector"), strict=True):
        for backend, color in colors.items():
            rows = sorted(
                (
                    m
                    for m in ms
                    if m["kind"] == kind and m.get("backend") == backend and _ok(m, "ingest_share")
                ),
                key=lambda m: m["ingest_share"],
            )
            if not rows:
                continue
            xs, ys = [m["ingest_share"] for m in rows], [m["p99_ratio"] for m in rows]
            ax.plot(xs, ys, "o-", color=color, label=backend)
            for m, x, y in zip(rows, xs, ys, strict=True):
                label = f"{m['duty_cycle']:.0%}" if m.get("governed") else "off"
                ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.axhline(2.0, color=PEER, linestyle="--", linewidth=0.8)
        ax.axvline(0.5, color=PEER, linestyle=":", linewidth=0.8)
        ax.set_xlabel("ingest rate ÷ ungoverned (same backend, same run)")
        ax.set_ylabel("p99 busy ÷ idle")
        ax.set_title(f"{kind} p99 ratio vs ingest, 2 workers indexing (targets: <= 2, >= 0.5)", fontsize=9)
        ax.legend(fontsize=7)


AXES = {"caches": caches_axes, "foreground": foreground_axes}
