"""What the cache benchmarks store and ask: prompts, a labelled paraphrase sample, one answer shape.

Every system gets the same prompts, the same stored answers and the same query embeddings. The
embedder is sluice's offline `HashingEmbeddings` (lexical, deterministic): a "paraphrase" here
keeps most of the stored prompt's words and changes a few, which is the kind of paraphrase a
lexical embedder can find. Prompts are built from families of questions about made-up entities
(pseudo-words, so two entities share no n-grams by design), so the sample has three kinds of
lookups:

- ``paraphrase``: another wording of a stored prompt; should hit *that* entry;
- ``unseen``: the stored wording of a question about an entity never stored; should miss;
- ``other-question``: another family's question about a stored entity; should miss.

Each stored answer carries ``[entry N]`` in its text, so which entry a system served is read
back from the answer itself (the same way for every system).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from langchain_core.embeddings import Embeddings
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, Generation

LLM_STRING = "sluice-bench-chat|model=bench-1|temperature=0.0"
SEED = 20240611

# (stored wording, paraphrase): the paraphrase keeps the entity and most of the words
FAMILIES: tuple[tuple[str, str], ...] = (
    ("What is the capital city of {e}?", "Tell me the capital city of {e}, please."),
    ("How many people live in {e}?", "How many people live in {e} today?"),
    ("Who founded the company {e}?", "Who was the founder of the company {e}?"),
    ("Explain how {e} works in simple terms.", "Explain in simple terms how {e} works."),
    ("Write a short poem about {e}.", "Please write me a short poem about {e}."),
    ("Translate the phrase {e} into French.", "How do you translate the phrase {e} into French?"),
    ("What are the side effects of {e}?", "What side effects does {e} have?"),
    ("Summarise the history of {e} in three sentences.", "In three sentences, summarise the history of {e}."),
    ("Give me a recipe that uses {e}.", "Can you give me a recipe using {e}?"),
    ("Compare {e} with its main competitors.", "How does {e} compare with its main competitors?"),
    ("What is the best time of year to visit {e}?", "When is the best time of year to visit {e}?"),
    ("List three facts about {e}.", "List three interesting facts about {e}."),
)
_SYLLABLES = tuple(c + v for c in "bdfgklmnprstvz" for v in ("a", "e", "i", "o", "u", "ai", "or"))


def entities(n: int, seed: int = SEED) -> list[str]:
    """`n` distinct two-word made-up names, the same on every machine."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        words = ["".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(2)]
        name = " ".join(words).title()
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def prompt(i: int, names: Sequence[str], family: int | None = None, paraphrase: bool = False) -> str:
    stored, para = FAMILIES[i % len(FAMILIES) if family is None else family]
    return (para if paraphrase else stored).format(e=names[i])


def answer_text(i: int) -> str:
    return (
        f"[entry {i}] Here is a careful answer. It restates the question, gives the key facts in two "
        "or three sentences, and ends with a short suggestion for further reading, which is about "
        "as long as a typical cached chat answer."
    )


def generations(i: int) -> list[Generation]:
    """A typical chat answer: content, ids, token usage, response metadata, generation info."""
    message = AIMessage(
        content=answer_text(i),
        id=f"run-bench-{i:08d}",
        response_metadata={"model_name": "bench-1", "finish_reason": "stop", "system_fingerprint": "fp_b1"},
        usage_metadata={"input_tokens": 24, "output_tokens": 58, "total_tokens": 82},
    )
    return [ChatGeneration(message=message, generation_info={"finish_reason": "stop", "logprobs": None})]


_ENTRY = re.compile(r"^\[entry (\d+)\]")


def entry_of(found: Sequence[Generation] | None) -> int | None:
    """Which stored entry an answer came from (None for a miss)."""
    if not found:
        return None
    m = _ENTRY.match(found[0].text)
    return int(m[1]) if m else -1


@dataclass(frozen=True, slots=True)
class Query:
    text: str
    expected: int | None  # the entry it should hit; None: it should miss
    kind: str  # paraphrase | unseen | other-question


def labelled_sample(stored: int, size: int, names: Sequence[str], seed: int = SEED) -> list[Query]:
    """Half paraphrases of stored entries, a quarter unseen entities, a quarter other questions.

    `names` must hold at least `stored + size` entities (unseen ones come from beyond `stored`).
    """
    rng = random.Random(seed + stored)
    picks = rng.sample(range(stored), size // 2 + size // 4)
    out = [Query(prompt(i, names, paraphrase=True), i, "paraphrase") for i in picks[: size // 2]]
    out += [Query(prompt(stored + j, names), None, "unseen") for j in range(size // 4)]
    for i in picks[size // 2 :]:
        other = (i % len(FAMILIES) + rng.randrange(1, len(FAMILIES))) % len(FAMILIES)
        out.append(Query(prompt(i, names, family=other), None, "other-question"))
    rng.shuffle(out)
    return out


@dataclass(frozen=True, slots=True)
class Quality:
    lookups: int
    hit_rate: float  # right entries served / lookups that should hit
    false_hit_rate: float  # wrong entries served / all lookups


def quality(sample: Sequence[Query], served: Sequence[int | None]) -> Quality:
    """The same definitions as `sluice.stores.semantic_cache.ThresholdStats`."""
    right = sum(1 for q, s in zip(sample, served, strict=True) if s is not None and s == q.expected)
    wrong = sum(1 for q, s in zip(sample, served, strict=True) if s is not None and s != q.expected)
    positives = sum(1 for q in sample if q.expected is not None)
    return Quality(
        len(sample), right / positives if positives else 0.0, wrong / len(sample) if sample else 0.0
    )


class MemoEmbeddings(Embeddings):
    """Precomputed vectors (one dict lookup per query), so lookups are timed without embedding.

    One instance serves every system; a text not prepared is embedded by `inner` and counted.
    Bulk vectors (fills) are kept as float32 arrays and turned into lists when asked for;
    `prepare(..., lists=True)` keeps ready lists for the timed lookups.
    """

    def __init__(self, inner: Embeddings) -> None:
        self.inner = inner
        self.memo: dict[str, list[float] | np.ndarray] = {}
        self.misses = 0

    def prepare(self, texts: Sequence[str], *, lists: bool = False, chunk: int = 2_000) -> None:
        todo = [t for t in dict.fromkeys(texts) if t not in self.memo]
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            vectors = self.inner.embed_documents(part)
            self.memo.update(
                zip(
                    part,
                    vectors if lists else [np.asarray(v, dtype=np.float32) for v in vectors],
                    strict=True,
                )
            )

    def forget(self, texts: Sequence[str]) -> None:
        for t in texts:
            self.memo.pop(t, None)

    def embed_query(self, text: str) -> list[float]:
        vector = self.memo.get(text)
        if vector is None:
            self.misses += 1
            vector = self.memo[text] = self.inner.embed_query(text)
        return vector.tolist() if isinstance(vector, np.ndarray) else vector

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(t) for t in texts]
