"""One batch of calls delivered to a Redis Cluster while its slots move (sans-I/O).

`Runner` / `AsyncRunner` send a batch as one pipeline per node per round; `ClusterBatch` decides
what each round sends and reads the replies, so the sync and asyncio shells follow the same rules:

- MOVED: the slot has a new owner. The call is resent there (the shell also updates redis-py's
  slot map, so later batches go there first).
- ASK: the slot is migrating and this call's key has already left. Resent to the importing node,
  preceded by ASKING in the same pipeline.
- TRYAGAIN (a multi-key call whose keys a migration has split) and CLUSTERDOWN: resent after a
  short pause; CLUSTERDOWN also re-reads the slot map.
- NOSCRIPT: the node lost its scripts (restart, SCRIPT FLUSH). Reloaded and resent.

A script is loaded on a node (SCRIPT LOAD at the head of that node's pipeline) the first time a
runner sends it there, so a node that never ran it (an importing node) costs no extra round trip.
Calls to one slot keep their order: a call is held back while an earlier call to its slot is
redirected elsewhere. A call marked `follows` (WAIT, WAITAOF) rides with the call before it: same
node, right after it, resent with it. After `MAX_ROUNDS` rounds or `MAX_PAUSE` seconds of pauses
the batch gives up with the last TRYAGAIN / CLUSTERDOWN or a `ClusterError`, which callers see as
`RedisUnavailable` (retryable).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import redis.exceptions as rex

from sluice.scripts import source
from sluice.transport.call import Call, command

MAX_ROUNDS: Final = 32
MAX_PAUSE: Final = 2.0  # seconds: longer than moving one slot's keys takes, short for a job
FREE_ROUNDS: Final = 4  # resends without a pause unless the server said TRYAGAIN / CLUSTERDOWN
FIRST_PAUSE: Final = 0.01
PAUSE_CAP: Final = 0.25


@dataclass(slots=True)
class Unit:
    """A keyed call and the calls that follow it; delivered (or redirected) together."""

    calls: list[int]
    slot: int
    node: str | None  # None: ask the slot map
    asking: bool = False
    last: BaseException | None = None  # the reply that sent it round again


@dataclass(slots=True)
class Send:
    """One node's pipeline in a round: the commands, and what they carry."""

    node: str
    commands: list[tuple[Any, ...]] = field(default_factory=list)
    loads: list[str] = field(default_factory=list)  # scripts loaded first (their replies lead)
    units: list[Unit] = field(default_factory=list)


class ClusterBatch:
    """The state of one batch: which calls are done, where the others go next."""

    def __init__(
        self,
        calls: Sequence[Call],
        slot_of: Callable[[str], int],
        loaded: dict[str, set[str]],
    ) -> None:
        self.calls = calls
        self.replies: list[Any] = [None] * len(calls)
        self.learned: list[rex.MovedError] = []  # for the shell to apply to redis-py's slot map
        self.refresh = False  # CLUSTERDOWN seen: the shell re-reads the slot map
        self._loaded = loaded  # node name -> scripts known to be loaded there (the runner's)
        self._pending: list[Unit] = []
        for i, call in enumerate(calls):
            if call.follows and self._pending:
                self._pending[-1].calls.append(i)
            else:
                self._pending.append(Unit([i], slot_of(call.route), None))
        self._rounds = 0
        self._paused = 0.0
        self._pauses = 0
        self._wait = False

    @property
    def done(self) -> bool:
        return not self._pending

    def pause(self) -> float:
        """Seconds to wait before the next round (0: none); gives up when the budget is spent."""
        if not self._wait and self._rounds < FREE_ROUNDS:
            return 0.0
        delay = min(PAUSE_CAP, FIRST_PAUSE * float(2**self._pauses))
        if self._paused + delay > MAX_PAUSE:
            raise self._give_up()
        self._pauses += 1
        self._paused += delay
        return delay

    def next_round(self, owner_of: Callable[[int], str]) -> list[Send]:
        """The pipelines of the next round, one per node."""
        self._rounds += 1
        if self._rounds > MAX_ROUNDS:
            raise self._give_up()
        self._wait = False
        self.refresh = False
        self.learned = []
        lead: dict[int, str] = {}
        sends: dict[str, Send] = {}
        for unit in self._pending:
            if unit.node is None:
                unit.node = owner_of(unit.slot)
            if lead.setdefault(unit.slot, unit.node) != unit.node:
                continue  # an earlier call of this slot goes elsewhere first: keep the order
            send = sends.setdefault(unit.node, Send(unit.node))
            known = self._loaded.get(unit.node, set())
            for i in unit.calls:
                script = self.calls[i].script
                if script and script not in known and script not in send.loads:
                    send.loads.append(script)
            if unit.asking:
                send.commands.append(("ASKING",))
            send.commands.extend(command(self.calls[i]) for i in unit.calls)
            send.units.append(unit)
        for send in sends.values():
            send.commands[:0] = [("SCRIPT", "LOAD", source(name)) for name in send.loads]
        return list(sends.values())

    def take(self, send: Send, replies: Sequence[Any]) -> None:
        """Read one node's replies: keep the final ones, route the redirected calls again."""
        for reply in replies:
            if isinstance(reply, BaseException) and not isinstance(reply, rex.ResponseError):
                raise reply  # the connection failed: the shell's caller retries the whole batch
        for name, reply in zip(send.loads, replies, strict=False):
            if isinstance(reply, BaseException):
                raise reply  # SCRIPT LOAD refused (NOPERM, ...): no call of this node can run
            self._loaded.setdefault(send.node, set()).add(name)
        pos = len(send.loads)
        for unit in send.units:
            if unit.asking:
                if isinstance(replies[pos], BaseException):
                    raise replies[pos]  # ASKING refused (an ACL without +asking)
                pos += 1
            mine = replies[pos : pos + len(unit.calls)]
            pos += len(unit.calls)
            if self._redirected(unit, send.node, mine[0]):
                continue
            for i, reply in zip(unit.calls, mine, strict=True):
                self.replies[i] = reply
            self._pending.remove(unit)

    def _redirected(self, unit: Unit, node: str, reply: Any) -> bool:
        if not isinstance(reply, rex.MovedError | rex.AskError | rex.TryAgainError | rex.ClusterDownError):
            if isinstance(reply, rex.NoScriptError):
                self._loaded.pop(node, None)  # forget them all: a flush or restart lost every one
                unit.last = reply
                return True
            return False
        unit.last = reply
        if isinstance(reply, rex.MovedError):  # before AskError: MovedError is one
            unit.node, unit.asking = f"{reply.host}:{reply.port}", False
            self.learned.append(reply)
        elif isinstance(reply, rex.AskError):
            unit.node, unit.asking = f"{reply.host}:{reply.port}", True
        elif isinstance(reply, rex.ClusterDownError):
            unit.node, unit.asking = None, False
            self.refresh = self._wait = True
        else:
            self._wait = True  # TRYAGAIN: same node, same ASKING, after a pause
        return True

    def _give_up(self) -> BaseException:
        last = [u.last for u in self._pending if u.last is not None]
        for error in last:
            if isinstance(error, rex.TryAgainError | rex.ClusterDownError):
                return error
        detail = f" (last: {last[-1]})" if last else ""
        return rex.ClusterError(
            f"the Cluster still redirected {len(self._pending)} of {len(self.calls)} calls after "
            f"{self._rounds} rounds{detail}; slots are moving, retry shortly"
        )

    def result(self) -> list[Any]:
        return self.replies
