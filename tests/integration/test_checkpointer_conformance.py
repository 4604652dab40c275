"""LangGraph's own conformance suite for checkpoint savers (`langgraph-checkpoint-conformance`),
run against `client.checkpointer()` on a real Redis with a live worker applying the writes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES, BASE_CAPABILITIES
from langgraph.checkpoint.conformance.report import CapabilityReport

from sluice.facade.client import Client
from support.settings import fast_settings
from support.workers import ThreadWorker

IMPLEMENTED = {c.value for c in BASE_CAPABILITIES} | {"copy_thread", "prune", "delete_for_runs"}


@pytest.fixture
def client(redis8: Any, namespace: str) -> Iterator[Client]:
    c = Client(fast_settings(redis8.url, namespace))
    with ThreadWorker(c.settings):
        yield c
    c.close()


def _failures(report: CapabilityReport) -> dict[str, list[str]]:
    return {name: r.failures for name, r in report.results.items() if r.failures}


async def test_the_conformance_suite_passes_every_implemented_capability(client: Client) -> None:
    # Given sluice's checkpointer, a fresh one per capability suite, with a worker applying its jobs
    @checkpointer_test(name="sluice")
    async def sluice_saver() -> AsyncIterator[Any]:
        yield client.checkpointer()

    # When LangGraph's conformance suite runs every capability
    report = await validate(sluice_saver)
    # Then every capability sluice implements is detected and passes, with no failure
    assert _failures(report) == {}
    detected = {name for name, r in report.results.items() if r.detected}
    assert detected == IMPLEMENTED
    for name in IMPLEMENTED:
        assert report.results[name].passed, name
        assert report.results[name].tests_passed > 0, name
    assert {c.value for c in ALL_CAPABILITIES} == detected
    await client.aclose()
