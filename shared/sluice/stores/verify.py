"""A second look before a semantic hit: near-miss prompts sit closer than many paraphrases.

"cancel my order" / "cancel my subscription", "flights to Paris in May" / "... in June", "is X
safe" / "is X not safe" are within any useful distance threshold for every embedder. A verifier
looks at the query and a vector candidate's prompt and may refuse the hit, saying why; the cache
then tries the next candidate. `KeyTerms` (the default) is cheap and deterministic: differing
numbers, dates, negation, question words (who/when/where/why), opposites, named entities, or key
words swapped inside the same sentence veto the hit. Any callable ``(query, cached) -> bool |
Verdict`` can replace it (e.g. a cross-encoder's score against a cut-off).

It reads English word by word and is meant for question-length prompts; for long prompts (a
document pasted in) it refuses more than it should: pass ``verify=False`` or a verifier of your own.
"""

from __future__ import annotations

import difflib
import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from sluice.stores.terms import OPPOSITE_PAIRS, Terms, canonical
from sluice.stores.wordlists import NEGATING_PREFIXES, SYMMETRIC

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A verifier's answer: `ok`, or refused with a `reason` shown by `lookup_with_score(explain=True)`."""

    ok: bool
    reason: str = ""


ACCEPTED: Final = Verdict(True)
Verifier = Callable[[str, str], "bool | Verdict"]
"""``verify(query_text, cached_prompt_text)``: True / Verdict(True) serves the hit."""


def judge(verifier: Verifier, query: str, cached: str) -> Verdict:
    """The verifier's verdict; a verifier that raises refuses (a cache never serves on doubt)."""
    try:
        result = verifier(query, cached)
    except Exception as e:
        log.warning("semantic cache verifier failed (%s: %s); the candidate is refused", type(e).__name__, e)
        return Verdict(False, f"the verifier failed ({type(e).__name__})")
    if isinstance(result, Verdict):
        return result
    return ACCEPTED if result else Verdict(False, "refused by the verifier")


def _shown(words: Iterable[str]) -> str:
    return ", ".join(sorted(words)) or "none"


@functools.lru_cache(maxsize=4096)
def _terms(text: str) -> Terms:
    return Terms.of(text)


class KeyTerms:
    """The built-in verifier. Numbers, dates and question words must agree; an entity swapped for
    another refuses. Negation, opposites, an entity or key words that only one side has refuse when
    the two prompts are otherwise alike: `template` is how alike (0-1, word order kept) they must be
    for that, since a reworded question (which shares fewer words) says the same in other words."""

    def __init__(self, template: float = 0.6) -> None:
        if not 0.0 <= template <= 1.0:
            raise ValueError("template is a similarity between 0 and 1")
        self.template = template

    def __call__(self, query: str, cached: str) -> Verdict:
        a, b = _terms(query), _terms(cached)
        reason = _numbers(a, b) or _times(a, b) or _questions(a, b)
        if reason is None:
            # a contrast refuses in the same sentence frame; reworded, the embedding is trusted
            alike = difflib.SequenceMatcher(None, a.sequence, b.sequence, autojunk=False).ratio()
            framed = alike >= self.template
            reason = _entities(a, b, framed=framed)
            if reason is None and framed:
                reason = _negation(a, b) or _opposites(a, b) or _key_words(a, b) or _order(a, b)
        return Verdict(False, reason) if reason else ACCEPTED

    def __repr__(self) -> str:
        return f"KeyTerms(template={self.template})"


def _key_words(a: Terms, b: Terms) -> str | None:
    only_a, only_b = a.content - b.content, b.content - a.content
    if only_a and only_b:
        return f"key words differ ({_shown(a.surface(only_a))} / {_shown(b.surface(only_b))})"
    if only_a or only_b:  # the same sentence plus a detail: "a duck egg", "when towing"
        return f"a detail in one only ({_shown(a.surface(only_a) + b.surface(only_b))})"
    return None


def _order(a: Terms, b: Terms) -> str | None:
    """The same words in another order: "from Paris to London", "an integer to a string". Embeddings
    barely see word order (cosine ~0.99), so this is the verifier's to catch; "A vs B" is exempt."""
    if (
        a.ordered == b.ordered
        or a.content != b.content
        or len(a.content) < 2
        or (a.lower | b.lower) & SYMMETRIC
    ):
        return None
    return f"the same words in another order ({' '.join(a.surface(a.ordered))} / {' '.join(b.surface(b.ordered))})"


def _numbers(a: Terms, b: Terms) -> str | None:
    if a.numbers != b.numbers:
        return f"numbers differ ({_shown(a.numbers - b.numbers)} / {_shown(b.numbers - a.numbers)})"
    return None


def _times(a: Terms, b: Terms) -> str | None:
    if a.times != b.times:
        return f"dates differ ({_shown(a.times - b.times)} / {_shown(b.times - a.times)})"
    return None


def _negation(a: Terms, b: Terms) -> str | None:
    if bool(a.negations) != bool(b.negations):
        return f"only one is negated ({(a.negations or b.negations)[0]!r})"
    return None


def _questions(a: Terms, b: Terms) -> str | None:
    if a.questions and b.questions and a.questions.isdisjoint(b.questions):
        return f"another question ({_shown(a.questions)} / {_shown(b.questions)})"
    return None


def _opposites(a: Terms, b: Terms) -> str | None:
    for x, y in OPPOSITE_PAIRS:
        for p, q in ((a, b), (b, a)):
            if x in p.words and y in q.words and x not in q.words and y not in p.words:
                return f"opposites ({_shown(p.surface({x}))} / {_shown(q.surface({y}))})"
    for p, q in ((a, b), (b, a)):
        for word in p.content - q.content:
            for prefix in NEGATING_PREFIXES:
                base = word[len(prefix) :]
                if word.startswith(prefix) and len(base) >= 3 and base in q.content and base not in p.content:
                    return f"opposites ({_shown(q.surface({base}))} / {_shown(p.surface({word}))})"
    return None


def _entities(a: Terms, b: Terms, *, framed: bool) -> str | None:
    """One named entity swapped for another refuses; an entity only one side names refuses when the
    sentences are otherwise alike (a reworded question may name its subject differently)."""
    missing = [
        sorted(
            e for e in p.entities if e not in q.entities and e not in q.lower and canonical(e) not in q.words
        )
        for p, q in ((a, b), (b, a))
    ]
    if missing[0] and missing[1]:
        return f"named entities differ ({_shown(missing[0])} / {_shown(missing[1])})"
    if framed and (missing[0] or missing[1]):
        return f"named entity in one only ({_shown(missing[0] + missing[1])})"
    return None
