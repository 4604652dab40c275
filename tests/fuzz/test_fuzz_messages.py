"""Fuzzing the chat-message decoder (`stores.history.parse`, `stores.messages`) and the LLM cache's
generations decoder: whatever a store key holds, a read gives valid LangChain objects or a
`StoreCorrupted` naming the key, never another exception and never an object its own class would
refuse; and every message the app can send comes back equal to what it sent."""

from __future__ import annotations

import json
from typing import Any

from fuzzing import FUZZ, deep, json_value
from hypothesis import example, given
from hypothesis import strategies as st
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_to_dict,
)
from langchain_core.outputs import Generation

from sluice.errors import StoreCorrupted
from sluice.stores import generations as gen_codec
from sluice.stores import messages as codec
from sluice.stores.exact_cache import parse_entry
from sluice.stores.history import message_ref, parse
from sluice.stores.versions import padded

KEY = "ns:history:{s}"
REF = message_ref("1700000000000-1", 0)


def valid(message: BaseMessage) -> None:
    """A message its own class accepts: what a validated build of the same fields gives."""
    rebuilt = type(message).model_validate(message.model_dump())
    assert rebuilt == message


def reads_or_reports(members: list[bytes]) -> list[BaseMessage] | None:
    try:
        messages = parse(members, KEY)
    except StoreCorrupted as e:
        assert KEY in str(e) or "history member" in str(e)
        assert len(str(e)) < 600
        return None
    assert len(messages) == len(members)
    for m in messages:
        assert isinstance(m, BaseMessage)
        valid(m)
    return messages


@FUZZ
@given(st.lists(st.binary(max_size=80), max_size=3))
@example([b"\xff:1:{}"])
@example([b""])
def test_arbitrary_members(members: list[bytes]) -> None:
    reads_or_reports(members)


@FUZZ
@given(st.binary(max_size=120) | json_value.map(lambda v: json.dumps(v).encode()))
@example(deep(100_000))
@example(b"\xff\xfe")
def test_arbitrary_bodies_behind_a_valid_reference(body: bytes) -> None:
    reads_or_reports([REF.encode() + b":" + body])


CLASS_NAMES = sorted(codec.MESSAGE_TYPES)
DATA_KEYS = [
    "content", "id", "name", "additional_kwargs", "response_metadata", "tool_calls", "invalid_tool_calls",
    "usage_metadata", "tool_call_id", "role", "status", "artifact", "example", "type", "x",
]  # fmt: skip


@FUZZ
@given(
    kind=st.sampled_from(CLASS_NAMES) | st.text(max_size=5),
    data=st.dictionaries(st.sampled_from(DATA_KEYS), json_value, max_size=5),
    content=st.none() | json_value,
)
@example(kind="human", data={"id": 5}, content="x")
@example(kind="ai", data={"tool_calls": 5}, content="x")
@example(kind="human", data={}, content=[1, 2])
@example(kind="ai", data={"usage_metadata": "zz"}, content="x")
@example(kind="ai", data={"tool_calls": [1]}, content="x")
@example(kind="ai", data={"additional_kwargs": {"tool_calls": 5}}, content="x")
@example(kind="tool", data={"tool_call_id": 5}, content="x")
@example(kind="remove", data={}, content=[])
@example(kind="remove", data={}, content=[{}])
def test_message_shaped_bodies(kind: str, data: dict[str, Any], content: Any) -> None:
    # Given a stored member whose JSON looks like a message dict, with any fields of any type
    if content is not None:
        data = {**data, "content": content}
    body = json.dumps({"type": kind, "data": data}).encode()
    # Then the read gives valid messages, or reports the key as corrupted
    reads_or_reports([REF.encode() + b":" + body])
    # and the worker's structural check never raises either: it accepts, or says why not
    why = codec.check_message({"type": kind, "data": data})
    assert why is None or (isinstance(why, str) and why)


@FUZZ
@given(json_value)
def test_check_message_judges_anything(value: Any) -> None:
    why = codec.check_message(value)
    assert why is None or isinstance(why, str)


# --- what the app sends comes back equal -------------------------------------------------------------

texts = st.text(max_size=20)
small = st.dictionaries(st.text(max_size=5), json_value, max_size=2)
ids = st.none() | st.text(min_size=1, max_size=10)
blocks = st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": texts}), max_size=2)
tool_calls = st.lists(
    st.fixed_dictionaries({"name": texts, "args": small, "id": ids, "type": st.just("tool_call")}), max_size=2
)
usage = st.none() | st.builds(
    lambda i, o: {"input_tokens": i, "output_tokens": o, "total_tokens": i + o},
    st.integers(0, 10**6),
    st.integers(0, 10**6),
)
app_messages = st.one_of(
    st.builds(HumanMessage, content=texts | blocks, id=ids, additional_kwargs=small, name=st.none() | texts),
    st.builds(SystemMessage, content=texts, id=ids),
    st.builds(
        AIMessage,
        content=texts | blocks,
        id=ids,
        tool_calls=tool_calls,
        usage_metadata=usage,
        response_metadata=small,
        additional_kwargs=small,
    ),
    st.builds(ToolMessage, content=texts, tool_call_id=st.text(min_size=1, max_size=8), id=ids),
    st.builds(ChatMessage, content=texts, role=st.text(min_size=1, max_size=8)),
)


@FUZZ
@given(st.lists(app_messages, min_size=1, max_size=4))
def test_messages_the_app_sends_read_back_equal(sent: list[BaseMessage]) -> None:
    # Given messages as the app sends them (the job carries message_to_dict) and the worker stores them
    stored = [codec.encode(codec.normalize(message_to_dict(m))) for m in sent]
    members = [f"{message_ref('1700000000000-1', i)}:{s}".encode() for i, s in enumerate(stored)]
    # When the facade reads the session
    read = parse(members, KEY)
    # Then every message is equal, field for field, to what was sent
    assert read == sent


# --- the exact cache's entries: corrupted content is a miss, never a crash --------------------------


@FUZZ
@given(st.binary(max_size=120) | json_value.map(lambda v: json.dumps(v).encode()))
@example(deep(100_000))
@example(b'[{"type":"ChatGeneration","message":{"type":"ai","data":{"content":"x","tool_calls":[1]}}}]')
@example(
    b'[{"type":"ChatGeneration","message":{"type":"ai","data":{"content":"x","additional_kwargs":{"tool_calls":5}}}}]'
)
def test_cache_entries_are_generations_or_a_miss(body: bytes) -> None:
    found = parse_entry(padded("1700000000000-1").encode() + b":" + body, "ns:cache:c:a:b")
    assert found is None or all(isinstance(g, Generation) for g in found)
    try:
        gen_codec.decode(body, "entry")
    except StoreCorrupted as e:
        assert "entry" in str(e)
