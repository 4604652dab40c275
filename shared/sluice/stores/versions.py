"""Versions: a job's stream entry id, padded so that comparing strings compares ids.

Used inside Lua scripts, where string comparison is all there is.
"""

from __future__ import annotations

from sluice.types import parse_entry_id


def padded(entry_id: str) -> str:
    """`"1700000000000-3"` -> `"000001700000000000-0000000003"` (fixed width, sortable)."""
    ms, seq = parse_entry_id(entry_id)
    return f"{ms:018d}-{seq:010d}"
