"""The peers' Python: this interpreter when it can import them, else `benchmarks/.venv-peers`.

The environment is created and filled only when an import fails here; when that is impossible
(no network, no venv module) `PeerUnavailable` says exactly what to install.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS_VENV = HERE / ".venv-peers"

# module to import -> pip requirement
REQUIREMENTS = {
    "celery": "celery[redis]>=5.4,<6",
    "redis": "redis>=5",
    "matplotlib": "matplotlib>=3.7",
}


class PeerUnavailable(RuntimeError):
    pass


def _imports(python: str, modules: list[str]) -> bool:
    code = "; ".join(f"import {m}" for m in modules) or "pass"
    return subprocess.run([python, "-c", code], capture_output=True, check=False).returncode == 0


def _venv_python() -> Path:
    return PEERS_VENV / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def python_with(*modules: str, log: bool = True) -> str:
    """A Python executable that can import all `modules` (installing into .venv-peers if needed)."""
    wanted = list(modules)
    if _imports(sys.executable, wanted):
        return sys.executable
    reqs = [REQUIREMENTS[m] for m in wanted]
    how = (
        f"{sys.executable} -m venv {PEERS_VENV} && {_venv_python()} -m pip install "
        + " ".join(f"'{r}'" for r in reqs)
        + f"   (or into this environment: pip install {' '.join(repr(r) for r in reqs)})"
    )
    py = _venv_python()
    try:
        if not py.exists():
            if log:
                print(f"# creating {PEERS_VENV} for {', '.join(wanted)}", file=sys.stderr)
            venv.EnvBuilder(with_pip=True).create(PEERS_VENV)
        if not _imports(str(py), wanted):
            if log:
                print(f"# installing {' '.join(reqs)} into {PEERS_VENV}", file=sys.stderr)
            subprocess.run([str(py), "-m", "pip", "install", "-q", *reqs], check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        raise PeerUnavailable(f"cannot set up {', '.join(wanted)} ({e}); install them with: {how}") from e
    if not _imports(str(py), wanted):
        raise PeerUnavailable(f"{', '.join(wanted)} still not importable; install them with: {how}")
    return str(py)
