"""The app's vectors remembered between a lookup and its fill, and how a fill job carries them."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from sluice.embeddings import recent
from sluice.embeddings.recent import RecentVectors, compact
from sluice.jobs.codec import FIELD, decode, encode
from sluice.jobs.models import MAX_VECTOR_DIMS, CacheFillPayload, JobEnvelope


def test_vectors_are_bounded_in_count_least_recently_used_first_out() -> None:
    memory = RecentVectors(capacity=2)
    memory.put("a", [1.0])
    memory.put("b", [2.0])
    assert memory.get("a") == [1.0]  # 'a' is now the most recent
    memory.put("c", [3.0])
    assert (memory.get("a"), memory.get("b"), memory.get("c")) == ([1.0], None, [3.0])
    assert len(memory) == 2


def test_a_vector_older_than_max_age_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(recent.time, "monotonic", lambda: now[0])
    memory = RecentVectors(max_age=5)
    memory.put("a", [1.0])
    now[0] += 6
    assert memory.get("a") is None and len(memory) == 0


def test_compact_keeps_float32_precision_in_a_short_form() -> None:
    v = [0.1234567890123, -1e-9, 3.0]
    out = compact(v)
    assert all(math.isclose(a, b, rel_tol=1e-8) for a, b in zip(v, out, strict=True))
    assert len(repr(out[0])) <= 12


def test_a_fill_carries_a_vector_through_the_codec_and_old_fills_still_decode() -> None:
    payload = CacheFillPayload(llm_string="m", prompt="p", generations=[{"text": "t"}], vector=[0.5, -0.25])
    data = encode(JobEnvelope(namespace="ns", payload=payload))
    assert decode("s", "1-1", {FIELD: data}).envelope.payload == payload
    assert CacheFillPayload(llm_string="m", prompt="p", generations=[]).vector is None


@pytest.mark.parametrize("vector", [[], [math.nan], [math.inf], [0.0] * (MAX_VECTOR_DIMS + 1)])
def test_a_vector_that_no_index_could_hold_is_refused(vector: list[float]) -> None:
    with pytest.raises(ValidationError):
        CacheFillPayload(llm_string="m", prompt="p", generations=[], vector=vector)
