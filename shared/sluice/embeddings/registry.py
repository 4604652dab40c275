"""Embedders by *name*: settings map each name to an import path and keyword arguments.

Use `EmbedderRegistry(settings.embedders).get(name)` wherever a name must become an instance
(the index worker, a facade given a name). Only settings name import paths: a job payload or a
stored value carries the name, so a worker never imports code named by data. Instances are
built once per name and shared (embedders hold models and sessions worth reusing).
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Mapping
from typing import Any

from langchain_core.embeddings import Embeddings

from sluice.connection.secrecy import scrub_secrets
from sluice.errors import ConfigError
from sluice.keys import digest
from sluice.settings import ComponentSpec


def load_component(spec: ComponentSpec, what: str) -> Any:
    """Import `spec.import_path` ('module:attribute') and call it with `spec.kwargs` (secrets revealed)."""
    module_name, _, attribute = spec.import_path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(
            f"{what}: cannot import module {module_name!r} ({e}); install the package that provides it "
            "or fix import_path in the settings"
        ) from e
    factory: Any = module
    for part in attribute.split("."):
        factory = getattr(factory, part, None)
        if factory is None:
            raise ConfigError(
                f"{what}: module {module_name!r} has no attribute {attribute!r}; fix import_path"
            )
    if not callable(factory):
        raise ConfigError(f"{what}: {spec.import_path} is not a class or factory; fix import_path")
    try:
        return factory(**spec.revealed_kwargs())
    except TypeError as e:  # not chained: the constructor's own error may quote a secret
        raise ConfigError(
            f"{what}: {spec.import_path}(**kwargs) failed ({scrub_secrets(str(e), spec.kwargs)}); "
            "fix kwargs in the settings"
        ) from None


class EmbedderRegistry:
    """Resolves embedder names from settings to `Embeddings` instances, cached per name."""

    def __init__(self, specs: Mapping[str, ComponentSpec]) -> None:
        self._specs = dict(specs)
        self._instances: dict[str, Embeddings] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return sorted(self._specs)

    def spec(self, name: str) -> ComponentSpec:
        spec = self._specs.get(name)
        if spec is None:
            raise ConfigError(
                f"no embedder named {name!r} in the settings (known: {self.names()}); add it under "
                f'SLUICE_EMBEDDERS (e.g. SLUICE_EMBEDDERS=\'{{"{name}": {{"import_path": "pkg.mod:Class"}}}}\')'
            )
        return spec

    def get(self, name: str) -> Embeddings:
        """The instance for `name`, built on first use."""
        with self._lock:
            instance = self._instances.get(name)
            if instance is None:
                instance = load_component(self.spec(name), f"embedder {name!r}")
                if not (hasattr(instance, "embed_documents") and hasattr(instance, "embed_query")):
                    raise ConfigError(
                        f"embedder {name!r}: {self.spec(name).import_path} did not give a LangChain "
                        "Embeddings (no embed_documents / embed_query)"
                    )
                self._instances[name] = instance
            return instance

    def fingerprint(self, name: str) -> str:
        """Identifies name + import path + kwargs: cached vectors change when the embedder does.

        Secret kwargs count as ``**********``: a rotated API key keeps the cached vectors.
        """
        spec = self.spec(name)
        ident = json.dumps([name, spec.import_path, spec.kwargs], sort_keys=True, default=str)
        return digest(ident)[:16]
