"""Jinja filters: ages, sizes, rates. Values only; escaping stays with Jinja's autoescape."""

from __future__ import annotations

import time
from typing import Any


def age(seconds: float | None) -> str:
    """3s, 4m 10s, 2h 5m, 3d 4h."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def since_ms(ms: float | None, now: float | None = None) -> str:
    return "-" if ms is None else age((now or time.time()) - ms / 1000)


def since(ts: Any, now: float | None = None) -> str:
    try:
        return age((now or time.time()) - float(ts))
    except (TypeError, ValueError):
        return "-"


def size(n: int | None) -> str:
    if n is None:
        return "n/a"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.1f}%"


def number(n: int | None) -> str:
    return "n/a" if n is None else f"{n:,}"


def millis(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


FILTERS = {
    "age": age,
    "since_ms": since_ms,
    "since": since,
    "size": size,
    "percent": percent,
    "number": number,
    "millis": millis,
}
