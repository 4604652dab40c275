"""Chat models by *name*: settings map a name to an import path, keyword arguments and a rate limit.

Only settings name import paths; jobs and stored values carry the name, so a worker never
imports code named by data. Each process builds a model once (`ModelRegistry.get`). A rate limit
(calls per second) becomes LangChain's `InMemoryRateLimiter`, set after construction so it does
not change the model's ``llm_string`` (the cache key part LangChain derives from the model).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping

from langchain_core.language_models import BaseChatModel
from langchain_core.rate_limiters import InMemoryRateLimiter

from sluice.connection.secrecy import scrub_secrets
from sluice.errors import ConfigError
from sluice.settings import ComponentSpec


def import_object(import_path: str) -> object:
    module_name, _, attr = import_path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"cannot import {module_name!r} ({e}); install it or fix the import_path") from None
    try:
        target: object = module
        for part in attr.split("."):
            target = getattr(target, part)
    except AttributeError:
        raise ConfigError(f"{module_name!r} has no attribute {attr!r}; fix the import_path") from None
    return target


def build_model(name: str, spec: ComponentSpec) -> BaseChatModel:
    """Instantiate one named model from its spec; it never reads or writes an LLM cache."""
    factory = import_object(spec.import_path)
    if not callable(factory):
        raise ConfigError(f"model {name!r}: {spec.import_path} is not a class or factory")
    try:
        model = factory(**spec.revealed_kwargs())
    except Exception as e:  # not chained: the constructor's own error may quote a secret
        raise ConfigError(
            f"model {name!r}: {spec.import_path}(**kwargs) failed: {scrub_secrets(str(e), spec.kwargs)}; "
            "check its kwargs"
        ) from None
    if not isinstance(model, BaseChatModel):
        raise ConfigError(
            f"model {name!r}: {spec.import_path} built a {type(model).__name__}, not a LangChain chat model "
            "(BaseChatModel)"
        )
    model.cache = False  # workers compute the answers that fill caches; they never consult one
    if spec.rate_limit is not None:
        model.rate_limiter = InMemoryRateLimiter(
            requests_per_second=spec.rate_limit,
            check_every_n_seconds=min(0.1, 0.25 / spec.rate_limit),
            max_bucket_size=max(1.0, spec.rate_limit),
        )
    return model


def llm_string_of(model: BaseChatModel) -> str:
    """The ``llm_string`` LangChain caches this model's answers under (no stop words, no call kwargs)."""
    return model._get_llm_string()


class ModelRegistry:
    """The models of one settings object, built on first use and shared by the threads of a process."""

    def __init__(self, models: Mapping[str, ComponentSpec]) -> None:
        self._specs = dict(models)
        self._models: dict[str, BaseChatModel] = {}
        self._llm_strings: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return sorted(self._specs)

    def get(self, name: str) -> BaseChatModel:
        with self._lock:
            model = self._models.get(name)
            if model is None:
                spec = self._specs.get(name)
                if spec is None:
                    raise ConfigError(
                        f"no model named {name!r} in settings.models (known: {self.names}); add it, e.g. "
                        f'SLUICE_MODELS=\'{{"{name}": {{"import_path": "pkg.module:ChatClass"}}}}\''
                    )
                model = self._models[name] = build_model(name, spec)
            return model

    def llm_string(self, name: str) -> str:
        if name not in self._llm_strings:
            self._llm_strings[name] = llm_string_of(self.get(name))
        return self._llm_strings[name]

    def name_for(self, llm_string: str) -> str | None:
        """The configured model whose answers are cached under `llm_string`, if any."""
        for name in self.names:
            try:
                if self.llm_string(name) == llm_string:
                    return name
            except ConfigError:
                continue  # a model this process cannot build cannot be the one
        return None
