"""The dashboard's parts: store summaries on a real Redis, and the pure pieces (redaction, charts,
latency from Prometheus text, the guard, exposure checks, the CLI's overrides)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from pydantic import SecretStr

from sluice.errors import ConfigError
from sluice.facade.client import Client
from sluice.jobs.models import IndexDocument, IndexPayload
from sluice.ops import cachestats, stores
from sluice.settings import DashboardSettings, Settings
from support.settings import fast_settings
from support.workers import ThreadWorker


def test_store_summaries_come_from_counters_and_indexes(redis8: Any, namespace: str) -> None:
    # Given documents in a vector index, two conversations and some recorded cache lookups
    settings = fast_settings(redis8.url, namespace)
    client = Client(settings)
    store = client.vectorstore("kb", "hashing")
    with ThreadWorker(settings):
        store.add_texts(["one", "two", "three"], ids=["a", "b", "c"], wait=True)
        client.chat_history("alice").add_messages([HumanMessage("hi"), AIMessage("hello")])
        client.chat_history("bob").add_messages([HumanMessage("yo")])
        assert len(client.chat_history("alice").messages) == 2
        assert len(client.chat_history("bob").messages) == 1
    counts = cachestats.LookupCounts()
    for hit in (True, True, True, False):
        counts.exact(hit)
    counts.semantic(True, 0.03)
    counts.semantic(False, 0.31)
    cachestats.record(client.redis, client.keys, "default", counts.take())
    # and index jobs still queued for it (no worker running now)
    client.enqueue(
        [IndexPayload(index="kb", upserts=[IndexDocument(id="d", text="later")], embedder="hashing")]
    )
    # When the summaries are read
    summary = stores.collect(client.redis, client.keys, caches=["default"])
    # Then each number is there
    [kb] = [i for i in summary.indexes if i.name == "kb"]
    assert (kb.backend, kb.dims, kb.documents, kb.pending_jobs, kb.pending_exact) == (
        "search",
        256,
        3,
        1,
        True,
    )
    assert kb.memory_bytes is not None and kb.memory_bytes > 0
    conv = summary.conversations
    assert (conv.sessions, conv.active_last_hour) == (2, 2)
    assert {(s.session_id, s.messages) for s in conv.recent} == {("alice", 2), ("bob", 1)}
    [default] = summary.caches
    assert default.entries is None  # exact entries have no counter: unavailable, not scanned
    assert (default.lookups.hits, default.lookups.misses) == (3, 1)
    assert default.lookups.hit_rate() == 0.75 and default.lookups.semantic_hit_rate() == 0.5
    assert default.lookups.distances[0] == 1 and default.lookups.distances[6] == 1
    assert summary.used_memory and summary.used_memory > 0
    json.dumps(summary.as_dict(), default=str)


def test_a_semantic_cache_is_found_through_its_index(redis8: Any, namespace: str) -> None:
    from langchain_core.outputs import Generation

    from sluice.embeddings.hashing import HashingEmbeddings

    settings = fast_settings(redis8.url, namespace)
    client = Client(settings)
    cache = client.semantic_cache(HashingEmbeddings(), embedder="hashing", name="faq")
    with ThreadWorker(settings):
        cache.update("what is sluice?", "m", [Generation(text="a queue")])
        assert cache.lookup("what is sluice?", "m") is not None
    summary = stores.collect(client.redis, client.keys, caches=[])
    [faq] = summary.caches
    assert faq.name == "faq" and faq.entries == 1 and faq.semantic is not None
    assert all(not i.name.startswith("semcache.") for i in summary.indexes)


def test_payloads_keep_secrets_redacted() -> None:
    from sluice_workers.dashboard.redact import payload_text

    job = {
        "payload": {
            "metadata": {"api_key": "k1", "OPENAI_API_KEY": "k2", "accessToken": "k3", "password": "p"},
            "usage": {"max_tokens": 10, "input_tokens": 3, "token_usage": {"total": 4}},
            "url": "redis://user:hunter2@db:6379/0",
        }
    }
    text = payload_text(json.dumps(job).encode())
    for secret in ("k1", "k2", "k3", '"p"', "hunter2"):
        assert secret not in text
    assert text.count("[redacted]") == 4 and '"max_tokens": 10' in text and '"total": 4' in text
    assert payload_text(b"\xff<not json>") == "\ufffd<not json>"


def test_charts_scale_to_a_readable_axis() -> None:
    from sluice_workers.dashboard import charts

    c = charts.stacked_bars({"a": [1, 0, 7], "b": [2, 0, 0]}, ["x", "y", "z"])
    assert [b.title for b in c.bars] == ["a x: 1", "b x: 2", "a z: 7"]
    assert c.y_labels[-1][1] == "10" and not c.empty
    tallest = max(b.h for b in c.bars)
    assert tallest == pytest.approx((c.bottom - c.top) * 0.7)
    assert charts.stacked_bars({"a": [0, 0]}, ["x", "y"]).empty
    line = charts.lines({"a": [None, 0.5, None]}, ["x", "y", "z"])
    assert len(line.lines) == 1 and len(line.lines[0].dots) == 1
    assert [charts.nice_max(v) for v in (0, 3, 7, 12, 999)] == [1, 5, 10, 20, 1000]


METRICS = """
# TYPE sluice_batch_seconds histogram
sluice_batch_seconds_bucket{{kind="index",le="0.01"}} {a}
sluice_batch_seconds_bucket{{kind="index",le="0.1"}} {b}
sluice_batch_seconds_bucket{{kind="index",le="+Inf"}} {b}
sluice_batch_seconds_count{{kind="index"}} {b}
sluice_batch_seconds_sum{{kind="index"}} {s}
"""


def test_latency_comes_from_histogram_increments() -> None:
    from sluice_workers.dashboard.latency import LatencyHistory

    replies = iter([METRICS.format(a=10, b=10, s=0.05), METRICS.format(a=10, b=20, s=0.55)])
    history = LatencyHistory(["http://127.0.0.1:1/metrics"], read=lambda url: next(replies))
    now = time.time() // 60 * 60 + 1  # three reads in one minute
    history.scrape(now)  # first sight: everything since the worker started counts
    history.scrape(now + 1)  # too soon: not read
    history.scrape(now + 6)
    assert history.mean_per_minute(["index"], 2, now + 6)["index"] == [None, pytest.approx(0.55 / 20)]
    assert history.p95("index", 2, now + 6) == 0.1
    failing = LatencyHistory(["http://u:pw@127.0.0.1:1/metrics"], read=lambda url: 1 / 0)  # type: ignore[arg-type,return-value]
    failing.scrape(now)
    assert list(failing.errors) == ["http://u:***@127.0.0.1:1/metrics"]


def test_the_guard_checks_tokens_and_csrf() -> None:
    from sluice_workers.dashboard.security import Guard

    open_guard = Guard(None, "sluice")
    assert open_guard.authorized(None) and not open_guard.protected
    guard = Guard(SecretStr("t0k"), "ops")
    basic = base64.b64encode(b"ops:t0k").decode()
    assert guard.authorized("Bearer t0k") and guard.authorized(f"Basic {basic}")
    assert (
        not guard.authorized("Bearer t0") and not guard.authorized("Basic !!!") and not guard.authorized(None)
    )
    assert not guard.authorized("Basic " + base64.b64encode(b"root:t0k").decode())
    token = guard.csrf_token("session-a")
    assert guard.csrf_ok("session-a", token)
    assert (
        not guard.csrf_ok("session-b", token)
        and not guard.csrf_ok(None, token)
        and not guard.csrf_ok("a", None)
    )


def test_actions_are_not_offered_to_a_network_without_a_token() -> None:
    from sluice_workers.dashboard.server import check_exposure, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")
    with pytest.raises(ConfigError, match="SLUICE_DASHBOARD__TOKEN"):
        check_exposure(Settings(dashboard=DashboardSettings(host="0.0.0.0")))
    check_exposure(Settings(dashboard=DashboardSettings(host="0.0.0.0", read_only=True)))
    check_exposure(Settings(dashboard=DashboardSettings(host="0.0.0.0", token=SecretStr("x"))))


def test_the_cli_overrides_settings() -> None:
    from sluice_workers.cli.dashboard import with_overrides
    from sluice_workers.cli.main import build_parser

    args = build_parser().parse_args(["dashboard", "--port", "0", "--read-only"])
    settings = with_overrides(Settings(dashboard=DashboardSettings(port=9000, refresh_seconds=3)), args)
    assert (settings.dashboard.port, settings.dashboard.read_only, settings.dashboard.refresh_seconds) == (
        0,
        True,
        3,
    )
    assert settings.dashboard.host == "127.0.0.1"
    plain = with_overrides(Settings(), build_parser().parse_args(["dashboard"]))
    assert plain.dashboard.read_only is False and plain.dashboard.port == 8470


def test_a_page_runs_no_scan_or_keys(redis8: Any, namespace: str) -> None:
    """What the page reads, accounted by the server itself: INFO commandstats before and after."""
    settings = fast_settings(redis8.url, namespace)
    client = Client(settings)
    from sluice_workers.dashboard.snapshot import Source

    before = client.redis.info("commandstats")
    Source(client.redis, settings).take()  # everything one page shows
    after = client.redis.info("commandstats")
    for command in ("cmdstat_scan", "cmdstat_keys"):
        assert after.get(command, {}).get("calls", 0) == before.get(command, {}).get("calls", 0), command


def test_the_dashboard_finds_metrics_of_workers_on_its_own_host() -> None:
    import socket

    from sluice_workers.dashboard.snapshot import local_metrics_urls

    here = socket.gethostname()
    workers = [
        {"host": here, "metrics_port": 9101},
        {"host": here, "metrics_port": None},
        {"host": "elsewhere", "metrics_port": 9102},
        {"host": here, "metrics_port": 9100},
    ]
    assert local_metrics_urls(workers) == ["http://127.0.0.1:9100/metrics", "http://127.0.0.1:9101/metrics"]
