"""The semantic suite: how often each semantic cache serves the right answer, and how often a wrong one.

`python -m benchmarks.run --only semantic`. The labelled set (`benchmarks/data/semantic_pairs.txt`,
written by us) stores 121 prompts, each with its own answer, in four caches: sluice's
`semantic_cache` with its built-in verifier and without it (filled through `update`, applied by a
worker process), redisvl's `SemanticCache` and langchain-redis's `RedisSemanticCache` (their own
`store` / `update`). Same embedder for all (MiniLM int8, `sluice[embed]`; the hashing embedder
with a note when it is missing), same stored prompts, one model. Then every query is asked once
per system with no distance limit and the answer it would serve at each threshold is read from
that (the nearest accepted entry, and its distance): for redisvl and langchain-redis the nearest
entry of their own `check`, for sluice `lookup_with_score(..., explain=True)`. Spot checks run
each system's real lookup at fixed thresholds and must agree.

Hit rate = right answers / queries that should hit; false-hit rate = wrong answers / all queries.
"""

from __future__ import annotations

import math
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import redis as redis_py
from langchain_core.outputs import Generation

from benchmarks import cachedata as cd
from benchmarks.cachesystems import (
    RedisvlCache,
    Workers,
    client_for,
    langchain_redis_semantic,
    missing_peer,
    wait_for_workers,
)
from benchmarks.common import Check, Report, markdown_table
from benchmarks.semanticdata import LabelledSet, load

NAMESPACE = "bench-semantic"
LLM = cd.LLM_STRING
VERIFIED, PLAIN, RVL, LCR = "sluice-verify", "sluice", "redisvl", "langchain-redis"
LABELS = {
    VERIFIED: "sluice `semantic_cache()` + built-in verifier (default)",
    PLAIN: "sluice `semantic_cache(verify=False)`",
    RVL: "redisvl `SemanticCache`",
    LCR: "langchain-redis `RedisSemanticCache`",
}
DEFAULTS = {RVL: 0.1, LCR: 0.2, VERIFIED: 0.2, PLAIN: 0.2}  # each system's default distance_threshold
SPOT = (0.1, 0.2, 0.3)
_ENTRY = re.compile(r"\[entry (\d+)\]")


@dataclass
class Options:
    thresholds: tuple[float, ...] = tuple(round(0.02 * i, 2) for i in range(1, 41))
    topics: int | None = None  # only the first N topics (quick)
    split: str | None = None  # "dev" or "held-out": half of the topics (see semanticdata.half)
    template: float | None = None  # the verifier's KeyTerms(template=...); None: its default
    workers: int = 1
    systems: tuple[str, ...] = (VERIFIED, PLAIN, RVL, LCR)
    budgets: tuple[float, ...] = (0.0, 0.01, 0.02)  # false-hit budgets for best_threshold
    min_peer_false_hits: float = 0.01  # compare only at peer thresholds with at least this rate
    n: int = 0  # (runner flags that do not apply here)
    repeat: int = 1
    latency_seconds: float = 0.0

    @classmethod
    def quick(cls) -> Options:
        return cls(thresholds=tuple(round(0.05 * i, 2) for i in range(1, 13)), topics=6)


@dataclass(frozen=True, slots=True)
class Served:
    """What one system would serve one query at a high enough threshold: a stored prompt and its distance."""

    prompt: str | None
    distance: float
    refused: str = ""  # sluice with the verifier: why the nearest candidate was refused, if it was


def answer(i: int) -> list[Generation]:
    return [Generation(text=f"[entry {i}] the answer to stored prompt {i}")]


def _embedder(report: Report) -> tuple[Any, str]:
    from sluice.embeddings import minilm

    if minilm.available():
        return minilm.MiniLMEmbeddings(), "MiniLM (all-MiniLM-L6-v2 int8 ONNX)"
    from sluice.embeddings.hashing import HashingEmbeddings

    report.notes.append(f"MiniLM is not installed ({minilm.INSTALL}): the LEXICAL hashing embedder was used")
    return HashingEmbeddings(), "hashing (lexical)"


def _stats(
    data: LabelledSet, served: dict[str, Served], thresholds: Sequence[float]
) -> list[dict[str, float]]:
    from sluice.facade.semantic_cache import Labelled, SemanticHit, threshold_stats

    queries = [p.query for p in data.pairs]
    sample = [Labelled(q, LLM, data.expected(q)) for q in queries]
    nearest = [
        SemanticHit([], s.distance, s.prompt) if s.prompt is not None else None
        for s in (served[q] for q in queries)
    ]
    return [asdict(threshold_stats(t, sample, nearest)) for t in thresholds]


