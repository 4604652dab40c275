"""Warming against real Redis: `sluice warm` end to end with a model that fails for some prompts,
warm jobs in the worker, and the refresh-ahead beat task (called directly, no beat process)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.globals import set_llm_cache
from langchain_core.outputs import Generation

from sluice.errors import JobFailed
from sluice.facade.client import Client
from sluice.jobs.models import CacheWarmPayload
from sluice.models.fake import EchoChatModel
from sluice.models.prompts import cache_prompt
from sluice.models.registry import ModelRegistry
from sluice.ops.deadletters import DeadLetters
from sluice.settings import ComponentSpec, Settings
from sluice_workers.celery_app import TASK, RefreshSettings, make_app, refresh_ahead
from support.settings import fast_settings
from support.workers import ThreadWorker, worker_env

FAKE = ComponentSpec(
    import_path="sluice.models.fake:EchoChatModel",
    kwargs={"fail_on": ["boom"], "fail_transient_on": ["slowly"]},
)


def with_model(settings: Settings) -> Settings:
    return settings.model_copy(update={"models": {"fake": FAKE}})


@pytest.fixture
def client(redis8: Any, namespace: str) -> Iterator[Client]:
    c = Client(with_model(fast_settings(redis8.url, namespace, max_deliveries=3)))
    with ThreadWorker(c.settings):
        yield c
    set_llm_cache(None)
    c.close()


def sluice_warm(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = worker_env(settings, SLUICE_MODELS=json.dumps({"fake": FAKE.model_dump()}))
    return subprocess.run(
        [sys.executable, "-m", "sluice_workers.cli.main", "warm", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_sluice_warm_fills_the_cache_and_dead_letters_the_prompts_the_model_fails(
    client: Client, tmp_path: Path
) -> None:
    # Given prompts in every accepted form, two of which the model refuses
    lines = [
        json.dumps("hello there"),
        json.dumps({"prompt": "what is a stream?"}),
        json.dumps({"prompt": "boom goes the model"}),
        json.dumps(
            {
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "why redis"},
                ]
            }
        ),
        json.dumps({"prompt": "another boom"}),
    ]
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join(lines) + "\n")
    # When `sluice warm` runs against the worker
    out = sluice_warm(client.settings, str(prompts), "--model", "fake", "--ttl", "60", "--batch", "2")
    # Then it reports 3 applied and the 2 failures with their reasons, and exits 1
    assert out.returncode == 1, out.stdout + out.stderr
    assert "3/5 applied, 2 failed" in out.stderr
    assert "3 of 5 prompts warmed" in out.stdout
    failed = [line for line in out.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 2 and all("boom" in f and "EchoModelError" in f for f in failed)
    # And the failures are in the dead-letter stream with the reason
    dead = DeadLetters(client.redis, client.keys).recent(10, kind="cache-warm")
    assert len(dead) == 2 and all("permanent" in d.error and "fail_on" in d.error for d in dead)
    # And the app's model is answered from the cache for the others, without being called
    set_llm_cache(client.llm_cache())
    model = EchoChatModel()
    answers = [model.invoke("hello there"), model.invoke("what is a stream?")]
    answers.append(model.invoke([("system", "be brief"), ("user", "why redis")]))
    assert model.calls == 0
    assert [str(a.content).split(" #")[0] for a in answers] == [
        "echo: hello there",
        "echo: what is a stream?",
        "echo: why redis",
    ]
    model.invoke("boom goes the model")
    assert model.calls == 1


def test_a_job_with_several_prompts_fills_the_good_ones_and_reports_the_bad(client: Client) -> None:
    # Given one warm job with a prompt the model refuses between two good ones (all three entries
    # lie in one partition, as a job's prompts must: plan() refuses others)
    llm_string = ModelRegistry(client.settings.models).llm_string("fake")
    job = CacheWarmPayload(model="fake", llm_string=llm_string, prompts=["first", "boom", "second"], ttl=60)
    # When the worker runs it
    [handle] = client.enqueue([job], notify=True)
    with pytest.raises(JobFailed) as failed:
        client.wait([handle], 20)
    # Then the reason names the failed prompt, and the good prompts are cached
    assert "1 of 3 prompts" in failed.value.reason and "boom" in failed.value.reason
    cache = client.llm_cache()
    assert cache.lookup(cache_prompt("first"), llm_string) is not None
    assert cache.lookup(cache_prompt("second"), llm_string) is not None
    assert cache.lookup(cache_prompt("boom"), llm_string) is None


def test_transient_model_failures_are_retried_before_dead_lettering(client: Client) -> None:
    llm_string = ModelRegistry(client.settings.models).llm_string("fake")
    [handle] = client.enqueue(
        [CacheWarmPayload(model="fake", llm_string=llm_string, prompts=["answer slowly"])], notify=True
    )
    with pytest.raises(JobFailed) as failed:
        client.wait([handle], 30)
    assert "gave up after 3 deliveries" in failed.value.reason and "TimeoutError" in failed.value.reason


def test_a_warm_job_for_another_configuration_is_refused(client: Client) -> None:
    # Given a job whose llm_string is not the one the named model caches under
    job = CacheWarmPayload(model="fake", llm_string="some other model", prompts=["hello"])
    # When the worker runs it, then it is dead-lettered and nothing is cached under that llm_string
    [handle] = client.enqueue([job], notify=True)
    with pytest.raises(JobFailed, match="another llm_string"):
        client.wait([handle], 20)
    assert client.llm_cache().lookup(cache_prompt("hello"), "some other model") is None


def test_refresh_ahead_enqueues_only_hot_entries_near_expiry(client: Client) -> None:
    # Given entries: hot and expiring soon, hot but fresh, cold and expiring soon, hot of an
    # unknown model, and hot but deleted
    registry = ModelRegistry(client.settings.models)
    llm = registry.llm_string("fake")
    soon, fresh = client.llm_cache(ttl=5, write="direct"), client.llm_cache(ttl=3600, write="direct")
    entries = {
        "hot-soon": (soon, llm, 5), "hot-fresh": (fresh, llm, 5), "cold-soon": (soon, llm, 0),
        "hot-unknown": (soon, "an unconfigured model", 5), "hot-gone": (soon, llm, 5),
    }  # fmt: skip
    for name, (cache, llm_string, hits) in entries.items():
        cache.update(cache_prompt(name), llm_string, [Generation(text="old")])
        for _ in range(hits):
            cache.lookup(cache_prompt(name), llm_string)
        cache.flush_hits()
    client.redis.delete(client.keys.cache_entry("default", llm, cache_prompt("hot-gone")))
    refresh = RefreshSettings(window=30, top=10, caches=["default"])
    # When the task runs twice
    report = refresh_ahead(client.redis, client.keys, client.producer, registry, "default", refresh)
    again = refresh_ahead(client.redis, client.keys, client.producer, registry, "default", refresh)
    # Then only the hot entry near expiry was enqueued, once
    member = client.keys.cache_entry("default", llm, cache_prompt("hot-soon")).rsplit(":", 2)
    assert report.enqueued == [f"{member[1]}:{member[2]}"]
    assert report.unknown_model == 1 and report.forgotten == 1
    assert again.enqueued == [] and again.already_claimed == 1
    # And the worker re-computes it with the model, with a fresh TTL
    deadline = time.monotonic() + 20
    while (
        soon.lookup(cache_prompt("hot-soon"), llm) == [Generation(text="old")] and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    refreshed = soon.lookup(cache_prompt("hot-soon"), llm)
    assert refreshed is not None and refreshed[0].text.startswith("echo: hot-soon #")
    assert soon.lookup(cache_prompt("cold-soon"), llm) == [Generation(text="old")]


def test_the_celery_task_runs_refresh_ahead_for_each_cache(client: Client) -> None:
    # Given a hot entry near expiry and the Celery app built from the same settings
    llm = ModelRegistry(client.settings.models).llm_string("fake")
    cache = client.llm_cache(ttl=5, write="direct")
    cache.update(cache_prompt("celery"), llm, [Generation(text="old")])
    cache.lookup(cache_prompt("celery"), llm)
    cache.flush_hits()
    app = make_app(client.settings, RefreshSettings(window=30, caches=["default", "semantic"], interval=15))
    # When the beat's task is called directly
    reports = app.tasks[TASK]()
    # Then it enqueued the refresh, and the schedule runs it every interval
    assert [len(r["enqueued"]) for r in reports] == [1, 0]
    assert app.conf.beat_schedule["sluice-refresh-ahead"]["schedule"] == 15
