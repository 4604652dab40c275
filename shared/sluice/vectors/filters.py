"""A filter DSL from Python operators, translated to RediSearch queries and Vector Sets FILTERs.

    (Tag("lang") == "en") & (Num("year") >= 2020) & ~(Text("title") % "draft")
    Tag("tags") == ["redis", "search"]      # any of the values
    Num("year").between(2018, 2020)
    Text("title") % "redis ba*"             # every word; `*` is any run of characters
    Text("title").like("b?r*")              # one word by pattern: `?` is one character

Filters are plain values (no I/O). A backend translates one against the index schema before
sending anything: a field the schema lacks, an operator the field's type does not have, or a
filter the backend cannot express (full-text match on Vector Sets) raises `FilterError` then,
never a wrong answer later. On missing metadata the backends differ: RediSearch's negation
keeps documents without the field, Vector Sets drops them; give every document the fields it
is filtered on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sluice.errors import InvalidArgument
from sluice.vectors.schema import FieldType, IndexSchema

_WORDS = re.compile(r"[\w*]+", re.UNICODE)  # words, and patterns holding `*`
_PATTERN = re.compile(r"[\w*?]+", re.UNICODE)
_QUESTION_IN_WORD = re.compile(r"\w\?+\w", re.UNICODE)
# RediSearch's query lexer escapes one byte: escape every ASCII character but letters and digits,
# and leave the rest (multi-byte UTF-8) as is; a backslash before one breaks the match.
_TAG_SPECIAL = re.compile("([^A-Za-z0-9\x80-\U0010ffff])")
# Tag values RediSearch cannot match exactly: it trims ASCII whitespace around a tag when indexing,
# and its lexer reads control characters as separators.
_TAG_UNMATCHABLE = re.compile(r"^[ \t\n\r\x0b\x0c]|[ \t\n\r\x0b\x0c]$|[\x00-\x08\x0b-\x1f\x7f]")


class FilterError(InvalidArgument):
    """A filter that this index or backend cannot evaluate (says which part and why)."""


class Filter:
    """Base of every filter node; combine with `&`, `|` and `~`."""

    def __and__(self, other: Filter) -> Filter:
        return And((self, other))

    def __or__(self, other: Filter) -> Filter:
        return Or((self, other))

    def __invert__(self) -> Filter:
        return Not(self)


@dataclass(frozen=True)
class TagIn(Filter):
    field: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class NumRange(Filter):
    field: str
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False


@dataclass(frozen=True)
class TextMatch(Filter):
    """Documents holding every word; a word with `*` (any run) or `?` (one character) is a pattern."""

    field: str
    words: tuple[str, ...]


@dataclass(frozen=True)
class And(Filter):
    parts: tuple[Filter, ...]


@dataclass(frozen=True)
class Or(Filter):
    parts: tuple[Filter, ...]


@dataclass(frozen=True)
class Not(Filter):
    part: Filter


# --- field handles: what users write -------------------------------------------------------------


class Tag:
    """A tag field: `== value`, `== [values]` (any of), `!=`."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, value: str | Iterable[str]) -> Filter:  # type: ignore[override]
        if isinstance(value, str):
            values: tuple[object, ...] = (value,)
        elif isinstance(value, list | tuple | set | frozenset):  # not any iterable: a dict gives its keys
            values = tuple(value)
        else:
            values = ()
        if not values or not all(isinstance(v, str) and v for v in values):
            raise FilterError(f"Tag({self.name!r}) == needs non-empty strings, got {value!r}")
        odd = next((v for v in values if isinstance(v, str) and _TAG_UNMATCHABLE.search(v)), None)
        if odd is not None:
            raise FilterError(
                f"Tag({self.name!r}) == {odd!r}: a tag value cannot start or end with whitespace or hold "
                "control characters (RediSearch trims or splits them, so it would never match)"
            )
        return TagIn(self.name, tuple(str(v) for v in values))

    def __ne__(self, value: str | Iterable[str]) -> Filter:  # type: ignore[override]
        return Not(self == value)


