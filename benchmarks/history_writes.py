"""Request-path writes, for the history and cache suites: one write against a raw XADD of the same
bytes, and throughput with many producers at once (group commit) against a peer's direct writes.

- ``single``: one write per call, timed in the app with no worker running (the app's own cost):
  sluice's write vs ``raw XADD``, redis-py's `xadd` of the very bytes sluice enqueues for that
  write (its encoded job) to a stream of its own, through the same kind of pooled client. Also
  ``raw XADD, held connection``: the same XADD sent on one connection kept out of the pool, as
  sluice's producer sends, the floor of what any redis-py write costs here.
- ``group``: `producers` threads (and, for sluice, as many asyncio tasks) write at once, each its
  own keys, `per` calls each; throughput = calls / wall time, sluice vs the peer doing the same
  calls at the same concurrency.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import redis as redis_py

from benchmarks.common import Check, Report, fmt, markdown_table, median
from benchmarks.timing import Samples, ratio, rounds

RAW_STREAM = "bench:raw-xadd"
RAW_FIELD = b"job"


def raw_xadd(url: str) -> tuple[Callable[[bytes], Any], Callable[[bytes], Any]]:
    """(pooled XADD, XADD on a held connection) of given bytes; the floor systems of `single`."""
    pooled = redis_py.Redis.from_url(url)
    conn = redis_py.Redis.from_url(url).connection_pool.get_connection()

    def held(data: bytes) -> Any:
        conn.send_command("XADD", RAW_STREAM, "*", RAW_FIELD, data)
        return conn.read_response()

    return (lambda data: pooled.xadd(RAW_STREAM, {RAW_FIELD: data})), held


def single(
    case: str,
    ours: Callable[[int], Any],
    encoded: Callable[[int], bytes],
    url: str,
    calls: int,
    repeat: int,
    log: Any,
    label: str = "sluice",
) -> dict[str, Samples]:
    """`ours(i)` vs raw XADD of `encoded(i)` (the bytes `ours(i)` enqueues), interleaved in blocks."""
    pooled, held = raw_xadd(url)
    data = [encoded(i) for i in range(calls)]
    systems = {
        label: ours,
        "raw-xadd": lambda i: pooled(data[i]),
        "raw-xadd-held": lambda i: held(data[i]),
    }
    for i in range(min(50, calls)):  # warm every path (script load, first connections)
        for fn in systems.values():
            fn(i)
    return rounds(case, systems, range(calls), repeat, log)


def single_table(title: str, s: dict[str, Samples], labels: dict[str, str]) -> str:
    base = s.get("raw-xadd")
    rows = []
    for name, got in s.items():
        r = ratio(got.p50, base.p50) if base is not None and base.ok else float("nan")
        rows.append([labels.get(name, name), fmt(len(got.all)), f"**{fmt(got.p50, 1)}**", fmt(got.p99, 1),
                     fmt(r, 2), got.error or "ok"])  # fmt: skip
    header = ["system", "calls", "p50 µs", "p99 µs", "÷ raw XADD (p50)", "status"]
    return f"**{title}**\n\n" + markdown_table(header, rows)


def single_check(report: Report, what: str, s: dict[str, Samples], ours: str = "sluice") -> None:
    if ours in s and "raw-xadd" in s and s[ours].ok and s["raw-xadd"].ok:
        r = ratio(s[ours].p50, s["raw-xadd"].p50)
        report.checks.append(
            Check(f"{what}: sluice / raw XADD of the same bytes (p50)", r, "<= 1.3", r <= 1.3)
        )


# --- many producers at once ----------------------------------------------------------------------
def threaded(producers: int, per: int, call: Callable[[int, int], Any]) -> float:
    """Calls per second: `producers` threads, each `call(thread, j)` for j < per, started together."""
    start = threading.Barrier(producers + 1)
    errors: list[BaseException] = []

    def run(t: int) -> None:
        start.wait()
        try:
            for j in range(per):
                call(t, j)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(producers)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    took = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return producers * per / took


def tasks(producers: int, per: int, call: Callable[[int, int], Awaitable[Any]], setup: Any = None) -> float:
    """Calls per second: `producers` asyncio tasks on one loop, as `threaded`."""

    async def main() -> float:
        if setup is not None:
            await setup()

        async def run(t: int) -> None:
            for j in range(per):
                await call(t, j)

        t0 = time.perf_counter()
        await asyncio.gather(*(run(t) for t in range(producers)))
        return producers * per / (time.perf_counter() - t0)

    return asyncio.run(main())


def group(systems: dict[str, Callable[[], float]], repeat: int, log: Any) -> dict[str, list[float]]:
    """Each system's throughput per round (order rotated per round); a failing system keeps its error."""
    out: dict[str, list[float]] = {n: [] for n in systems}
    names = list(systems)
    for rnd in range(repeat):
        shift = rnd % len(names)
        for name in names[shift:] + names[:shift]:
            try:
                rate = systems[name]()
            except Exception as e:  # one failing system must not lose the others' numbers
                log(f"#   group {name}: {type(e).__name__}: {e}")
                out[name].append(float("nan"))
                continue
            out[name].append(rate)
            log(f"#   group round {rnd + 1}/{repeat} {name}: {fmt(rate)} calls/s")
    return out


def group_table(title: str, rates: dict[str, list[float]], labels: dict[str, str], peer: str) -> str:
    base = median(rates.get(peer, []))
    rows = [
        [
            labels.get(n, n),
            " / ".join(fmt(r) for r in rs),
            f"**{fmt(median(rs))}**",
            fmt(ratio(median(rs), base), 2),
        ]
        for n, rs in rates.items()
    ]
    return f"**{title}**\n\n" + markdown_table(
        ["system", "calls/s per round", "median calls/s", f"÷ {peer}"], rows
    )


