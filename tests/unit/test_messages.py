"""The message codec, stored-member parsing, and the pure parts of sessions and recall: no server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, message_to_dict

from sluice.errors import StoreCorrupted
from sluice.stores import messages as codec
from sluice.stores.history import WriteResult, message_ref, parse
from sluice.stores.history_vectors import (
    doc_id,
    index_name,
    message_text,
    session_filter,
    session_tag,
    split_doc_id,
)
from sluice.stores.sessions import _alive, _bounds, _expiry
from sluice.stores.versions import padded
from sluice.vectors.filters import TagIn
from support.messages import every_kind


@pytest.mark.parametrize("message", every_kind(), ids=lambda m: type(m).__name__)
def test_every_message_kind_round_trips_field_for_field(message: object) -> None:
    # Given a message of one kind with ids, tool calls, usage and metadata
    stored = f"{message_ref('1700000000000-3', 0)}:{codec.encode(message_to_dict(message))}"  # type: ignore[arg-type]
    # When it is parsed back from its stored member
    [back] = parse([stored.encode()], "k")
    # Then it is the same class with every field equal
    assert type(back) is type(message)
    assert back.model_dump() == message.model_dump()  # type: ignore[attr-defined]


def test_encoding_is_deterministic_so_a_redelivery_adds_the_same_member() -> None:
    m = message_to_dict(AIMessage("x", tool_calls=[{"name": "f", "args": {"b": 1, "a": 2}, "id": "1"}]))
    reordered = json.loads(json.dumps(m))
    reordered["data"] = dict(reversed(list(reordered["data"].items())))
    assert codec.encode(m) == codec.encode(reordered)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("not a dict", "must be an object"),
        ({"type": "robot", "data": {"content": "x"}}, "unknown message type"),
        ({"type": "human", "data": {}}, "data.content"),
    ],
)
def test_a_payload_that_is_not_a_message_dict_is_named(raw: object, why: str) -> None:
    assert why in (codec.check_message(raw) or "")


def test_a_member_not_in_sluice_format_is_reported_as_corruption() -> None:
    with pytest.raises(StoreCorrupted, match="not in sluice's format"):
        parse([b"garbage"], "k")
    with pytest.raises(StoreCorrupted, match="not a LangChain message"):
        parse([f"{message_ref('1-0', 0)}:{{}}".encode()], "k")


def test_message_refs_sort_like_versions_then_positions() -> None:
    refs = [message_ref("10-2", 1), message_ref("9-5", 3), message_ref("10-2", 0), message_ref("10-10", 0)]
    assert sorted(refs) == [
        message_ref("9-5", 3),
        message_ref("10-2", 0),
        message_ref("10-2", 1),
        message_ref("10-10", 0),
    ]
    assert len(refs[0]) == 36 and refs[0].startswith(padded("10-2"))


def test_a_write_keeps_only_messages_at_or_above_the_trimming_floor() -> None:
    floor = message_ref("10-0", 2)
    applied = WriteResult("applied", 3, floor)
    assert applied.kept(message_ref("10-0", 2)) and applied.kept(message_ref("11-0", 0))
    assert not applied.kept(message_ref("10-0", 1))
    assert not WriteResult("superseded", 3).kept(message_ref("11-0", 0))


def test_listing_bounds_cover_exactly_the_prefix_and_resume_after_the_cursor() -> None:
    assert _bounds("", None) == (b"-", b"+")
    assert _bounds("user:7:", None) == (b"[user:7:", b"(user:7:\xff")
    assert _bounds("user:7:", "user:7:abc") == (b"(user:7:abc", b"(user:7:\xff")
    # a cursor from before the prefix does not widen the range
    assert _bounds("user:7:", "a") == (b"[user:7:", b"(user:7:\xff")
    assert _bounds("é", None)[1] == b"(" + "é".encode() + b"\xff"


def test_a_session_is_alive_with_messages_or_cleared_but_not_deleted() -> None:
    assert _alive(3, [None, None])
    assert _alive(0, [b"v1", None])  # cleared, empty, still a session
    assert not _alive(0, [b"v1", b"v1"])  # a delete's tombstone
    assert not _alive(0, [None, None])  # expired
    assert _alive(2, [b"v1", b"v1"])  # written again after the delete


def test_expiry_of_a_live_session_comes_from_its_keys_ttls() -> None:
    assert _expiry(1000, [500, 200]) == 1500
    assert _expiry(1000, [-2, 300]) == 1300
    assert _expiry(1000, [-1, 300]) == 0  # no TTL any more
    assert _expiry(1000, [-2, -2]) is None


def test_vector_document_ids_keep_session_ids_with_any_characters() -> None:
    for session in ["s1", "user:42:{chat}", "ünï code", "a" * 300]:
        ref = message_ref("1700000000000-0", 12)
        assert split_doc_id(doc_id(session, ref)) == (session, ref)


def test_index_names_fit_the_index_name_rules() -> None:
    assert index_name("hashing") == "history.hashing"
    odd = index_name("my embedder/v2")
    assert odd.startswith("history.") and " " not in odd and "/" not in odd


def test_session_filters_match_one_or_any_of_several() -> None:
    assert session_filter(None) is None
    assert session_filter("a") == TagIn("session", (session_tag("a"),))
    assert session_filter(["a", "b,c"]) == TagIn("session", (session_tag("a"), session_tag("b,c")))
    assert session_tag("b,c").isalnum()
    with pytest.raises(ValueError, match="at least one"):
        session_filter([])


def test_the_recalled_text_is_the_message_text() -> None:
    assert message_text(message_to_dict(HumanMessage("  hello  "))) == "hello"
    blocks = AIMessage(
        content=[{"type": "text", "text": "a"}, {"type": "tool_use", "id": "1", "name": "f", "input": {}}]
    )
    assert message_text(message_to_dict(blocks)) == "a"
    assert (
        message_text(message_to_dict(AIMessage("", tool_calls=[{"name": "f", "args": {}, "id": "1"}]))) == ""
    )
    assert message_text({"type": "nope"}) == ""


@pytest.mark.parametrize("message", every_kind(), ids=lambda m: type(m).__name__)
def test_reading_a_stored_message_builds_what_validation_builds(message: Any) -> None:
    # Given a message as the worker stores it (validated, then its own compact dump)
    stored = codec.normalize(message_to_dict(message))
    # When it is read back without validating again
    [fast] = codec.decode_many([codec.encode(stored)], "k")
    validated = codec.build(json.loads(codec.encode(stored)))
    # Then it is the object validation gives: class, fields in their order, values, equality
    # (nested dicts are stored with sorted keys: equal, though a validator may reorder them)
    assert type(fast) is type(validated) is type(message)
    assert fast == validated == message
    assert fast.model_dump() == validated.model_dump()
    assert list(fast.__dict__) == list(validated.__dict__)
    # And the copies are independent: changing one message does not change the next read
    fast.additional_kwargs["x"] = 1
    [again] = codec.decode_many([codec.encode(stored)], "k")
    assert "x" not in again.additional_kwargs


def test_the_worker_refuses_what_is_not_a_valid_message() -> None:
    with pytest.raises((ValueError, TypeError)):
        codec.normalize({"type": "human", "data": {"content": 42}})
    with pytest.raises((ValueError, TypeError, AttributeError)):
        codec.normalize({"type": "ai", "data": {"content": "x", "tool_calls": "nope"}})


def test_odd_stored_data_takes_the_validating_path() -> None:
    # written before normalization existed, or by hand: validated on read, and reported if invalid
    [m] = codec.decode_many([b'{"type":"human","data":{"content":"hi","type":"human","name":"n"}}'], "k")
    assert m == HumanMessage("hi", name="n")
    with pytest.raises(StoreCorrupted):
        codec.decode_many([b'{"type":"human","data":{"content":7}}'], "k")
    with pytest.raises(StoreCorrupted):
        codec.decode_many([b'{"type":"human","data":{"content":"x","type":"ai"}}'], "k")
