"""The generations codec (what the LLM caches store), cache prompts, and entry parsing: no server."""

from __future__ import annotations

import datetime
import json
import logging

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, Generation, GenerationChunk

from sluice.errors import StoreCorrupted
from sluice.models.prompts import cache_prompt, messages_of, text_of
from sluice.stores import generations as codec
from sluice.stores.exact_cache import parse_entry
from sluice.stores.versions import padded


def rich_message() -> AIMessage:
    return AIMessage(
        content=[{"type": "text", "text": "let me check"}],
        tool_calls=[{"name": "search", "args": {"q": "redis", "n": 3}, "id": "call_9"}],
        invalid_tool_calls=[{"name": "bad", "args": "{oops", "id": "call_10", "error": "not json"}],
        usage_metadata={
            "input_tokens": 10,
            "output_tokens": 4,
            "total_tokens": 14,
            "input_token_details": {"cache_read": 2},
        },
        response_metadata={"model_name": "gpt-x", "finish_reason": "tool_calls", "logprobs": None},
        additional_kwargs={"refusal": None},
        id="run-abc-0",
        name="assistant",
    )


def test_every_generation_kind_round_trips_with_every_field() -> None:
    # Given one generation of each allowed kind, with tool calls, usage and metadata
    generations = [
        ChatGeneration(message=rich_message(), generation_info={"finish_reason": "tool_calls"}),
        Generation(text="plain", generation_info={"logprobs": [0.1, 0.2]}),
        ChatGenerationChunk(message=AIMessageChunk(content="part", id="c1", chunk_position="last")),
        GenerationChunk(text="chunk"),
    ]
    # When encoded and decoded
    decoded = codec.decode(codec.encode(generations))
    # Then everything is equal, types included
    assert decoded == generations
    assert [type(g) for g in decoded] == [type(g) for g in generations]
    assert decoded[0].message.tool_calls == rich_message().tool_calls  # type: ignore[attr-defined]
    assert decoded[0].message.usage_metadata == rich_message().usage_metadata  # type: ignore[attr-defined]


def test_the_encoding_is_plain_json_never_pickle() -> None:
    data = json.loads(codec.encode([ChatGeneration(message=rich_message())]))
    assert data[0]["type"] == "ChatGeneration"
    assert data[0]["message"]["type"] == "ai"
    assert data[0]["message"]["data"]["tool_calls"][0]["args"] == {"q": "redis", "n": 3}


def test_values_json_cannot_hold_become_strings_instead_of_failing() -> None:
    when = datetime.datetime(2024, 1, 2, 3, 4, 5)
    decoded = codec.decode(codec.encode([Generation(text="t", generation_info={"created": when})]))
    assert decoded[0].generation_info == {"created": str(when)}


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        '{"type": "Generation", "text": "not in a list"}',
        '[{"type": "os.system", "text": "x"}]',
        '[{"type": "Generation"}]',
        '[{"type": "Generation", "text": 5}]',
        '[{"type": "ChatGeneration", "message": {"type": "evil", "data": {}}}]',
        '[{"type": "ChatGeneration", "message": {"type": "ai", "data": {"content": 5}}}]',
        '[{"type": "Generation", "text": "x", "generation_info": [1]}]',
        '["just a string"]',
    ],
)
def test_anything_outside_the_allow_list_is_reported_as_corrupted(raw: str) -> None:
    with pytest.raises(StoreCorrupted, match="treated as a miss"):
        codec.decode(raw, "key x")


def test_a_stored_entry_parses_and_a_bad_one_is_a_logged_miss(caplog: pytest.LogCaptureFixture) -> None:
    # Given a well-formed entry and bad ones
    good = padded("1700000000000-1") + ":" + codec.encode([Generation(text="ok")])
    # When parsed
    with caplog.at_level(logging.WARNING, logger="sluice"):
        results = [
            parse_entry(v, "k") for v in (good.encode(), None, b"\xff\xfe", b"short", good[:29] + ":[{")
        ]
    # Then the good one decodes, the missing one is a silent miss, the rest are logged misses
    assert results == [[Generation(text="ok")], None, None, None, None]
    assert len(caplog.records) == 3


def test_cache_prompts_match_langchain_and_read_back_to_messages() -> None:
    # Given messages with ids (LangChain drops ids before keying the cache)
    messages = [SystemMessage("be brief"), HumanMessage("hi", id="m1"), ToolMessage("42", tool_call_id="t1")]
    prompt = cache_prompt(messages)
    # Then ids are gone, the prompt reads back to the same messages, and text is what a human wrote
    assert '"m1"' not in prompt
    assert cache_prompt(messages_of(prompt)) == prompt
    assert text_of(prompt) == "be brief\nhi\n42"
    assert cache_prompt("hello") == cache_prompt([HumanMessage("hello")])
    assert messages_of("plain text") == [HumanMessage("plain text")]
    assert text_of("plain text") == "plain text"


def test_a_prompt_naming_other_classes_is_plain_text() -> None:
    forged = '[{"lc": 1, "type": "constructor", "id": ["langchain", "chat_models", "openai", "ChatOpenAI"], "kwargs": {}}]'
    assert messages_of(forged) == [HumanMessage(forged)]
