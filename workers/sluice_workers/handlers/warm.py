"""cache-warm: ask a model named in settings, then store its answers as cache fills.

Each prompt is answered on its own (one failing prompt does not lose the others). The answers
that came back are written, versioned by the job's `version`: an entry id reserved at enqueue in
the cache-fill stream of the prompts' partition, so a warm job and a fill of one key are ordered
by enqueue time (the warm job's own entry id belongs to another stream and is never compared). A
job without one (enqueued by an older sluice) is versioned when its answers are written. They
are written even when other prompts of the same
job failed; the job then fails with a reason naming the failed prompts: retried if every failure
looks transient (timeouts, rate limits, 5xx), dead-lettered otherwise. The CLI and the beat task
enqueue one prompt per job, so one failing prompt is exactly one dead letter, and retrying it
(`sluice dlq retry`) asks the model again for that prompt only.

The job's llm_string must be the one the named model caches under: answers of one configuration
are never stored under another's key.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.outputs import ChatGeneration, Generation

from sluice.errors import ConfigError, PermanentJobError, RedisUnavailable, RetryableJobError
from sluice.jobs.codec import Job
from sluice.jobs.models import CacheWarmPayload
from sluice.models.prompts import cache_prompt, messages_of, text_of
from sluice.models.registry import ModelRegistry
from sluice.settings import Settings
from sluice.stores import generations as codec
from sluice.stores.cache_versions import CacheWrite
from sluice.types import EntryId
from sluice.vectors.budget import Pacer
from sluice_workers.handlers.base import Failures
from sluice_workers.handlers.cache import CacheFiller, build_filler

log = logging.getLogger(__name__)

_TRANSIENT_WORDS = (
    "timeout",
    "ratelimit",
    "rate_limit",
    "connection",
    "unavailable",
    "overloaded",
    "internalserver",
)


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: timeouts, connection trouble, rate limits and server errors (by type or status)."""
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and (status in (408, 409, 429) or status >= 500):
        return True
    names = [c.__name__.lower() for c in type(exc).__mro__]
    return any(word in name for name in names for word in _TRANSIENT_WORDS)


def answer(model: BaseChatModel, prompt: str) -> tuple[str, list[Generation]]:
    """The cache prompt and the model's generations for one prompt (text or a chat cache prompt)."""
    messages = messages_of(prompt)
    result = model.generate([messages])
    generations: list[Generation] = list(result.generations[0])
    if not all(isinstance(g, ChatGeneration) for g in generations):
        raise TypeError(f"{type(model).__name__} returned generations that are not ChatGenerations")
    return cache_prompt(messages), generations


def _failure(model: str, failed: list[tuple[str, BaseException]], total: int) -> Exception:
    shown = "; ".join(f"{text_of(p)[:60]!r}: {type(e).__name__}: {str(e)[:200]}" for p, e in failed[:3])
    more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
    message = f"model {model!r} failed for {len(failed)} of {total} prompts: {shown}{more}"
    if all(is_transient(e) for _, e in failed):
        return RetryableJobError(message)
    return PermanentJobError(message)


class CacheWarmHandler:
    kind = "cache-warm"

    def __init__(self, filler: CacheFiller, models: ModelRegistry) -> None:
        self._filler = filler
        self._models = models

    @classmethod
    def build(
        cls, redis: Any, settings: Settings, *, cluster: bool, pacer: Pacer | None = None
    ) -> CacheWarmHandler:
        filler = build_filler(redis, settings, cluster=cluster, pacer=pacer)
        return cls(filler, ModelRegistry(settings.models))

    def handle(self, jobs: Sequence[Job]) -> Failures:
        failures: dict[EntryId, BaseException] = {}
        writes: list[tuple[EntryId, CacheWrite]] = []
        for job in jobs:
            p = job.envelope.payload
            assert isinstance(p, CacheWarmPayload)  # routed by kind
            try:
                model = self._check_model(p)
            except PermanentJobError as e:
                failures[job.entry_id] = e
                continue
            failed: list[tuple[str, BaseException]] = []
            for prompt in p.prompts:
                try:
                    key_prompt, generations = answer(model, prompt)
                except Exception as e:
                    failed.append((prompt, e))
                    continue
                encoded = codec.encode(generations)
                write = CacheWrite(p.cache, p.llm_string, key_prompt, encoded, p.ttl, p.version, p.embedder)
                writes.append((job.entry_id, write))
            if failed:
                failures[job.entry_id] = _failure(p.model, failed, len(p.prompts))
        self._store(writes, failures)
        return failures

    def _store(
        self, writes: list[tuple[EntryId, CacheWrite]], failures: dict[EntryId, BaseException]
    ) -> None:
        """Write the answers; if the batch write fails, find the jobs at fault without asking the model again."""
        try:
            self._filler.apply([w for _, w in writes])
            return
        except RedisUnavailable:
            raise
        except Exception:
            log.warning("cache-warm: writing the batch failed; writing job by job", exc_info=True)
        by_job: dict[EntryId, list[CacheWrite]] = defaultdict(list)
        for entry_id, w in writes:
            by_job[entry_id].append(w)
        for entry_id, job_writes in by_job.items():
            try:
                self._filler.apply(job_writes)
            except RedisUnavailable:
                raise
            except Exception as e:
                failures.setdefault(entry_id, e)

    def _check_model(self, p: CacheWarmPayload) -> BaseChatModel:
        try:
            model = self._models.get(p.model)
            expected = self._models.llm_string(p.model)
        except ConfigError as e:
            raise PermanentJobError(str(e)) from None
        if expected != p.llm_string:
            raise PermanentJobError(
                f"model {p.model!r} caches under another llm_string than this job's; its answers would be "
                "stored for a configuration that did not produce them (check the model's kwargs in settings)"
            )
        return model
