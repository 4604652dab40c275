"""The labelled prompt pairs of the semantic suite (`benchmarks/data/semantic_pairs.txt`).

Each stored prompt gets its own answer; each query is labelled with the stored prompt whose
answer it should get (a paraphrase) or none (a near-miss). See the data file for the format.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "semantic_pairs.txt"


@dataclass(frozen=True, slots=True)
class Pair:
    topic: str
    stored: str
    query: str
    same: bool  # True: the query should be served the stored prompt's answer


@dataclass(frozen=True, slots=True)
class LabelledSet:
    pairs: tuple[Pair, ...]

    @property
    def stored(self) -> list[str]:
        return list(dict.fromkeys(p.stored for p in self.pairs))

    @property
    def topics(self) -> list[str]:
        return list(dict.fromkeys(p.topic for p in self.pairs))

    def expected(self, query: str) -> str | None:
        """The stored prompt whose answer `query` should get, or None."""
        for p in self.pairs:
            if p.query == query and p.same:
                return p.stored
        return None

    def half(self, which: str) -> LabelledSet:
        """'dev' (topics 1, 3, 5, ...: what the verifier was tuned on) or 'held-out' (the others)."""
        if which not in ("dev", "held-out"):
            raise ValueError("which is 'dev' or 'held-out'")
        keep = {t for i, t in enumerate(self.topics) if (i % 2 == 0) == (which == "dev")}
        return LabelledSet(tuple(p for p in self.pairs if p.topic in keep))

    def only(self, topics: int) -> LabelledSet:
        keep = set(self.topics[:topics])
        return LabelledSet(tuple(p for p in self.pairs if p.topic in keep))

    def summary(self) -> str:
        kinds = Counter("paraphrase" if p.same else "near-miss" for p in self.pairs)
        return (
            f"{len(self.pairs)} pairs over {len(self.topics)} topics ({kinds['paraphrase']} paraphrases, "
            f"{kinds['near-miss']} near-misses) against {len(self.stored)} stored prompts"
        )


def load(path: Path = DATA) -> LabelledSet:
    pairs: list[Pair] = []
    topic = stored = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        tag, _, text = line.partition(" ")
        if tag == "#":
            topic, stored = text, None
        elif tag == "=":
            stored = text
        elif tag in "+-" and topic and stored:
            pairs.append(Pair(topic, stored, text, same=tag == "+"))
        else:
            raise ValueError(f"{path}:{number}: cannot read {raw!r}")
    queries = Counter(p.query for p in pairs)
    repeated = [q for q, n in queries.items() if n > 1]
    stored_set = {p.stored for p in pairs}
    if repeated or stored_set & set(queries):
        raise ValueError(f"{path}: a query is asked twice or is a stored prompt: {repeated[:3]}")
    return LabelledSet(tuple(pairs))
