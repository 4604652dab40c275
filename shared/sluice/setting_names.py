"""Which names are settings: unknown keys are refused with the nearest valid name, never ignored.

A misspelt setting that is silently ignored leaves the default in force (``partitons=8`` runs
with 4 partitions), so `sluice.settings` refuses, with a `ConfigError` naming the bad key, where
it came from and the nearest valid name:

- keyword arguments and nested dicts given to `Settings(...)` or `Settings.model_validate`;
- ``SLUICE_*`` environment variables (and a ``.env`` file if one is passed) — names such as
  ``SLUICE_QUEU__PARTITIONS`` that pydantic-settings would ignore — and the keys inside a JSON
  value such as ``SLUICE_QUEUE='{"partitons": 8}'``.

``SLUICE_*`` variables that are not settings are listed in `NOT_SETTINGS`; add a name there before
giving another program a ``SLUICE_`` variable.
"""

from __future__ import annotations

import difflib
import json
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias, Union, get_args, get_origin

from pydantic import BaseModel

from sluice.errors import ConfigError

NOT_SETTINGS: Final = frozenset(
    {
        "SLUICE_WORKER_INDEX",  # set by the supervisor for each worker process
        "SLUICE_REDIS_SERVER",  # redis-server binary of `sluice server` and the tests
        "SLUICE_REDIS7_SERVER",  # Redis 7 binary of the tests
        "SLUICE_MINILM_TOKENIZER",  # tokenizer folder of the MiniLM embedder
        "SLUICE_CHROMIUM",  # browser of the dashboard tests
        "SLUICE_WORKER_PASSWORD",  # docker-compose substitutions (deploy/README.md)
        "SLUICE_OPS_PASSWORD",
        "SLUICE_BEAT_PASSWORD",
    }
)
"""``SLUICE_*`` environment variables that are read by something else, so not refused."""

NOT_SETTINGS_PREFIXES: Final = (
    "SLUICE_REFRESH_",  # the beat's own settings (sluice_workers.celery_app.RefreshSettings)
    "SLUICE_ACL_",  # passwords for deploy/redis/acl.py
)

PREFIX: Final = "SLUICE_"
DELIMITER: Final = "__"


@dataclass(frozen=True)
class _MapOf:
    """A ``dict[str, X]`` field: any key, each value an X."""

    value: Node


_FREE: Final = "free"
"""A field whose keys are free-form (``dict[str, Any]``, e.g. an embedder's kwargs)."""

Node: TypeAlias = type[BaseModel] | _MapOf | Literal["free"] | None
"""What a value at some path is: a model, a mapping of nodes, free-form (`_FREE`), or a leaf (None)."""


