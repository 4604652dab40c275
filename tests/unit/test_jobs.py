"""The job codec and planning: typed errors for bad entries, limits refused before any write."""

from __future__ import annotations

import pytest

from sluice.errors import JobDecodeError, PayloadTooLarge
from sluice.jobs.codec import decode, encode
from sluice.jobs.models import (
    CacheFillPayload,
    HistoryAppendPayload,
    IndexDocument,
    IndexPayload,
    JobEnvelope,
)
from sluice.keys import Keys
from sluice.queue.plan import plan, queue_full
from sluice.settings import LimitSettings
from sluice.stores.versions import padded
from sluice.types import parse_entry_id


def test_envelope_round_trips_every_kind() -> None:
    payloads = [
        HistoryAppendPayload(session_id="s1", messages=[{"type": "human", "data": {"content": "hi"}}]),
        CacheFillPayload(llm_string="m", prompt="p", generations=[{"text": "t"}], ttl=5),
        IndexPayload(
            index="docs", upserts=[IndexDocument(id="d1", text="x", metadata={"a": 1})], deletes=["d2"]
        ),
    ]
    for p in payloads:
        # Given an envelope encoded for the wire
        env = JobEnvelope(namespace="ns", payload=p, notify=True)
        # When it is decoded from a stream entry
        job = decode("stream", "1-1", {b"job": encode(env)})
        # Then every field survives
        assert job.envelope == env
        assert job.envelope.kind == p.kind


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (None, "no fields"),
        ({}, "no fields"),
        ({b"other": b"x"}, "missing field 'job'"),
        ({b"job": b"not json"}, "json"),
        ({b"job": b"\xff\xfe"}, "json"),
        ({b"job": b'{"v":1}'}, "namespace"),
        ({b"job": b'{"v":2,"namespace":"n","payload":{"kind":"index","index":"i"}}'}, "v"),
        ({b"job": b'{"v":1,"namespace":"n","payload":{"kind":"nope"}}'}, "payload"),
        ({b"job": b'{"v":1,"namespace":"n","payload":{"kind":"index","index":""}}'}, "index"),
        ({b"job": b"[1,2,3]"}, "job"),
    ],
)
def test_malformed_entries_raise_a_typed_error_with_the_entry_id(
    fields: dict[bytes, bytes] | None, reason: str
) -> None:
    with pytest.raises(JobDecodeError) as info:
        decode("stream", "7-3", fields)
    assert info.value.entry_id == "7-3"
    assert reason.lower() in str(info.value).lower()


def test_jobs_for_one_key_share_a_partition_and_keep_their_order() -> None:
    keys = Keys("ns", partitions=8)
    payloads = [HistoryAppendPayload(session_id=f"s{i % 3}", messages=[{"n": i}]) for i in range(30)]
    batches, count = plan(keys, LimitSettings(), payloads)
    assert count == 30
    seen: dict[str, str] = {}
    for batch in batches:
        for slot in batch.slots:
            session = payloads[slot].session_id
            assert seen.setdefault(session, batch.stream) == batch.stream
        assert batch.slots == sorted(batch.slots)


def test_limits_are_refused_before_anything_is_written_naming_the_setting() -> None:
    keys = Keys("ns")
    big = HistoryAppendPayload(session_id="s", messages=[{"x": "y" * 2000}])
    with pytest.raises(PayloadTooLarge, match="MAX_PAYLOAD_BYTES") as info:
        plan(keys, LimitSettings(max_payload_bytes=1024), [big])
    assert info.value.limit == 1024
    many = IndexPayload(index="i", upserts=[IndexDocument(id=str(i), text="t") for i in range(11)])
    with pytest.raises(PayloadTooLarge, match="MAX_DOCUMENTS_PER_JOB"):
        plan(keys, LimitSettings(max_documents_per_job=10), [many])
    with pytest.raises(PayloadTooLarge, match="MAX_PROMPT_CHARS"):
        plan(
            keys,
            LimitSettings(max_prompt_chars=3),
            [CacheFillPayload(llm_string="m", prompt="long", generations=[])],
        )
    with pytest.raises(PayloadTooLarge, match="MAX_BATCH_JOBS"):
        plan(keys, LimitSettings(max_batch_jobs=2), [big, big, big])


def test_padded_versions_sort_like_entry_ids() -> None:
    ids = ["1-0", "1-10", "1-9", "12-0", "2-5", "1700000000000-3", "999-99999"]
    assert sorted(ids, key=parse_entry_id) == sorted(ids, key=padded)
    with pytest.raises(ValueError, match="not a stream entry id"):
        padded("abc")


def test_queue_full_reply_is_parsed_and_others_are_not() -> None:
    assert queue_full("QUEUEFULL 10 8") == (10, 8)
    assert queue_full("ERR something") is None


def test_the_fast_encoder_writes_what_the_envelope_model_reads() -> None:
    from sluice.jobs.codec import encode_new

    payload = CacheFillPayload(
        llm_string="m", prompt='quote " and \\ and é', generations=[{"text": "t"}], ttl=5
    )
    for notify, trace in ((False, None), (True, {"traceparent": 'a"b'})):
        job_id, data = encode_new(payload, namespace="ns-1.x_y", notify=notify, trace=trace)
        env = decode("s", "1-1", {b"job": data}).envelope
        assert (env.id, env.namespace, env.notify, env.trace, env.attempt, env.v) == (
            job_id,
            "ns-1.x_y",
            notify,
            trace,
            0,
            1,
        )
        assert env.payload == payload
