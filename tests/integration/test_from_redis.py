"""`Client.from_redis(r)`: sluice's own connections (the RESP2 sync twin, the asyncio twin, the
RESP3 twin behind `local_cache`) reach the server `r` reaches, the way `r` reaches it: over the
same unix socket, over TLS with the same certificates (a recording proxy shows that no byte,
least of all the password, goes out in clear text), through the same sentinels, to the same
Cluster nodes."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis as redis_py
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
import redis.sentinel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import Generation
from pydantic import SecretStr

import servers
from sluice.errors import ConfigError
from sluice.facade.client import Client
from sluice.jobs.models import HistoryAppendPayload
from sluice.settings import Settings
from support.settings import fast_settings
from support.workers import ThreadWorker
from topologies import ClusterTopology, SentinelTopology

PASSWORD = "Tw1n-s3cret-over-TLS"
LLM = "fake-llm:temperature=0"


def appends(prefix: str, n: int) -> list[HistoryAppendPayload]:
    return [
        HistoryAppendPayload(
            session_id=f"{prefix}{i}", messages=[{"type": "human", "data": {"content": str(i)}}]
        )
        for i in range(n)
    ]


def info_of(redis: Any) -> tuple[int, dict[str, Any]]:
    """(process id of the server answering, CLIENT INFO of the connection it answered on)."""
    return int(redis.info("server")["process_id"]), _client_info(redis.execute_command("CLIENT", "INFO"))


async def ainfo_of(redis: Any) -> tuple[int, dict[str, Any]]:
    server = await redis.info("server")
    return int(server["process_id"]), _client_info(await redis.execute_command("CLIENT", "INFO"))


def _client_info(raw: Any) -> dict[str, Any]:
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return dict(field.split("=", 1) for field in text.split() if "=" in field)


def exercise(client: Client, session: str) -> None:
    """Sync enqueue + read-your-writes, the LLM cache through a local (tracked) cache, asyncio too."""
    history = client.chat_history(session)
    history.add_messages([HumanMessage("sync turn"), AIMessage("sync reply", id=f"{session}-1")])
    assert [m.content for m in history.messages] == ["sync turn", "sync reply"]
    cache = client.llm_cache(name="twins", local_cache=16)
    cache.update("prompt", LLM, [Generation(text="answer")])
    assert [g.text for g in cache.lookup("prompt", LLM) or []] == ["answer"]
    assert [g.text for g in cache.lookup("prompt", LLM) or []] == ["answer"]  # from memory
    cache.close()

    async def on_asyncio() -> None:
        await history.aadd_messages([HumanMessage("async turn")])
        assert [m.content for m in await history.aget_messages()][-1] == "async turn"
        await cache.aupdate("aprompt", LLM, [Generation(text="aanswer")])
        assert [g.text for g in await cache.alookup("aprompt", LLM) or []] == ["aanswer"]
        await client.aclose()

    asyncio.run(on_asyncio())


def twin_infos(client: Client) -> list[tuple[int, dict[str, Any]]]:
    """What the server says about each of sluice's connections: sync, tracking, asyncio."""
    tracking = client.tracking_redis()
    try:
        found = [info_of(client.redis), info_of(tracking)]
    finally:
        tracking.close()

    async def on_asyncio() -> tuple[int, dict[str, Any]]:
        twin = client.async_redis
        try:
            return await ainfo_of(twin)
        finally:
            await twin.aclose()

    found.append(asyncio.run(on_asyncio()))
    return found


# --- unix socket ---------------------------------------------------------------------------------
def test_twins_of_a_unix_socket_client_use_that_socket(redis_factory: Any, namespace: str) -> None:
    # Given a server on a unix socket, another on TCP, and the app's RESP3 decoding client on the socket
    on_socket = redis_factory.redis(8, unix_socket=True)
    redis_factory.redis(8)  # the wrong server a rebuilt redis://host:port URL could reach
    app = redis_py.Redis(
        unix_socket_path=on_socket.unix_path, protocol=3, decode_responses=True, client_name="app"
    )
    client = Client.from_redis(app, namespace=namespace)
    try:
        with ThreadWorker(fast_settings(f"unix://{on_socket.unix_path}", namespace)):
            # When the app writes and reads through sync, tracked and asyncio paths
            exercise(client, "unix")
        # Then each of sluice's connections is on the socket's server, through the socket, named like the app's
        for pid, conn in twin_infos(client):
            assert pid == on_socket.pid
            assert conn["laddr"].startswith(on_socket.unix_path), conn
            assert conn["name"] == "app"
        resp = sorted(conn["resp"] for _pid, conn in twin_infos(client))
        assert resp == ["2", "2", "3"]  # sync and asyncio twins RESP2, the tracking twin RESP3
        # and the app's own client sees what sluice's wrote
        assert app.exists(client.keys.cache_entry("twins", LLM, "aprompt")) == 1
    finally:
        client.close()
        app.close()


