"""Every URL form against its real topology, a Sentinel failover under load, and capability probes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
import redis.connection
from pydantic import SecretStr

import servers
from servers import ExternalRedis, RedisServer, TLSFiles
from sluice.connection.capabilities import aprobe, probe
from sluice.connection.factory import connect, connect_async
from sluice.errors import (
    CapabilityMissing,
    ConfigError,
    PermissionDenied,
    RedisFull,
    RedisTimeout,
    RedisUnavailable,
    SluiceError,
)
from sluice.settings import RedisSettings
from sluice.transport.translate import ServerErrors, translate_errors
from topologies import ClusterTopology, SentinelTopology, ServerFactory


def settings(url: str, **fields: Any) -> RedisSettings:
    """RedisSettings with short timeouts, so a failing test fails fast."""
    base: dict[str, Any] = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}
    return RedisSettings(url=SecretStr(url), **{**base, **fields})


def tls_fields(files: TLSFiles) -> dict[str, str]:
    return {
        "ssl_ca_certs": str(files.ca),
        "ssl_certfile": str(files.client_cert),
        "ssl_keyfile": str(files.client_key),
    }


def round_trip(client: Any, key: str) -> None:
    client.set(key, "value")
    assert client.get(key) == b"value"
    client.delete(key)


# --- redis:// and the settings that override it ----------------------------------------------


def test_redis_url_gives_a_resp2_client(redis8: RedisServer | ExternalRedis, namespace: str) -> None:
    # Given a redis:// URL / When connecting with the defaults
    client = connect(settings(redis8.url))
    # Then it is a plain client speaking RESP2, and it works
    assert isinstance(client, redis.Redis)
    assert client.connection_pool.connection_kwargs["protocol"] == 2
    round_trip(client, f"{namespace}:k")
    client.close()


def test_resp3_is_available_on_request_and_the_probe_still_parses(
    redis8: RedisServer | ExternalRedis, namespace: str
) -> None:
    # Given a client that asked for RESP3
    client = connect(settings(redis8.url), protocol=3, decode_responses=True)
    # When it is used and probed
    client.set(f"{namespace}:k", "v")
    caps = probe(client)
    # Then replies are RESP3 and the probe reads them like RESP2 ones
    assert client.execute_command("HELLO")["proto"] == 3
    assert caps == probe(connect(settings(redis8.url)))
    client.close()


def test_settings_credentials_win_over_the_url(redis_factory: ServerFactory, namespace: str) -> None:
    # Given a server with a password, and a URL with a wrong one
    server = redis_factory.redis(8, config=["requirepass Right-Pa55word"], password="Right-Pa55word")
    url = f"redis://default:Wrong-Pa55word@127.0.0.1:{server.port}/0"
    # When the URL alone is used / Then the refusal is a PermissionDenied that leaks no password
    with pytest.raises(PermissionDenied) as refused, translate_errors("ping"):
        connect(settings(url)).ping()
    assert "Wrong-Pa55word" not in str(refused.value)
    assert "password" in str(refused.value)
    # When the settings carry the right password / Then it wins
    round_trip(connect(settings(url, password=SecretStr("Right-Pa55word"))), f"{namespace}:k")


# --- rediss:// --------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["settings", "url"])
def test_rediss_verifies_the_server_and_presents_a_client_certificate(
    tls_redis: RedisServer, tls_files: TLSFiles, namespace: str, where: str
) -> None:
    # Given a TLS-only server that requires client certificates, and the CA and client files
    if where == "settings":
        config = settings(tls_redis.url, **tls_fields(tls_files))
    else:
        query = "&".join(f"{k}={v}" for k, v in tls_fields(tls_files).items())
        config = settings(f"{tls_redis.url}/0?{query}")
    # When connecting / Then verification is on and commands work
    client = connect(config)
    assert client.connection_pool.connection_kwargs["ssl_cert_reqs"] == "required"
    round_trip(client, f"{namespace}:k")
    client.close()


def test_rediss_with_the_wrong_ca_says_the_certificate_failed(
    tls_redis: RedisServer, tls_files: TLSFiles, tmp_path: Path
) -> None:
    # Given a CA that did not sign the server's certificate
    stranger = servers.make_tls_files(tmp_path, name="stranger")
    client = connect(settings(tls_redis.url, **{**tls_fields(tls_files), "ssl_ca_certs": str(stranger.ca)}))
    # When a command is sent
    with pytest.raises(ConfigError) as failed, translate_errors("ping"):
        client.ping()
    # Then a configuration error names TLS and the certificate check
    message = str(failed.value)
    assert isinstance(failed.value, SluiceError)
    assert "TLS" in message
    assert "ssl_ca_certs" in message
    assert "CERTIFICATE_VERIFY_FAILED" in message


def test_rediss_without_a_client_certificate_is_refused_clearly(
    tls_redis: RedisServer, tls_files: TLSFiles
) -> None:
    # Given the right CA but no client certificate, against a server that requires one
    client = connect(settings(tls_redis.url, ssl_ca_certs=str(tls_files.ca), retries=0))
    # When a command is sent / Then the error is ours and points at the client certificate
    with pytest.raises(SluiceError) as failed, translate_errors("ping"):
        client.ping()
    assert isinstance(failed.value, ConfigError | RedisUnavailable)
    assert "ssl_certfile" in str(failed.value)


# --- unix:// ------------------------------------------------------------------------------------


def test_unix_socket_url_selects_the_db(redis_factory: ServerFactory, namespace: str) -> None:
    # Given a server listening on a unix socket
    server = redis_factory.redis(7, unix_socket=True)
    # When connecting through unix://...?db=2
    client = connect(settings(f"unix://{server.unix_path}?db=2"))
    client.set(f"{namespace}:k", "v")
    # Then the key lands in db 2 of that server
    assert client.connection_pool.connection_kwargs["path"] == server.unix_path
    assert server.client(db=2).get(f"{namespace}:k") == "v"
    assert server.client(db=0).get(f"{namespace}:k") is None


# --- Sentinel -----------------------------------------------------------------------------------


@pytest.mark.sentinel
def test_sentinel_url_reaches_the_primary_with_both_credentials(
    sentinel: SentinelTopology, namespace: str
) -> None:
    # Given a redis+sentinel URL with 3 sentinels, data-node and sentinel credentials
    client = connect(settings(sentinel.url()))
    # When a command runs / Then it ran on the primary, authenticated as the data-node user
    round_trip(client, f"{namespace}:k")
    assert client.info("server")["tcp_port"] == sentinel.master_port()
    assert client.acl_whoami() == "app"
    client.close()


@pytest.mark.sentinel
def test_sentinel_credentials_matter_and_settings_can_supply_them(
    sentinel: SentinelTopology, namespace: str
) -> None:
    # Given the URL without sentinel credentials
    url = sentinel.url(sentinel_auth=False)
    # When it is used alone / Then no sentinel answers, and the error says what to check
    with pytest.raises(RedisUnavailable) as refused, translate_errors("ping"):
        connect(settings(url)).ping()
    assert "sentinel credentials" in str(refused.value)
    assert sentinel.SENTINEL_PASSWORD not in str(refused.value)
    # When the settings carry them / Then it works
    fixed = settings(
        url,
        sentinel_username=sentinel.SENTINEL_USER,
        sentinel_password=SecretStr(sentinel.SENTINEL_PASSWORD),
    )
    round_trip(connect(fixed), f"{namespace}:k")


@pytest.mark.sentinel
def test_rediss_sentinel_uses_tls_to_sentinels_and_primary(
    tls_sentinel: SentinelTopology, tls_files: TLSFiles, namespace: str
) -> None:
    # Given sentinels and data nodes that speak only TLS with client certificates
    client = connect(settings(tls_sentinel.url(), **tls_fields(tls_files)))
    # When a command runs / Then it reached the primary over TLS
    round_trip(client, f"{namespace}:k")
    assert client.info("server")["tcp_port"] == tls_sentinel.master_port()  # a TLS-only port
    assert issubclass(client.connection_pool.connection_class, redis.connection.SSLConnection)
    client.close()


@pytest.mark.sentinel
@pytest.mark.slow
def test_client_writes_again_after_the_primary_is_killed(
    redis_factory: ServerFactory, namespace: str
) -> None:
    # Given a topology of this test alone, and a client writing in a loop
    topology = redis_factory.sentinel()
    client = connect(settings(topology.url(), socket_timeout=1.0, retries=2, retry_backoff_cap=0.2))
    key = f"{namespace}:counter"
    client.set(key, 0)
    client.wait(1, 2000)  # the replica has the key before the crash
    old_primary = topology.primary
    acknowledged, failures = 0, 0
    # When the primary is killed while the loop goes on
    old_primary.kill()
    killed_at = time.monotonic()
    resumed_after: float | None = None
    while time.monotonic() - killed_at < 30:
        try:
            with translate_errors("write during failover"):
                client.incr(key)
        except RedisUnavailable:
            failures += 1
            time.sleep(0.05)
            continue
        acknowledged += 1
        if resumed_after is None:
            resumed_after = time.monotonic() - killed_at
        if acknowledged >= 20:
            break
    # Then writes resumed within a bound, on the promoted replica, and none was lost
    assert resumed_after is not None, f"no write succeeded within 30 s ({failures} failures)"
    assert resumed_after < 15.0
    assert failures > 0  # the loop really went through the outage
    assert topology.master_port() == topology.replica.port
    assert int(client.get(key) or 0) >= acknowledged
    client.close()


# --- Cluster ------------------------------------------------------------------------------------


@pytest.mark.cluster
def test_cluster_url_routes_keys_to_their_slots(cluster: ClusterTopology, namespace: str) -> None:
    # Given a redis+cluster URL with all 3 primaries
    client = connect(settings(cluster.url))
    assert isinstance(client, redis.cluster.RedisCluster)
    # When keys are written until every primary owns one
    owners: dict[int, str] = {}
    for i in range(200):
        key = f"{namespace}:k{i}"
        client.set(key, str(i))
        owners.setdefault(int(client.get_node_from_key(key).port), key)
        if len(owners) == len(cluster.nodes):
            break
    # Then each key is stored on the node that owns its slot
    assert len(owners) == len(cluster.nodes)
    for node in cluster.nodes:
        key = owners[node.port]
        assert node.client().execute_command("GET", key) is not None
        assert client.get(key) is not None
    client.close()


@pytest.mark.cluster
def test_unreachable_cluster_is_a_redis_unavailable() -> None:
    # Given startup nodes where nothing listens
    url = f"redis+cluster://127.0.0.1:{servers.free_port()},127.0.0.1:{servers.free_port()}"
    # When connecting (a sync cluster client discovers slots at construction)
    # Then the error is ours and says what to check
    with pytest.raises(RedisUnavailable, match="startup nodes"):
        connect(settings(url, socket_connect_timeout=0.5))


# --- asyncio clients ------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["redis", "unix", "sentinel", "cluster"])
async def test_async_client_for_every_form(
    form: str, request: pytest.FixtureRequest, redis_factory: ServerFactory, namespace: str
) -> None:
    # Given a URL of each form
    if form == "redis":
        url = request.getfixturevalue("redis8").url
    elif form == "unix":
        url = f"unix://{redis_factory.redis(7, unix_socket=True).unix_path}"
    elif form == "sentinel":
        url = request.getfixturevalue("sentinel").url()
    else:
        url = request.getfixturevalue("cluster").url
    # When an asyncio client is built and used
    client = connect_async(settings(url))
    expected = redis.asyncio.cluster.RedisCluster if form == "cluster" else redis.asyncio.Redis
    assert isinstance(client, expected)
    key = f"{namespace}:async"
    await client.set(key, "v")
    # Then it works and can be probed
    assert await client.get(key) == b"v"
    caps = await aprobe(client)
    assert caps.cluster is (form == "cluster")
    await client.delete(key)
    await client.aclose()


# --- error translation against real replies ---------------------------------------------------


async def test_server_errors_become_sluice_errors_that_say_what_to_do(
    redis_factory: ServerFactory, namespace: str
) -> None:
    # Given a stream with a group, and a user without write permission
    server = redis_factory.redis(7, config=["user reader on >Read-0nly ~* +@read +@connection"])
    admin = connect(settings(server.url))
    admin.xgroup_create(f"{namespace}:s", "g", id="0", mkstream=True)
    reader = connect(settings(f"redis://reader:Read-0nly@127.0.0.1:{server.port}"))
    # When the server refuses a command / Then its wording is recognised
    with pytest.raises(redis.ResponseError) as busy:
        admin.xgroup_create(f"{namespace}:s", "g", id="0")
    assert ServerErrors.matches(busy.value, ServerErrors.BUSYGROUP)
    with pytest.raises(redis.ResponseError) as wrong:
        admin.get(f"{namespace}:s")
    assert ServerErrors.matches(wrong.value, ServerErrors.WRONGTYPE)
    assert not ServerErrors.matches(wrong.value, ServerErrors.BUSYGROUP)
    with pytest.raises(redis.ResponseError) as unknown:
        admin.execute_command("NO.SUCH.COMMAND")
    assert ServerErrors.matches(unknown.value, ServerErrors.UNKNOWN_COMMAND)
    with pytest.raises(redis.ResponseError) as noscript:
        admin.evalsha("0" * 40, 0)
    assert ServerErrors.matches(noscript.value, ServerErrors.NOSCRIPT)
    # When a user lacks a permission / Then it is PermissionDenied naming the ACL
    with pytest.raises(PermissionDenied, match="ACL"), translate_errors("enqueue"):
        reader.xadd(f"{namespace}:s", {"a": "1"})
    # When a write hits maxmemory / Then it is RedisFull
    admin.config_set("maxmemory", 1)
    with pytest.raises(RedisFull, match="maxmemory"), translate_errors("enqueue"):
        admin.set(f"{namespace}:k", "v")
    # And the same context manager works around awaits, as `with` and as `async with`
    async_admin = connect_async(settings(server.url))
    with pytest.raises(RedisFull), translate_errors("enqueue"):
        await async_admin.set(f"{namespace}:k", "v")
    with pytest.raises(SluiceError, match="WRONGTYPE"):
        async with translate_errors("read"):
            await async_admin.get(f"{namespace}:s")
    await async_admin.aclose()


async def test_a_dead_server_is_redis_unavailable_and_a_hung_one_a_timeout(
    redis_factory: ServerFactory,
) -> None:
    # Given a server that is paused (hung), then killed
    server = redis_factory.redis(7)
    client = connect(settings(server.url, socket_timeout=0.3, retries=0))
    client.ping()
    server.pause()
    # When a command is sent to the hung server / Then it is a RedisTimeout
    with pytest.raises(RedisTimeout, match="SOCKET_TIMEOUT"), translate_errors("read"):
        client.ping()
    server.resume()
    server.kill()
    # When it is sent to the dead one / Then it is RedisUnavailable (not a timeout)
    with pytest.raises(RedisUnavailable) as down, translate_errors("read"):
        client.ping()
    assert not isinstance(down.value, RedisTimeout)


# --- capabilities ---------------------------------------------------------------------------------


def test_redis7_has_no_search_and_no_vector_sets(redis7: RedisServer) -> None:
    # Given Debian's Redis 7 without modules / When probed
    caps = probe(connect(settings(redis7.url)))
    # Then only what Redis 7.0 has is reported
    assert caps.version[0] == 7
    assert (caps.search, caps.json, caps.vector_sets, caps.cluster) == (False, False, False, False)
    assert (caps.lag, caps.waitaof, caps.xackdel) == (True, caps.version >= (7, 2, 0), False)
    # And asking for vectors says what is missing and how to get it
    with pytest.raises(CapabilityMissing) as missing:
        caps.require("vectors", "the vector store")
    message = str(missing.value)
    assert "the vector store needs" in message
    assert "Redis 8" in message
    assert "sluice server" in message


def test_redis8_with_modules_has_everything(redis8: RedisServer | ExternalRedis) -> None:
    # Given Redis 8 with RediSearch and RedisJSON / When probed
    caps = probe(connect(settings(redis8.url)))
    # Then search, JSON, Vector Sets and the 8.2 stream commands are reported
    assert caps.version >= (8, 0, 0)
    assert caps.search and caps.search_version is not None
    assert caps.json and caps.vector_sets and caps.vectors
    assert caps.xackdel is (caps.version >= (8, 2, 0))
    assert caps.waitaof and caps.lag and not caps.cluster
    caps.require("vectors", "the vector store")  # does not raise


async def test_async_probe_agrees_with_the_sync_one(redis8: RedisServer | ExternalRedis) -> None:
    client = connect_async(settings(redis8.url), protocol=3)
    assert await aprobe(client) == probe(connect(settings(redis8.url)))
    await client.aclose()


@pytest.mark.cluster
def test_cluster_probe_reports_cluster_mode(cluster: ClusterTopology) -> None:
    caps = probe(connect(settings(cluster.url)))
    assert caps.cluster


@pytest.mark.sentinel
def test_sentinel_managed_client_probes_its_primary(sentinel: SentinelTopology) -> None:
    caps = probe(connect(settings(sentinel.url())))
    assert not caps.cluster
    assert caps.version == probe(sentinel.primary.client()).version


@pytest.mark.sentinel
def test_probing_a_sentinel_itself_says_to_use_a_sentinel_url(sentinel: SentinelTopology) -> None:
    with pytest.raises(ConfigError, match=r"redis\+sentinel://"):
        probe(sentinel.sentinels[0].client())


def test_probe_falls_back_when_the_user_may_not_list_modules(redis_factory: ServerFactory) -> None:
    # Given Redis 8 with modules, a user who may not run MODULE, and one who may run neither MODULE nor INFO
    server = redis_factory.redis(
        8,
        modules=True,
        config=[
            "user no-module on >Pa55-one ~* +@all -module",
            "user no-info on >Pa55-two ~* +@all -module -info",
        ],
    )
    full = probe(server.client())
    # When each is probed
    no_module = probe(connect(settings(f"redis://no-module:Pa55-one@127.0.0.1:{server.port}")))
    no_info = probe(connect(settings(f"redis://no-info:Pa55-two@127.0.0.1:{server.port}")))
    # Then COMMAND INFO (resp. HELLO) fills in what MODULE LIST (resp. INFO) would have said
    assert (no_module.search, no_module.json, no_module.vector_sets) == (True, True, True)
    assert no_module.search_version is None  # COMMAND INFO carries no module version
    assert no_info == full  # HELLO lists the modules, with their versions
