"""Routing in `plan()`: every job goes to the partition of the keys it writes, and a payload
whose keys span partitions is refused before anything is written (no server needed)."""

from __future__ import annotations

import pytest

from sluice.errors import ConfigError
from sluice.jobs.models import CacheFillPayload, CacheWarmPayload, IndexDocument, IndexPayload, Payload
from sluice.keys import Keys
from sluice.models.prompts import cache_prompt
from sluice.queue.plan import plan, route, version_requests, with_versions
from sluice.settings import LimitSettings

KEYS = Keys("ns", partitions=8)


def prompts_in(partition: int, count: int, *, llm: str = "llm", cache: str = "default") -> list[str]:
    """Prompts whose cache entries lie in `partition`."""
    found: list[str] = []
    i = 0
    while len(found) < count:
        prompt = f"prompt {i}"
        if (
            route(KEYS, CacheWarmPayload(model="m", llm_string=llm, prompts=[prompt], cache=cache))
            == partition
        ):
            found.append(prompt)
        i += 1
    return found


def ids_in(partition: int, count: int, index: str = "docs") -> list[str]:
    return [f"d{i}" for i in range(2000) if KEYS.partition_of(f"index:{index}:d{i}") == partition][:count]


def test_a_warm_job_goes_to_the_partition_of_the_cache_entry_it_fills() -> None:
    # Given a warm job and a fill of the same cache entry
    [prompt] = prompts_in(5, 1)
    warm = CacheWarmPayload(model="m", llm_string="llm", prompts=[prompt])
    fill = CacheFillPayload(llm_string="llm", prompt=cache_prompt(prompt), generations=[])
    # When they are planned
    batches, _ = plan(KEYS, LimitSettings(), [warm, fill])
    # Then both are routed by that entry: the same partition, each on its own kind's stream
    assert warm.targets() == fill.targets()
    assert sorted(b.stream for b in batches) == [KEYS.stream("cache-fill", 5), KEYS.stream("cache-warm", 5)]


def test_a_warm_job_whose_prompts_span_partitions_is_refused_naming_the_fix() -> None:
    # Given a warm job with prompts of two partitions
    spanning = CacheWarmPayload(model="m", llm_string="llm", prompts=[*prompts_in(1, 1), *prompts_in(2, 1)])
    # When it is planned, then it is refused, saying how to split it
    with pytest.raises(ConfigError, match="2 of 8 partitions") as refused:
        plan(KEYS, LimitSettings(), [spanning])
    assert "one CacheWarmPayload per prompt" in str(refused.value)
    # And one whose prompts share a partition is accepted
    together = CacheWarmPayload(model="m", llm_string="llm", prompts=prompts_in(3, 3))
    [batch], count = plan(KEYS, LimitSettings(), [together])
    assert count == 1 and batch.stream == KEYS.stream("cache-warm", 3)


def test_an_index_job_whose_documents_span_partitions_is_refused() -> None:
    # Given index jobs: upserts of two partitions; an upsert and a delete of two partitions
    upserts = IndexPayload(
        index="docs", upserts=[IndexDocument(id=i, text="t") for i in ids_in(0, 1) + ids_in(4, 1)]
    )
    mixed = IndexPayload(
        index="docs", upserts=[IndexDocument(id=ids_in(6, 1)[0], text="t")], deletes=ids_in(7, 1)
    )
    # When they are planned, then each is refused, pointing at the grouping helper
    for payload in (upserts, mixed):
        with pytest.raises(ConfigError, match=r"sluice\.vectors\.ingest\.payloads"):
            plan(KEYS, LimitSettings(), [payload])
    # And documents of one partition go to that partition
    same = IndexPayload(
        index="docs", upserts=[IndexDocument(id=i, text="t") for i in ids_in(2, 3)], deletes=ids_in(2, 2)[1:]
    )
    [batch], _ = plan(KEYS, LimitSettings(), [same])
    assert batch.stream == KEYS.stream("index", 2)


def test_a_refused_payload_refuses_the_whole_call() -> None:
    # Given a good job followed by a spanning one
    good = CacheFillPayload(llm_string="llm", prompt="p", generations=[])
    bad = CacheWarmPayload(model="m", llm_string="llm", prompts=[*prompts_in(1, 1), *prompts_in(2, 1)])
    # When planned together, then nothing is planned
    with pytest.raises(ConfigError):
        plan(KEYS, LimitSettings(), [good, bad])


def test_warm_jobs_ask_for_versions_from_the_cache_fill_stream_of_their_partition() -> None:
    # Given warm jobs of two partitions, one already versioned, among other jobs
    a, b = prompts_in(1, 2)
    [c] = prompts_in(6, 1)
    payloads: list[Payload] = [
        CacheWarmPayload(model="m", llm_string="llm", prompts=[a]),
        CacheFillPayload(llm_string="llm", prompt="p", generations=[]),
        CacheWarmPayload(model="m", llm_string="llm", prompts=[c]),
        CacheWarmPayload(model="m", llm_string="llm", prompts=[b]),
        CacheWarmPayload(model="m", llm_string="llm", prompts=[b], version="5-0"),
    ]
    # When the versions they need are listed
    requests = version_requests(KEYS, LimitSettings(), payloads)
    # Then each partition asks its cache-fill stream, in enqueue order, for the unversioned only
    assert [(r.stream, r.slots) for r in requests] == [
        (KEYS.stream("cache-fill", 1), [0, 3]),
        (KEYS.stream("cache-fill", 6), [2]),
    ]
    # And the reserved versions are filled in where they were asked for
    filled = with_versions(payloads, requests, [["9-1", "9-2"], ["7-0"]])
    assert [getattr(p, "version", None) for p in filled] == ["9-1", None, "7-0", "9-2", "5-0"]


def test_a_warm_version_must_be_an_entry_id() -> None:
    with pytest.raises(ValueError, match="version"):
        CacheWarmPayload(model="m", llm_string="llm", prompts=["p"], version="12:00")
