"""Every key and stream name sluice uses, built in one place.

Key schema (``ns`` = the namespace, default ``sluice``; ``{...}`` is a Cluster hash tag):

| key | type | TTL | written by | read by |
|---|---|---|---|---|
| ``ns:jobs:{kind:p}`` | stream | - | producer (XADD via enqueue.lua) | workers (XREADGROUP), status |
| ``ns:jobs:{kind:p}:done:<id>`` | list | queue.signal_ttl | worker after XACK (jobs that asked) | ``wait()`` (BLPOP) |
| ``ns:jobs:{kind:p}:dead:<id>`` | string | 7 days | worker when dead-lettering | ``wait()`` |
| ``ns:dead`` | stream | capped | worker | ``sluice dlq`` |
| ``ns:workers`` | zset member=worker id, score=last beat ms | - | worker heartbeat | status, ``--check`` |
| ``ns:worker:<id>`` | string (JSON) | 3 x heartbeat | worker heartbeat | status, ``--check`` |
| ``ns:stats:<kind>:<minute>`` | hash processed/failed/dead | 2 h | worker | status |
| ``ns:history:{<session>}`` | zset score 0, member ``<padded id>:<n>:<json>`` | history ttl | history handler | chat history |
| ``ns:history:{<session>}:meta`` | hash cleared/ver/ttl | history ttl | history handler | chat history |
| ``ns:history:sessions`` | zset member=session, score=last write ms | - | history handler | session listing |

The job stream's hash tag is ``{kind:p}`` so partitions spread over Cluster slots while a stream
and its signal keys stay in one slot. Per-session keys are tagged by session id so one Lua script
can write both.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sluice.types import EntryId, JobKind, KeyT


def stable_hash(text: str) -> int:
    """A hash that is the same in every process (Python's ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def digest(text: str) -> str:
    """Short hex digest used inside key names."""
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Keys:
    """Key builder for one namespace."""

    namespace: str
    partitions: int = 4

    # --- job streams -------------------------------------------------------------------------
    def stream(self, kind: JobKind, partition: int) -> KeyT:
        return KeyT(f"{self.namespace}:jobs:{{{kind}:{partition}}}")

    def streams(self, kind: JobKind) -> list[KeyT]:
        return [self.stream(kind, p) for p in range(self.partitions)]

    def partition_of(self, target_key: str) -> int:
        """All jobs for one target key go to one partition, so their entry ids are comparable."""
        return stable_hash(target_key) % self.partitions

    def stream_for(self, kind: JobKind, target_key: str) -> KeyT:
        return self.stream(kind, self.partition_of(target_key))

    def done_signal(self, stream: str, entry_id: EntryId) -> KeyT:
        return KeyT(f"{stream}:done:{entry_id}")

    def dead_marker(self, stream: str, entry_id: EntryId) -> KeyT:
        return KeyT(f"{stream}:dead:{entry_id}")

    def dead_letters(self) -> KeyT:
        return KeyT(f"{self.namespace}:dead")

    # --- workers -----------------------------------------------------------------------------
    def workers(self) -> KeyT:
        return KeyT(f"{self.namespace}:workers")

    def worker(self, worker_id: str) -> KeyT:
        return KeyT(f"{self.namespace}:worker:{worker_id}")

    def stats(self, kind: str, minute: int) -> KeyT:
        return KeyT(f"{self.namespace}:stats:{kind}:{minute}")

    # --- conversation store --------------------------------------------------------------------
    def history(self, session_id: str) -> KeyT:
        return KeyT(f"{self.namespace}:history:{{{session_id}}}")

    def history_meta(self, session_id: str) -> KeyT:
        return KeyT(f"{self.namespace}:history:{{{session_id}}}:meta")

    def history_sessions(self) -> KeyT:
        return KeyT(f"{self.namespace}:history:sessions")