def _sluice(client: Any, memo: Any, data: LabelledSet, opts: Options, log: Any) -> dict[str, Any]:
    from sluice.facade.semantic_cache import MAX_DISTANCE, KeyTerms

    verify = KeyTerms(opts.template) if opts.template is not None else True
    caches = {
        VERIFIED: client.semantic_cache(memo, name="labelled", verify=verify),
        PLAIN: client.semantic_cache(memo, name="labelled", verify=False),
    }
    t0 = time.monotonic()
    for i, prompt in enumerate(data.stored):
        caches[VERIFIED].update(prompt, LLM, answer(i))
    caches[VERIFIED].flush()
    log(f"#   semantic: sluice filled {len(data.stored)} entries in {time.monotonic() - t0:.1f} s (1 worker)")
    out: dict[str, Any] = {}
    for name, cache in caches.items():
        served: dict[str, Served] = {}
        for p in data.pairs:
            lookup = cache.lookup_with_score(p.query, LLM, threshold=MAX_DISTANCE, explain=True)
            refused = next((c.reason for c in lookup.considered if c.outcome == "refused"), "")
            hit = lookup.hit
            served[p.query] = Served(hit.prompt if hit else None, hit.distance if hit else math.nan, refused)
        out[name] = (served, cache)
    return out


def _spot_sluice(cache: Any, data: LabelledSet, t: float) -> Counter[str]:
    counts: Counter[str] = Counter()
    for p in data.pairs:
        hit = cache.lookup_with_score(p.query, LLM, threshold=t)
        counts[_outcome(data, p.query, hit.prompt if hit else None)] += 1
    return counts


def _outcome(data: LabelledSet, query: str, prompt: str | None) -> str:
    if prompt is None:
        return "miss"
    return "hit" if prompt == data.expected(query) else "false hit"


def _peers(url: str, memo: Any, data: LabelledSet, report: Report, opts: Options) -> dict[str, Any]:
    from redisvl.query.filter import Tag  # type: ignore[import-untyped]

    from sluice.keys import digest

    out: dict[str, Any] = {}
    if RVL in opts.systems and not _skipped(RVL, report):
        rvl = RedisvlCache.build(url, memo, DEFAULTS[RVL])
        for i, prompt in enumerate(data.stored):
            rvl.update(prompt, LLM, answer(i))

        def rvl_check(q: str, t: float) -> tuple[str | None, float]:
            hits = rvl.cache.check(
                vector=memo.embed_query(q), num_results=1, distance_threshold=t,
                filter_expression=Tag("llm") == digest(LLM),
            )  # fmt: skip
            return (hits[0]["prompt"], float(hits[0]["vector_distance"])) if hits else (None, math.nan)

        out[RVL] = rvl_check, lambda q, t: rvl_check(q, t)[0]
    if LCR in opts.systems and not _skipped("langchain-redis-semantic", report):
        lcr = langchain_redis_semantic(url, memo, DEFAULTS[LCR])
        for i, prompt in enumerate(data.stored):
            lcr.update(prompt, LLM, answer(i))

        def lcr_check(q: str, t: float) -> tuple[str | None, float]:  # what its lookup() asks redisvl
            hits = lcr.cache.check(vector=lcr.cache._vectorize_prompt(q), distance_threshold=t)
            return (hits[0]["prompt"], float(hits[0]["vector_distance"])) if hits else (None, math.nan)

        def lcr_lookup(q: str, t: float) -> str | None:  # its real lookup at threshold t
            lcr.cache.set_threshold(t)
            found = lcr.lookup(q, LLM)
            m = _ENTRY.search(found[0].text) if found else None
            return data.stored[int(m.group(1))] if m else None

        out[LCR] = lcr_check, lcr_lookup
    return out


def _skipped(name: str, report: Report) -> bool:
    why = missing_peer(name)
    if why:
        report.notes.append(why)
    return why is not None


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(url: str, opts: Options, log: Callable[[str], None] = _log) -> Report:
    report = Report("semantic")
    data = load()
    if opts.split:
        data = data.half(opts.split)
    if opts.topics:
        data = data.only(opts.topics)
    redis_py.Redis.from_url(url).flushall()
    inner, embedder = _embedder(report)
    memo = cd.MemoEmbeddings(inner)
    t0 = time.monotonic()
    memo.prepare(data.stored + [p.query for p in data.pairs], lists=True)
    log(f"#   semantic: {data.summary()}; embedded with {embedder} in {time.monotonic() - t0:.1f} s")
    client = client_for(url, NAMESPACE)
    served: dict[str, dict[str, Served]] = {}
    spots: dict[str, dict[str, Any]] = {}
    with Workers(url, NAMESPACE, ["cache-fill"], opts.workers):
        wait_for_workers(client, opts.workers)
        for name, (by_query, cache) in _sluice(client, memo, data, opts, log).items():
            if name in opts.systems:
                served[name] = by_query
                spots[name] = {str(t): dict(_spot_sluice(cache, data, t)) for t in SPOT}
    client.close()
    for name, (check, lookup) in _peers(url, memo, data, report, opts).items():
        served[name] = {
            p.query: Served(*check(p.query, 2.0)) for p in data.pairs
        }  # their nearest entry and its distance
        spots[name] = {
            str(t): dict(Counter(_outcome(data, p.query, lookup(p.query, t)) for p in data.pairs))
            for t in SPOT
        }
    curves = {name: _stats(data, s, opts.thresholds) for name, s in served.items()}
    _consistent(report, curves, spots, data, opts)
    data_out = _tables(report, curves, served, data, opts, embedder)
    report.data = {"embedder": embedder, "set": data.summary(), "curves": curves, "spots": spots, **data_out}
    return report