def group_check(report: Report, what: str, rates: dict[str, list[float]], ours: str, peer: str) -> None:
    r = ratio(median(rates.get(ours, [])), median(rates.get(peer, [])))
    report.checks.append(Check(f"{what}: {ours} / {peer} throughput", r, ">= 3", r >= 3))


def summary(s: dict[str, Samples]) -> dict[str, Any]:
    return {k: v.as_dict() for k, v in s.items()}


def per_round(rates: dict[str, list[float]]) -> dict[str, Any]:
    return {k: {"rounds": v, "median": median(v)} for k, v in rates.items()}


# --- the history suite's cases --------------------------------------------------------------------
HISTORY_LABELS = {
    "sluice": "sluice `add_messages([one message])`",
    "raw-xadd": "raw XADD of the same bytes (redis-py `xadd`)",
    "raw-xadd-held": "raw XADD, held connection (floor)",
    "sluice-threads": "sluice, threads (group commit)",
    "sluice-asyncio": "sluice `aadd_messages`, asyncio tasks (group commit)",
    "langchain-redis": "langchain-redis `add_messages`, threads",
    "raw-xadd-threads": "raw XADD (redis-py `xadd`), threads",
}


def history_cases(url: str, opts: Any, report: Report, log: Any) -> dict[str, Any]:
    """`single` and `group` for chat history appends of one message."""
    import copy

    from benchmarks.history_systems import NAMESPACE, turn
    from sluice.facade.client import Client
    from sluice.jobs.codec import encode_new

    redis_py.Redis.from_url(url).flushall()
    client = Client.from_url(url, namespace=NAMESPACE)
    histories = [client.chat_history(f"w{i}") for i in range(opts.sessions)]
    messages = [turn(i)[0] for i in range(max(opts.single, opts.per))]

    def ours(i: int) -> None:
        histories[i % len(histories)].add_messages([messages[i]])

    def encoded(i: int) -> bytes:
        payload = histories[i % len(histories)]._payload("append", [messages[i]])
        return encode_new(payload, namespace=NAMESPACE, notify=True, trace=None)[1]

    log("# history/single: one-message appends vs raw XADD of the same bytes ...")
    s = single("single-append", ours, encoded, url, opts.single, opts.repeat, log)
    report.tables.append(single_table("single append (one message), no worker running", s, HISTORY_LABELS))
    single_check(report, "single append", s)

    n, per = opts.producers, opts.per
    log(f"# history/group: {n} producers x {per} one-message appends ...")
    mine = [client.chat_history(f"g{t}") for t in range(n)]
    pooled = redis_py.Redis.from_url(url)
    data = encoded(0)
    systems: dict[str, Callable[[], float]] = {
        "sluice-threads": lambda: threaded(n, per, lambda t, j: mine[t].add_messages([messages[j]])),
        "sluice-asyncio": lambda: tasks(
            n,
            per,
            lambda t, j: mine[t].aadd_messages([messages[j]]),
            setup=lambda: mine[0].aadd_messages([messages[0]]),  # the loop's connection, outside the timing
        ),
        "raw-xadd-threads": lambda: threaded(n, per, lambda t, j: pooled.xadd(RAW_STREAM, {RAW_FIELD: data})),
    }
    try:
        import warnings

        from langchain_redis import RedisChatMessageHistory

        warnings.filterwarnings("ignore", message=".*RedisChatMessageHistory.*")
        base = RedisChatMessageHistory("g0", redis_client=redis_py.Redis.from_url(url))
        # one instance per thread, sharing the index (constructing more fails on redis-py 8)
        theirs = [copy.copy(base) for _ in range(n)]
        for t, h in enumerate(theirs):
            h.session_id = f"g{t}"
        systems["langchain-redis"] = lambda: threaded(
            n, per, lambda t, j: theirs[t].add_messages([messages[j]])
        )
    except ImportError as e:
        report.notes.append(f"langchain-redis is not installed ({e}): pip install -e '.[bench]'")
    rates = group(systems, opts.repeat, log)
    report.tables.append(group_table(f"group commit: {n} producers at once, {per} appends each", rates,
                                     HISTORY_LABELS, "langchain-redis"))  # fmt: skip
    group_check(report, f"{n} producers", rates, "sluice-threads", "langchain-redis")
    report.notes.append(
        "single append: one `add_messages([one message])` per call, no worker running (the app's own "
        "cost), against redis-py's `xadd` of the very bytes sluice enqueues for that call; systems take "
        "turns every 50 calls. sluice's producer sends on a connection it keeps (no pool checkout, "
        "pre-packed command), which is why it can come close to a pooled XADD while it runs a script "
        "(backlog bound, dedupe record): the held-connection XADD is the floor."
    )
    report.notes.append(
        f"group commit: {n} threads (or asyncio tasks) append at once, each to its own session; calls "
        "per second over the wall time. sluice's concurrent enqueues share one script call per stream "
        "and one round trip; langchain-redis writes and indexes each message in the call."
    )
    client.close()
    return {"single": summary(s), "group": per_round(rates)}


__all__: Sequence[str] = [
    "group",
    "group_check",
    "group_table",
    "history_cases",
    "per_round",
    "raw_xadd",
    "single",
    "single_check",
    "single_table",
    "summary",
    "tasks",
    "threaded",
]  # fmt: skip
