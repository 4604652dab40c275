"""The history benchmark suite runs end to end with tiny sizes (no speed is asserted here)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `benchmarks` lives beside the source roots, not in the package


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_history_suite_measures_every_system(tmp_path: Path) -> None:
    pytest.importorskip("langchain_redis", reason="pip install -e '.[bench]'")
    pytest.importorskip("redisvl", reason="pip install -e '.[bench]'")
    from benchmarks import run

    assert run.main(["--only", "history", "--quick", "--n", "30", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "latest.json").read_text())["suites"]["history"]["data"]
    seen = {(m["case"], m["system"]) for m in data["measurements"] if m["ok"]}
    assert {("append", s) for s in ("sluice", "sluice-buffered", "langchain-redis", "redisvl")} <= seen
    assert {("read", s) for s in ("sluice", "langchain-redis", "redisvl", "raw")} <= seen
    assert data["summary"]["read"]["sluice"]["p50_ms"] > 0
    assert "redisvl p50 / sluice p50" in (tmp_path / "latest.md").read_text()
    # the request-path write cases: one append vs raw XADD, and many producers at once
    single = data["writes"]["single"]
    assert single["sluice"]["ok"] and single["raw-xadd"]["ok"] and single["raw-xadd-held"]["ok"]
    group = data["writes"]["group"]
    assert all(group[s]["median"] > 0 for s in ("sluice-threads", "sluice-asyncio", "langchain-redis"))
    assert "sluice / raw XADD of the same bytes" in (tmp_path / "latest.md").read_text()