class Num:
    """A numeric field: `==`, `!=`, `<`, `<=`, `>`, `>=`, `between(low, high)` (inclusive)."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, name: str) -> None:
        self.name = name

    def _n(self, value: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FilterError(f"Num({self.name!r}) compares with numbers, got {value!r}")
        try:
            number = float(value)
        except OverflowError:  # an int beyond float range
            raise FilterError(
                f"Num({self.name!r}) got a whole number too large for a stored number"
            ) from None
        if math.isnan(number):
            raise FilterError(f"Num({self.name!r}) compares with numbers, got {value!r}")
        return number

    def __eq__(self, value: float) -> Filter:  # type: ignore[override]
        return NumRange(self.name, self._n(value), self._n(value))

    def __ne__(self, value: float) -> Filter:  # type: ignore[override]
        return Not(self == value)

    def __ge__(self, value: float) -> Filter:
        return NumRange(self.name, low=self._n(value))

    def __gt__(self, value: float) -> Filter:
        return NumRange(self.name, low=self._n(value), low_open=True)

    def __le__(self, value: float) -> Filter:
        return NumRange(self.name, high=self._n(value))

    def __lt__(self, value: float) -> Filter:
        return NumRange(self.name, high=self._n(value), high_open=True)

    def between(self, low: float, high: float) -> Filter:
        return NumRange(self.name, self._n(low), self._n(high))


class Text:
    """A text field (RediSearch only), matched word by word, case-insensitively.

    `% "words"` matches documents holding every word. A word may hold `*`, any run of characters:
    `"ba*"` (prefix), `"*bar"` (suffix), `"*ar*"` (infix), `"b*r"`. `.like("b?r*")` matches one
    word by a pattern where `?` is also exactly one character. Two server behaviours to know:
    RediSearch indexes the English stem beside each word, and a pattern that starts with `*` also
    matches stems (`"*b"` finds "rebarbative" through "rebarb"); and a pattern matches at most
    the server's ``MAXPREFIXEXPANSIONS`` distinct words (200 by default), beyond which RediSearch
    drops matches without saying so: keep patterns specific, or raise that setting.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __mod__(self, words: str) -> Filter:
        found = _WORDS.findall(words) if isinstance(words, str) else []
        if not found:
            raise FilterError(f"Text({self.name!r}) % needs at least one word, got {words!r}")
        if isinstance(words, str) and _QUESTION_IN_WORD.search(words):
            raise FilterError(
                f"Text({self.name!r}) % {words!r}: % reads `?` as punctuation; for a one-character "
                f"wildcard use Text({self.name!r}).like(...)"
            )
        return TextMatch(self.name, tuple(self._word(w) for w in found))

    def like(self, pattern: str) -> Filter:
        """One word by pattern: `*` any run of characters, `?` exactly one."""
        if not isinstance(pattern, str) or not _PATTERN.fullmatch(pattern):
            raise FilterError(
                f"Text({self.name!r}).like needs one word of letters, digits, _ and the wildcards * "
                f"and ?, got {pattern!r}"
            )
        if pattern.startswith("?"):
            # the index holds stems as "+stem": a leading ? would match the + and a stem one
            # letter short ("??at" would find "cats" through "+cat")
            raise FilterError(
                f"Text({self.name!r}).like({pattern!r}): a pattern cannot start with `?`, which RediSearch "
                "would also match against the stems it indexes; start it with a letter, a digit or `*`"
            )
        return TextMatch(self.name, (self._word(pattern),))

    def _word(self, word: str) -> str:
        word = re.sub(r"\*+", "*", word)
        if word == "*":
            raise FilterError(
                f"Text({self.name!r}): a lone `*` matches every word; drop it, or filter on nothing"
            )
        return word.lower()  # RediSearch lowercases indexed words, but only ASCII ones in a query


# --- translation ----------------------------------------------------------------------------------


def _check(schema: IndexSchema, name: str, wanted: FieldType, how: str) -> None:
    if wanted == "text" and name == schema.text_field:
        return
    field = schema.field(name)
    if field is None:
        known = [schema.text_field, *schema.field_names()]
        raise FilterError(
            f"filter on {name!r}, which is not a field of this index (fields: {known}); "
            "declare it in the schema's metadata (a new schema needs `sluice index migrate`)"
        )
    if field.type != wanted:
        raise FilterError(f"{how}({name!r}) used on a {field.type} field; use the {field.type} filter for it")


def _escape_tag(value: str) -> str:
    return _TAG_SPECIAL.sub(r"\\\1", value)


def _text_term(word: str) -> str:
    """A word as is; a pattern as `w'...'` (RediSearch >= 2.6), which, unlike `ba*`, has no
    minimum prefix length (`b*` silently matches nothing under the default MINPREFIX of 2).
    Words and patterns hold only word characters and wildcards, so neither needs escaping."""
    return f"w'{word}'" if "*" in word or "?" in word else word


def _num(value: float) -> str:
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return repr(int(value)) if value.is_integer() else repr(value)


def _vsets_string(value: str) -> str:
    """A Vector Sets string literal. Its parser has no escapes (a backslash only keeps the next
    character from closing the string), so quote with the quote character the value lacks."""
    for quote in ('"', "'"):
        if quote not in value and not value.endswith("\\"):
            return quote + value + quote
    raise FilterError(
        f"tag value {value!r} holds both quote characters or ends with a backslash, which a Vector Sets "
        "filter cannot express; use a RediSearch index (backend='search')"
    )


