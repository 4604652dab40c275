"""Security properties that need no server: the packages' source never deserialises or executes
data (scanned with `ast`), code is imported only from settings, and passwords stay out of reprs,
errors and logs. Server-side properties (ACL namespace isolation, a job naming an import path) are
in `tests/integration/test_isolation.py`."""

from __future__ import annotations

import ast
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from sluice.connection.factory import connect, plan_connection
from sluice.connection.urls import parse_url
from sluice.embeddings.registry import EmbedderRegistry
from sluice.errors import ConfigError, JobDecodeError, RedisUnavailable
from sluice.facade.client import Client
from sluice.jobs.codec import FIELD, decode
from sluice.models.registry import ModelRegistry
from sluice.settings import ComponentSpec, RedisSettings, Settings

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [ROOT / "shared" / "sluice", ROOT / "workers" / "sluice_workers"]
REGISTRIES = {"shared/sluice/embeddings/registry.py", "shared/sluice/models/registry.py"}
"""The only modules that import code by a name computed at run time (a settings import path)."""

FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle", "jsonpickle"}
FORBIDDEN_BUILTINS = {"eval", "exec", "compile", "__import__"}
DYNAMIC_IMPORTS = {
    "import_module",
    "spec_from_file_location",
    "module_from_spec",
    "exec_module",
    "load_module",
}


def sources() -> Iterator[tuple[str, ast.Module]]:
    for package in PACKAGES:
        for path in sorted(package.rglob("*.py")):
            yield str(path.relative_to(ROOT)), ast.parse(path.read_text(), str(path))


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def findings() -> list[str]:
    out = []
    for where, tree in sources():
        for node in ast.walk(tree):
            line = f"{where}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Import):
                out += [
                    f"{line} imports {a.name}"
                    for a in node.names
                    if a.name.split(".")[0] in FORBIDDEN_MODULES
                ]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FORBIDDEN_MODULES:
                out.append(f"{line} imports from {node.module}")
            elif isinstance(node, ast.Call):
                name = _name(node.func)
                if isinstance(node.func, ast.Name) and name in FORBIDDEN_BUILTINS:
                    out.append(f"{line} calls {name}()")
                literal = all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args)
                if name in DYNAMIC_IMPORTS and where not in REGISTRIES and not literal:
                    out.append(f"{line} imports code by a computed name ({name})")
                if name == "load" and _name(getattr(node.func, "value", node.func)) == "yaml":
                    out.append(f"{line} calls yaml.load (use yaml.safe_load)")
                if any(
                    k.arg == "shell" and isinstance(k.value, ast.Constant) and k.value.value
                    for k in node.keywords
                ):
                    out.append(f"{line} runs a shell (shell=True)")
    return out


def test_no_pickle_marshal_eval_exec_or_dynamic_import_outside_the_registries() -> None:
    assert findings() == []


def test_the_scan_finds_what_it_looks_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a module with each forbidden construct, the scanner reports every one of them
    bad = tmp_path / "shared" / "sluice"
    bad.mkdir(parents=True)
    (bad / "evil.py").write_text(
        "import pickle\nimport importlib\nfrom marshal import loads\n"
        "def f(data, name):\n    eval(data)\n    exec(data)\n    importlib.import_module(name)\n"
        "    __import__(name)\n    importlib.import_module('json')\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "PACKAGES", [bad])
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    found = findings()
    assert len(found) == 6, found  # the literal import_module('json') is allowed
    assert {f.split(" ", 1)[1] for f in found} >= {"imports pickle", "calls eval()", "calls exec()"}


def test_registries_are_built_only_from_settings() -> None:
    # Every EmbedderRegistry(...) / ModelRegistry(...) is given `<settings>.embedders` / `.models`
    wrong = []
    for where, tree in sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node.func) in ("EmbedderRegistry", "ModelRegistry"):
                wanted = "embedders" if _name(node.func) == "EmbedderRegistry" else "models"
                arg = node.args[0] if node.args else None
                if not (isinstance(arg, ast.Attribute) and arg.attr == wanted):
                    wrong.append(f"{where}:{node.lineno}")
    assert wrong == []


def test_the_celery_app_accepts_json_only() -> None:
    from sluice_workers.celery_app import make_app

    conf = make_app(Settings()).conf
    assert conf.task_serializer == "json" and conf.result_serializer == "json"
    assert set(conf.accept_content) == {"json"}


# --- code comes from settings, never from data -----------------------------------------------------------


