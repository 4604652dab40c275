"""The peer packages whose data `sluice migrate` reads, and helpers to check it read them only.

langchain-community 0.4.2's Redis vector store (and so its semantic cache) imports
``redis.commands.search.indexDefinition``, a module redis-py >= 6 renamed ``index_definition``;
`enable_community_vectors` aliases the old name so the real peer runs here, unchanged.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from sluice.facade.client import Client
from sluice_workers.cli.main import main as sluice_main
from support.settings import fast_settings
from support.workers import ThreadWorker


def enable_community_vectors() -> None:
    import redis.commands.search.index_definition as renamed

    sys.modules.setdefault("redis.commands.search.indexDefinition", renamed)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def snapshot(
    r: redis.Redis, pattern: str = "*", *, besides: str | None = None
) -> dict[bytes, tuple[bytes, bytes, bool]]:
    """Every matching key (but those starting with `besides`): its type, DUMP and whether it has a TTL."""
    out = {}
    for key in r.scan_iter(match=pattern, count=1000):
        if besides and key.startswith(besides.encode()):
            continue
        dump = r.dump(key)
        if dump is not None:
            out[key] = (r.type(key), dump, r.pttl(key) > 0)
    return out


def migrate(*args: str) -> int:
    return sluice_main(["migrate", *args])


@pytest.fixture(name="sluice")
def sluice_fixture(redis8: Any, namespace: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """A sluice client and a worker on `namespace`; the `sluice` command sees the same settings."""
    monkeypatch.setenv("SLUICE_REDIS__URL", redis8.url)
    monkeypatch.setenv("SLUICE_NAMESPACE", namespace)
    client = Client(fast_settings(redis8.url, namespace))
    with ThreadWorker(client.settings):
        yield client
    client.close()


@pytest.fixture(name="source")
def source_fixture(redis8: Any) -> Iterator[redis.Redis]:
    """A plain redis-py client, as the peers' users have (RESP2, bytes)."""
    r = redis.Redis.from_url(redis8.url, protocol=2)
    yield r
    r.close()