def _consistent(
    report: Report, curves: dict[str, Any], spots: dict[str, Any], data: LabelledSet, opts: Options
) -> None:
    """The curve read from one unlimited lookup must match each system's real lookups at SPOT."""
    bad = []
    for name, by_t in spots.items():
        for t, counts in by_t.items():
            row = next((r for r in curves[name] if math.isclose(r["threshold"], float(t))), None)
            if row is None:
                continue
            if (row["hits"], row["false_hits"]) != (counts.get("hit", 0), counts.get("false hit", 0)):
                bad.append(f"{name} at {t}: curve {row['hits']}/{row['false_hits']}, lookups {counts}")
    report.checks.append(
        Check(
            "curves agree with each system's own lookups at 0.1/0.2/0.3 (mismatches)", len(bad), "0", not bad
        )
    )
    report.notes += bad


def _tables(
    report: Report,
    curves: dict[str, list[dict[str, float]]],
    served: dict[str, dict[str, Served]],
    data: LabelledSet,
    opts: Options,
    embedder: str,
) -> dict[str, Any]:
    from sluice.facade.semantic_cache import ThresholdStats, best_threshold

    names = [n for n in (VERIFIED, PLAIN, RVL, LCR) if n in curves]
    # 1. the curve, every other threshold
    shown = [t for i, t in enumerate(opts.thresholds) if i % 2 == 1 or len(opts.thresholds) <= 12]
    rows = []
    for t in shown:
        cells = [f"{t:.2f}"]
        for n in names:
            r = next(r for r in curves[n] if math.isclose(r["threshold"], t))
            cells.append(f"{r['hit_rate']:.1%} / {r['false_hit_rate']:.1%}")
        rows.append(cells)
    report.tables.append(
        f"**hit rate / false-hit rate by cosine-distance threshold ({data.summary()}; {embedder})**\n\n"
        + markdown_table(["threshold", *[LABELS[n] for n in names]], rows)
    )
    # 2. best_threshold per false-hit budget
    best: dict[str, dict[str, Any]] = {}
    rows = []
    for n in names:
        stats = [ThresholdStats(**r) for r in curves[n]]
        cells = [LABELS[n]]
        for budget in opts.budgets:
            b = best_threshold(stats, budget)
            best.setdefault(n, {})[str(budget)] = asdict(b) if b else None
            cells.append(f"{b.threshold:.2f}: {b.hit_rate:.1%} ({b.false_hit_rate:.1%})" if b else "—")
        rows.append(cells)
    report.tables.append(
        "**best_threshold (highest hit rate within a false-hit budget): threshold: hit rate (false-hit rate)**"
        "\n\n" + markdown_table(["system", *[f"false hits ≤ {b:.0%}" for b in opts.budgets]], rows)
    )
    # 3. the target: at every peer operating point, sluice + verifier at an equal or higher hit rate
    compared = _compare(report, curves, opts)
    # 4. why the verifier refused: near-misses stopped vs paraphrases lost (nearest candidate, any threshold)
    reasons = _reasons(served.get(VERIFIED, {}), served.get(PLAIN, {}), data)
    if reasons:
        rows = [[kind, str(stopped), str(lost)] for kind, (stopped, lost) in sorted(reasons.items())]
        report.tables.append(
            "**verifier refusals by check (the nearest entry, no threshold): near-misses stopped / "
            "paraphrases lost**\n\n"
            + markdown_table(["check", "near-misses stopped", "paraphrases lost"], rows)
        )
    report.notes.append(
        "Every system stores the same prompts and is asked the same queries, embedded once by the same "
        "MiniLM instance. sluice: RediSearch HNSW, filled through `update` (the fill jobs carry the app's "
        "vectors; one worker process applies them); redisvl and langchain-redis: their defaults (FLAT). "
        f"Defaults: redisvl distance_threshold {DEFAULTS[RVL]}, langchain-redis {DEFAULTS[LCR]}, sluice "
        f"{DEFAULTS[VERIFIED]}. The verifier was written before this labelled set; see the README for "
        "what was changed after measuring."
    )
    return {
        "best_threshold": best,
        "compared": compared,
        "refusals": {k: list(v) for k, v in reasons.items()},
    }


