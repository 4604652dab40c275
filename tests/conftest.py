"""Fixtures: real Redis servers (harness in servers.py and topologies.py) and per-test namespaces.

Session-scoped servers are shared and must not be broken by a test: isolate with `namespace`
(a unique key prefix), never FLUSHALL. A test that kills, pauses or restarts servers gets its
own from `redis_factory`. A missing binary skips the tests that need it, or fails them under
`CI=true`; the message says what to install.

`import servers` works because pytest puts this rootdir conftest's folder on sys.path
(no `__init__.py` in tests/, default "prepend" import mode).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import pytest

import servers
from servers import ExternalRedis, Missing, RedisServer, ServerStartError, TLSFiles, need, report_missing
from topologies import ClusterTopology, SentinelTopology, ServerFactory


@pytest.fixture
def namespace() -> str:
    """A unique key prefix for this test (isolation without flushing shared servers)."""
    return f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def redis8() -> Iterator[RedisServer | ExternalRedis]:
    """Redis 8.2 with RediSearch and RedisJSON, or the server at TEST_REDIS_URL."""
    external = os.environ.get("TEST_REDIS_URL")
    if external:
        yield ExternalRedis(external)
        return
    server = RedisServer(need(servers.redis8_binary), modules=need(servers.stack_modules), name="redis8")
    try:
        yield server.start()
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def redis7() -> Iterator[RedisServer]:
    """Debian's Redis 7.0, no modules."""
    server = RedisServer(need(servers.redis7_binary), name="redis7")
    try:
        yield server.start()
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def tls_files() -> Iterator[TLSFiles]:
    """A throwaway CA, server and client certificates, made with the openssl CLI."""
    directory = servers.short_tempdir("tls")
    try:
        yield need(lambda: servers.make_tls_files(directory))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def tls_redis(tls_files: TLSFiles) -> Iterator[RedisServer]:
    """Redis 7 (Debian's build has TLS) on a TLS-only port that requires client certificates."""
    server = RedisServer(need(servers.redis7_binary), tls=tls_files, name="tls")
    try:
        yield _start_tls(server)
    finally:
        server.cleanup()


def _start_tls(server: RedisServer) -> RedisServer:
    try:
        return server.start()
    except ServerStartError as error:
        if "TLS support" not in str(error):
            raise
        report_missing(
            Missing(f"{server.binary} has no TLS: `apt-get install redis-server` (Debian's has it)")
        )


@pytest.fixture(scope="session")
def sentinel() -> Iterator[SentinelTopology]:
    """Primary, replica and 3 sentinels, with data-node and sentinel ACL users. Do not kill it."""
    topology = SentinelTopology(need(servers.any_binary))
    try:
        yield topology.start()
    finally:
        topology.stop()


@pytest.fixture(scope="session")
def tls_sentinel(tls_files: TLSFiles) -> Iterator[SentinelTopology]:
    """The Sentinel topology over TLS everywhere (Debian's Redis 7: the only local build with TLS)."""
    topology = SentinelTopology(need(servers.redis7_binary), tls=tls_files)
    try:
        yield topology.start()
    finally:
        topology.stop()


@pytest.fixture(scope="session")
def cluster() -> Iterator[ClusterTopology]:
    """A 3-primary Redis Cluster. Do not kill it."""
    topology = ClusterTopology(need(servers.any_binary))
    try:
        yield topology.start()
    finally:
        topology.stop()


@pytest.fixture
def redis_factory() -> Iterator[ServerFactory]:
    """Servers of this test alone; all stopped by pid when the test ends, pass or fail."""
    factory = ServerFactory()
    try:
        yield factory
    finally:
        factory.stop_all()
