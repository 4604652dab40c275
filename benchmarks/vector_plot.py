"""Plot of the vector suite (matplotlib only, like benchmarks.plot): ingest rate, query p50 with recall."""

from __future__ import annotations

from typing import Any

COLORS = {
    "sluice": "#1f77b4",
    "sluice-bulk": "#6baed6",
    "raw": "#7f7f7f",
    "redisvl": "#ff7f0e",
    "redisvl-ef10": "#ffbb78",
    "langchain": "#2ca02c",
}


def vector_axes(fig: Any, data: dict[str, Any], axes: list[Any]) -> None:
    ingest = data.get("ingest") or {}
    ax = axes[0]
    names = list(ingest)
    bars = ax.bar(names, [ingest[n]["rate"] for n in names], color=[COLORS.get(n) for n in names])
    ax.bar_label(bars, labels=[f"{ingest[n]['rate']:,.0f}" for n in names], fontsize=7)
    opts = data.get("options", {})
    ax.set_ylabel("documents/s until applied")
    ax.set_title(f"ingest {opts.get('n', 0):,} x {opts.get('dims', 0)} into HNSW")
    ax = axes[1]
    queries = data.get("queries") or []
    systems = list(dict.fromkeys(q["system"] for q in queries))
    width = 0.8 / max(1, len(systems))
    for j, s in enumerate(systems):
        rows = [q for q in queries if q["system"] == s]
        xs = [int(q["filtered"]) + j * width for q in rows]
        drawn = ax.bar(xs, [q["p50_ms"] for q in rows], width, label=s, color=COLORS.get(s))
        ax.bar_label(drawn, labels=[f"r={q['recall']:.2f}" for q in rows], fontsize=6)
    ax.set_xticks(
        [width * (len(systems) - 1) / 2, 1 + width * (len(systems) - 1) / 2], ["no filter", "10% tag"]
    )
    ax.set_ylabel("p50 ms (r = recall@k)")
    ax.set_title(f"k={opts.get('k', 10)} query latency at EF_RUNTIME {opts.get('ef', 0)}")
    ax.legend(fontsize=7)