def _match(ours: list[dict[str, float]], point: dict[str, float]) -> dict[str, float] | None:
    """sluice + verifier's lowest false-hit rate at a hit rate equal to or above `point`'s."""
    better = [o for o in ours if o["hit_rate"] >= point["hit_rate"]]
    return min(better, key=lambda o: (o["false_hit_rate"], -o["hit_rate"])) if better else None


def _compare(
    report: Report, curves: dict[str, list[dict[str, float]]], opts: Options
) -> list[dict[str, Any]]:
    ours = curves.get(VERIFIED)
    out: list[dict[str, Any]] = []
    if not ours:
        return out
    rows = []
    top = max(o["hit_rate"] for o in ours)
    for peer in (RVL, LCR, PLAIN):
        worst, beyond = 0.0, []
        for r in curves.get(peer, []):
            if r["false_hit_rate"] < opts.min_peer_false_hits:
                continue
            match = _match(ours, r)
            ratio = match["false_hit_rate"] / r["false_hit_rate"] if match else math.inf
            out.append({"peer": peer, "peer_point": r, "sluice_point": match, "ratio": ratio})
            if match is None:
                beyond.append(r)
            else:
                worst = max(worst, ratio)
            if peer != PLAIN and (
                math.isclose(r["threshold"], DEFAULTS[peer]) or r["threshold"] in (0.3, 0.4)
            ):
                rows.append([
                    LABELS[peer], f"{r['threshold']:.2f}", f"{r['hit_rate']:.1%}", f"{r['false_hit_rate']:.1%}",
                    f"{match['threshold']:.2f}" if match else "—",
                    f"{match['hit_rate']:.1%}" if match else "—",
                    f"{match['false_hit_rate']:.1%}" if match else "—",
                    f"{ratio:.2f}" if match else f"not reached (sluice + verifier tops out at {top:.1%})",
                ])  # fmt: skip
        points = [r for r in curves.get(peer, []) if math.isclose(r["threshold"], DEFAULTS[peer])]
        if points and peer != PLAIN:
            match = _match(ours, points[0])
            ratio = match["false_hit_rate"] / points[0]["false_hit_rate"] if match else math.inf
            report.checks.append(
                Check(f"at {peer}'s default threshold {DEFAULTS[peer]}: sluice + verifier false-hit rate / "
                      f"{peer}'s, at an equal or higher hit rate", ratio, "<= 0.5", ratio <= 0.5)
            )  # fmt: skip
        if curves.get(peer):
            report.checks.append(
                Check(
                    f"worst over every {peer} threshold (≥ {opts.min_peer_false_hits:.0%} false hits) whose hit "
                    f"rate sluice + verifier reaches: false-hit ratio", worst, "<= 0.5", worst <= 0.5,
                )
            )  # fmt: skip
        if beyond:
            report.notes.append(
                f"{len(beyond)} {peer} thresholds ({beyond[0]['threshold']:.2f}-{beyond[-1]['threshold']:.2f}) "
                f"reach hit rates above sluice + verifier's highest ({top:.1%}): "
                f"{beyond[0]['hit_rate']:.1%}-{beyond[-1]['hit_rate']:.1%}, at false-hit rates of "
                f"{beyond[0]['false_hit_rate']:.1%}-{beyond[-1]['false_hit_rate']:.1%}"
            )
    report.tables.append(
        "**sluice + verifier against the peers at the same or a higher hit rate (peer default, 0.3, 0.4)**\n\n"
        + markdown_table(
            [
                "peer",
                "peer threshold",
                "peer hit",
                "peer false hits",
                "sluice threshold",
                "sluice hit",
                "sluice false hits",
                "false-hit ratio",
            ],
            rows,
        )
    )
    return out


def _reasons(
    verified: dict[str, Served], plain: dict[str, Served], data: LabelledSet
) -> dict[str, list[int]]:
    """Per check: near-miss queries whose nearest entry it refused, paraphrases whose right entry it refused."""
    out: dict[str, list[int]] = {}
    for p in data.pairs:
        v, n = verified.get(p.query), plain.get(p.query)
        if v is None or n is None or not v.refused or v.prompt == n.prompt:
            continue  # the verifier did not change what the nearest entry was
        kind = v.refused.split(" (")[0]
        counts = out.setdefault(kind, [0, 0])
        if p.same and n.prompt == data.expected(p.query):
            counts[1] += 1
        elif not p.same or n.prompt != data.expected(p.query):
            counts[0] += 1
    return out
