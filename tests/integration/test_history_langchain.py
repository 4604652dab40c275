"""`RunnableWithMessageHistory` over `client.chat_history`, with an offline fake chat model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory

from sluice.facade.client import Client
from sluice.models.fake import EchoChatModel
from support.settings import fast_settings
from support.workers import ThreadWorker

pytestmark = pytest.mark.filterwarnings("ignore:RunnableWithMessageHistory is deprecated")


@pytest.fixture
def client(redis8: Any, namespace: str) -> Iterator[Client]:
    c = Client(fast_settings(redis8.url, namespace))
    with ThreadWorker(c.settings):
        yield c
    c.close()


def test_runnable_with_message_history_keeps_each_conversation(client: Client) -> None:
    # Given a prompt with a history placeholder, a fake model that answers with tool calls and
    # usage, and sluice histories built afresh on every call (as LangChain does)
    seen: list[list[BaseMessage]] = []

    def record(prompt: Any) -> Any:
        seen.append(list(prompt.to_messages()))
        return prompt

    prompt = ChatPromptTemplate.from_messages(
        [("system", "Be brief."), MessagesPlaceholder("history"), ("human", "{question}")]
    )
    chain = prompt | RunnableLambda(record) | EchoChatModel(tool_call=True)
    chat = RunnableWithMessageHistory(
        chain,
        # a one-argument factory: LangChain reads the factory's parameters as config keys
        lambda session_id: client.chat_history(session_id),  # noqa: PLW0108
        input_messages_key="question",
        history_messages_key="history",
    )
    alice = {"configurable": {"session_id": "alice"}}
    bob = {"configurable": {"session_id": "bob"}}
    # When two users talk, turns interleaved, with no waiting in between
    a1 = chat.invoke({"question": "My name is Alice."}, config=alice)
    b1 = chat.invoke({"question": "I am Bob."}, config=bob)
    a2 = chat.invoke({"question": "What is my name?"}, config=alice)
    # Then the second turn of Alice saw her first turn, and nothing of Bob's
    assert [type(m) for m in seen[2]] == [SystemMessage, HumanMessage, AIMessage, HumanMessage]
    assert [m.content for m in seen[2][1:3]] == ["My name is Alice.", a1.content]
    assert "Bob" not in " ".join(str(m.content) for m in seen[2])
    # And each history holds its turns in order, answers with tool calls and usage intact
    history = client.chat_history("alice").messages
    assert [m.content for m in history] == ["My name is Alice.", a1.content, "What is my name?", a2.content]
    assert history[1].model_dump() == a1.model_dump() and history[3].model_dump() == a2.model_dump()
    assert history[3].tool_calls[0]["args"] == {"text": "What is my name?"}  # type: ignore[attr-defined]
    assert history[3].usage_metadata is not None  # type: ignore[attr-defined]
    assert [m.content for m in client.chat_history("bob").messages] == ["I am Bob.", b1.content]
    assert [s.session_id for s in client.sessions().sessions] == ["alice", "bob"]


async def test_runnable_with_message_history_asyncio(client: Client) -> None:
    chain = (
        ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{q}")]) | EchoChatModel()
    )
    chat = RunnableWithMessageHistory(
        chain,
        lambda sid: client.chat_history(sid),  # noqa: PLW0108
        input_messages_key="q",
        history_messages_key="history",
    )
    config = {"configurable": {"session_id": "async"}}
    first = await chat.ainvoke({"q": "one"}, config=config)
    second = await chat.ainvoke({"q": "two"}, config=config)
    messages = await client.chat_history("async").aget_messages()
    assert [m.content for m in messages] == ["one", first.content, "two", second.content]
    await client.aclose()
