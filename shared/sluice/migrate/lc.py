"""LangChain's serialised forms, read back with an allow-list: no stored value can name other code.

langchain-community and langchain-redis store generations as ``dumps(generation)`` (the
``{"lc": 1, "type": "constructor", ...}`` form) and messages as `message_to_dict` dicts.
`loads` here admits only generation and message classes; anything else is a `ValueError`.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from typing import Any, Final

from langchain_core.load import Serializable, loads
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    messages_from_dict,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, Generation, GenerationChunk

ALLOWED: Final[list[type[Serializable]]] = [
    Generation, GenerationChunk, ChatGeneration, ChatGenerationChunk, AIMessage, AIMessageChunk,
    HumanMessage, SystemMessage, ToolMessage, FunctionMessage, ChatMessage,
]  # fmt: skip


def generation(value: str | dict[str, Any]) -> Generation:
    """One ``dumps(generation)`` (text or parsed JSON) -> the generation."""
    text = value if isinstance(value, str) else json.dumps(value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LangChain's beta warnings about the loader itself
        loaded = loads(text, allowed_objects=ALLOWED)
    if not isinstance(loaded, Generation):
        raise ValueError(f"not a LangChain generation: {type(loaded).__name__}")
    return loaded


def generations(values: Sequence[str | dict[str, Any]]) -> list[Generation]:
    return [generation(v) for v in values]


def messages(dicts: Sequence[dict[str, Any]]) -> list[BaseMessage]:
    """`message_to_dict` dicts -> messages (LangChain's fixed table of message classes)."""
    return messages_from_dict(list(dicts))