# --- TLS -----------------------------------------------------------------------------------------
class RecordingProxy:
    """A TCP relay to one port that keeps every byte clients send, per connection."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.sent: list[bytearray] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._accepting = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> RecordingProxy:
        self._accepting.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with self._lock:  # shutdown, not close: it wakes the threads blocked in accept / recv
            for sock in [self._listener, *self._sockets]:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        for thread in [self._accepting, *self._threads]:
            thread.join(5)
        for sock in [self._listener, *self._sockets]:
            sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            record = bytearray()
            with self._lock:
                self.sent.append(record)
                self._sockets += [downstream, upstream]
            for src, dst, keep in ((downstream, upstream, record), (upstream, downstream, None)):
                thread = threading.Thread(target=self._pump, args=(src, dst, keep), daemon=True)
                self._threads.append(thread)
                thread.start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, keep: bytearray | None) -> None:
        try:
            while data := src.recv(65536):
                if keep is not None:
                    keep.extend(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def tls_worker_settings(server: servers.RedisServer, namespace: str, files: servers.TLSFiles) -> Settings:
    base = fast_settings(f"rediss://127.0.0.1:{server.port}/0", namespace)
    tls = {
        "ssl_ca_certs": str(files.ca),
        "ssl_certfile": str(files.client_cert),
        "ssl_keyfile": str(files.client_key),
        "password": SecretStr(PASSWORD),
    }
    return base.model_copy(update={"redis": base.redis.model_copy(update=tls)})


def test_twins_of_a_tls_client_speak_tls_and_never_send_in_clear(
    redis_factory: Any, tls_files: servers.TLSFiles, namespace: str
) -> None:
    # Given a TLS-only, password-protected server behind a proxy that records what clients send
    server = redis_factory.redis(7, tls=tls_files, password=PASSWORD, config=[f"requirepass {PASSWORD}"])
    with RecordingProxy(server.port) as proxy:
        # and the app's RESP3 decoding TLS client (client certificate, CA, host-name check) through it
        app = redis_py.Redis(
            host="127.0.0.1", port=proxy.port, password=PASSWORD, protocol=3, decode_responses=True,
            **tls_files.client_kwargs(),
        )  # fmt: skip
        client = Client.from_redis(app, namespace=namespace)
        try:
            with ThreadWorker(tls_worker_settings(server, namespace, tls_files)):
                # When the app writes and reads through sync, tracked and asyncio paths
                exercise(client, "tls")
            # Then every connection of sluice's reached the TLS server
            infos = twin_infos(client)
            assert [pid for pid, _ in infos] == [server.pid] * 3
            assert sorted(conn["resp"] for _pid, conn in infos) == ["2", "2", "3"]
        finally:
            client.close()
            app.close()
    # and every connection through the proxy opened with a TLS handshake; the password never went in clear
    assert len(proxy.sent) >= 4, "app, sync twin, tracking twin and asyncio twin connections"
    for stream in proxy.sent:
        assert stream[:1] == b"\x16", f"a connection opened without TLS: {bytes(stream[:16])!r}"
        assert PASSWORD.encode() not in stream
        assert b"AUTH" not in stream and b"HELLO" not in stream


# --- Sentinel ------------------------------------------------------------------------------------
@pytest.mark.sentinel
def test_twins_of_a_sentinel_client_ask_the_same_sentinels(
    sentinel: SentinelTopology, namespace: str
) -> None:
    # Given the app's Sentinel-managed RESP3 decoding client (sentinel and data-node credentials)
    manager = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        [("127.0.0.1", s.port) for s in sentinel.sentinels],
        sentinel_kwargs={"username": sentinel.SENTINEL_USER, "password": sentinel.SENTINEL_PASSWORD},
    )
    app = manager.master_for(  # type: ignore[no-untyped-call]
        sentinel.SERVICE,
        username=sentinel.DATA_USER,
        password=sentinel.DATA_PASSWORD,
        protocol=3,
        decode_responses=True,
    )
    client = Client.from_redis(app, namespace=namespace)
    try:
        with ThreadWorker(fast_settings(sentinel.url(), namespace)):
            exercise(client, "sentinel")
        # Then each of sluice's connections is on the primary the sentinels name, as the data user
        primary = sentinel.server_on(sentinel.master_port())
        for pid, conn in twin_infos(client):
            assert pid == primary.pid
            assert conn["user"] == sentinel.DATA_USER
    finally:
        client.close()
        app.close()


# --- Cluster -------------------------------------------------------------------------------------
@pytest.fixture
def cluster_app(cluster: ClusterTopology) -> Iterator[redis.cluster.RedisCluster]:
    """The app's RedisCluster as redis-py 8 builds it by default (RESP3), decoding replies."""
    app = redis.cluster.RedisCluster(
        startup_nodes=[redis.cluster.ClusterNode("127.0.0.1", cluster.nodes[0].port)],  # type: ignore[no-untyped-call]
        decode_responses=True,
        client_name="app",
    )
    yield app
    app.close()


