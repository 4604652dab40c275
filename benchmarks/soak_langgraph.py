"""The soak's LangGraph part: checkpointer and store writers and readers, with their own audit.

Used by `benchmarks.soak` when `sluice[langgraph]` is installed. Load threads (rolling threads and
namespaces, TTLs so memory levels off) and audit ones without TTL: at the end, every checkpoint
put on the audit thread is listed, newest first, and every audit store item is there with its value.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

from sluice.facade.client import Client

THREADS, NAMESPACES = 40, 30
TTL_SECONDS = 45.0


class LangGraphLoad:
    """`count(kind, n)` tallies enqueued jobs; `lock` orders the audit writes with their record."""

    def __init__(self, client: Client, count: Callable[[str, int], None], lock: threading.RLock) -> None:
        from langgraph.checkpoint.base import empty_checkpoint

        self._empty = empty_checkpoint
        self.count, self.lock = count, lock
        self.saver = client.checkpointer(ttl=TTL_SECONDS, read_your_writes=False)
        self.audit_saver = client.checkpointer(read_your_writes=False)
        self.store = client.store(ttl={"default_ttl": TTL_SECONDS / 60}, read_your_writes=False)
        self.audit_store = client.store(read_your_writes=False)
        self.parents: dict[str, str] = {}
        self.audit_checkpoints: list[str] = []
        self.audit_items: dict[str, int] = {}

    def writers(self) -> dict[Callable[[random.Random], None], float]:
        return {self.write_checkpoint: 8, self.write_store: 8, self.write_graph_audit: 2}

    def readers(self) -> dict[Callable[[random.Random], None], float]:
        return {self.read_checkpoint: 8, self.read_store: 8}

    def _put(self, saver: Any, thread: str, step: int) -> str:
        checkpoint = self._empty()
        checkpoint["channel_values"] = {"step": step}
        checkpoint["channel_versions"] = {"step": step + 1}
        config: dict[str, Any] = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
        if parent := self.parents.get(thread):
            config["configurable"]["checkpoint_id"] = parent
        saved = saver.put(config, checkpoint, {"source": "loop", "step": step}, {"step": step + 1})
        self.parents[thread] = saved["configurable"]["checkpoint_id"]
        return str(checkpoint["id"])

    # --- writers -------------------------------------------------------------------------------
    def write_checkpoint(self, rng: random.Random) -> None:
        thread = f"t{rng.randrange(THREADS)}"
        with self.lock:  # parents: a thread's checkpoints chain in put order
            self._put(self.saver, thread, rng.randrange(100))
            config = {
                "configurable": {
                    "thread_id": thread,
                    "checkpoint_ns": "",
                    "checkpoint_id": self.parents[thread],
                }
            }
        self.saver.put_writes(config, [("step", rng.randrange(100))], task_id=f"task{rng.randrange(9)}")
        self.count("checkpoint", 2)

    def write_store(self, rng: random.Random) -> None:
        ns = ("soak", f"u{rng.randrange(NAMESPACES)}")
        self.store.put(ns, f"k{rng.randrange(20)}", {"n": rng.randrange(1000)})
        self.count("store", 1)

    def write_graph_audit(self, rng: random.Random) -> None:
        with self.lock:
            n = len(self.audit_checkpoints)
            self.audit_checkpoints.append(self._put(self.audit_saver, "audit", n))
            self.audit_store.put(("audit",), f"a{n}", {"n": n})
            self.audit_items[f"a{n}"] = n
        self.count("checkpoint", 1)
        self.count("store", 1)

    # --- readers -------------------------------------------------------------------------------
    def read_checkpoint(self, rng: random.Random) -> None:
        self.saver.get_tuple({"configurable": {"thread_id": f"t{rng.randrange(THREADS)}"}})

    def read_store(self, rng: random.Random) -> None:
        self.store.get(("soak", f"u{rng.randrange(NAMESPACES)}"), f"k{rng.randrange(20)}")

    # --- audit ---------------------------------------------------------------------------------
    def audit(self) -> dict[str, Any]:
        listed = [t.checkpoint["id"] for t in self.audit_saver.list({"configurable": {"thread_id": "audit"}})]
        items = self.audit_store.search(("audit",), limit=len(self.audit_items) + 10)
        stored = {i.key: i.value.get("n") for i in items}
        return {
            "audit_checkpoints": len(self.audit_checkpoints),
            "audit_checkpoints_exact": listed == self.audit_checkpoints[::-1],
            "audit_store_items": len(self.audit_items),
            "audit_store_exact": stored == self.audit_items,
        }


def langgraph_load(
    client: Client, count: Callable[[str, int], None], lock: threading.RLock
) -> LangGraphLoad | None:
    """The LangGraph load, or None when `sluice[langgraph]` is not installed (the soak says so)."""
    try:
        import langgraph.checkpoint.base  # noqa: F401
    except ImportError:
        return None
    return LangGraphLoad(client, count, lock)
