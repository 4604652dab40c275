"""LangChain generations <-> JSON: what the LLM caches store, every field kept, never pickle.

A generation becomes ``{"type": <class>, "text": ..., "generation_info": ..., "message": ...}``
where ``message`` is LangChain's own message dict (`message_to_dict`: content, tool calls,
usage and response metadata, ids, ``additional_kwargs``). Decoding builds only the classes of
an allow-list (`ALLOWED`; messages through `messages_from_dict`, itself a fixed table), so no
stored value can name code. Anything else raises `StoreCorrupted`; the caches turn that into a
miss plus a logged warning.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, Generation, GenerationChunk

from sluice.errors import InvalidArgumentType, StoreCorrupted

ALLOWED: Final[dict[str, type[Generation]]] = {
    "ChatGenerationChunk": ChatGenerationChunk,
    "ChatGeneration": ChatGeneration,
    "GenerationChunk": GenerationChunk,
    "Generation": Generation,
}
"""Decodable classes; also the order in which an instance's type is looked up (subclasses first)."""


def _type_name(generation: Generation) -> str:
    for name, cls in ALLOWED.items():
        if isinstance(generation, cls):
            return name
    raise InvalidArgumentType(
        f"a cache stores LangChain Generations (a list of them), not {type(generation).__name__}"
    )


def to_dict(generation: Generation) -> dict[str, Any]:
    """One generation as a JSON-ready dict (a subclass is stored as its nearest allowed class)."""
    data: dict[str, Any] = {"type": _type_name(generation), "text": generation.text}
    if generation.generation_info is not None:
        data["generation_info"] = generation.generation_info
    if isinstance(generation, ChatGeneration):
        data["message"] = message_to_dict(generation.message)
    return data


def to_dicts(generations: Sequence[Generation]) -> list[dict[str, Any]]:
    return [to_dict(g) for g in generations]


def _message(data: object) -> BaseMessage:
    if not isinstance(data, dict):
        raise TypeError("message is not an object")
    return messages_from_dict([data])[0]


def from_dict(data: object) -> Generation:
    """Build one generation from an allowed dict; raises ValueError/TypeError/KeyError otherwise."""
    if not isinstance(data, dict):
        raise TypeError("generation is not an object")
    cls = ALLOWED.get(data.get("type", ""))
    if cls is None:
        raise ValueError(f"generation type {str(data.get('type'))[:40]!r} is not allowed")
    info = data.get("generation_info")
    if info is not None and not isinstance(info, dict):
        raise TypeError("generation_info is not an object")
    if issubclass(cls, ChatGeneration):
        return cls(message=_message(data["message"]), generation_info=info)
    text = data["text"]
    if not isinstance(text, str):
        raise TypeError("text is not a string")
    return cls(text=text, generation_info=info)


def from_dicts(data: Sequence[object]) -> list[Generation]:
    return [from_dict(d) for d in data]


def dumps_dicts(dicts: Sequence[dict[str, Any]]) -> str:
    """Compact JSON; values JSON cannot hold (datetimes, SDK objects in metadata) become strings."""
    return json.dumps(list(dicts), separators=(",", ":"), ensure_ascii=False, default=str)


def encode(generations: Sequence[Generation]) -> str:
    return dumps_dicts(to_dicts(generations))


def decode(raw: str | bytes, where: str = "cache entry") -> list[Generation]:
    """Parse and rebuild; raises `StoreCorrupted` naming `where` for anything not ours."""
    try:
        data = json.loads(raw)
        if not isinstance(data, list):
            raise TypeError("not a list of generations")
        return from_dicts(data)
    # pydantic's ValidationError is a ValueError; LangChain's own validators raise AttributeError on
    # odd shapes (tool_calls=[1]); deep nesting raises RecursionError
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as e:
        raise StoreCorrupted(
            f"{where} is not a list of LangChain generations ({str(e)[:200]}); it is treated as a miss"
        ) from None