def _vsets_num(value: float) -> str:
    """A finite number as the Vector Sets parser reads it: no signed exponent, at most ~250 characters."""
    text = _num(value)
    if len(text) > 30 or "e" in text:
        text = repr(value).replace("e+", "e")
        if "e-" in text:
            text = format(Decimal(text), "f")
    if len(text) > 200:
        raise FilterError(
            f"{value!r} is too close to zero to write in a Vector Sets filter; use a RediSearch index "
            "(backend='search') or round it"
        )
    return text


def _vsets_range(node: NumRange) -> str:
    f = f".{node.field}"
    nothing = f"({f} != {f})"  # false, and like every comparison it drops documents without the field
    if node.low == math.inf or node.high == -math.inf:
        return nothing
    if node.low == node.high and not (node.low_open or node.high_open):
        return f"({f} == {_vsets_num(node.low)})"
    sides = []
    if node.low != -math.inf:
        sides.append(f"{f} {'>' if node.low_open else '>='} {_vsets_num(node.low)}")
    if node.high != math.inf:
        sides.append(f"{f} {'<' if node.high_open else '<='} {_vsets_num(node.high)}")
    return "(" + (" and ".join(sides) or f"{f} == {f}") + ")"


def to_search(node: Filter | None, schema: IndexSchema) -> str:
    """RediSearch query syntax (DIALECT 2); `*` for no filter."""
    if node is None:
        return "*"
    if isinstance(node, TagIn):
        _check(schema, node.field, "tag", "Tag")
        return f"@{node.field}:{{{'|'.join(_escape_tag(v) for v in node.values)}}}"
    if isinstance(node, NumRange):
        _check(schema, node.field, "numeric", "Num")
        low = ("(" if node.low_open else "") + _num(node.low)
        high = ("(" if node.high_open else "") + _num(node.high)
        return f"@{node.field}:[{low} {high}]"
    if isinstance(node, TextMatch):
        _check(schema, node.field, "text", "Text")
        return f"@{node.field}:({' '.join(_text_term(w) for w in node.words)})"
    if isinstance(node, And):
        return "(" + " ".join(to_search(p, schema) for p in node.parts) + ")"
    if isinstance(node, Or):
        return "(" + " | ".join(to_search(p, schema) for p in node.parts) + ")"
    if isinstance(node, Not):
        if isinstance(node.part, Not):  # RediSearch 2.10 mis-evaluates -(-x) inside an intersection
            return to_search(node.part.part, schema)
        return f"(-{to_search(node.part, schema)})"
    raise FilterError(f"not a sluice filter: {node!r}")


def to_vsets(node: Filter | None, schema: IndexSchema) -> str | None:
    """A Vector Sets FILTER expression; None for no filter. Full-text match raises `FilterError`."""
    if node is None:
        return None
    if isinstance(node, TagIn):
        _check(schema, node.field, "tag", "Tag")
        return "(" + " or ".join(f"{_vsets_string(v)} in .{node.field}" for v in node.values) + ")"
    if isinstance(node, NumRange):
        _check(schema, node.field, "numeric", "Num")
        return _vsets_range(node)
    if isinstance(node, TextMatch):
        raise FilterError(
            f"Text({node.field!r}) % ... is a full-text match, which Vector Sets cannot express; "
            "use a RediSearch index (backend='search') or a Tag filter"
        )
    if isinstance(node, And):
        return "(" + " and ".join(str(to_vsets(p, schema)) for p in node.parts) + ")"
    if isinstance(node, Or):
        return "(" + " or ".join(str(to_vsets(p, schema)) for p in node.parts) + ")"
    if isinstance(node, Not):
        return f"(not {to_vsets(node.part, schema)})"
    raise FilterError(f"not a sluice filter: {node!r}")


def as_filter(value: Filter | Mapping[str, Any] | None, schema: IndexSchema) -> Filter | None:
    """A filter as given, or a mapping ``{field: value}`` read as equalities joined by AND
    (numeric fields compare numbers, others match tags): what LangChain users often pass."""
    if value is None or isinstance(value, Filter):
        return value
    if not isinstance(value, Mapping):
        raise FilterError(
            f"filter must be a sluice filter (Tag, Num, Text) or a mapping, not {type(value).__name__}"
        )
    out: Filter | None = None
    for name, wanted in value.items():
        field = schema.field(name)
        part = Num(name) == wanted if field is not None and field.type == "numeric" else Tag(name) == wanted
        out = part if out is None else out & part
    return out
