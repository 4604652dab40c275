"""The benchmark runner runs end to end with tiny sizes (no speed is asserted, only that it works)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

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


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_cache_and_foreground_suites_run_every_system(redis_factory: Any) -> None:
    # Given a server of this test alone (the suites FLUSHALL between cases) and tiny sizes
    pytest.importorskip("langchain_redis")
    pytest.importorskip("langchain_community")
    pytest.importorskip("redisvl")
    from benchmarks import caches, foreground

    url = redis_factory.redis(8, modules=True).url
    cache_opts = caches.Options(n=40, repeat=1, updates=40, semantic_sizes=(300,), sample=40, workers=1)
    fg_opts = foreground.Options(
        documents=200,
        cached=40,
        query_docs=50,
        idle_rounds=40,
        cycles=1,
        variants=("search-off", "search-50"),
        workers=1,
    )

    # When both suites run
    cache_report = caches.run(url, cache_opts, log=lambda _msg: None)
    fg_report = foreground.run(url, fg_opts, log=lambda _msg: None)

    # Then every system of every case completed, served the right entries, and is in the tables
    measured = cache_report.data["measurements"]
    assert {(m["case"], m["system"]) for m in measured} >= {
        ("exact", "sluice"), ("exact", "sluice-local"), ("exact", "raw"), ("exact", "langchain-redis"),
        ("exact", "langchain-community"), ("update", "sluice"), ("update", "sluice-semantic"),
        ("update", "redisvl"), ("semantic 300", "sluice-semantic"), ("semantic 300", "redisvl"),
        ("semantic 300", "langchain-redis-semantic"),
    }  # fmt: skip
    assert all(m["ok"] for m in measured), [m for m in measured if not m["ok"]]
    semantic = cache_report.data["semantic"]["sizes"][0]["quality"]["sluice-semantic"]
    assert semantic["false_hit_rate"] == 0.0 and semantic["hit_rate"] > 0
    assert all(m["ok"] and m["busy"]["calls"] > 0 for m in fg_report.data["measurements"])
    markdown = cache_report.markdown() + fg_report.markdown()
    assert "exact hit: sluice / raw GET + decode" in markdown
    writes = cache_report.data["writes"]  # one update vs raw XADD, and 64 producers at once
    assert writes["single"]["sluice"]["ok"] and writes["single"]["raw-xadd"]["ok"]
    assert (
        writes["group"]["sluice-threads"]["median"] > 0 and writes["group"]["langchain-redis"]["median"] > 0
    )
    assert "single cache update: sluice / raw XADD of the same bytes" in markdown
    assert "exact p99 busy / idle" in markdown and "ingest rate / ungoverned" in markdown


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_vector_suite_runs_every_system_and_case(redis_factory: Any) -> None:
    pytest.importorskip("langchain_redis")
    pytest.importorskip("redisvl")
    from benchmarks import vectors

    url = redis_factory.redis(8, modules=True).url
    opts = vectors.Options(n=400, queries=20, memory_n=100, chunk=200, repeat=1)
    report = vectors.run(url, opts, log=lambda _msg: None)
    data = report.data
    assert set(data["ingest"]) == {"raw", "sluice", "sluice-bulk", "redisvl", "langchain"}, report.notes
    assert all(m["ok"] for m in data["measurements"])
    assert {k: v for k, v in data["indexed"].items() if v is not None} == {
        "sluice": 400, "redisvl": 400, "langchain": 400
    }  # fmt: skip
    seen = {(q["system"], q["filtered"]) for q in data["queries"]}
    assert seen == {
        (s, f) for s in ("sluice", "raw", "redisvl", "redisvl-ef10", "langchain") for f in (False, True)
    }
    assert all(q["recall"] >= 0.9 for q in data["queries"] if q["system"] in ("sluice", "raw"))
    assert set(data["memory"]) == {"search/float32", "search/float16", "vsets/float32", "vsets/q8"}
    assert "sluice p50 / raw FT.SEARCH" in report.markdown()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_semantic_suite_measures_every_system_on_the_labelled_set(tmp_path: Path) -> None:
    from benchmarks import run
    from benchmarks.semanticdata import load

    # Given the labelled set (written by us): at least 400 pairs over at least 20 topics
    data = load()
    assert len(data.pairs) >= 400 and len(data.topics) >= 20
    assert {p.same for p in data.pairs} == {True, False}
    # When its first topics are measured (--quick), on the runner's own embedded Redis
    assert run.main(["--only", "semantic", "--quick", "--out", str(tmp_path)]) == 0
    suite = json.loads((tmp_path / "latest.json").read_text())["suites"]["semantic"]
    # Then each system has a curve, the curves agree with each system's real lookups, and the
    # verifier serves fewer wrong answers than the same cache without it
    curves = suite["data"]["curves"]
    assert set(curves) == {"sluice-verify", "sluice", "redisvl", "langchain-redis"}
    assert suite["checks"][0]["met"], suite["notes"]
    for ours, plain in zip(curves["sluice-verify"], curves["sluice"], strict=True):
        assert ours["false_hits"] <= plain["false_hits"]
    assert curves["sluice-verify"][-1]["hits"] > 0
    assert "best_threshold" in suite["data"] and (tmp_path / "latest.png").exists()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_checkpoints_suite_measures_sluice_and_langgraph_checkpoint_redis(tmp_path: Path) -> None:
    pytest.importorskip("langgraph.checkpoint.redis")
    from benchmarks import run

    # When the quick suite runs on the runner's own embedded Redis
    assert run.main(["--only", "checkpoints", "--quick", "--out", str(tmp_path)]) == 0
    suite = json.loads((tmp_path / "latest.json").read_text())["suites"]["checkpoints"]
    measured = {(m["case"], m["system"]): m for m in suite["data"]["measurements"]}
    # Then every case ran for both systems (and the store's two sluice modes), each read right
    cases = ("put", "put_writes", "get_tuple", "agent invoke", "agent run + get_state")
    peer = "langgraph-checkpoint-redis"
    assert {(c, s) for c in cases for s in ("sluice", peer)} <= set(measured)
    puts = {s for c, s in measured if c == "store put"}
    assert puts == {"sluice (workers embed)", "sluice (app embeds)", peer}
    assert all(m["ok"] and m["n"] > 0 for m in measured.values()), suite["notes"]
    assert measured[("get_tuple", "sluice")]["wrong"] == 0
    # And sluice's filtered search returns `limit` items every time, with the recall measured
    ours = measured[("store search (10% filter)", "sluice (workers embed)")]
    assert ours["fewer_than_limit"] == 0 and ours["recall"] >= 0.9
    theirs = measured[("store search (10% filter)", peer)]
    assert 0 <= theirs["fewer_than_limit"] <= theirs["queries"]
    assert "theirs p50 / sluice p50" in suite["markdown"]