def node_of(annotation: Any) -> Node:
    """The node type of a field annotation (``X | None`` is X)."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(annotation) if a is not type(None)]
        return node_of(inner[0]) if len(inner) == 1 else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if annotation is dict or origin is dict or origin is Mapping:
        args = get_args(annotation)
        value = node_of(args[1]) if len(args) == 2 else None
        return _FREE if value is None or value == _FREE else _MapOf(value)
    return _FREE if annotation is Any else None


@dataclass(frozen=True)
class Unknown:
    """One key that names no setting: its path, and the valid names where it sits."""

    path: tuple[str, ...]
    choices: tuple[str, ...]

    @property
    def nearest(self) -> str | None:
        found = difflib.get_close_matches(self.path[-1], self.choices, n=1)
        return found[0] if found else None


def unknown_keys(node: Node, data: Any, path: tuple[str, ...] = ()) -> Iterator[Unknown]:
    """Every key in the nested dicts `data` that is no field of the models it is meant for.

    Model instances (already validated) and values of the wrong type (pydantic reports those)
    are not looked into.
    """
    if not isinstance(data, Mapping):
        return
    if isinstance(node, _MapOf):
        for key, value in data.items():
            yield from unknown_keys(node.value, value, (*path, str(key)))
    elif isinstance(node, type):
        fields = node.model_fields
        for key, value in data.items():
            field = fields.get(key) if isinstance(key, str) else None
            if field is None:
                yield Unknown((*path, str(key)), tuple(fields))
            else:
                yield from unknown_keys(node_of(field.annotation), value, (*path, key))


def check_data(model: type[BaseModel], data: Any, where: str) -> None:
    """Raise `ConfigError` if `data` (keyword arguments or a dict) holds a key no setting has."""
    found = list(unknown_keys(model, data))
    if found:
        raise ConfigError(_message(where, [_explain_key(u) for u in found]))


def check_environment(model: type[BaseModel], environ: Mapping[str, str | None], where: str) -> None:
    """Raise `ConfigError` for a ``SLUICE_*`` variable, or a key in its JSON value, naming no setting."""
    problems: list[str] = []
    for name, value in sorted(environ.items()):
        upper = name.upper()
        if not upper.startswith(PREFIX) or upper in NOT_SETTINGS or upper.startswith(NOT_SETTINGS_PREFIXES):
            continue
        problems.extend(_check_variable(model, name, value))
    if problems:
        raise ConfigError(_message(where, problems))


def _check_variable(model: type[BaseModel], name: str, value: str | None) -> Iterator[str]:
    parts = name[len(PREFIX) :].lower().split(DELIMITER)
    node: Node = model
    for i, part in enumerate(parts):
        if isinstance(node, _MapOf):
            node = node.value
        elif isinstance(node, type):
            field = node.model_fields.get(part)
            if field is None:
                yield _explain_variable(name, node, parts, i)
                return
            node = node_of(field.annotation)
        elif node is None:  # a plain value has no sub-keys
            where = PREFIX + DELIMITER.join(parts[:i]).upper()
            yield f"{name}: {where} is a single value, not a section; set {where} itself"
            return
        else:  # free-form keys below (an embedder's kwargs)
            return
    if isinstance(node, (type, _MapOf)) and value:
        try:
            data = json.loads(value)
        except ValueError:
            return  # pydantic-settings reports JSON it cannot parse
        for unknown in unknown_keys(node, data):
            yield f"{name} (JSON): {_explain_key(unknown)}"


def _explain_key(unknown: Unknown) -> str:
    dotted = ".".join(unknown.path)
    nearest = unknown.nearest
    if nearest is not None:
        return f"unknown setting {dotted!r}; did you mean {'.'.join((*unknown.path[:-1], nearest))!r}?"
    return f"unknown setting {dotted!r}; the settings here are {', '.join(unknown.choices)}"


def _explain_variable(name: str, model: type[BaseModel], parts: list[str], i: int) -> str:
    """Suggest the closest valid variable: the whole rest is compared, so a single ``_`` for ``__``
    (``SLUICE_REDIS_URL``) is found as well as a misspelt part (``SLUICE_QUEU__PARTITIONS``)."""
    rest = DELIMITER.join(parts[i:])
    candidates = {DELIMITER.join((field, *parts[i + 1 :])) for field in model.model_fields}
    candidates.update(_paths(model))
    found = difflib.get_close_matches(rest, sorted(candidates), n=1)
    here = PREFIX + DELIMITER.join(parts[:i]).upper() + (DELIMITER if i else "")
    if found:
        return f"unknown setting {name}; did you mean {(here + found[0]).upper()}?"
    valid = ", ".join(here + field.upper() for field in model.model_fields)
    return f"unknown setting {name}; the settings here are {valid}"


def _paths(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Every variable-name path below `model` (sections and values; dict keys are not known)."""
    for field, info in model.model_fields.items():
        yield prefix + field
        inner = node_of(info.annotation)
        if isinstance(inner, type):
            yield from _paths(inner, prefix + field + DELIMITER)


def _message(where: str, problems: list[str]) -> str:
    return (
        f"{where}: " + "; ".join(problems) + " (fix or remove the name: an unknown setting is never ignored)"
    )
