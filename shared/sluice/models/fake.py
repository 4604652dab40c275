"""`EchoChatModel`: a deterministic, offline chat model for tests, demos and benchmarks.

It answers ``"<prefix>: <last message text> #<hash>"`` where the hash is a digest of the whole
prompt, so one prompt gets the same answer in every process. `fail_on` and `fail_transient_on`
(substrings of the prompt) make it fail on purpose: with `EchoModelError` (a bad request, not
worth retrying) or with `TimeoutError` (transient). `tool_call=True` adds a tool call to every
answer, to exercise tool-call round trips.
"""

from __future__ import annotations

import hashlib
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field, PrivateAttr


class EchoModelError(ValueError):
    """The fake model refused a prompt on purpose (`fail_on`)."""


def _text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return " ".join(b if isinstance(b, str) else str(b.get("text", "")) for b in content)


class EchoChatModel(BaseChatModel):
    """Deterministic offline answers; configure failures through settings kwargs."""

    prefix: str = "echo"
    fail_on: list[str] = Field(default_factory=list, description="prompt substrings that fail permanently")
    fail_transient_on: list[str] = Field(default_factory=list, description="prompt substrings that time out")
    tool_call: bool = False
    _calls: int = PrivateAttr(default=0)

    @property
    def calls(self) -> int:
        """How many prompts this instance answered or refused."""
        return self._calls

    @property
    def _llm_type(self) -> str:
        return "sluice-echo"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": "sluice-echo", "prefix": self.prefix, "tool_call": self.tool_call}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self._calls += 1
        whole = "\n".join(_text(m) for m in messages)
        if any(s in whole for s in self.fail_on):
            raise EchoModelError(f"the echo model refuses this prompt (fail_on matched): {whole[:80]!r}")
        if any(s in whole for s in self.fail_transient_on):
            raise TimeoutError(f"the echo model timed out on purpose: {whole[:80]!r}")
        last = _text(messages[-1]) if messages else ""
        tag = hashlib.blake2b(whole.encode(), digest_size=4).hexdigest()
        answer = f"{self.prefix}: {last} #{tag}"
        tool_calls = [{"name": "echo", "args": {"text": last}, "id": f"call_{tag}"}] if self.tool_call else []
        words_in, words_out = len(whole.split()), len(answer.split())
        message = AIMessage(
            content=answer,
            tool_calls=tool_calls,
            usage_metadata={
                "input_tokens": words_in,
                "output_tokens": words_out,
                "total_tokens": words_in + words_out,
            },
            response_metadata={"model_name": "sluice-echo", "finish_reason": "stop"},
        )
        return ChatResult(
            generations=[ChatGeneration(message=message, generation_info={"finish_reason": "stop"})]
        )
