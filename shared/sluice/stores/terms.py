"""What a prompt pins down, read without a model: its numbers, dates, negation, named entities and
key words (`Terms.of`). The semantic cache's built-in verifier (`sluice.stores.verify`) compares
two prompts' terms; everything here is deterministic, English-centred and a few microseconds long.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from sluice.stores.wordlists import (
    CONTRACTIONS,
    FUNCTION_WORDS,
    IRREGULAR,
    MONTH_CUES,
    MONTHS,
    NEGATIONS,
    NUMBER_WORDS,
    OPPOSITES,
    PERIODS,
    RELATIVE,
    STRICT_QUESTIONS,
    SYNONYM_GROUPS,
    TIME_WORDS,
    WEEKDAYS,
)

_TOKEN: Final = re.compile(r"[0-9][0-9,.:]*[0-9]%?|[^\W_]+(?:'[^\W\d_]+)?")
_SENTENCE_END: Final = re.compile(r"[.?!:;\n]")
_ORDINAL: Final = re.compile(r"^([0-9]+)(?:st|nd|rd|th)$")


def stem(word: str) -> str:
    """A crude English stem: plurals, -ing, -ed and a final e go (``boiling``, ``boiled``, ``boil``)."""
    w = IRREGULAR.get(word, word)
    if len(w) <= 2 or not w.isalpha():
        return w
    if len(w) <= 3:
        pass  # gas, bus, yes: no plural to strip
    elif w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith(("sses", "shes", "ches", "xes", "zes")):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for suffix in ("ing", "ed", "est"):  # ... and superlatives: tallest -> tall
        if w.endswith(suffix) and len(w) - len(suffix) >= (4 if suffix == "est" else 3 if len(w) < 5 else 2):
            w = w[: -len(suffix)]
            if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouls":
                w = w[:-1]  # running -> run
            break
    if w.endswith("e") and len(w) >= 3:
        w = w[:-1]
    return w


SYNONYMS: Final = {stem(w): stem(group[0]) for group in SYNONYM_GROUPS for w in group[1:]}


def canonical(word: str) -> str:
    """The stem, with synonyms folded onto one representative (``purchase`` -> ``buy``)."""
    s = stem(word)
    return SYNONYMS.get(s, s)


OPPOSITE_PAIRS: Final = [(canonical(a), canonical(b)) for a, b in OPPOSITES]
_FUNCTION_STEMS: Final = frozenset(canonical(w) for w in FUNCTION_WORDS)  # "required" reads as "need"


@dataclass(frozen=True, slots=True)
class Token:
    word: str  # lower case
    capital: bool  # written with a capital (not as the first word of a sentence)
    acronym: bool  # 2+ capitals, or letters and digits mixed (GPT4, PS5)
    first: bool  # the first word of a sentence


def tokens(text: str) -> list[Token]:
    out: list[Token] = []
    for sentence in _SENTENCE_END.split(text.replace("\u2019", "'")):
        start = True
        for m in _TOKEN.finditer(sentence):
            raw = m.group()
            if raw.lower().endswith("'s") and len(raw) > 3:
                raw = raw[:-2]  # possessive: the router's -> router
            for i, part in enumerate(CONTRACTIONS.get(raw.lower(), raw).split()):
                low = part.lower()
                acronym = (len(part) >= 2 and part.isupper() and part.isalpha()) or (
                    any(c.isdigit() for c in part)
                    and any(c.isalpha() for c in part)
                    and not _ORDINAL.match(low)
                )
                capital = part[:1].isupper() and not start and low != "i" and i == 0
                out.append(Token(low, capital, acronym and low not in FUNCTION_WORDS, start))
                start = False
    return out


def _number(word: str) -> str | None:
    if word in NUMBER_WORDS:
        return NUMBER_WORDS[word]
    m = _ORDINAL.match(word)
    if m:
        return m.group(1)
    if word[:1].isdigit() and not any(c.isalpha() for c in word):  # 2FA, PS5: names, not counts
        value = word.replace(",", "").rstrip("%")
        return value.rstrip("0").rstrip(".") if "." in value and ":" not in value else value
    return None


def _time(words: list[str], i: int) -> str | None:
    word = words[i]
    prev = words[i - 1] if i else ""
    nxt = words[i + 1] if i + 1 < len(words) else ""
    if word == "may":  # the modal verb far more often than the month
        return "may" if prev in MONTH_CUES or nxt[:1].isdigit() else None
    if word == "fall":
        return "autumn" if prev in ("in", "this", "next", "last", "early", "late") else None
    if word in MONTHS:
        return MONTHS[word]
    if word in WEEKDAYS:
        return WEEKDAYS[word]
    if word in PERIODS and prev in RELATIVE:
        return f"{prev} {stem(word)}"
    return TIME_WORDS.get(word)


@dataclass(frozen=True, slots=True)
class Terms:
    """The terms of one prompt that must agree for two prompts to share an answer."""

    numbers: frozenset[str]
    times: frozenset[str]
    negations: tuple[str, ...]
    entities: frozenset[str]
    questions: frozenset[str]
    words: frozenset[str]  # canonical stems of every word
    content: frozenset[str]  # canonical stems of the content words
    ordered: tuple[str, ...]  # the content stems in the order they first appear
    sequence: tuple[str, ...]  # canonical stems in order, function words included
    lower: frozenset[str]  # every word as written, in lower case
    surfaces: tuple[tuple[str, str], ...]  # canonical stem -> the first word written for it

    def surface(self, stems: Iterable[str]) -> list[str]:
        """The words as written for these stems, in the order given (what a refusal's reason shows)."""
        written = dict(self.surfaces)
        return [written.get(s, s) for s in stems]

    @classmethod
    def of(cls, text: str) -> Terms:
        toks = tokens(text)
        words = [t.word for t in toks]
        titled = sum(t.capital for t in toks) > max(2, len([t for t in toks if not t.first]) // 2)
        numbers, times, negations, entities = set(), set(), [], set()
        content: dict[str, None] = {}  # ordered
        for i, t in enumerate(toks):
            when = _time(words, i)
            number = None if when else _number(t.word)
            if when:
                times.add(when)
            elif number is not None:
                numbers.add(number)
            elif t.word in NEGATIONS:
                negations.append(t.word)
            elif (
                t.word not in FUNCTION_WORDS and len(t.word) > 1 and canonical(t.word) not in _FUNCTION_STEMS
            ):
                content.setdefault(canonical(t.word))
            if (t.acronym or (t.capital and not titled)) and not when and number is None:
                entities.add(t.word)
        if {"united", "states"} <= entities or entities & {"us", "usa"}:
            entities = (entities - {"united", "states", "us", "usa"}) | {"america"}
        return cls(
            numbers=frozenset(numbers), times=frozenset(times), negations=tuple(negations),
            entities=frozenset(entities), questions=frozenset(w for w in words if w in STRICT_QUESTIONS),
            words=frozenset(canonical(w) for w in words), content=frozenset(content), ordered=tuple(content),
            sequence=tuple(canonical(w) for w in words), lower=frozenset(words),
            surfaces=tuple({canonical(w): w for w in reversed(words)}.items()),
        )  # fmt: skip
