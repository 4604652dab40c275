"""Small pieces of the caches that need no server: key patterns, failure sorting, thresholds."""

from __future__ import annotations

import pytest

from sluice.errors import ConfigError
from sluice.keys import Keys, digest
from sluice.stores.exact_cache import check_name
from sluice.stores.semantic_cache import (
    Labelled,
    SemanticHit,
    ThresholdStats,
    best_threshold,
    threshold_stats,
)
from sluice_workers.celery_app import broker_url
from sluice_workers.handlers.warm import is_transient
from support.settings import fast_settings


def test_clear_patterns_cover_one_cache_or_one_model_only() -> None:
    keys = Keys("ns")
    entry = keys.cache_entry("c", "llm", "prompt")
    assert entry == f"ns:cache:c:{digest('llm')}:{digest('prompt')}"
    assert keys.cache_match("c") == "ns:cache:c:*"
    assert keys.cache_match("c", "llm") == f"ns:cache:c:{digest('llm')}:*"
    assert not keys.cache_hits("c").startswith("ns:cache:c:")  # meta keys survive a SCAN-based clear


@pytest.mark.parametrize("name", ["", "a:b", "a*", "with space", "x" * 65, "[x]"])
def test_cache_names_that_would_break_keys_or_patterns_are_refused(name: str) -> None:
    with pytest.raises(ConfigError):
        check_name(name)


class RateLimitError(Exception):
    pass


class ApiError(Exception):
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (TimeoutError("t"), True),
        (ConnectionError("c"), True),
        (RateLimitError("slow down"), True),
        (ApiError(503), True),
        (ApiError(429), True),
        (ApiError(400), False),
        (ValueError("bad prompt"), False),
    ],
)
def test_model_failures_are_sorted_into_retry_or_dead_letter(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient


def test_threshold_stats_count_right_and_wrong_answers() -> None:
    sample = [Labelled("q1", "m", "p1"), Labelled("q2", "m", "p2"), Labelled("q3", "m", None)]
    nearest = [SemanticHit([], 0.1, "p1"), SemanticHit([], 0.3, "p9"), SemanticHit([], 0.5, "p1")]
    low, mid, high = (threshold_stats(t, sample, nearest) for t in (0.05, 0.2, 0.6))
    assert (low.hits, low.false_hits, low.misses) == (0, 0, 3)
    assert (mid.hits, mid.false_hits, mid.misses) == (1, 0, 2)
    assert (high.hits, high.false_hits, high.misses) == (1, 2, 0)
    assert mid.hit_rate == 0.5 and high.false_hit_rate == pytest.approx(2 / 3)
    assert best_threshold([low, mid, high]) == mid
    assert best_threshold([ThresholdStats(0.1, 0, 1, 0, 0.0, 1.0)]) is None


def test_the_celery_broker_is_the_sluice_redis_unless_it_cannot_be() -> None:
    assert broker_url(fast_settings("redis://127.0.0.1:7000/2", "n")) == "redis://127.0.0.1:7000/2"
    assert broker_url(fast_settings("redis://h:1", "n"), "redis://other:2") == "redis://other:2"
    with pytest.raises(ConfigError, match="Cluster"):
        broker_url(fast_settings("redis+cluster://h1:7000,h2:7001", "n"))


def test_models_come_from_settings_with_their_rate_limit_and_keep_their_llm_string() -> None:
    from sluice.models.fake import EchoChatModel
    from sluice.models.registry import ModelRegistry, llm_string_of
    from sluice.settings import ComponentSpec

    registry = ModelRegistry(
        {
            "fake": ComponentSpec(
                import_path="sluice.models.fake:EchoChatModel", kwargs={"prefix": "p"}, rate_limit=5
            )
        }
    )
    model = registry.get("fake")
    assert isinstance(model, EchoChatModel) and model.rate_limiter is not None and model.cache is False
    assert registry.llm_string("fake") == llm_string_of(EchoChatModel(prefix="p"))
    assert registry.name_for(llm_string_of(EchoChatModel(prefix="p"))) == "fake"
    assert registry.name_for(llm_string_of(EchoChatModel(prefix="other"))) is None
    with pytest.raises(ConfigError, match="no model named 'gpt'"):
        registry.get("gpt")
