"""Filters written for the peers, read into sluice's filter DSL (`sluice.vectors.filters`).

redisvl's ``FilterExpression`` (``Tag``, ``Num``, ``Text``, ``Timestamp``) and langchain-community's
``RedisFilterExpression`` (``RedisTag``, ``RedisNum``, ``RedisText``) are small trees whose leaves
are already RediSearch query text, and ``str()`` of a tree is the whole query. So one reader
serves both, and raw query strings too: it parses the part of the RediSearch query language
these classes write and builds the same filter with sluice's nodes, which the index then
checks against its schema like any other filter. Nothing of the peers is imported.

Read: tag sets ``@f:{a|b}`` (escapes undone), numeric ranges ``@f:[(1 +inf]``, full-text
``@f:(w1 w2)``, ``@f:(a|b)``, prefix/suffix wildcards ``@f:(ba*)``, one-word phrases
``@f:("foo")``, and ``-``, space (and), ``|`` (or), parentheses and ``*`` around them.
Refused, with the reason: geo radius, ``ismissing()``, tag wildcards (``Tag % "x*"``), fuzzy
``%%w%%``, phrases of several words (sluice matches words, not their order), free-text terms
not scoped to a field, and anything else.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sluice.vectors.filters import And, Filter, FilterError, Not, NumRange, Or, Tag, Text, TextMatch

_PEER_MODULES = ("redisvl.", "langchain_community.vectorstores.redis")
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PATTERN = re.compile(r"[\w*]*\w[\w*]*", re.UNICODE)  # a word, maybe with `*` wildcards
_WORDS = re.compile(r"\w+", re.UNICODE)
_TEXT_STOP = frozenset(" \t\n\r|()")


@dataclass(frozen=True)
class _All:
    """``*``: every document (no filter)."""


ALL = _All()
Node = Filter | _All


def is_foreign(value: object) -> bool:
    """Whether `value` is a redisvl or langchain-community filter expression."""
    module = type(value).__module__ or ""
    return module.startswith(_PEER_MODULES) and type(value).__name__.endswith("FilterExpression")


def translate(value: Any, rename: Mapping[str, str] | None = None) -> Filter | None:
    """The sluice filter of a peer's filter expression or a RediSearch query string (None: all).

    `rename` maps a peer's field names to the index's (a peer's content field to the index's
    text field). Raises `FilterError` for what sluice filters cannot express.
    """
    origin = "RediSearch query" if isinstance(value, str) else type(value).__name__
    try:
        text = value if isinstance(value, str) else str(value)
    except (ValueError, TypeError) as e:  # e.g. an empty FilterExpression()
        raise FilterError(f"{origin} cannot be read: {e}") from None
    node = _Parser(text, origin, rename or {}).parse()
    return None if isinstance(node, _All) else node


def _and(parts: list[Node]) -> Node:
    kept = [p for p in parts if isinstance(p, Filter)]
    if not kept:
        return ALL
    return kept[0] if len(kept) == 1 else And(tuple(kept))


def _or(parts: list[Node]) -> Node:
    kept = [p for p in parts if isinstance(p, Filter)]
    if len(kept) < len(parts):
        return ALL
    return kept[0] if len(kept) == 1 else Or(tuple(kept))


class _Parser:
    """Recursive descent over one query string; `pos` moves forward only."""

    def __init__(self, text: str, origin: str, rename: Mapping[str, str]) -> None:
        self.text = text
        self.origin = origin
        self.rename = rename
        self.pos = 0

    def refuse(self, why: str) -> FilterError:
        shown = self.text if len(self.text) <= 200 else self.text[:200] + "..."
        return FilterError(
            f"the {self.origin} filter {shown!r} cannot be used here: {why}; write it with "
            "sluice.vectors.filters (Tag, Num, Text) or a dict of field -> value"
        )

    # --- characters --------------------------------------------------------------------------
    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_space(self) -> None:
        while self.peek().isspace():
            self.pos += 1

    def expect(self, char: str) -> None:
        self.skip_space()
        if self.peek() != char:
            found = repr(self.peek()) if self.peek() else "the end"
            raise self.refuse(f"expected {char!r} at position {self.pos}, found {found}")
        self.pos += 1

    # --- the boolean layer -------------------------------------------------------------------
    def parse(self) -> Node:
        node = self.union()
        self.skip_space()
        if self.pos < len(self.text):
            raise self.refuse(f"unexpected {self.text[self.pos :][:20]!r} at position {self.pos}")
        return node

    def union(self) -> Node:
        parts = [self.intersection()]
        while True:
            self.skip_space()
            if self.peek() != "|":
                return _or(parts)
            self.pos += 1
            parts.append(self.intersection())

    def intersection(self) -> Node:
        parts = [self.unary()]
        while True:
            self.skip_space()
            if self.peek() in ("", "|", ")"):
                return _and(parts)
            parts.append(self.unary())

    def unary(self) -> Node:
        self.skip_space()
        if self.peek() == "-":
            self.pos += 1
            part = self.unary()
            if isinstance(part, _All):
                raise self.refuse("-* matches no document")
            return Not(part)
        return self.atom()

    def atom(self) -> Node:
        self.skip_space()
        char = self.peek()
        if char == "(":
            self.pos += 1
            node = self.union()
            self.expect(")")
            return node
        if char == "*":
            self.pos += 1
            return ALL
        if char == "@":
            self.pos += 1
            return self.field()
        if self.text.startswith("ismissing(", self.pos):
            raise self.refuse("ismissing() is not a sluice filter (give every document the field)")
        if not char:
            raise self.refuse("the filter ends where a term was expected")
        raise self.refuse(f"free-text terms not scoped to a field (at position {self.pos}) are not filters")

    # --- fields --------------------------------------------------------------------------------
    def field(self) -> Filter:
        match = _FIELD.match(self.text, self.pos)
        if match is None:
            raise self.refuse(f"a field name was expected at position {self.pos}")
        self.pos = match.end()
        name = self.rename.get(match.group(), match.group())
        self.expect(":")
        char = self.peek()
        if char == "{":
            return self.tags(name)
        if char == "[":
            return self.numbers(name)
        if char == "(":
            self.pos += 1
            node = self.text_union(name)
            self.expect(")")
            return node
        return self.text_atom(name)

    def tags(self, name: str) -> Filter:
        self.pos += 1  # {
        values: list[str] = []
        current: list[str] = []
        wildcard = False
        while True:
            char = self.peek()
            if not char:
                raise self.refuse("a tag set is not closed with '}'")
            self.pos += 1
            if char == "\\":
                current.append(self.peek())
                self.pos += 1
            elif char == "|":
                values.append("".join(current))
                current = []
            elif char == "}":
                values.append("".join(current))
                break
            else:
                wildcard = wildcard or char == "*"
                current.append(char)
        if wildcard:
            raise self.refuse(
                f"tag wildcards on {name!r} (Tag % 'x*'): sluice tag filters match whole values"
            )
        return Tag(name) == values

    def numbers(self, name: str) -> Filter:
        end = self.text.find("]", self.pos)
        if end < 0:
            raise self.refuse("a numeric range is not closed with ']'")
        bounds = self.text[self.pos + 1 : end].split()
        self.pos = end + 1
        if len(bounds) == 4:
            raise self.refuse(f"geo filters ({name!r}): sluice indexes have no geo fields")
        if len(bounds) != 2:
            raise self.refuse(f"a numeric range on {name!r} needs two bounds, found {bounds}")
        (low, low_open), (high, high_open) = (self.bound(b) for b in bounds)
        return NumRange(name, low, high, low_open, high_open)

    def bound(self, token: str) -> tuple[float, bool]:
        exclusive = token.startswith("(")
        try:
            value = float(token[1:] if exclusive else token)
        except ValueError:
            raise self.refuse(f"{token!r} is not a number") from None
        if math.isnan(value):
            raise self.refuse("NaN is not a bound")
        return value, exclusive

    # --- full text inside @field:( ... ) ------------------------------------------------------
    def text_union(self, name: str) -> Filter:
        parts = [self.text_intersection(name)]
        while True:
            self.skip_space()
            if self.peek() != "|":
                return parts[0] if len(parts) == 1 else Or(tuple(parts))
            self.pos += 1
            parts.append(self.text_intersection(name))

    def text_intersection(self, name: str) -> Filter:
        words: list[str] = []
        others: list[Filter] = []
        while True:
            self.skip_space()
            char = self.peek()
            if char in ("", "|", ")"):
                break
            if char == "-":
                self.pos += 1
                others.append(Not(self.text_term(name)))
                continue
            term = self.text_term(name)
            if isinstance(term, TextMatch):
                words.extend(term.words)
            else:
                others.append(term)
        parts: list[Filter] = [TextMatch(name, tuple(words))] if words else []
        parts += others
        if not parts:
            raise self.refuse(f"an empty full-text match on {name!r}")
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def text_term(self, name: str) -> Filter:
        self.skip_space()
        if self.peek() == "(":
            self.pos += 1
            node = self.text_union(name)
            self.expect(")")
            return node
        return self.text_atom(name)

    def text_atom(self, name: str) -> Filter:
        if self.peek() == '"':
            end = self.text.find('"', self.pos + 1)
            if end < 0:
                raise self.refuse("a phrase is not closed with '\"'")
            words = _WORDS.findall(self.text[self.pos + 1 : end])
            self.pos = end + 1
            if len(words) != 1:
                raise self.refuse(
                    f"the phrase match on {name!r} has {len(words)} words; sluice matches words, not "
                    f"their order: use Text({name!r}) % 'w1 w2' (every word) instead"
                )
            return Text(name) % str(words[0])
        start = self.pos
        while self.peek() and self.peek() not in _TEXT_STOP:
            self.pos += 1
        word = self.text[start : self.pos]
        if word.startswith("%"):
            raise self.refuse(f"fuzzy matches ({word!r}) are not sluice filters")
        if not _PATTERN.fullmatch(word):
            raise self.refuse(f"{word!r} on {name!r} is not a word (letters, digits, _ and `*` wildcards)")
        return Text(name) % word
