"""Chat messages on the wire and in the store: LangChain's own dict form, every field kept.

`message_to_dict` keeps type, content, ids, tool calls, usage and response metadata and
`additional_kwargs`; `compact` then leaves out the fields that hold their class default (``None``,
``{}``, ``[]``), which the class restores on decoding, so a stored message is about a third of the
size and decodes faster, field for field the same. Decoding builds message classes from a fixed
table (no code is named by the data) and validates like `messages_from_dict`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    ChatMessageChunk,
    FunctionMessage,
    FunctionMessageChunk,
    HumanMessage,
    HumanMessageChunk,
    RemoveMessage,
    SystemMessage,
    SystemMessageChunk,
    ToolMessage,
    ToolMessageChunk,
    message_to_dict,
    messages_from_dict,
)
from pydantic import ValidationError

from sluice.errors import StoreCorrupted

try:  # langchain-core brings orjson (through langsmith); it parses about 3x faster
    import orjson

    _loads: Callable[[bytes | str], Any] = orjson.loads
except ImportError:  # pragma: no cover - fallback for installs without it
    _loads = json.loads

CLASSES: dict[str, type[BaseMessage]] = {
    "human": HumanMessage,
    "ai": AIMessage,
    "system": SystemMessage,
    "chat": ChatMessage,
    "function": FunctionMessage,
    "tool": ToolMessage,
    "remove": RemoveMessage,
    "AIMessageChunk": AIMessageChunk,
    "HumanMessageChunk": HumanMessageChunk,
    "SystemMessageChunk": SystemMessageChunk,
    "ToolMessageChunk": ToolMessageChunk,
    "FunctionMessageChunk": FunctionMessageChunk,
    "ChatMessageChunk": ChatMessageChunk,
}
MESSAGE_TYPES = frozenset({*CLASSES, "developer"})


def _defaults(cls: type[BaseMessage]) -> dict[str, Any]:
    out = {}
    for name, f in cls.model_fields.items():
        if not f.is_required():
            out[name] = f.get_default(call_default_factory=True)
    return out


_DEFAULTS = {kind: _defaults(cls) for kind, cls in CLASSES.items()}
_MISSING = object()


def to_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    return [message_to_dict(m) for m in messages]


def compact(message: dict[str, Any]) -> dict[str, Any]:
    """A message dict without the fields that equal their class default (restored on decoding)."""
    defaults = _DEFAULTS.get(message.get("type", ""))
    data = message.get("data")
    if defaults is None or not isinstance(data, dict):
        return message
    kept = {
        k: v
        for k, v in data.items()
        if not ((d := defaults.get(k, _MISSING)) is not _MISSING and type(v) is type(d) and v == d)
    }
    return {"type": message["type"], "data": kept}


def to_compact_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    return [compact(message_to_dict(m)) for m in messages]


def encode(message: dict[str, Any]) -> str:
    """Deterministic compact text: a redelivered job encodes to the very same member."""
    return json.dumps(compact(message), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


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


def _decode(raw: bytes | str) -> BaseMessage:
    message = _loads(raw)
    cls = CLASSES.get(message.get("type"))
    if cls is None:
        return messages_from_dict([message])[0]
    return cls(**message["data"])


def decode_many(raw: Sequence[bytes | str], where: str) -> list[BaseMessage]:
    try:
        return [_decode(r) for r in raw]
    except (ValueError, KeyError, TypeError, AttributeError, ValidationError) as e:
        raise StoreCorrupted(
            f"{where} holds a message that is not a LangChain message dict ({str(e)[:200]}); "
            "clear the session or inspect the key"
        ) from None
