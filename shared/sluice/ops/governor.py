"""What the workers' governor is doing, for `sluice status` and the dashboard (read-only).

One ``HGETALL`` of ``ns:governor`` (written by the workers' `governor_take.lua` and the apps'
`governor_report.lua`) and the query engine's worker-thread setting: ``CONFIG GET search-workers``
(Redis 8) or ``FT.CONFIG GET WORKERS`` (the RediSearch module). With worker threads, RediSearch
builds HNSW graphs off the main thread; without them (RediSearch 2.10.5 here) every insert runs on
it, and Vector Sets' ``VADD … CAS`` is the cheaper insert path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis.exceptions as rex

from sluice.keys import Keys
from sluice.transport.translate import translate_errors

STALE_MS = 5_000  # a measured duty cycle or a report older than this is shown as idle / none


@dataclass(frozen=True, slots=True)
class GovernorStatus:
    """The shared bucket and the apps' latest report; `None` fields were never written."""

    rate: float | None = None  # share of wall time the workers may take now
    duty: float = 0.0  # measured over the last closed second (0 when older than STALE_MS)
    tokens_ms: float | None = None
    spent_ms: float = 0.0  # server-ms paid since the hash was created
    waits: int = 0
    backoffs: int = 0
    foreground_p99_us: float | None = None
    foreground_idle_us: float | None = None
    foreground_ratio: float | None = None
    foreground_kind: str | None = None
    report_age_s: float | None = None
    search_workers: int | None = None  # None: the server has no such setting
    per_worker_ms: dict[str, float] = field(default_factory=dict)

    @property
    def search_threads(self) -> str:
        if self.search_workers is None:
            return "not available (no search-workers / WORKERS setting)"
        return f"on ({self.search_workers})" if self.search_workers > 0 else "off (0)"


def _num(fields: dict[str, str], name: str) -> float | None:
    try:
        return float(fields[name])
    except (KeyError, ValueError):
        return None


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def parse(raw: dict[Any, Any], now_ms: float, search_workers: int | None) -> GovernorStatus:
    fields = {_text(k): _text(v) for k, v in raw.items()}
    duty_at = _num(fields, "duty_at") or 0.0
    fg_at = _num(fields, "fg_at")
    return GovernorStatus(
        rate=_num(fields, "rate"),
        duty=(_num(fields, "duty") or 0.0) if now_ms - duty_at <= STALE_MS else 0.0,
        tokens_ms=_num(fields, "tokens"),
        spent_ms=_num(fields, "spent") or 0.0,
        waits=int(_num(fields, "waits") or 0),
        backoffs=int(_num(fields, "backoffs") or 0),
        foreground_p99_us=_num(fields, "fg_p99_us"),
        foreground_idle_us=_num(fields, "fg_base_us") or None,
        foreground_ratio=_num(fields, "fg_ratio") or None,
        foreground_kind=fields.get("fg_kind"),
        report_age_s=None if fg_at is None else max(now_ms - fg_at, 0.0) / 1000,
        search_workers=search_workers,
        per_worker_ms={
            k.removeprefix("spent:"): float(v) for k, v in fields.items() if k.startswith("spent:")
        },
    )


def _config_value(reply: Any) -> int | None:
    """`CONFIG GET` (list or dict) / `FT.CONFIG GET` (list of pairs) -> the number, None if absent."""
    if isinstance(reply, dict):
        values = list(reply.values())
    elif reply and isinstance(reply[0], (list, tuple)):
        values = [pair[1] for pair in reply if len(pair) > 1]
    else:
        values = list(reply or [])[1::2]
    for v in values:
        try:
            return int(_text(v))
        except ValueError:
            continue
    return None


def search_workers(redis: Any) -> int | None:
    """The query engine's worker threads: a number (0 = off), or None where the server has none."""
    for command in (("CONFIG", "GET", "search-workers"), ("FT.CONFIG", "GET", "WORKERS")):
        try:
            value = _config_value(redis.execute_command(*command))
        except (rex.ConnectionError, rex.TimeoutError):
            raise
        except rex.RedisError:  # no such command, or the user may not run it (a Cluster client
            continue  # says so before sending: it cannot route a command it does not know)
        if value is not None:
            return value
    return None


def read(redis: Any, keys: Keys) -> GovernorStatus:
    with translate_errors("read the governor"):
        raw = redis.hgetall(keys.governor())
        t = redis.time()
        workers = search_workers(redis)
    return parse(raw, float(t[0]) * 1000 + float(t[1]) / 1000, workers)
