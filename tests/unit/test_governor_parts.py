"""The governor's pieces that need no server: the apps' latency windows and the status parser."""

from __future__ import annotations

import time

from sluice.keys import Keys
from sluice.ops.foreground import ForegroundReporter, Report, p99
from sluice.ops.governor import _config_value, parse
from sluice.settings import GovernorSettings


def reporter(**settings: object) -> ForegroundReporter:
    return ForegroundReporter(GovernorSettings(report_min_lookups=5, **settings), Keys("t"), lambda: None)


def test_p99_is_the_99th_percentile() -> None:
    assert p99([float(i) for i in range(1, 101)]) == 100.0
    assert p99([1.0] * 99 + [50.0]) == 50.0


def test_a_window_reports_its_worst_kind_against_its_idle_p99() -> None:
    # Given idle p99s learned for two kinds
    r = reporter()
    r.idle = {"exact": 100.0, "vector": 1000.0}
    now = time.perf_counter()
    # When exact lookups take 300 µs and vector queries 1,200 µs
    with r._lock:
        r._samples = {"exact": [300.0] * 10, "vector": [1200.0] * 10, "semantic": [50.0] * 2}
    report = r.take()
    # Then the worst by ratio is the exact kind (3x), and a kind with too few lookups is left out
    assert report is not None and report.kind == "exact" and report.ratio == 3.0
    assert set(report.p99s) == {"exact", "vector"}
    assert r.take() is None  # the next window starts empty
    assert now < time.perf_counter()


def test_idle_windows_teach_the_idle_p99_and_busy_ones_only_lower_it() -> None:
    r = reporter()
    first = Report("exact", 200.0, 0.0, 500.0, {"exact": 200.0})
    r.learn(first, ms_since_paid=-1)  # no worker ever paid: idle
    assert r.idle == {"exact": 200.0}
    r.learn(Report("exact", 900.0, 200.0, 500.0, {"exact": 900.0}), ms_since_paid=10)  # busy
    assert r.idle == {"exact": 200.0}
    r.learn(Report("exact", 150.0, 200.0, 500.0, {"exact": 150.0}), ms_since_paid=10)  # busy but faster
    assert r.idle == {"exact": 150.0}
    r.learn(Report("exact", 250.0, 150.0, 500.0, {"exact": 250.0}), ms_since_paid=5_000)  # idle again
    assert 150.0 < r.idle["exact"] < 250.0


def test_reporting_off_records_nothing() -> None:
    r = reporter(report_foreground=False)
    r.note("exact", time.perf_counter())
    assert r.take() is None


def test_status_parses_the_bucket_and_the_search_thread_settings() -> None:
    raw = {
        b"rate": b"0.25", b"duty": b"0.4", b"duty_at": b"1000", b"spent": b"1500.5", b"waits": b"3",
        b"backoffs": b"2", b"fg_p99_us": b"640", b"fg_base_us": b"200", b"fg_ratio": b"3.2",
        b"fg_kind": b"exact", b"fg_at": b"900", b"spent:w1": b"1000", b"spent:w2": b"500.5",
    }  # fmt: skip
    s = parse(raw, now_ms=2_000, search_workers=0)
    assert (s.rate, s.duty, s.waits, s.backoffs, s.foreground_kind) == (0.25, 0.4, 3, 2, "exact")
    assert s.report_age_s == 1.1 and s.per_worker_ms == {"w1": 1000.0, "w2": 500.5}
    assert s.search_threads == "off (0)"
    assert parse({}, 0, None).search_threads.startswith("not available")
    assert parse({b"duty": b"0.4", b"duty_at": b"1"}, 10_000, 4).duty == 0.0  # stale
    assert parse({}, 0, 4).search_threads == "on (4)"
    # CONFIG GET (RESP2 list, RESP3 dict) and FT.CONFIG GET (pairs); empty when the setting does not exist
    assert _config_value([b"search-workers", b"4"]) == 4
    assert _config_value({"search-workers": "2"}) == 2
    assert _config_value([[b"WORKERS", b"0"]]) == 0
    assert _config_value([]) is None
