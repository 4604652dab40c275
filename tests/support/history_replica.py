"""An app replica for the cross-replica history test: a process of its own, driven line by line.

Run as ``python -c "from support.history_replica import main; main()" URL NAMESPACE SESSIONS MODE``
(MODE ``sync`` or ``async``: the asyncio methods, one event loop per command).
Each line on stdin is a command, answered by one JSON line on stdout:

- ``read N``: read every session (a new `chat_history` object each, as `RunnableWithMessageHistory`
  makes one per call) and report what each read held; turn N expects 2·(N-1) messages, turn by turn.
- ``write N``: append turn N (a question and its answer) to every session.
- ``quit``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Sequence

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage


def turn_messages(session: int, turn: int) -> list[BaseMessage]:
    return [HumanMessage(f"s{session} t{turn} question"), AIMessage(f"s{session} t{turn} answer")]


def expected(session: int, before: int) -> list[str]:
    """The contents a read at turn `before + 1` must see: every earlier turn, in order."""
    return [str(m.content) for t in range(1, before + 1) for m in turn_messages(session, t)]


def main(argv: Sequence[str] | None = None) -> None:
    from sluice.facade.client import Client
    from support.settings import fast_settings

    url, namespace, sessions, mode = argv or sys.argv[1:]
    client = Client(fast_settings(url, namespace))
    ids = range(int(sessions))

    async def aread() -> list[list[str]]:
        return [[str(m.content) for m in await client.chat_history(f"conv-{s}").aget_messages()] for s in ids]

    async def awrite(turn: int) -> None:
        for s in ids:
            await client.chat_history(f"conv-{s}").aadd_messages(turn_messages(s, turn))

    def read() -> list[list[str]]:
        if mode == "async":
            return asyncio.run(aread())
        return [[str(m.content) for m in client.chat_history(f"conv-{s}").messages] for s in ids]

    def write(turn: int) -> None:
        if mode == "async":
            asyncio.run(awrite(turn))
            return
        for s in ids:
            client.chat_history(f"conv-{s}").add_messages(turn_messages(s, turn))

    client.chat_history("warm-up").messages  # connect and probe before the first timed command
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "quit":
            break
        turn = int(arg)
        started = time.monotonic()
        reply: dict[str, object] = {}
        if command == "read":
            seen = read()
            reply["counts"] = [len(got) for got in seen]
            reply["wrong"] = {
                s: got for s, got in zip(ids, seen, strict=True) if got != expected(s, turn - 1)
            }
        else:
            write(turn)
        reply["seconds"] = time.monotonic() - started
        print(json.dumps(reply), flush=True)
    client.close()
