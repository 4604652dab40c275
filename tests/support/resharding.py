"""Moving Cluster slots by hand, the way `redis-cli --cluster reshard` does it.

For one slot: ``CLUSTER SETSLOT <slot> IMPORTING <source>`` on the target, ``MIGRATING <target>``
on the source, ``GETKEYSINSLOT`` + ``MIGRATE … KEYS`` until the slot is empty on the source, then
``SETSLOT <slot> NODE <target>`` on the target, the source and every other primary (in that order,
as the Redis Cluster specification advises). Each step is a method, so a test can stop between
them and look at a slot mid-migration.
"""

from __future__ import annotations

import time
from typing import Any

import redis

from topologies import ClusterTopology

MIGRATE_TIMEOUT_MS = 5000


class Resharder:
    """Admin connections to every node of a `ClusterTopology`, by port."""

    def __init__(self, topology: ClusterTopology) -> None:
        self.ports = [node.port for node in topology.nodes]
        self.nodes = {port: redis.Redis(host="127.0.0.1", port=port) for port in self.ports}
        self.ids = {port: self.nodes[port].execute_command("CLUSTER", "MYID").decode() for port in self.ports}

    def owner(self, slot: int, port: int | None = None) -> int:
        """The port of the node that owns `slot`, as the node at `port` (default: the first) sees it."""
        for first, last, primary, *_replicas in self.nodes[port or self.ports[0]].execute_command(
            "CLUSTER", "SLOTS"
        ):
            if int(first) <= slot <= int(last):
                return int(primary[1])
        raise LookupError(f"slot {slot} is not served")

    def other(self, port: int) -> int:
        """The next node after `port` (where a slot of `port` is moved to)."""
        return self.ports[(self.ports.index(port) + 1) % len(self.ports)]

    def begin(self, slot: int, source: int, target: int) -> None:
        self.nodes[target].execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", self.ids[source])
        self.nodes[source].execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", self.ids[target])

    def keys(self, slot: int, port: int, count: int = 100) -> list[bytes]:
        return list(self.nodes[port].execute_command("CLUSTER", "GETKEYSINSLOT", slot, count))

    def migrate(self, source: int, target: int, keys: list[Any]) -> None:
        if keys:
            self.nodes[source].execute_command(
                "MIGRATE", "127.0.0.1", target, "", 0, MIGRATE_TIMEOUT_MS, "KEYS", *keys
            )

    def move_keys(self, slot: int, source: int, target: int, batch: int = 100, pause: float = 0.0) -> int:
        """MIGRATE the slot's keys in batches until the source holds none; returns how many moved."""
        moved = 0
        while keys := self.keys(slot, source, batch):
            self.migrate(source, target, keys)
            moved += len(keys)
            if pause:
                time.sleep(pause)
        return moved

    def finish(self, slot: int, source: int, target: int) -> None:
        order = [target, source, *(p for p in self.ports if p not in (source, target))]
        for port in order:
            self.nodes[port].execute_command("CLUSTER", "SETSLOT", slot, "NODE", self.ids[target])

    def move(self, slot: int, target: int | None = None, *, pause: float = 0.0) -> tuple[int, int]:
        """Move one slot (to the next node by default); returns (source, target) ports."""
        source = self.owner(slot)
        target = self.other(source) if target is None else target
        self.begin(slot, source, target)
        self.move_keys(slot, source, target, pause=pause)
        self.finish(slot, source, target)
        return source, target

    def close(self) -> None:
        for client in self.nodes.values():
            client.close()
