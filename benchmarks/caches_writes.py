"""The cache suite's request-path write cases (see `benchmarks.history_writes`): one exact-cache
`update` against a raw XADD of the bytes it enqueues, and 64 producers updating at once (group
commit) against langchain-redis `RedisCache.update` at the same concurrency."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis as redis_py

from benchmarks import cachedata as cd
from benchmarks.cachesystems import NAMESPACE, client_for, langchain_redis_exact, missing_peer
from benchmarks.common import Report
from benchmarks.history_writes import (
    RAW_FIELD,
    RAW_STREAM,
    group,
    group_check,
    group_table,
    per_round,
    single,
    single_check,
    single_table,
    summary,
    tasks,
    threaded,
)

LABELS = {
    "sluice": "sluice `llm_cache().update` (enqueue)",
    "raw-xadd": "raw XADD of the same bytes (redis-py `xadd`)",
    "raw-xadd-held": "raw XADD, held connection (floor)",
    "sluice-threads": "sluice `update`, threads (group commit)",
    "sluice-asyncio": "sluice `aupdate`, asyncio tasks (group commit)",
    "langchain-redis": "langchain-redis `RedisCache.update`, threads",
    "raw-xadd-threads": "raw XADD (redis-py `xadd`), threads",
}


def cache_cases(url: str, opts: Any, report: Report, log: Any) -> dict[str, Any]:
    from sluice.jobs.codec import encode_new

    redis_py.Redis.from_url(url).flushall()
    llm = cd.LLM_STRING
    count = max(opts.updates, opts.producers * opts.per)
    names = cd.entities(count, seed=cd.SEED + 3)
    prompts = [cd.prompt(i, names) for i in range(count)]
    gens = [cd.generations(i) for i in range(count)]
    client = client_for(url)
    cache = client.llm_cache()

    def ours(i: int) -> None:
        cache.update(prompts[i], llm, gens[i])

    def encoded(i: int) -> bytes:
        payload = cache._payload(prompts[i], llm, gens[i])
        return encode_new(payload, namespace=NAMESPACE, notify=cache._consistency.enabled, trace=None)[1]

    log("# caches/single: exact-cache updates vs raw XADD of the same bytes ...")
    s = single("single-update", ours, encoded, url, opts.updates, opts.repeat, log)
    report.tables.append(single_table("single cache update (exact cache), no worker running", s, LABELS))
    single_check(report, "single cache update", s)

    n, per = opts.producers, opts.per
    log(f"# caches/group: {n} producers x {per} updates ...")
    pooled = redis_py.Redis.from_url(url)
    data = encoded(0)

    def item(t: int, j: int) -> int:
        return (t * per + j) % count

    systems: dict[str, Callable[[], float]] = {
        "sluice-threads": lambda: threaded(n, per, lambda t, j: ours(item(t, j))),
        "sluice-asyncio": lambda: tasks(
            n,
            per,
            lambda t, j: cache.aupdate(prompts[item(t, j)], llm, gens[item(t, j)]),
            setup=lambda: cache.aupdate(prompts[0], llm, gens[0]),  # the loop's connection, untimed
        ),
        "raw-xadd-threads": lambda: threaded(n, per, lambda t, j: pooled.xadd(RAW_STREAM, {RAW_FIELD: data})),
    }
    why = missing_peer("langchain-redis")
    if why:
        report.notes.append(why)
    else:
        peer = langchain_redis_exact(url)
        systems["langchain-redis"] = lambda: threaded(
            n, per, lambda t, j: peer.update(prompts[item(t, j)], llm, gens[item(t, j)])
        )
    rates = group(systems, opts.repeat, log)
    title = f"group commit: {n} producers at once, {per} updates each"
    report.tables.append(group_table(title, rates, LABELS, "langchain-redis"))
    group_check(report, f"cache update, {n} producers", rates, "sluice-threads", "langchain-redis")
    report.notes.append(
        "single cache update: one exact-cache `update` per call, no worker running, against redis-py's "
        "`xadd` of the very bytes sluice enqueues for it (the encoded cache-fill job); systems take turns "
        f"every 50 calls. group commit: {n} threads (or asyncio tasks) update at once, calls per second "
        "over the wall time; langchain-redis `RedisCache.update` writes the entry in the call."
    )
    client.close()
    return {"single": summary(s), "group": per_round(rates)}
