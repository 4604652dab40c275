"""The demo's agent step: a LangGraph agent (a scripted chat model and a tool) whose memory is the
sluice checkpointer, its turns alternating between two clients (two app replicas), each turn's
answer showing every earlier question. Needs `langgraph` (the ``demo`` extra installs it).
"""

from __future__ import annotations

import time
from typing import Any

from sluice.errors import SluiceError
from sluice.facade.client import Client
from sluice_workers.demo.step import Step


def _graph(checkpointer: Any) -> Any:
    from langchain_core.callbacks import CallbackManagerForLLMRun
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
    from langchain_core.outputs import ChatGeneration, ChatResult
    from langchain_core.tools import tool
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition

    @tool
    def word_count(text: str) -> int:
        """Count the words of a text."""
        return len(text.split())

    class ScriptedModel(BaseChatModel):
        """A question gets a `word_count` call; the tool's result gets an answer listing every question."""

        @property
        def _llm_type(self) -> str:
            return "sluice-demo-scripted"

        def _generate(
            self,
            messages: list[BaseMessage],
            stop: list[str] | None = None,
            run_manager: CallbackManagerForLLMRun | None = None,
            **kwargs: Any,
        ) -> ChatResult:
            asked = [str(m.content) for m in messages if isinstance(m, HumanMessage)]
            last = messages[-1]
            if isinstance(last, HumanMessage):
                call = {"name": "word_count", "args": {"text": str(last.content)}, "id": f"call-{len(asked)}"}
                reply = AIMessage(content="", tool_calls=[call])
            else:
                words = last.content if isinstance(last, ToolMessage) else "?"
                reply = AIMessage(
                    content=f"turn {len(asked)} ({words} words); you asked: " + " | ".join(asked)
                )
            return ChatResult(generations=[ChatGeneration(message=reply)])

    model = ScriptedModel()

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([word_count]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=checkpointer)


def agent_memory(client: Client, turns: int = 4) -> Step | None:
    """`turns` agent turns on one thread, alternating between `client` and a second client."""
    try:
        from langchain_core.messages import HumanMessage
    except ImportError:  # pragma: no cover - langchain-core is a dependency of sluice
        return None
    try:
        graphs = [_graph(client.checkpointer())]
    except ImportError:
        print("skipping the agent step: it needs LangGraph (pip install 'sluice[demo]')")
        return None
    replica = Client(client.settings)  # another app process would do the same: its own client
    step = Step("agent memory (checkpoint)")
    try:
        graphs.append(_graph(replica.checkpointer()))
        config = {"configurable": {"thread_id": "demo-agent"}}
        started = time.perf_counter()
        questions = []
        for i in range(turns):
            questions.append(f"question {i + 1} about redis streams")
            t0 = time.perf_counter()
            result = graphs[i % 2].invoke({"messages": [HumanMessage(questions[-1])]}, config)
            step.latencies_ms.append((time.perf_counter() - t0) * 1000)
            answer = str(result["messages"][-1].content)
            if not answer.endswith(" | ".join(questions)):
                raise SluiceError(f"the agent forgot earlier turns at turn {i + 1}: {answer!r}")
        step.seconds = time.perf_counter() - started
        step.jobs = turns
        history = len(list(graphs[0].get_state_history(config)))
        step.note = (
            f"{turns} turns over 2 clients, each saw every earlier one; {history} checkpoints in its history"
        )
    finally:
        replica.close()
    return step
