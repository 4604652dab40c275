"""The benchmark runner runs end to end with tiny sizes (no speed is asserted, only that it works)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `benchmarks` lives beside the source roots, not in the package


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_runtime_suite_runs_every_case_and_system(tmp_path: Path) -> None:
    from benchmarks import run

    code = run.main(
        ["--only", "runtime", "--n", "300", "--latency-seconds", "1", "--repeat", "1", "--out", str(tmp_path)]
    )
    assert code == 0
    results = json.loads((tmp_path / "latest.json").read_text())
    data = results["suites"]["runtime"]["data"]
    measurements = data["measurements"]
    seen = {(m["case"], m["system"]) for m in measurements}
    for case in ("noop", "hash", "latency"):
        for system in ("sluice", "raw", "celery"):
            assert (case, system) in seen
    assert ("hash", "sluice-cachefill") in seen
    for m in measurements:
        assert m["ok"], m
        assert m["completed"] == m["n"] > 0
        assert m["rate"] > 0
        assert m["left_pending"] == 0
        if m["case"] == "latency":
            assert m["p50_ms"] > 0
            assert m["p99_ms"] >= m["p50_ms"]
    assert data["summary"]["noop"]["sluice"]["rate"] > 0
    markdown = (tmp_path / "latest.md").read_text()
    assert "| noop | sluice |" in markdown
    assert "sluice / raw loop" in markdown
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    assert (tmp_path / "latest.png").stat().st_size > 0
