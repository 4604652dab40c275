"""The soak harness (`benchmarks/soak.py`, run for minutes by `make soak`): its growth measure, and a
short run end to end, which must account for every job and pass its data checks."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `benchmarks` lives beside the source roots, not in the package

from benchmarks import soak  # noqa: E402


def samples(values: list[float]) -> list[soak.Sample]:
    return [soak.Sample(t * 5.0, v, v, [v], v, 0, 0, 0) for t, v in enumerate(values)]


def test_growth_is_flat_for_noise_and_positive_for_a_leak() -> None:
    flat = samples([10.0, 10.4, 9.8, 10.1, 10.2, 9.9, 10.0, 10.1])
    leak = samples([10.0 + i for i in range(8)])
    assert abs(soak.growth(flat, 0, lambda s: s.redis_used_mb)) < 0.05
    assert soak.growth(leak, 0, lambda s: s.redis_used_mb) == pytest.approx(7 / 13.5, rel=0.01)
    # the warm-up is left out: a climb that levels off is flat afterwards
    settling = samples([1.0, 5.0, 9.0, 10.0, 10.0, 10.1, 9.9, 10.0])
    assert abs(soak.growth(settling, 15.0, lambda s: s.redis_used_mb)) < 0.02


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_short_soak_accounts_for_every_job(tmp_path: Path) -> None:
    result = soak.run(seconds=8, workers=2, rate=0.3, every=2.0, out=tmp_path)
    assert result["ok"], result["problems"]
    jobs = result["jobs"]
    graph = importlib.util.find_spec("langgraph") is not None  # sluice[langgraph]: CI installs it
    assert set(jobs) == {"cache-fill", "cache-warm", "index", "history-append"} | (
        {"checkpoint", "store"} if graph else set()
    )
    for kind, row in jobs.items():
        assert row["enqueued"] > 0, kind
        assert row["lost"] == 0 and row["dead"] == 0, (kind, row)
    assert all(r["count"] > 0 for r in result["reads"].values()) and len(result["reads"]) == (
        6 if graph else 4
    )
    assert result["audit"]["audit_sessions_exact"] and result["audit"]["audit_cache_missing"] == 0
    if graph:
        assert result["audit"]["audit_checkpoints_exact"] and result["audit"]["audit_store_exact"]
        assert result["audit"]["audit_checkpoints"] > 0 and result["audit"]["audit_store_items"] > 0
    assert json.loads((tmp_path / "soak-latest.json").read_text())["ok"]
    assert "| kind | enqueued |" in (tmp_path / "soak-latest.md").read_text()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    assert (tmp_path / "soak-latest.png").stat().st_size > 10_000
