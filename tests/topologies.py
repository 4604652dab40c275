"""Multi-process topologies for the tests: Sentinel (1 primary, 1 replica, 3 sentinels) and Cluster,
and `ServerFactory`, which gives one test servers and topologies of its own.

Topologies are built from `servers.RedisServer`, wait until they are fully formed (replica synced and
every sentinel knowing the others; every node reporting ``cluster_state:ok``), and stop every
process by pid in `stop()`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis

import servers
from servers import RedisServer, TLSFiles, free_port, need


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{what}: not reached within {timeout} s")


class SentinelTopology:
    """Primary + replica guarded by sentinels, all password-protected.

    Data nodes: user `app` (the URL's credentials), default user with `admin_password`.
    Sentinels: user `watcher` (the URL's sentinel credentials), default user with a password.
    """

    SERVICE = "mymaster"
    DATA_USER = "app"
    DATA_PASSWORD = "App-Pa55-d4ta"
    SENTINEL_USER = "watcher"
    SENTINEL_PASSWORD = "W4tch-S3ntinel"
    ADMIN_PASSWORD = "Adm1n-only"

    def __init__(self, binary: str, *, tls: TLSFiles | None = None, sentinels: int = 3) -> None:
        self.tls = tls
        data = [
            f"requirepass {self.ADMIN_PASSWORD}",
            f"user {self.DATA_USER} on >{self.DATA_PASSWORD} ~* &* +@all",
            f"masteruser {self.DATA_USER}",
            f"masterauth {self.DATA_PASSWORD}",
            "repl-diskless-sync-delay 0",
        ]
        self.primary = RedisServer(binary, config=data, tls=tls, password=self.ADMIN_PASSWORD, name="primary")
        self.replica = RedisServer(
            binary,
            config=[*data, f"replicaof 127.0.0.1 {self.primary.port}"],
            tls=tls,
            password=self.ADMIN_PASSWORD,
            name="replica",
        )
        watch = [
            f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.primary.port} 2",
            f"sentinel down-after-milliseconds {self.SERVICE} 1000",
            f"sentinel failover-timeout {self.SERVICE} 5000",
            f"sentinel parallel-syncs {self.SERVICE} 1",
            f"sentinel auth-user {self.SERVICE} {self.DATA_USER}",
            f"sentinel auth-pass {self.SERVICE} {self.DATA_PASSWORD}",
            f"requirepass {self.ADMIN_PASSWORD}",
            f"user {self.SENTINEL_USER} on >{self.SENTINEL_PASSWORD} allchannels +@all",
            f"sentinel sentinel-user {self.SENTINEL_USER}",
            f"sentinel sentinel-pass {self.SENTINEL_PASSWORD}",
        ]
        self.sentinels = [
            RedisServer(
                binary,
                config=watch,
                tls=tls,
                sentinel=True,
                username=self.SENTINEL_USER,
                password=self.SENTINEL_PASSWORD,
                name=f"sentinel{i}",
            )
            for i in range(sentinels)
        ]

    @property
    def servers(self) -> list[RedisServer]:
        return [self.primary, self.replica, *self.sentinels]

    def url(self, *, sentinel_auth: bool = True, db: int = 0) -> str:
        scheme = "rediss+sentinel" if self.tls else "redis+sentinel"
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        query = f"?sentinel_username={self.SENTINEL_USER}&sentinel_password={self.SENTINEL_PASSWORD}"
        return (
            f"{scheme}://{self.DATA_USER}:{self.DATA_PASSWORD}@{hosts}/{self.SERVICE}/{db}"
            f"{query if sentinel_auth else ''}"
        )

    def start(self) -> SentinelTopology:
        try:
            self.primary.start()
            self.replica.start()
            for sentinel in self.sentinels:
                sentinel.start()
            self.wait_formed()
        except BaseException:
            self.stop()
            raise
        return self

    def master_port(self) -> int:
        """The primary's port as the first answering sentinel names it."""
        for sentinel in self.sentinels:
            if not sentinel.running:
                continue
            try:
                with sentinel.client() as client:
                    _host, port = client.sentinel_get_master_addr_by_name(self.SERVICE)
                    return int(port)
            except (redis.ConnectionError, redis.TimeoutError):
                continue
        raise RuntimeError("no sentinel answered")

    def wait_failed_over(self, old_port: int, timeout: float = 30.0) -> int:
        """Until every running sentinel names the same new primary and that server says it is one;
        returns its port. Restarting the old primary before then is unsafe when it has no
        persistence: a sentinel still holding the old configuration sees it back (empty) and may
        point the promoted replica at it, which then syncs that emptiness."""
        promoted: list[int] = []

        def agreed() -> bool:
            ports = set()
            for sentinel in self.sentinels:
                if not sentinel.running:
                    continue
                try:
                    with sentinel.client() as client:
                        ports.add(int(client.sentinel_get_master_addr_by_name(self.SERVICE)[1]))
                except (redis.ConnectionError, redis.TimeoutError):
                    return False
            if len(ports) != 1 or old_port in ports:
                return False
            port = ports.pop()
            with self.server_on(port).client() as server:
                if server.info("replication").get("role") != "master":
                    return False
            promoted[:] = [port]
            return True

        wait_until(agreed, timeout, "every sentinel to name the promoted primary")
        return promoted[0]

    def server_on(self, port: int) -> RedisServer:
        return next(s for s in (self.primary, self.replica) if s.port == port)

    def wait_formed(self, timeout: float = 20.0) -> None:
        """Until the replica is in sync and every sentinel knows the replica and the other sentinels."""
        others = len(self.sentinels) - 1

        def formed() -> bool:
            with self.replica.client() as replica:
                if replica.info("replication").get("master_link_status") != "up":
                    return False
            for sentinel in self.sentinels:
                with sentinel.client() as client:
                    state = client.sentinel_master(self.SERVICE)
                    if int(state["num-slaves"]) < 1 or int(state["num-other-sentinels"]) < others:
                        return False
            return True

        wait_until(formed, timeout, "sentinel topology formed")

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.cleanup()


class ClusterTopology:
    """A Redis Cluster of `primaries` nodes, slots assigned from redis-py (no redis-cli needed);
    `modules`: module libraries every node loads (e.g. `servers.stack_modules()` for RediSearch);
    `empty`: how many of the nodes (the last ones) join with no slot, as a node added to scale out."""

    SLOTS = 16384

    def __init__(
        self, binary: str, *, primaries: int = 3, modules: tuple[str, ...] = (), empty: int = 0
    ) -> None:
        self.serving = primaries - empty
        # the bus port defaults to port + 10000, which may be taken or above 65535: choose it
        self.bus_ports = [free_port() for _ in range(primaries)]
        self.nodes = [
            RedisServer(
                binary,
                modules=modules,
                config=[
                    "cluster-enabled yes",
                    "cluster-config-file nodes.conf",
                    "cluster-node-timeout 5000",
                    f"cluster-port {self.bus_ports[i]}",
                ],
                name=f"cluster{i}",
            )
            for i in range(primaries)
        ]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def start(self) -> ClusterTopology:
        try:
            for node in self.nodes:
                node.start()
            self._assign_slots()
            wait_until(self._formed, 30.0, "cluster_state:ok on every node")
        except BaseException:
            self.stop()
            raise
        return self

    def _assign_slots(self) -> None:
        count = self.serving
        for index, node in enumerate(self.nodes):
            with node.client() as client:
                client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", index + 1)
                if index < count:
                    first, last = index * self.SLOTS // count, (index + 1) * self.SLOTS // count - 1
                    client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        with self.nodes[0].client() as client:
            for node, bus_port in zip(self.nodes[1:], self.bus_ports[1:], strict=True):
                client.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port, bus_port)

    def _formed(self) -> bool:
        for node in self.nodes:
            with node.client() as client:
                info = client.cluster("INFO")
                if info.get("cluster_state") != "ok" or int(info.get("cluster_known_nodes", 0)) != len(
                    self.nodes
                ):
                    return False
        return True

    def stop(self) -> None:
        for node in self.nodes:
            node.cleanup()


class ServerFactory:
    """Servers and topologies owned by one test, which may kill, pause or restart them.

    `redis(8, modules=True, appendonly=True, config=[...], unix_socket=True, ...)` takes the
    keyword arguments of `RedisServer`; everything is stopped by `stop_all()` (the fixture does it).
    """

    def __init__(self) -> None:
        self._owned: list[RedisServer | SentinelTopology | ClusterTopology] = []

    def redis(self, version: int = 8, *, modules: bool = False, **options: Any) -> RedisServer:
        binary = need(servers.redis8_binary if version == 8 else servers.redis7_binary)
        loaded = need(servers.stack_modules) if modules else ()
        server = RedisServer(binary, modules=loaded, **options)
        self._owned.append(server)
        return server.start()

    def sentinel(self, **options: Any) -> SentinelTopology:
        topology = SentinelTopology(need(servers.any_binary), **options)
        self._owned.append(topology)
        return topology.start()

    def cluster(self, **options: Any) -> ClusterTopology:
        topology = ClusterTopology(need(servers.any_binary), **options)
        self._owned.append(topology)
        return topology.start()

    def stop_all(self) -> None:
        for owned in reversed(self._owned):
            if isinstance(owned, RedisServer):
                owned.cleanup()
            else:
                owned.stop()
