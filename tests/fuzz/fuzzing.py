"""Hypothesis profiles for the fuzz tests, and strategies they share.

`HYPOTHESIS_PROFILE` picks the profile: `ci` (the default: bounded, part of `make test`) or `long`
(`make fuzz-long`). Tests take it with `@FUZZ`, so other tests' Hypothesis settings are untouched.
`make fuzz-long` adds `--hypothesis-show-statistics`, which prints the examples tried per target.

Test modules here import this file as `fuzzing`: pytest puts this folder on `sys.path` (no
`__init__.py`, default "prepend" import mode).
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile("ci", max_examples=200, deadline=None, suppress_health_check=_QUIET)
settings.register_profile("long", max_examples=20_000, deadline=None, suppress_health_check=_QUIET)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
FUZZ = settings(settings.get_profile(PROFILE))
"""Decorator: the selected profile's example count and deadline."""

# Text that includes what breaks naive code: lone surrogates, NUL, bidi marks, long runs.
nasty_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40) | st.sampled_from(
    ["", " ", "\x00", "\ud800", "\u202e", "é", "🙂", "a" * 300, "{", "[", "\\", "'", '"', ":", "*", "%"]
)

json_leaf: st.SearchStrategy[Any] = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_value: st.SearchStrategy[Any] = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
"""Values JSON can carry (no NaN: JSON has none)."""


def deep(depth: int, opener: bytes = b"[", closer: bytes = b"]") -> bytes:
    """JSON nested `depth` levels deep: recursion limits must become typed errors, not crashes."""
    return opener * depth + closer * depth