@pytest.mark.cluster
def test_twins_of_a_cluster_client_reach_the_same_cluster(
    cluster: ClusterTopology, cluster_app: redis.cluster.RedisCluster, namespace: str
) -> None:
    # Given Client.from_redis over the app's RedisCluster
    client = Client.from_redis(cluster_app, namespace=namespace)
    with ThreadWorker(fast_settings(cluster.url, namespace)):
        # When the app enqueues and waits (sync and asyncio) and reads its writes
        handles = client.enqueue(appends("c", 20))
        client.wait(handles, timeout=20)
        history = client.chat_history("cluster")
        history.add_messages([HumanMessage("sync turn")])
        assert [m.content for m in history.messages] == ["sync turn"]

        async def on_asyncio() -> None:
            assert isinstance(client.async_redis, redis.asyncio.cluster.RedisCluster)
            more = await client.aproducer.enqueue_many(appends("a", 20))
            await client.await_wait(more, timeout=20)
            await history.aadd_messages([HumanMessage("async turn")])
            assert [m.content for m in await history.aget_messages()] == ["sync turn", "async turn"]
            await client.aclose()

        asyncio.run(on_asyncio())
    # Then the sync twin is a RESP2 bytes cluster client on the same nodes, named like the app's
    assert isinstance(client.redis, redis.cluster.RedisCluster)
    ports = {n.port for n in cluster.nodes}
    assert {n.port for n in client.redis.get_primaries()} == ports
    client.redis.set(f"{namespace}:probe", "x")
    assert client.redis.get(f"{namespace}:probe") == b"x"
    assert client.redis.execute_command("CLIENT", "GETNAME", target_nodes=client.redis.RANDOM) == b"app"
    # and client-side caching says plainly it needs a standalone server
    with pytest.raises(ConfigError, match="Cluster"):
        client.llm_cache(local_cache=8)
    client.close()


# --- refused without I/O -------------------------------------------------------------------------
class CustomConnection(redis_py.Connection):
    """An app's own connection class: sluice cannot know its asyncio equivalent."""


def test_an_untwinnable_client_is_refused_with_what_to_pass() -> None:
    with pytest.raises(ConfigError, match="async_redis"):
        Client.from_redis(redis_py.asyncio.Redis())
    pool = redis_py.ConnectionPool(connection_class=CustomConnection, port=1)
    client = Client.from_redis(redis_py.Redis(connection_pool=pool, protocol=2))

    async def async_redis_of(c: Client) -> Any:
        return c.async_redis

    with pytest.raises(ConfigError, match=r"CustomConnection.*async_redis"):
        asyncio.run(async_redis_of(client))
    ocsp = redis_py.Redis(port=1, ssl=True, ssl_validate_ocsp=True, protocol=2)
    with pytest.raises(ConfigError, match="ssl_validate_ocsp"):
        asyncio.run(async_redis_of(Client.from_redis(ocsp)))
