"""Fuzzing the job codec: whatever a stream entry holds, `decode` returns a Job or raises
`JobDecodeError` naming the entry; valid jobs survive the round trip unchanged; and `plan`
(the producer's encoder) refuses what it cannot encode with a typed error, before any I/O."""

from __future__ import annotations

import json
from typing import Any

from fuzzing import FUZZ, deep, json_value, nasty_text
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from sluice.errors import JobDecodeError, SluiceError
from sluice.jobs.codec import FIELD, decode, encode
from sluice.jobs.models import (
    CacheFillPayload,
    CacheWarmPayload,
    HistoryAppendPayload,
    IndexDocument,
    IndexPayload,
    JobEnvelope,
)
from sluice.keys import Keys
from sluice.queue.plan import plan
from sluice.settings import LimitSettings

ENTRY = "1700000000000-7"


def decodes_or_refuses(fields: dict[bytes, bytes] | None) -> JobEnvelope | None:
    """The property every raw entry must satisfy; returns the envelope when it decoded."""
    try:
        job = decode("ns:jobs:{history-append:0}", ENTRY, fields)
    except JobDecodeError as e:
        assert e.entry_id == ENTRY
        assert str(e).startswith(f"stream entry {ENTRY} is not a valid sluice job: ")
        assert len(str(e)) < 400, (
            "a decode error must stay short: it goes into logs and the dead-letter stream"
        )
        return None
    assert job.entry_id == ENTRY
    # a decoded job re-encodes to what decodes to the very same envelope
    again = decode(job.stream, ENTRY, {FIELD: encode(job.envelope)})
    assert again.envelope == job.envelope
    return job.envelope


@FUZZ
@given(st.binary(max_size=300))
@example(b"")
@example(b"\xff\xfe\x00")
@example(deep(100_000))
@example(b"1e999999")
@example(b'"\\ud800"')
@example(b"null")
def test_arbitrary_bytes_in_the_job_field(raw: bytes) -> None:
    decodes_or_refuses({FIELD: raw})


@FUZZ
@given(st.dictionaries(st.binary(max_size=8) | st.just(FIELD), st.binary(max_size=60), max_size=4))
@example({})
@example({b"junk": b"x"})
def test_arbitrary_field_maps(fields: dict[bytes, bytes]) -> None:
    decodes_or_refuses(fields)


def test_an_entry_without_fields_is_refused() -> None:
    assert decodes_or_refuses(None) is None


VALID = {
    "v": 1,
    "id": "a" * 32,
    "namespace": "n",
    "created": 1.5,
    "attempt": 0,
    "notify": False,
    "payload": {
        "kind": "history-append",
        "session_id": "s",
        "messages": [{"type": "human", "data": {"content": "hi"}}],
    },
}
PATHS = [(), ("payload",), ("payload", "messages", 0), ("payload", "messages", 0, "data")]


@FUZZ
@given(
    path=st.sampled_from(PATHS),
    key=st.sampled_from(
        ["v", "id", "namespace", "kind", "session_id", "messages", "op", "ttl", "x", "content"]
    ),
    value=json_value,
    drop=st.booleans(),
)
def test_mutated_valid_envelopes(path: tuple[Any, ...], key: str, value: Any, drop: bool) -> None:
    # Given a valid envelope with one field replaced by any JSON value, or removed
    doc = json.loads(json.dumps(VALID))
    target: Any = doc
    for step in path:
        target = target[step]
    if drop:
        target.pop(key, None)
    else:
        target[key] = value
    # Then it decodes to a valid envelope, or is refused with a reason
    envelope = decodes_or_refuses({FIELD: json.dumps(doc).encode()})
    if envelope is not None:
        assert envelope.namespace == doc["namespace"]


@FUZZ
@given(json_value)
def test_arbitrary_json_documents(value: Any) -> None:
    decodes_or_refuses({FIELD: json.dumps(value).encode()})


# --- valid jobs: the round trip is exact -------------------------------------------------------------

