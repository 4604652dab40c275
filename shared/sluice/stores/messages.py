"""Chat messages on the wire and in the store: LangChain's own dict form, every field kept.

`message_to_dict` keeps type, content, ids, tool calls, usage and response metadata and
`additional_kwargs`; `compact` then leaves out the fields that hold their class default (``None``,
``{}``, ``[]``), which the class restores on decoding, so a stored message is about a third of the
size. Classes come from a fixed table (no code is named by the data).

The worker `normalize`s every message before storing it: it builds the message class (full
pydantic validation; a message that is not valid fails its job) and stores that message's own
compact dump. Reads build *plain* text messages (content, ids, names, metadata dicts: most of a
conversation) without validating again, after checking each of those fields' types, which is what
makes a 100-message read cheap; they are the objects validation would build, field for field (the
fidelity tests check every kind). Anything else (tool calls, usage, roles, an unknown field, a
value of the wrong type) takes the validating path, so a read never returns a message its own
class would refuse: a corrupted member is a `StoreCorrupted` naming the key.
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

try:  # langchain-core brings orjson (through langsmith); it parses about 5x faster than json
    import orjson

    _fast_loads: Callable[[bytes | str], Any] | None = orjson.loads
except ImportError:  # pragma: no cover - fallback for installs without it
    _fast_loads = None


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
_REQUIRED = {
    kind: frozenset(n for n, f in cls.model_fields.items() if f.is_required())
    for kind, cls in CLASSES.items()
}
# every field in declaration order (so reprs read the same), defaults in place, required ones to fill
_TEMPLATE = {kind: {n: _DEFAULTS[kind].get(n) for n in cls.model_fields} for kind, cls in CLASSES.items()}
# fields whose default is a fresh container per instance (a new {} / [] for every message)
_FRESH = {
    kind: [(n, type(d)) for n, d in defaults.items() if isinstance(d, dict | list)]
    for kind, defaults in _DEFAULTS.items()
}
_FAST = frozenset(
    kind
    for kind, cls in CLASSES.items()
    # RemoveMessage's own __init__ refuses content and needs an id: only validation knows that
    if not cls.__private_attributes__ and _REQUIRED[kind] == {"content"} and kind != "remove"
)
# the fields a plain text message has; any other (tool calls, usage, roles...) is validated
_PLAIN = frozenset({"content", "additional_kwargs", "response_metadata", "id", "name", "type"})
_BLOCK = (str, dict)
_TEXT_OR_NONE = (str, type(None))


NOT_KEPT = "a RemoveMessage is an instruction to delete messages, not a message a conversation keeps"


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


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _compact_plain(message: BaseMessage) -> dict[str, Any] | None:
    """`compact(message_to_dict(message))` read straight off the fields, for a message of a
    known class whose kept fields are all scalars (a plain chat turn); None for anything else,
    which goes through the model dump (it copies nested values)."""
    kind = message.type
    if CLASSES.get(kind) is not type(message) or message.__pydantic_extra__:
        return None
    defaults = _DEFAULTS[kind]
    kept = {}
    for k, v in message.__dict__.items():
        d = defaults.get(k, _MISSING)
        if d is not _MISSING and type(v) is type(d) and v == d:
            continue
        if type(v) not in _SCALARS:
            return None
        kept[k] = v
    return {"type": kind, "data": kept}


def to_compact_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    return [_compact_plain(m) or compact(message_to_dict(m)) for m in messages]


def encode(message: dict[str, Any]) -> str:
    """Deterministic compact text: a redelivered job encodes to the very same member."""
    return json.dumps(
        compact(message), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )


def check_message(message: Any) -> str | None:
    """Why a dict is not a LangChain message dict (cheap structural check), or None."""
    if not isinstance(message, dict):
        return f"a message must be an object, got {type(message).__name__}"
    kind, data = message.get("type"), message.get("data")
    if kind not in MESSAGE_TYPES:
        return f"unknown message type {str(kind)[:40]!r}"
    if kind == "remove":
        return NOT_KEPT
    if not isinstance(data, dict) or "content" not in data:
        return "a message needs data.content"
    return None


def build(message: dict[str, Any]) -> BaseMessage:
    """A message dict to its message, validated (ValueError, KeyError or TypeError if it is not one)."""
    kind = message.get("type", "")
    if kind == "remove":
        raise ValueError(NOT_KEPT)
    cls = CLASSES.get(kind)
    if cls is None:
        return messages_from_dict([message])[0]
    return cls(**message["data"])


def normalize(message: dict[str, Any]) -> dict[str, Any]:
    """The canonical compact dict of a message dict, after validating it (what the worker stores)."""
    return compact(message_to_dict(build(message)))


def _plain(kind: str, data: dict[str, Any]) -> bool:
    """A plain text message whose fields validation would take as they are (checked field by field)."""
    if kind not in _FAST or not data.keys() <= _PLAIN:
        return False
    content = data.get("content")
    if type(content) is not str and not (
        type(content) is list and all(isinstance(b, _BLOCK) for b in content)
    ):
        return False
    if len(data) == 1:  # content only: most of a conversation
        return True
    extra = data.get("additional_kwargs", {})
    if type(extra) is not dict or "tool_calls" in extra:  # AIMessage derives tool calls from it
        return False
    return (
        type(data.get("response_metadata", {})) is dict
        and isinstance(data.get("id"), _TEXT_OR_NONE)
        and isinstance(data.get("name"), _TEXT_OR_NONE)
        and data.get("type", kind) == _DEFAULTS[kind].get("type")
    )


_set = object.__setattr__


def _stored(kind: str, data: dict[str, Any]) -> BaseMessage | None:
    """Build a stored plain message without validating again; None when it takes validation."""
    if not _plain(kind, data):
        return None
    cls = CLASSES[kind]
    values = _TEMPLATE[kind].copy()
    for name, fresh in _FRESH[kind]:
        values[name] = fresh()
    values.update(data)
    message = cls.__new__(cls)
    # what pydantic's model_construct sets, without its per-field default machinery
    _set(message, "__dict__", values)
    _set(message, "__pydantic_fields_set__", set(data))
    _set(message, "__pydantic_extra__", None)
    _set(message, "__pydantic_private__", None)
    return message


def _decode(raw: bytes | str) -> BaseMessage:
    if _fast_loads is not None:
        # orjson reads integers beyond 64 bits as floats: only a text-only message (no number
        # anywhere) is taken from it; anything else is parsed again, exactly, by json
        try:
            message = _fast_loads(raw)
        except ValueError:
            message = None
        data = message.get("data") if type(message) is dict else None
        if type(data) is dict and len(data) == 1 and type(data.get("content")) is str:
            fast = _stored(str(message.get("type", "")), data)
            if fast is not None:
                return fast
    message = json.loads(raw)
    data = message.get("data")
    if type(data) is dict:
        fast = _stored(str(message.get("type", "")), data)
        if fast is not None:
            return fast
    return build(message)


def decode_many(raw: Sequence[bytes | str], where: str) -> list[BaseMessage]:
    try:
        return [_decode(r) for r in raw]
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, ValidationError) as e:
        raise StoreCorrupted(
            f"{where} holds a message that is not a LangChain message dict ({str(e)[:200]}); "
            "clear the session or inspect the key"
        ) from None
