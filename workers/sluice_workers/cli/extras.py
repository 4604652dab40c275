"""Optional dependencies: a command that needs an extra names it instead of failing on an import.

The app side (`pip install sluice`) installs only what `import sluice` uses; each process beside
the app is an extra of the same distribution (see pyproject.toml).
"""

from __future__ import annotations

import importlib.util

from sluice.errors import ConfigError

# extra -> the top-level modules it brings (import names, not distribution names)
EXTRAS: dict[str, tuple[str, ...]] = {
    "worker": ("prometheus_client",),
    "beat": ("celery",),
    "dashboard": ("starlette", "uvicorn", "jinja2", "multipart", "prometheus_client"),
}


def missing(extra: str) -> list[str]:
    return [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None]


def require(extra: str, command: str) -> None:
    """Raise ConfigError (exit status 2) naming the extra when a module of it is not installed."""
    absent = missing(extra)
    if absent:
        raise ConfigError(
            f"`sluice {command}` needs the {extra!r} extra ({', '.join(absent)} not installed): "
            f"pip install 'sluice[{extra}]'"
        )
