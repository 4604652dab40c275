"""Chat messages on the wire and in the store: LangChain's own dict form, every field kept.

`message_to_dict` keeps type, content, ids, tool calls, usage and response metadata and
`additional_kwargs`; decoding goes through `messages_from_dict`, which only builds message
classes (no code is named by the data).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict

from sluice.errors import StoreCorrupted


def to_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    return [message_to_dict(m) for m in messages]


def encode(message: dict[str, Any]) -> str:
    """Deterministic text: a redelivered job encodes to the very same member."""
    return json.dumps(message, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


MESSAGE_TYPES = frozenset(
    {
        "human",
        "ai",
        "system",
        "tool",
        "function",
        "chat",
        "developer",
        "remove",
        "HumanMessageChunk",
        "AIMessageChunk",
        "SystemMessageChunk",
        "ToolMessageChunk",
        "FunctionMessageChunk",
        "ChatMessageChunk",
    }
)


def check_message(message: Any) -> str | None:
    """Why a dict is not a LangChain message dict (cheap structural check), or None."""
    if not isinstance(message, dict):
        return f"a message must be an object, got {type(message).__name__}"
    kind, data = message.get("type"), message.get("data")
    if kind not in MESSAGE_TYPES:
        return f"unknown message type {str(kind)[:40]!r}"
    if not isinstance(data, dict) or "content" not in data:
        return "a message needs data.content"
    return None


def decode_many(raw: Sequence[str], where: str) -> list[BaseMessage]:
    try:
        return messages_from_dict([json.loads(r) for r in raw])
    except (ValueError, KeyError, TypeError) as e:
        raise StoreCorrupted(
            f"{where} holds a message that is not a LangChain message dict ({e}); "
            "clear the session or inspect the key"
        ) from None
