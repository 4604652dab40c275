"""Settings refuse what they do not know and keep secrets: a misspelt key — keyword argument,
nested dict, ``SLUICE_*`` variable or a key in its JSON value — is a `ConfigError` naming the
nearest valid key and where the bad one came from; a secret in embedder or model kwargs never
shows in a repr, a dump, an error or a log, yet reaches the constructor as given."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr, ValidationError

from sluice.connection.secrecy import Hidden, hide_secrets, is_secret_name, reveal_secrets
from sluice.embeddings.hashing import HashingEmbeddings
from sluice.embeddings.registry import EmbedderRegistry
from sluice.errors import ConfigError
from sluice.models.fake import EchoChatModel
from sluice.models.registry import ModelRegistry, build_model
from sluice.setting_names import NOT_SETTINGS, check_environment
from sluice.settings import ComponentSpec, QueueSettings, Settings

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sk-live-Zq7xV0-very-secret"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.upper().startswith("SLUICE_")]:
        monkeypatch.delenv(name)


def refusal(make: Any) -> str:
    with pytest.raises(ConfigError) as info:
        make()
    return str(info.value)


# --- misspelt keys ---------------------------------------------------------------------------------

ENV_TYPOS = [
    # (variable, value, the nearest valid name the error must give)
    ("SLUICE_QUEUE__PARTITONS", "8", "SLUICE_QUEUE__PARTITIONS"),
    ("SLUICE_QUEU__PARTITIONS", "8", "SLUICE_QUEUE__PARTITIONS"),
    ("SLUICE_WROKER__CONCURRENCY", "4", "SLUICE_WORKER__CONCURRENCY"),
    ("SLUICE_WORKER__VISIBILTY_TIMEOUT", "60", "SLUICE_WORKER__VISIBILITY_TIMEOUT"),
    ("SLUICE_REDIS_URL", "redis://h:6379/0", "SLUICE_REDIS__URL"),  # one underscore for two
    ("SLUICE_NAMESPCE", "app", "SLUICE_NAMESPACE"),
    ("sluice_limits__max_payload_byte", "4096", "SLUICE_LIMITS__MAX_PAYLOAD_BYTES"),  # any case
    ("SLUICE_DASHBOARD__TOKN", "t0ken", "SLUICE_DASHBOARD__TOKEN"),
    ("SLUICE_EMBEDERS__OPENAI__IMPORT_PATH", "a.b:C", "SLUICE_EMBEDDERS__OPENAI__IMPORT_PATH"),
    ("SLUICE_MODELS__GPT__RATE_LIMT", "2", "SLUICE_MODELS__GPT__RATE_LIMIT"),
    ("SLUICE_QUEUE", '{"partitons": 8}', "'partitions'"),  # a key inside a JSON section
    ("SLUICE_EMBEDDERS", '{"e": {"import_path": "a:b", "kwarg": {}}}', "'e.kwargs'"),
]


@pytest.mark.parametrize(("name", "value", "nearest"), ENV_TYPOS, ids=[t[0] for t in ENV_TYPOS])
def test_a_misspelt_variable_is_refused_naming_the_nearest_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, nearest: str
) -> None:
    # Given a variable pydantic-settings would skip (or a JSON section with a misspelt key)
    monkeypatch.setenv(name, value)
    # When settings are loaded, then the error names the variable, the nearest setting and the source
    message = refusal(Settings)
    assert message.startswith("environment: ") and name in message
    assert f"did you mean {nearest}" in message
    assert value not in message.replace(name, "") or value in nearest  # values are never echoed


KWARG_TYPOS = [
    # (arguments, the bad dotted key, the nearest valid one)
    ({"queue": {"partitons": 8}}, "queue.partitons", "queue.partitions"),
    ({"queu": {"partitions": 8}}, "queu", "queue"),
    ({"worker": {"concurency": 2}}, "worker.concurency", "worker.concurrency"),
    ({"redis": {"pasword": SECRET}}, "redis.pasword", "redis.password"),
    ({"namespce": "app"}, "namespce", "namespace"),
    ({"limits": {"max_batch_job": 5}}, "limits.max_batch_job", "limits.max_batch_jobs"),
    ({"embedders": {"e": {"import_path": "a:b", "kwarg": {}}}}, "embedders.e.kwarg", "embedders.e.kwargs"),
    ({"models": {"m": {"imprt_path": "a:b"}}}, "models.m.imprt_path", "models.m.import_path"),
    ({"vectors": {"tombstone_tl": 1}}, "vectors.tombstone_tl", "vectors.tombstone_ttl"),
    ({"dashboard": {"read_onyl": True}}, "dashboard.read_onyl", "dashboard.read_only"),
]


@pytest.mark.parametrize(("kwargs", "bad", "nearest"), KWARG_TYPOS, ids=[t[1] for t in KWARG_TYPOS])
def test_a_misspelt_argument_is_refused_naming_the_nearest_setting(
    kwargs: dict[str, Any], bad: str, nearest: str
) -> None:
    message = refusal(lambda: Settings(**kwargs))
    assert message.startswith("Settings() arguments: ")
    assert f"unknown setting {bad!r}; did you mean {nearest!r}?" in message
    assert SECRET not in message
    # And the same data given to model_validate (as the CLI does) is refused the same way
    assert f"did you mean {nearest!r}?" in refusal(lambda: Settings.model_validate(kwargs))


def test_a_section_built_on_its_own_refuses_a_misspelt_key_too() -> None:
    assert "QueueSettings: unknown setting 'partitons'; did you mean 'partitions'?" in refusal(
        lambda: QueueSettings(partitons=8)  # type: ignore[call-arg]
    )
    with pytest.raises(ConfigError, match="'import_path'"):
        ComponentSpec.model_validate({"import_pth": "a:b"})


def test_every_misspelling_is_listed_in_one_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_QUEUE__PARTITONS", "8")
    monkeypatch.setenv("SLUICE_WORKER__BACH_SIZE", "8")
    message = refusal(Settings)
    assert "SLUICE_QUEUE__PARTITIONS" in message and "SLUICE_WORKER__BATCH_SIZE" in message


def test_a_name_like_no_setting_lists_the_valid_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_XYZZY", "1")
    assert "the settings here are SLUICE_NAMESPACE, SLUICE_REDIS, SLUICE_QUEUE" in refusal(Settings)
    monkeypatch.delenv("SLUICE_XYZZY")
    monkeypatch.setenv("SLUICE_QUEUE__PARTITIONS__X", "1")
    assert "SLUICE_QUEUE__PARTITIONS is a single value, not a section" in refusal(Settings)


def test_valid_names_load_and_free_form_kwargs_stay_free(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given every form of valid name: a value, a JSON section, a dict entry and free kwargs below it
    env = {
        "SLUICE_QUEUE__PARTITIONS": "8",
        "SLUICE_WORKER": '{"concurrency": 3}',
        "sluice_namespace": "lower",
        "SLUICE_EMBEDDERS__E__IMPORT_PATH": "sluice.embeddings.hashing:HashingEmbeddings",
        "SLUICE_EMBEDDERS__E__KWARGS__DIMS": "16",
        "SLUICE_EMBEDDERS__E__KWARGS__ANY_NAME_AT_ALL": "x",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings(limits={"max_batch_jobs": 5})
    assert settings.queue.partitions == 8 and settings.worker.concurrency == 3
    assert settings.namespace == "lower" and settings.limits.max_batch_jobs == 5
    assert settings.embedders["e"].kwargs == {"dims": "16", "any_name_at_all": "x"}


def test_variables_read_by_other_programs_are_not_settings_and_are_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [*NOT_SETTINGS, "SLUICE_REFRESH_INTERVAL", "SLUICE_ACL_APP_PASSWORD"]:
        monkeypatch.setenv(name, "1")
    Settings()
    # but their look-alikes that would be settings are not
    monkeypatch.setenv("SLUICE_REDIS_PASSWORD", SECRET)
    message = refusal(Settings)
    assert "did you mean SLUICE_REDIS__PASSWORD?" in message and SECRET not in message


SLUICE_NAME = re.compile(r"\bSLUICE_[A-Z0-9_]*[A-Z0-9]\b")
SCANNED = ["shared", "workers", "deploy", "benchmarks", "tools", "tests/support", "tests/servers.py",
           "tests/conftest.py", "tests/integration", "README.md", "docker-compose.yml", "Makefile"]  # fmt: skip
NOT_NAMES = {"SLUICE_A__B"}  # a docstring's example of the form
NOT_NAMES |= {"SLUICE_QUEUE__PARTITONS", "SLUICE_QUEU__PARTITIONS", "SLUICE_REDIS_URL"}  # the docs' typos


def test_every_sluice_variable_the_project_names_is_a_setting_or_listed_as_none() -> None:
    # Given every SLUICE_* name written anywhere in code, deploy files and docs
    names: set[str] = set()
    for entry in SCANNED:
        path = ROOT / entry
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            if "__pycache__" in file.parts:
                continue
            if (
                file.suffix in {".py", ".md", ".yml", ".yaml", ".toml", ".conf", ""}
                or "Dockerfile" in file.name
            ):
                names.update(SLUICE_NAME.findall(file.read_text(errors="replace")))
    names -= NOT_NAMES
    assert len(names) > 40
    # Then each one loads, so no program's variable is refused
    refused = []
    for name in sorted(names):
        try:
            check_environment(Settings, {name: "1"}, "scan")
        except ConfigError:
            refused.append(name)
    assert refused == []


# --- secrets in kwargs -----------------------------------------------------------------------------


class RecordingEmbeddings(HashingEmbeddings):
    """The hashing embedder, keeping the kwargs the registry built it with."""

    received: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, **kwargs: Any) -> None:
        RecordingEmbeddings.received.append(kwargs)
        super().__init__(dims=kwargs.get("dims", 8))


def recording_model(**kwargs: Any) -> BaseChatModel:
    RecordingEmbeddings.received.append(kwargs)
    return EchoChatModel()


def refusing_model(api_key: str, **kwargs: Any) -> BaseChatModel:
    raise ValueError(f"the provider refused the key {api_key!r}")


def refusing_embeddings(api_key: str, **kwargs: Any) -> Any:
    raise TypeError(f"bad key {api_key}")


SECRET_KWARGS: dict[str, Any] = {
    "api_key": SECRET,
    "dims": 8,
    "client": {"headers": {"Authorization": f"Bearer {SECRET}", "Accept": "application/json"}},
    "openaiApiKey": SECRET,
    "base_url": f"https://user:{SECRET}@llm.example/v1",
}


@pytest.fixture
def recorded() -> Iterator[list[dict[str, Any]]]:
    RecordingEmbeddings.received.clear()
    yield RecordingEmbeddings.received
    RecordingEmbeddings.received.clear()


def loaded_with_secrets(monkeypatch: pytest.MonkeyPatch, how: str) -> Settings:
    spec = {"import_path": f"{__name__}:RecordingEmbeddings", "kwargs": SECRET_KWARGS}
    model = {"import_path": f"{__name__}:recording_model", "kwargs": {"api_key": SECRET}}
    if how == "kwargs":
        return Settings(embedders={"e": spec}, models={"m": model})
    if how == "json":
        monkeypatch.setenv("SLUICE_EMBEDDERS", json.dumps({"e": spec}))
        monkeypatch.setenv("SLUICE_MODELS", json.dumps({"m": model}))
        return Settings()
    monkeypatch.setenv("SLUICE_EMBEDDERS__E__IMPORT_PATH", spec["import_path"])
    monkeypatch.setenv("SLUICE_EMBEDDERS__E__KWARGS", json.dumps(SECRET_KWARGS))
    monkeypatch.setenv("SLUICE_MODELS__M__IMPORT_PATH", model["import_path"])
    monkeypatch.setenv("SLUICE_MODELS__M__KWARGS__API_KEY", SECRET)
    return Settings()


@pytest.mark.parametrize("how", ["kwargs", "json", "variables"])
def test_a_secret_in_kwargs_never_shows_but_reaches_the_constructor(
    monkeypatch: pytest.MonkeyPatch, recorded: list[dict[str, Any]], how: str
) -> None:
    # Given settings whose embedder and model kwargs hold an API key (directly, nested, in a URL)
    settings = loaded_with_secrets(monkeypatch, how)
    spec = settings.embedders["e"]
    # Then no text made from the settings shows it
    texts = [
        repr(settings), str(settings), repr(spec), str(spec), repr(settings.embedders), repr(settings.models),
        settings.model_dump_json(), json.dumps(settings.model_dump(mode="json")), str(settings.model_dump()),
        spec.model_dump_json(), str(spec.kwargs), json.dumps(settings.model_dump(), default=str),
    ]  # fmt: skip
    for text in texts:
        assert SECRET not in text
    dumped = settings.model_dump(mode="json")["embedders"]["e"]["kwargs"]
    assert dumped["api_key"] == dumped["openaiApiKey"] == dumped["base_url"] == "**********"
    assert dumped["client"]["headers"] == {"Authorization": "**********", "Accept": "application/json"}
    assert dumped["dims"] == 8
    # And the constructors get the real values, as plain strings
    EmbedderRegistry(settings.embedders).get("e").embed_query("hello")
    ModelRegistry(settings.models).get("m")
    embedder_kwargs, model_kwargs = recorded
    assert embedder_kwargs == SECRET_KWARGS and type(embedder_kwargs["api_key"]) is str
    assert model_kwargs == {"api_key": SECRET}


def test_settings_survive_the_dump_and_validate_round_trip_of_the_cli(
    monkeypatch: pytest.MonkeyPatch, recorded: list[dict[str, Any]]
) -> None:
    from sluice_workers.cli.main import build_parser, settings_from

    loaded_with_secrets(monkeypatch, "variables")
    settings = settings_from(build_parser().parse_args(["--namespace", "ns", "status"]))
    assert settings.namespace == "ns" and SECRET not in repr(settings)
    EmbedderRegistry(settings.embedders).get("e")
    assert recorded[0]["api_key"] == SECRET


def test_the_fingerprint_of_cached_vectors_ignores_the_secrets() -> None:
    # A rotated API key gives the same vectors: the embeddings cache stays valid
    def registry(key: str, dims: int = 8) -> EmbedderRegistry:
        spec = ComponentSpec(import_path="a:B", kwargs={"api_key": key, "dims": dims})
        return EmbedderRegistry({"e": spec})

    assert registry("old").fingerprint("e") == registry("new").fingerprint("e")
    assert registry("old").fingerprint("e") != registry("old", dims=16).fingerprint("e")


def test_no_secret_in_the_errors_of_a_spec_or_a_constructor(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    # Given a spec that fails validation after its kwargs were read
    with pytest.raises(ValidationError) as invalid:
        Settings(embedders={"e": {"kwargs": {"api_key": SECRET}}})  # no import_path
    assert "import_path" in str(invalid.value) and SECRET not in str(invalid.value)
    # And constructors whose own errors quote the key
    models = ModelRegistry(
        {"m": ComponentSpec(import_path=f"{__name__}:refusing_model", kwargs={"api_key": SECRET})}
    )
    with pytest.raises(ConfigError) as model_error:
        models.get("m")
    embedders = EmbedderRegistry(
        {"e": ComponentSpec(import_path=f"{__name__}:refusing_embeddings", kwargs={"api_key": SECRET})}
    )
    with pytest.raises(ConfigError) as embedder_error:
        embedders.get("e")
    # Then the errors say what failed, with the key masked, and chain no error that holds it
    for error in (model_error.value, embedder_error.value):
        assert "**********" in str(error) and SECRET not in str(error)
        assert error.__cause__ is None and error.__suppress_context__
    assert not any(SECRET in r.getMessage() for r in caplog.records)


def test_build_model_passes_a_plain_string(recorded: list[dict[str, Any]]) -> None:
    spec = ComponentSpec(import_path=f"{__name__}:recording_model", kwargs={"token": SECRET, "n": 1})
    assert isinstance(spec.kwargs["token"], Hidden)
    build_model("m", spec)
    assert recorded == [{"token": SECRET, "n": 1}]


@pytest.mark.parametrize(
    "name",
    ["api_key", "openai_api_key", "apiKey", "APIKey", "X-Api-Key", "hf_token", "Authorization", "password",
     "client_secret", "credentials", "aws_secret_access_key", "access_token", "passphrase"],
)  # fmt: skip
def test_secret_looking_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name", ["model", "dims", "max_tokens", "tokenizer", "temperature", "monkey", "base_url"]
)
def test_names_that_are_not_secret(name: str) -> None:
    assert not is_secret_name(name)


def test_hiding_keeps_what_is_not_secret_as_it_was() -> None:
    plain = {"model": "m", "stop": ("a", "b"), "n": [1, 2]}
    assert hide_secrets(plain) is plain
    mixed = {"model": "m", "auth": ("user", "pw"), "url": "https://h/x", "keys": ["k1"]}
    hidden = hide_secrets(mixed)
    assert isinstance(hidden["auth"], tuple) and all(isinstance(v, Hidden) for v in hidden["auth"])
    assert hidden["url"] == "https://h/x" and isinstance(hidden["keys"][0], Hidden)
    assert reveal_secrets(hidden) == mixed
    # A SecretStr the app wrapped itself is passed on as it is (only sluice's own Hidden is revealed)
    own = SecretStr("x")
    assert reveal_secrets({"thing": own})["thing"] is own
