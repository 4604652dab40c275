"""One of every LangChain message kind, with every field a history must keep (for fidelity tests)."""

from __future__ import annotations

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    HumanMessageChunk,
    SystemMessage,
    ToolMessage,
)


def merged_chunks() -> BaseMessage:
    """A streamed answer: text and a tool call arriving in pieces, merged with `+`."""
    parts = [
        AIMessageChunk(content="Looking ", id="run-7", tool_call_chunks=[]),
        AIMessageChunk(
            content="it up",
            tool_call_chunks=[{"name": "search", "args": '{"q": "re', "id": "call_5", "index": 0}],
        ),
        AIMessageChunk(
            content="",
            tool_call_chunks=[{"name": None, "args": 'dis"}', "id": None, "index": 0}],
            usage_metadata={"input_tokens": 7, "output_tokens": 3, "total_tokens": 10},
            response_metadata={"finish_reason": "tool_calls"},
        ),
    ]
    merged = parts[0]
    for p in parts[1:]:
        merged = merged + p
    return merged


def every_kind() -> list[BaseMessage]:
    return [
        SystemMessage(
            "You are terse.", id="sys-1", additional_kwargs={"cache_control": {"type": "ephemeral"}}
        ),
        HumanMessage(
            content=[
                {"type": "text", "text": "What's in Redis 8?"},
                {"type": "image_url", "image_url": {"url": "data:,"}},
            ],
            id="h-1",
            name="alice",
            additional_kwargs={"lang": "en"},
            response_metadata={"source": "web"},
        ),
        AIMessage(
            content="Let me search. ünïcödé ✓",
            id="run-abc-0",
            name="assistant",
            tool_calls=[
                {"name": "search", "args": {"q": "redis 8", "n": 3}, "id": "call_1", "type": "tool_call"}
            ],
            invalid_tool_calls=[
                {
                    "name": "bad",
                    "args": "{oops",
                    "id": "call_2",
                    "error": "not json",
                    "type": "invalid_tool_call",
                }
            ],
            usage_metadata={
                "input_tokens": 12,
                "output_tokens": 5,
                "total_tokens": 17,
                "input_token_details": {"cache_read": 4},
                "output_token_details": {"reasoning": 2},
            },
            response_metadata={"model_name": "gpt-x", "finish_reason": "tool_calls", "logprobs": None},
            additional_kwargs={"refusal": None},
        ),
        ToolMessage(
            content='{"hits": 3}',
            tool_call_id="call_1",
            name="search",
            id="tool-1",
            artifact={"raw": [1, 2, 3]},
            status="success",
        ),
        ToolMessage(content="boom", tool_call_id="call_2", status="error"),
        FunctionMessage(content="42", name="answer", id="fn-1"),
        ChatMessage(content="noted", role="critic", id="chat-1"),
        HumanMessageChunk(content="partial question", id="hc-1"),
        merged_chunks(),
        AIMessage(content=""),  # an empty answer is a message too
    ]
