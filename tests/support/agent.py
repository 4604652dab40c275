"""A small LangGraph agent for tests: a scripted fake chat model that calls a tool once per turn,
then answers with every question of the conversation so far (so an answer shows the memory).

`python -c "from support.agent import main; main()" URL NAMESPACE THREAD TEXT` runs one turn in a
process of its own (the other app replica of the cross-process tests) and prints the answer.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import interrupt


@tool
def word_count(text: str) -> int:
    """Count the words of a text."""
    return len(text.split())


class ScriptedChatModel(BaseChatModel):
    """A human message gets a `word_count` tool call; a tool result gets the final answer."""

    @property
    def _llm_type(self) -> str:
        return "scripted-test-model"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        last = messages[-1]
        asked = [str(m.content) for m in messages if isinstance(m, HumanMessage)]
        if isinstance(last, HumanMessage):
            n = len(asked)
            call = {"name": "word_count", "args": {"text": str(last.content)}, "id": f"call-{n}"}
            message = AIMessage(content="", tool_calls=[call])
        else:
            assert isinstance(last, ToolMessage)
            message = AIMessage(
                content=f"turn {len(asked)} ({last.content} words); you said: " + " | ".join(asked)
            )
        return ChatResult(generations=[ChatGeneration(message=message)])


def build_agent(checkpointer: Any) -> Any:
    model = ScriptedChatModel()

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([word_count]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=checkpointer)


def build_approval(checkpointer: Any) -> Any:
    """draft -> approve (interrupts for a human decision) -> done."""

    def draft(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(content="draft: " + str(state["messages"][-1].content))]}

    def approve(state: MessagesState) -> dict[str, Any]:
        decision = interrupt({"question": "send this draft?", "draft": state["messages"][-1].content})
        return {"messages": [AIMessage(content=f"decision: {decision}")]}

    graph = StateGraph(MessagesState)
    graph.add_node("draft", draft)
    graph.add_node("approve", approve)
    graph.add_edge(START, "draft")
    graph.add_edge("draft", "approve")
    return graph.compile(checkpointer=checkpointer)


def answer(result: dict[str, Any]) -> str:
    return str(result["messages"][-1].content)


def main(argv: Sequence[str] | None = None) -> None:
    """One turn of the agent in this process, on its own client (another app replica)."""
    from sluice.facade.client import Client
    from support.settings import fast_settings

    url, namespace, thread, text = argv or sys.argv[1:]
    client = Client(fast_settings(url, namespace))
    agent = build_agent(client.checkpointer())
    result = agent.invoke({"messages": [HumanMessage(text)]}, {"configurable": {"thread_id": thread}})
    print(answer(result), flush=True)
    client.close()
