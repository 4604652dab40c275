"""What one group-commit send puts on the wire and what its replies mean (no I/O).

A send carries the segments of one or more callers: one enqueue.lua call per stream, then WAIT /
WAITAOF when `queue.durability` asks (once at the end on a single server, where it covers every
write of the connection; after each call on a Cluster, on the node that ran it). `outcomes`
turns the replies into one `Reply` per segment: its entry ids, or what refused it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import ResponseError

from sluice import scripts
from sluice.errors import DurabilityNotReached, QueueFull
from sluice.keys import Keys
from sluice.queue import plan as planning
from sluice.queue.commit import Reply
from sluice.settings import QueueSettings
from sluice.transport.runner import Call
from sluice.transport.translate import to_sluice_error

SCRIPT = "enqueue"


def durability_commands(queue: QueueSettings) -> list[tuple[Any, ...]]:
    timeout_ms = int(queue.durability_timeout * 1000)
    if queue.durability == "replicated":
        return [("WAIT", 1, timeout_ms)]
    if queue.durability == "fsync":
        return [("WAITAOF", 1, 0, timeout_ms)]
    return []


def durability_error(queue: QueueSettings, reply: Any) -> BaseException | None:
    """Why an accepted batch is not confirmed (None when it is)."""
    if isinstance(reply, ResponseError):
        return to_sluice_error(reply, "confirm the enqueued jobs") or reply
    if queue.durability == "replicated" and int(reply) < 1:
        return DurabilityNotReached(
            f"jobs enqueued but no replica confirmed them within {queue.durability_timeout}s; "
            "do not resend them: check replication (INFO replication) or lower SLUICE_QUEUE__DURABILITY"
        )
    if queue.durability == "fsync" and int(reply[0]) < 1:
        return DurabilityNotReached(
            f"jobs enqueued but not fsynced within {queue.durability_timeout}s; "
            "do not resend them: is appendonly enabled on the server? (CONFIG GET appendonly)"
        )
    return None


def script_calls(keys: Keys, queue: QueueSettings, segments: Sequence[Segment]) -> list[planning.ScriptCall]:
    """One script call per stream, streams in arrival order."""
    return [
        planning.script_call(keys, group, queue.max_backlog, queue.dedupe_window)
        for group in planning.by_stream(segments)
    ]


Segment = planning.Segment


def evalsha(call: planning.ScriptCall) -> tuple[Any, ...]:
    return ("EVALSHA", scripts.sha(SCRIPT), len(call.keys), *call.keys, *call.args)


def runner_calls(queue: QueueSettings, calls: Sequence[planning.ScriptCall]) -> list[Call]:
    """For `sluice.transport.runner` (a Cluster): each call, then its durability wait on its node."""
    out: list[Call] = []
    for call in calls:
        out.append(Call(tuple(call.args), route=call.stream, script=SCRIPT, keys=tuple(call.keys)))
        out += [Call(cmd, route=call.stream, follows=True) for cmd in durability_commands(queue)]
    return out


def _group(stream: str, reply: Any) -> Reply:
    if isinstance(reply, list):
        return reply
    text = reply.decode() if isinstance(reply, bytes) else str(reply)
    parsed = planning.queue_full(text)
    if parsed is None:
        return ResponseError(f"enqueue.lua replied {text[:200]!r}")
    return QueueFull(stream, parsed[0], parsed[1])


def call_outcomes(
    queue: QueueSettings, call: planning.ScriptCall, reply: Any, acks: Sequence[Any]
) -> list[Reply]:
    """One reply per segment of `call`, from its script reply and the durability replies after it."""
    if isinstance(reply, BaseException):
        failed: BaseException = to_sluice_error(reply, "enqueue") or reply
        return [failed for _ in call.segments]
    out = [_group(call.stream, r) for r in reply]
    for ack in acks:
        error = durability_error(queue, ack)
        if error is not None:
            return [error if isinstance(r, list) else r for r in out]
    return out


def outcomes(
    queue: QueueSettings, calls: Sequence[planning.ScriptCall], replies: Sequence[Any], *, waits_each: bool
) -> dict[int, Reply]:
    """Each segment's reply, by `id(segment)`. `waits_each`: the durability replies follow each
    call (Cluster); else they come once after all the calls."""
    per = len(durability_commands(queue))
    out: dict[int, Reply] = {}
    for n, call in enumerate(calls):
        if waits_each:
            reply, acks = replies[n * (per + 1)], replies[n * (per + 1) + 1 : (n + 1) * (per + 1)]
        else:
            reply, acks = replies[n], replies[len(calls) :]
        for segment, got in zip(call.segments, call_outcomes(queue, call, reply, acks), strict=True):
            out[id(segment)] = got
    return out


def in_order(
    queue: QueueSettings,
    calls: Sequence[planning.ScriptCall],
    replies: Sequence[Any],
    segments: Sequence[Segment],
    *,
    waits_each: bool,
) -> list[Reply]:
    """`outcomes` in the order of `segments` (one call, the common case, needs no lookup)."""
    if len(calls) == 1:
        return call_outcomes(queue, calls[0], replies[0], replies[1:])
    got = outcomes(queue, calls, replies, waits_each=waits_each)
    return [got[id(s)] for s in segments]
