"""The semantic cache's built-in verifier: near-misses refused with a reason, rewordings accepted."""

from __future__ import annotations

import pytest

from sluice.stores.semantic_cache import Candidate, decide, screen
from sluice.stores.verify import KeyTerms, Verdict, judge

REFUSED = [  # (query, cached, a fragment of the reason)
    (
        "How do I cancel my order?",
        "How do I cancel my subscription?",
        "key words differ (order / subscription)",
    ),
    ("Flights to Paris in May", "Flights to Paris in June", "dates differ (may / june)"),
    ("Is ibuprofen safe during pregnancy?", "Is ibuprofen not safe during pregnancy?", "only one is negated"),
    (
        "What's the capital of France?",
        "what is the capital of Spain",
        "named entities differ (france / spain)",
    ),
    ("How long to boil an egg?", "How long to boil a duck egg?", "a detail in one only (duck)"),
    ("Flights from Lisbon", "Flights from Lisbon to Rome", "named entity in one only (rome)"),
    ("Convert 5 miles to kilometers", "Convert 5 kilometers to miles", "the same words in another order"),
    ("Convert 5 km to miles", "convert 10 km to miles", "numbers differ (5 / 10)"),
    ("When was the Eiffel Tower built?", "Why was the Eiffel Tower built?", "another question (when / why)"),
    ("How do I install numpy", "How do I uninstall numpy", "opposites (install / uninstall)"),
    ("how to turn on bluetooth", "how to turn off bluetooth", "opposites (on / off)"),
    ("Is it safe to eat raw chicken", "is it unsafe to eat raw chicken", "opposites (safe / unsafe)"),
    ("What's the weather in Tokyo tomorrow?", "What's the weather in Tokyo today?", "dates differ"),
    ("can dogs eat grapes", "can cats eat grapes", "key words differ (dogs / cats)"),
    ("Coffee with milk, how many calories?", "Coffee without milk, how many calories?", "negated"),
]
ACCEPTED = [
    ("How do I reset my password?", "I forgot my password, how can I reset it?"),
    ("What is the boiling point of water?", "At what temperature does water boil?"),
    ("How tall is the Eiffel Tower?", "What is the height of the Eiffel Tower?"),
    ("Convert 5 km to miles", "convert five km to miles"),
    ("How To Reset My Password", "how do i reset my password"),
    ("my car won't start", "my car doesn't start, what should I do"),
    ("Where can I purchase a cheap bike?", "where can i buy an inexpensive bicycle"),
    ("reset my password", "reset my password please"),
    ("inner join vs left join", "left join vs inner join"),
]


@pytest.mark.parametrize(("query", "cached", "reason"), REFUSED)
def test_near_misses_are_refused_saying_why(query: str, cached: str, reason: str) -> None:
    verdict = KeyTerms()(query, cached)
    assert not verdict.ok and reason in verdict.reason
    assert not KeyTerms()(cached, query).ok  # in both directions


@pytest.mark.parametrize(("query", "cached"), ACCEPTED)
def test_rewordings_are_accepted(query: str, cached: str) -> None:
    assert KeyTerms()(query, cached) == Verdict(True)


def test_a_callable_verifier_may_answer_with_a_bool_and_one_that_raises_refuses() -> None:
    assert judge(lambda q, c: True, "a", "b").ok
    assert judge(lambda q, c: False, "a", "b") == Verdict(False, "refused by the verifier")

    def broken(query: str, cached: str) -> bool:
        raise TimeoutError("cross-encoder down")

    assert judge(broken, "a", "b") == Verdict(False, "the verifier failed (TimeoutError)")


def test_the_nearest_accepted_live_candidate_is_the_hit_and_every_candidate_is_explained() -> None:
    from langchain_core.outputs import Generation

    cands = [
        Candidate("m1", "How do I cancel my subscription?", 0.05),
        Candidate("m2", "how can I cancel my order", 0.08),
        Candidate("m3", "cancel an order I placed", 0.10),
        Candidate("m4", "Where is my order?", 0.50),
    ]
    passing, others = screen("How do I cancel my order?", cands, 0.3, KeyTerms())
    assert [c.member for c in passing] == ["m2", "m3"]
    lookup = decide(cands, passing, [None, [Generation(text="cancel it")]], others)
    assert lookup.hit is not None and lookup.hit.prompt == "cancel an order I placed"
    outcomes = [(c.outcome, c.reason.split(" (")[0]) for c in lookup.considered]
    assert outcomes == [
        ("refused", "key words differ"),
        ("gone", "the entry expired or was cleared"),
        ("hit", ""),
        ("beyond threshold", ""),
    ]