texts = st.text(max_size=30)
ttls = st.none() | st.floats(min_value=0.001, max_value=1e9)
payloads = st.one_of(
    st.builds(
        CacheFillPayload,
        llm_string=texts,
        prompt=texts,
        generations=st.lists(st.dictionaries(st.text(max_size=8), json_value, max_size=3), max_size=3),
        ttl=ttls,
    ),
    st.builds(
        CacheWarmPayload, model=texts, llm_string=texts, prompts=st.lists(texts, min_size=1, max_size=3)
    ),
    st.builds(
        IndexPayload,
        index=texts.filter(bool),
        upserts=st.lists(
            st.builds(
                IndexDocument,
                id=texts.filter(bool),
                text=texts,
                metadata=st.dictionaries(st.text(max_size=8), json_value, max_size=3),
                vector=st.none() | st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=4),
            ),
            max_size=3,
        ),
        deletes=st.lists(texts, max_size=3),
    ),
    st.builds(
        HistoryAppendPayload,
        session_id=texts.filter(bool),
        op=st.sampled_from(["append", "clear"]),
        messages=st.lists(
            st.fixed_dictionaries(
                {"type": st.just("human"), "data": st.fixed_dictionaries({"content": texts})}
            ),
            max_size=3,
        ),
        ttl=ttls,
        max_messages=st.none() | st.integers(min_value=1, max_value=10**6),
    ),
)


@FUZZ
@given(payloads, st.booleans(), st.none() | st.dictionaries(texts, texts, max_size=2))
def test_valid_jobs_round_trip_exactly(payload: Any, notify: bool, trace: dict[str, str] | None) -> None:
    # Given any valid job
    envelope = JobEnvelope(namespace="ns", payload=payload, notify=notify, trace=trace)
    # When it is encoded (as the producer does) and decoded (as a worker does)
    job = decode("s", ENTRY, {FIELD: encode(envelope)})
    # Then the worker sees exactly what the app sent
    assert job.envelope == envelope


# --- the producer side: plan() refuses what it cannot encode, with a typed error ---------------------

LIMITS = LimitSettings(max_payload_bytes=4096, max_metadata_bytes=256, max_prompt_chars=500)
KEYS = Keys("ns", 4)


@FUZZ
@given(
    session=nasty_text.filter(bool),
    content=nasty_text,
    extra=st.dictionaries(
        st.text(max_size=5), json_value | st.just(float("nan")) | st.builds(object), max_size=2
    ),
)
def test_plan_refuses_unencodable_history_jobs_with_a_typed_error(
    session: str, content: str, extra: dict[str, Any]
) -> None:
    try:  # the models refuse what they can type (a session id with a lone surrogate)
        payload = HistoryAppendPayload(
            session_id=session, messages=[{"type": "human", "data": {"content": content, **extra}}]
        )
    except ValidationError:
        return
    try:
        batches, count = plan(KEYS, LIMITS, [payload])
    except SluiceError as e:
        assert str(e)
        return
    assert count == 1
    (batch,) = batches
    job = decode(batch.stream, ENTRY, {FIELD: batch.jobs[0]})
    assert job.envelope.payload == payload  # accepted means delivered as sent, never silently altered


@FUZZ
@given(
    doc_id=nasty_text.filter(bool),
    metadata=st.dictionaries(
        nasty_text, json_value | st.just(float("nan")) | st.just(float("inf")) | st.builds(object), max_size=3
    ),
)
def test_plan_refuses_unencodable_index_documents_with_a_typed_error(
    doc_id: str, metadata: dict[str, Any]
) -> None:
    try:
        payload = IndexPayload(index="ix", upserts=[IndexDocument(id=doc_id, text="t", metadata=metadata)])
    except ValidationError:
        return
    try:
        batches, _ = plan(KEYS, LIMITS, [payload])
    except SluiceError as e:
        assert str(e)
        return
    job = decode(batches[0].stream, ENTRY, {FIELD: batches[0].jobs[0]})
    assert job.envelope.payload == payload
