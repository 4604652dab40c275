"""Plots of the semantic suite (matplotlib only: `benchmarks.plot` calls `semantic_axes`)."""

from __future__ import annotations

from typing import Any

STYLE = {
    "sluice-verify": ("#1f77b4", "-", "sluice + verifier"),
    "sluice": ("#6baed6", "--", "sluice, verify=False"),
    "redisvl": ("#7f7f7f", "-", "redisvl SemanticCache"),
    "langchain-redis": ("#d62728", ":", "langchain-redis RedisSemanticCache"),
}


def semantic_axes(fig: Any, data: dict[str, Any], axes: list[Any]) -> None:
    """Left: hit rate against false-hit rate, one point per threshold; right: both against the threshold."""
    curves = data.get("curves", {})
    left, right = axes
    for name, rows in curves.items():
        color, dash, label = STYLE.get(name, ("#000000", "-", name))
        left.plot(
            [r["false_hit_rate"] for r in rows], [r["hit_rate"] for r in rows],
            dash, marker=".", color=color, label=label,
        )  # fmt: skip
        if name in ("sluice-verify", "redisvl"):
            ts = [r["threshold"] for r in rows]
            right.plot(ts, [r["hit_rate"] for r in rows], "-", color=color, label=f"{label}: hit rate")
            right.plot(
                ts, [r["false_hit_rate"] for r in rows], "--", color=color, label=f"{label}: false hits"
            )
    left.set_xlabel("false-hit rate (wrong answers / all lookups)")
    left.set_ylabel("hit rate (right answers / lookups that should hit)")
    left.set_title(f"semantic cache quality, {data.get('embedder', '')}", fontsize=9)
    left.grid(alpha=0.3)
    left.legend(fontsize=7)
    right.set_xlabel("cosine distance threshold")
    right.set_ylabel("rate")
    right.set_title(str(data.get("set", "")), fontsize=8)
    right.grid(alpha=0.3)
    right.legend(fontsize=7)