@pytest.fixture
def trap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An importable module that leaves a mark when imported: it must never be."""
    marker = tmp_path / "imported"
    (tmp_path / "sluice_trap_module.py").write_text(
        f"open({str(marker)!r}, 'w').write('imported')\nclass Boom:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return marker


def test_a_name_that_looks_like_an_import_path_is_only_a_name(trap: Path) -> None:
    models, embedders = ModelRegistry(Settings().models), EmbedderRegistry(Settings().embedders)
    for resolve in (models.get, embedders.get, embedders.spec):
        with pytest.raises(ConfigError, match=r"no .*named 'sluice_trap_module:Boom'"):
            resolve("sluice_trap_module:Boom")
    assert not trap.exists() and "sluice_trap_module" not in sys.modules


@pytest.mark.parametrize(
    "payload",
    [
        '{"kind":"cache-warm","model":"x","llm_string":"l","prompts":["p"],"import_path":"sluice_trap_module:Boom"}',
        '{"kind":"index","index":"i","upserts":[],"embedder_spec":{"import_path":"sluice_trap_module:Boom"}}',
        '{"kind":"sluice_trap_module:Boom"}',
    ],
)
def test_a_job_carrying_an_import_path_field_is_refused(trap: Path, payload: str) -> None:
    raw = '{"v":1,"namespace":"n","payload":' + payload + "}"
    with pytest.raises(JobDecodeError):
        decode("s", "1-1", {FIELD: raw.encode()})
    assert not trap.exists()


def test_an_import_path_in_settings_is_imported(trap: Path) -> None:
    # The one way code gets in: the operator's settings
    registry = EmbedderRegistry({"trap": ComponentSpec(import_path="sluice_trap_module:Boom")})
    with pytest.raises(ConfigError, match="did not give a LangChain Embeddings"):
        registry.get("trap")
    assert trap.exists()


# --- passwords stay out of reprs, errors and logs ----------------------------------------------------------

PW = "Pw-Zq7-n0t-in-logs"
URLS = [
    f"redis://app:{PW}@127.0.0.1:{{port}}/0",
    f"redis+sentinel://app:{PW}@127.0.0.1:{{port}}/mymaster?sentinel_password={PW}",
    f"redis://app:{PW}@127.0.0.1:{{port}}/0?socket_timeout=0.2",
]


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def leaks(text: str) -> bool:
    return PW in text or PW.replace("-", "%2D") in text


@pytest.mark.parametrize("template", URLS)
def test_no_password_in_reprs_of_settings_specs_plans_and_clients(template: str) -> None:
    url = template.format(port=closed_port())
    settings = Settings(
        redis=RedisSettings(url=SecretStr(url), password=SecretStr(PW), sentinel_password=SecretStr(PW))
    )
    things: list[Any] = [settings, settings.redis, parse_url(url), plan_connection(settings.redis)]
    things += [connect(settings.redis), Client(settings)]
    for thing in things:
        assert not leaks(repr(thing)), type(thing).__name__
        assert not leaks(str(thing)), type(thing).__name__
    assert not leaks(settings.model_dump_json()) and not leaks(str(settings.model_dump()))


def chain(error: BaseException) -> str:
    """Everything an error shows in a traceback: its text, its repr, and those of its causes."""
    parts = []
    seen: BaseException | None = error
    while seen is not None:
        parts += [str(seen), repr(seen), str(seen.args)]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


@pytest.mark.parametrize("template", URLS)
def test_no_password_in_the_errors_or_logs_of_a_failed_connect(
    template: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a URL with a password, pointing at a port where nothing listens
    url = template.format(port=closed_port())
    settings = Settings(redis=RedisSettings(url=SecretStr(url), socket_connect_timeout=0.2, retries=1))
    caplog.set_level(logging.DEBUG)
    client = Client(settings)
    # When the app reads and enqueues (every log level captured, redis-py's own included)
    for call in (lambda: client.chat_history("s").messages, client.status, client.redis.ping):
        with pytest.raises(Exception) as info:
            call()
        # Then the error and its causes say what failed, never with the password
        assert not leaks(chain(info.value))
    with pytest.raises(RedisUnavailable) as unavailable:
        client.chat_history("s").messages
    assert "cannot reach Redis" in str(unavailable.value) or "Sentinel" in str(unavailable.value)
    assert not any(leaks(r.getMessage()) or leaks(str(r.args)) for r in caplog.records)


def test_no_password_in_the_logs_of_a_worker_that_cannot_connect(caplog: pytest.LogCaptureFixture) -> None:
    from sluice_workers.runtime.process import run_process

    url = f"redis://worker:{PW}@127.0.0.1:{closed_port()}/0"
    settings = Settings(redis=RedisSettings(url=SecretStr(url), socket_connect_timeout=0.2, retries=0))
    caplog.set_level(logging.DEBUG)
    stop = threading.Event()
    timer = threading.Timer(1.5, stop.set)
    timer.start()
    run_process(settings, 0, stop)  # waits for Redis, logging each attempt, until stopped
    timer.join()
    messages = [r.getMessage() for r in caplog.records]
    assert any("waiting for Redis" in m for m in messages)
    assert not any(leaks(m) for m in messages)


@pytest.mark.parametrize(
    "url",
    [
        f"redis://app:{PW}@host:notaport/0",
        f"redis://app:{PW}@host/x",
        f"redis://app:{PW}/0@host",
        f"redis+sentinel://app:{PW}@h1:1/svc?sentinel_password={PW}&bogus=1",
        f"redis://app:{PW}@host?password={PW}",
    ],
)
def test_no_password_in_url_errors_even_when_settings_are_loaded(url: str) -> None:
    settings = Settings(redis=RedisSettings(url=SecretStr(url)))
    with pytest.raises(ConfigError) as info:
        Client(settings).redis
    assert not leaks(chain(info.value))
    assert not leaks(repr(settings))
