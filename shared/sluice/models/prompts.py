"""Cache prompts of chat models: what LangChain looks the cache up by, and back.

For a chat model LangChain's cache prompt is ``dumps(messages)`` with the message ids removed.
Warming must store answers under exactly that string, so the CLI, the beat task and the worker
all go through `cache_prompt`. `messages_of` reads one back with LangChain's loader restricted
to message classes (no other class can be named by a stored prompt); text that is not such a
list is one user message.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from langchain_core._api import LangChainBetaWarning
from langchain_core.load import dumps, loads
from langchain_core.messages import BaseMessage, HumanMessage


def cache_prompt(prompt: str | Sequence[BaseMessage]) -> str:
    """The string a chat model's cache lookup uses for this input (text = one user message)."""
    messages = [HumanMessage(content=prompt)] if isinstance(prompt, str) else list(prompt)
    normalized = [m.model_copy(update={"id": None}) if m.id is not None else m for m in messages]
    return dumps(normalized)


def messages_of(prompt: str) -> list[BaseMessage]:
    """The messages behind a cache prompt; plain text becomes one `HumanMessage`."""
    if prompt.lstrip().startswith("[{"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", LangChainBetaWarning)
                loaded = loads(prompt, allowed_objects="messages")
        except (ValueError, TypeError, KeyError):
            loaded = None
        if isinstance(loaded, list) and loaded and all(isinstance(m, BaseMessage) for m in loaded):
            return loaded
    return [HumanMessage(content=prompt)]


def key_prompt(prompt: str) -> str:
    """The cache prompt a warmed answer to `prompt` is stored under (what the worker writes)."""
    return cache_prompt(messages_of(prompt))


def text_of(prompt: str) -> str:
    """What a semantic cache embeds: the messages' text, one per line (not LangChain's JSON wrapping).

    The serialised form repeats the same keys in every prompt, which would pull all prompts
    together; the text alone is what makes two prompts similar.
    """
    if not prompt.lstrip().startswith("[{"):
        return prompt
    lines = []
    for message in messages_of(prompt):
        content = message.content
        if isinstance(content, str):
            lines.append(content)
        else:
            lines.extend(b if isinstance(b, str) else str(b.get("text", "")) for b in content)
    return "\n".join(line for line in lines if line)
