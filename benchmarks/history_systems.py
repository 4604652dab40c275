"""The systems of the history suite: sluice's chat history (enqueue or buffered), langchain-redis
`RedisChatMessageHistory`, redisvl `MessageHistory`, and a raw `ZRANGE` floor, behind one interface.

Every system gets the same chat turns (`turn`); the peers are imported only when built, so the
suite reports a missing peer as that system's error instead of failing to import.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable
from typing import Any

import redis as redis_py
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import SecretStr

NAMESPACE = "benchhist"
KIND = "history-append"


def turn(i: int) -> list[BaseMessage]:
    """One chat turn, ~300 bytes of text, the same for every system."""
    question = f"Question {i}: what should I pack for a week of hiking in the Alps in July, day {i % 7}?"
    answer = (
        f"Answer {i}: sturdy boots, a rain jacket, layers, sunscreen and a map; check huts on day {i % 7}."
    )
    return [HumanMessage(question), AIMessage(answer)]


# --- the systems ---------------------------------------------------------------------------------
class System:
    """One system under test: build per-session histories, append a turn, read a session."""

    def __init__(self, url: str) -> None:
        self.url = url

    def append(self, session: str, messages: list[BaseMessage]) -> None:
        raise NotImplementedError

    def read(self, session: str) -> Any:
        raise NotImplementedError

    def settle(self) -> None:
        """Wait until every append is readable (sluice: applied by the worker)."""

    def close(self) -> None:
        pass


def sluice_worker(url: str, stop: Any) -> None:
    from sluice.settings import RedisSettings, Settings, WorkerSettings
    from sluice_workers.runtime.process import run_process

    settings = Settings(
        namespace=NAMESPACE,
        redis=RedisSettings(url=SecretStr(url)),
        worker=WorkerSettings(kinds=[KIND], block_ms=100, batch_size=256),
    )
    run_process(settings, 0, stop)


class Sluice(System):
    write = "sync"

    def __init__(self, url: str) -> None:
        from sluice.facade.client import Client

        super().__init__(url)
        ctx = mp.get_context("spawn")
        self.stop = ctx.Event()
        self.proc = ctx.Process(target=sluice_worker, args=(url, self.stop))
        self.proc.start()
        self.client = Client.from_url(url, namespace=NAMESPACE)
        self.histories: dict[str, Any] = {}

    def history(self, session: str) -> Any:
        if session not in self.histories:
            self.histories[session] = self.client.chat_history(session, write=self.write)
        return self.histories[session]

    def append(self, session: str, messages: list[BaseMessage]) -> None:
        self.history(session).add_messages(messages)

    def settle(self) -> None:
        for h in self.histories.values():
            h.flush(timeout=120)

    def read(self, session: str) -> Any:
        # a fresh object with nothing pending: the read is the ZRANGE and decoding
        return self.client.chat_history(session).messages

    def close(self) -> None:
        self.client.close()
        self.stop.set()
        self.proc.join(30)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(10)


class SluiceBuffered(Sluice):
    write = "buffered"


class LangchainRedis(System):
    def __init__(self, url: str) -> None:
        import warnings

        from langchain_redis import RedisChatMessageHistory

        super().__init__(url)
        warnings.filterwarnings("ignore", message=".*RedisChatMessageHistory.*")
        # One instance, its session switched per call: constructing a second one fails on
        # redis-py 8 (langchain-redis 0.2.6 reads FT.INFO as a list), and the calls timed are the same.
        self.history = RedisChatMessageHistory("s0", redis_client=redis_py.Redis.from_url(url))

    def append(self, session: str, messages: list[BaseMessage]) -> None:
        self.history.session_id = session
        self.history.add_messages(messages)

    def read(self, session: str) -> Any:
        self.history.session_id = session
        return self.history.messages


class RedisVL(System):
    def __init__(self, url: str) -> None:
        from redisvl.extensions.message_history import MessageHistory

        super().__init__(url)
        self.redis = redis_py.Redis.from_url(url)
        self.cls = MessageHistory
        self.histories: dict[str, Any] = {}

    def history(self, session: str) -> Any:
        if session not in self.histories:
            self.histories[session] = self.cls("bench_history", session_tag=session, redis_client=self.redis)
        return self.histories[session]

    def append(self, session: str, messages: list[BaseMessage]) -> None:
        role = {"human": "user", "ai": "assistant"}
        self.history(session).add_messages(
            [{"role": role[m.type], "content": str(m.content)} for m in messages]
        )

    def read(self, session: str) -> Any:
        return self.history(session).messages


class RawZrange(System):
    """The floor: the sluice session's members, one ZRANGE, no decoding (reads only)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.redis = redis_py.Redis.from_url(url)
        self.key_of: Callable[[str], str] = lambda s: f"{NAMESPACE}:history:{{{s}}}"

    def append(self, session: str, messages: list[BaseMessage]) -> None:
        raise RuntimeError("raw ZRANGE is a read floor only")

    def read(self, session: str) -> Any:
        return self.redis.zrange(self.key_of(session), 0, -1)


FACTORIES: dict[str, Callable[[str], System]] = {
    "sluice": Sluice,
    "sluice-buffered": SluiceBuffered,
    "langchain-redis": LangchainRedis,
    "redisvl": RedisVL,
}


# --- measuring -----------------------------------------------------------------------------------
