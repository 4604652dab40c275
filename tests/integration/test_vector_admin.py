"""Index plumbing on a real Redis 8: read-only scripts run as EVALSHA_RO, opening an existing index
only reads (and repairs what is missing), and the vector settings reach the keys they govern."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis as redis_py
import redis.asyncio as aredis

from servers import RedisServer
from sluice.embeddings.hashing import HashingEmbeddings
from sluice.errors import PermissionDenied
from sluice.facade.client import Client
from sluice.scripts import ReadOnlyScript, Scripts
from sluice.settings import VectorSettings
from sluice.vectors import IndexSchema
from support.settings import fast_settings
from support.workers import ThreadWorker
from topologies import ServerFactory

DIMS = 16
SCHEMA = IndexSchema.for_dims(DIMS)


@pytest.fixture
def client(redis8: Any, namespace: str) -> Iterator[Client]:
    settings = fast_settings(redis8.url, namespace).model_copy(
        update={"vectors": VectorSettings(tombstone_ttl=30, embeddings_cache_ttl=60)}
    )
    embedders = {"hashing": settings.embedders["hashing"].model_copy(update={"kwargs": {"dims": DIMS}})}
    c = Client(settings.model_copy(update={"embedders": embedders}))
    yield c
    c.close()


async def test_no_writes_scripts_run_as_evalsha_ro_for_a_read_only_user(redis_factory: ServerFactory) -> None:
    # Given a user who may run EVALSHA_RO but not EVALSHA, and read keys only
    server: RedisServer = redis_factory.redis(8)
    with server.client() as admin:
        admin.execute_command(
            "ACL", "SETUSER", "reader", "on", ">pw", "~*", "+@read", "+evalsha_ro", "+script|load",
            "+script|exists", "+vsim", "+vemb", "+ping", "+hello", "+client|setinfo",
        )  # fmt: skip
        admin.execute_command("VADD", "s", "VALUES", 2, 1, 0, "a")
        admin.hset("s:docs", "a", "0" * 29 + '{"t": "x", "m": {}}')
    args = [b"\x00\x00\x80?\x00\x00\x00\x00", 1, 10, "", "", "0"]
    reader = redis_py.Redis(port=server.port, username="reader", password="pw")
    # When the vector search script runs directly, in a pipeline, and on asyncio
    script = Scripts(reader)["vector_set_search"]
    assert isinstance(script, ReadOnlyScript)
    assert script(keys=["s", "s:docs"], args=args)[0] == b"a"
    pipe = reader.pipeline(transaction=False)
    script(keys=["s", "s:docs"], args=args, client=pipe)
    assert pipe.execute()[0][0] == b"a"
    areader = aredis.Redis(port=server.port, username="reader", password="pw")
    assert (await Scripts(areader)["vector_set_search"](keys=["s", "s:docs"], args=args))[0] == b"a"
    await areader.aclose()
    # Then it ran read-only: a writing script is refused for this user
    with pytest.raises(redis_py.exceptions.NoPermissionError):
        Scripts(reader)["vector_set_write"](keys=["s", "s:docs", "s:tomb"], args=["1", "delete", "a", 0])
    reader.close()


def test_opening_an_existing_index_repairs_what_is_missing(client: Client) -> None:
    # Given an index whose FT index and alias were lost (a crash half-way through creating it)
    client.vectorstore("ix", HashingEmbeddings(DIMS), schema=SCHEMA, backend="search").session.open(
        lambda: DIMS
    )
    client.redis.execute_command("FT.DROPINDEX", client.keys.vector_index("ix", 1))
    # When a store opens it, both are back
    client.vectorstore("ix", HashingEmbeddings(DIMS), schema=SCHEMA).session.open(lambda: DIMS)
    info = client.redis.execute_command("FT.INFO", client.keys.vector_alias("ix"))
    assert info[info.index(b"index_name") + 1] == client.keys.vector_index("ix", 1).encode()


@pytest.mark.parametrize("backend", ["search", "vsets"])
def test_a_user_with_reads_only_opens_and_queries_an_existing_index(
    redis_factory: ServerFactory, backend: str
) -> None:
    # Given an index created by an admin, and a user who may read, FT.INFO / FT.SEARCH / VSIM and
    # run read-only scripts, but not SET, FT.CREATE, FT.ALIASUPDATE nor EVALSHA
    server: RedisServer = redis_factory.redis(8, modules=True)
    admin = Client.from_url(server.url, namespace="t")
    store = admin.vectorstore("ix", HashingEmbeddings(DIMS), schema=SCHEMA, backend=backend)  # type: ignore[arg-type]
    with ThreadWorker(admin.settings):
        store.add_texts(["redis streams", "grafana dashboards"], ids=["a", "b"], wait=True)
    with server.client() as raw:
        raw.execute_command(
            "ACL", "SETUSER", "reader", "on", ">pw", "~*", "+@read", "-@write", "+ft.info", "+ft.search",
            "+vsim", "+vemb", "+evalsha_ro", "+script|load", "+script|exists", "+ping", "+hello",
            "+client|setinfo", "+info", "+command|info", "+command|docs",
        )  # fmt: skip
    reader = Client.from_url(f"redis://reader:pw@127.0.0.1:{server.port}/0", namespace="t")
    # When it opens the index and queries it, nothing is refused
    found = reader.vectorstore("ix", HashingEmbeddings(DIMS), read_your_writes=False).similarity_search(
        "redis streams", k=1
    )
    assert [d.id for d in found] == ["a"]
    # But a new index it may not create
    with pytest.raises(PermissionDenied):
        reader.vectorstore("new", HashingEmbeddings(DIMS), schema=SCHEMA).session.open(lambda: DIMS)
    reader.close()
    admin.close()


def test_vector_settings_set_the_tombstone_and_embeddings_cache_ttls(client: Client) -> None:
    with ThreadWorker(client.settings):
        store = client.vectorstore("ix", "hashing", schema=SCHEMA, backend="search")
        store.add_texts(["cached text"], ids=["a"], wait=True)
        store.delete(["a"], wait=True)
    tomb = client.keys.vector_tombstone("ix", 1, "a")
    assert 0 < client.redis.pttl(tomb) <= 30_000
    [cached] = [k for c in _scan(client, f"{client.keys.namespace}:emb:*") for k in c]
    assert 30_000 < client.redis.pttl(cached) <= 60_000


def _scan(client: Client, pattern: str) -> Iterator[list[str]]:
    from sluice.vectors.backfill import scan_keys

    return scan_keys(client.redis, False, pattern)
