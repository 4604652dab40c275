"""Deployment files, checked without Docker or Kubernetes: they parse, and every command, module,
file, port, setting, stream and metric they name exists in the code base they deploy."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shlex
import sys
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import BaseModel

from sluice.keys import Keys
from sluice.settings import QueueSettings, Settings, WorkerSettings
from sluice.types import JOB_KINDS
from sluice_workers.cli.main import build_parser
from sluice_workers.runtime.metrics import METRIC_NAMES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = ROOT / "docker-compose.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "sluice.json"
HISTOGRAMS = {"sluice_batch_seconds"}
PROMETHEUS_SERIES = {"up"}  # made by Prometheus itself, not by the workers
FORBIDDEN_COMMANDS = {
    "flushall", "flushdb", "keys", "scan", "config", "debug", "shutdown", "monitor", "acl", "module",
    "module|load", "save", "bgsave", "bgrewriteaof", "replicaof", "slaveof", "failover", "script|flush",
    "function", "migrate", "restore", "swapdb", "move", "eval", "client|kill", "cluster|reset",
}  # fmt: skip


# --- loading -------------------------------------------------------------------------------------


def load_module(path: Path) -> ModuleType:
    name = f"sluice_deploy_{path.parent.name}_{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


@cache
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def service(name: str) -> dict[str, Any]:
    svc = compose()["services"][name]
    assert isinstance(svc, dict)
    return svc


@cache
def manifests() -> list[tuple[Path, dict[str, Any]]]:
    docs: list[tuple[Path, dict[str, Any]]] = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert isinstance(doc, dict), f"{path.name}: every document must be a mapping"
            docs.append((path, doc))
    return docs


def manifest(kind: str, name: str) -> dict[str, Any]:
    found = [d for _, d in manifests() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def configmap() -> dict[str, str]:
    return {k: str(v) for k, v in manifest("ConfigMap", "sluice-config")["data"].items()}


def secret(name: str) -> dict[str, str]:
    return {k: str(v) for k, v in manifest("Secret", name)["stringData"].items()}


def containers() -> Iterator[tuple[str, dict[str, Any]]]:
    for _, doc in manifests():
        if doc["kind"] == "Deployment":
            for c in doc["spec"]["template"]["spec"]["containers"]:
                yield doc["metadata"]["name"], c


def compose_env(svc: dict[str, Any]) -> dict[str, str]:
    """A service's environment with `${VAR:-default}` replaced by its default."""
    env = svc.get("environment", {})
    assert isinstance(env, dict), "use the mapping form of `environment`"
    return {k: re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", str(v)) for k, v in env.items()}


def conf_directives(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw_line in path.read_text().splitlines():
        line = raw_line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            out[key.lower()] = value.strip()
    return out


def volume_mounts(svc: dict[str, Any]) -> dict[str, str]:
    """Host path (relative to the repo) -> container path, for bind mounts."""
    out: dict[str, str] = {}
    for v in svc.get("volumes", []):
        source, target = str(v).split(":")[:2]
        if source.startswith("."):
            out[source] = target
    return out


def mount_target(svc: dict[str, Any], source: str) -> str:
    return volume_mounts(svc)[source]


# --- everything parses ---------------------------------------------------------------------------


def test_compose_and_every_manifest_parse_as_yaml() -> None:
    assert set(compose()["services"]) >= {"redis", "worker", "beat", "prometheus", "grafana"}
    files = [*DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.yaml")]
    assert len(files) >= 12
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            assert isinstance(doc, dict), path
    json.loads(DASHBOARD.read_text())


def test_every_manifest_is_in_the_kustomization_and_names_itself() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present
    for path, doc in manifests():
        if path.name != "kustomization.yaml":
            assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"], path.name
    images = {i["name"] for i in kustomization["images"]}
    assert {c["image"] for _, c in containers()} <= images


# --- commands and modules ------------------------------------------------------------------------


def sluice_commands() -> list[list[str]]:
    """Every command line the deploy files run that starts with `sluice`."""
    commands: list[list[str]] = []
    for svc in compose()["services"].values():
        commands.append([str(a) for a in svc.get("command", [])])
        test = svc.get("healthcheck", {}).get("test", [])
        commands.append([str(a) for a in test[1:]] if test and test[0] == "CMD" else [])
    for _, c in containers():
        commands.append(c.get("command", []))
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            commands.append(c.get(probe, {}).get("exec", {}).get("command", []))
    commands.append(dockerfile_cmd())
    return [c for c in commands if c and c[0] == "sluice"]


def test_every_sluice_command_parses_with_the_real_cli() -> None:
    commands = sluice_commands()
    assert ["sluice", "worker", "--check"] in commands
    assert any(c[:2] == ["sluice", "status"] for c in commands)
    parser = build_parser()
    for command in commands:
        args = parser.parse_args(command[1:])  # SystemExit (a failure) on an unknown command or flag
        assert callable(args.run), command


def test_worker_health_checks_and_probes_use_the_check_command() -> None:
    assert service("worker")["healthcheck"]["test"] == ["CMD", "sluice", "worker", "--check"]
    worker = next(c for name, c in containers() if name == "sluice-worker")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert worker[probe]["exec"]["command"] == ["sluice", "worker", "--check"], probe


def celery_commands() -> list[list[str]]:
    found = [[str(a) for a in service("beat")["command"]]]
    found += [c["command"] for name, c in containers() if name == "sluice-beat"]
    assert all(c[0] == "celery" for c in found)
    return found


def test_beat_runs_celery_beat_with_one_embedded_worker_on_the_sluice_celery_app() -> None:
    from celery.bin.celery import celery as celery_cli

    worker = celery_cli.commands["worker"]
    known = {opt for p in worker.params for opt in (*p.opts, *p.secondary_opts)}
    for command in celery_commands():
        assert command[command.index("-A") + 1] == "sluice_workers.celery_app"
        assert command[command.index("-A") + 2] == "worker"
        assert "--beat" in command  # the beat runs inside the one worker that executes its task
        assert command[command.index("--concurrency") + 1] == "1"
        flags = [a for a in command if a.startswith("-") and a != "-A"]
        assert set(flags) <= known, set(flags) - known


def test_celery_keeps_its_broker_keys_inside_the_namespace() -> None:
    from sluice_workers.celery_app import make_app

    settings = Settings(namespace=configmap()["SLUICE_NAMESPACE"])
    app = make_app(settings)
    assert app.conf.broker_transport_options.get("global_keyprefix") == f"{settings.namespace}:celery:"
    assert app.conf.worker_enable_remote_control is False  # no pidbox pub/sub outside the namespace


def test_exactly_one_beat() -> None:
    assert service("beat")["deploy"]["replicas"] == 1
    beat = manifest("Deployment", "sluice-beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"  # never two during a rollout


# --- the image -----------------------------------------------------------------------------------


@cache
def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments), continuation lines joined, comments dropped."""
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    starts = [i for i, (word, _) in enumerate(dockerfile()) if word == "FROM"]
    return dockerfile()[starts[-1] :]


def dockerfile_cmd() -> list[str]:
    cmd = [args for word, args in final_stage() if word == "CMD"]
    assert len(cmd) == 1
    value = json.loads(cmd[0])
    assert isinstance(value, list)
    return [str(v) for v in value]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, args in final_stage():
        if word == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def test_dockerfile_is_multi_stage_non_root_and_copies_only_existing_sources() -> None:
    stages = [args for word, args in dockerfile() if word == "FROM"]
    assert len(stages) >= 2 and all(" AS " in s.upper() for s in stages)
    users = [args for word, args in final_stage() if word == "USER"]
    assert users and users[-1].split(":")[0].isdigit() and int(users[-1].split(":")[0]) != 0
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    for word, args in dockerfile():
        if word == "COPY" and "--from=" not in args:
            *sources, _ = args.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
                assert f"!{source.rstrip('/')}" in [i.rstrip("/") for i in ignore], (
                    f"{source} is dockerignored"
                )
    installs = " ".join(args for word, args in dockerfile() if word == "RUN" and "pip install" in args)
    assert "[dev]" not in installs and "[server]" not in installs and "-e " not in installs
    # the commands the deploy files run are installed by `pip install '.[worker,beat]'`
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert dockerfile_cmd()[0] == build_parser().prog in project["scripts"]
    assert "'.[worker,beat]'" in installs
    extras = project["optional-dependencies"]
    assert any(d.split(">")[0].split("=")[0].strip() == "celery" for d in extras["beat"])
    assert any(d.split(">")[0].split("=")[0].strip() == "prometheus-client" for d in extras["worker"])
    assert "sluice --help" in installs and "celery --version" in installs  # smoke-tested in the build


# --- ports -----------------------------------------------------------------------------------------


def test_metrics_port_is_the_same_everywhere() -> None:
    port = int(dockerfile_env()["SLUICE_WORKER__METRICS_PORT"])
    assert f"EXPOSE {port}" in [f"{w} {a}" for w, a in final_stage()]
    worker = service("worker")
    assert int(compose_env(worker)["SLUICE_WORKER__METRICS_PORT"]) == port
    assert [int(p) for p in worker["expose"]] == [port]
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "sluice-worker")
    assert job["dns_sd_configs"][0]["names"] == ["worker"]
    assert job["dns_sd_configs"][0]["port"] == port
    assert (
        mount_target(service("prometheus"), "./deploy/prometheus/prometheus.yml")
        == "/etc/prometheus/prometheus.yml"
    )
    assert int(configmap()["SLUICE_WORKER__METRICS_PORT"]) == port
    pod = manifest("Deployment", "sluice-worker")["spec"]["template"]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    container = pod["spec"]["containers"][0]
    assert [p["containerPort"] for p in container["ports"]] == [port]
    policy = manifest("NetworkPolicy", "sluice-redis-only")
    assert [p["port"] for p in policy["spec"]["ingress"][0]["ports"]] == [port]


def test_redis_address_and_port_agree_in_compose() -> None:
    conf = conf_directives(DEPLOY / "redis" / "redis.conf")
    url = urlsplit(compose_env(service("worker"))["SLUICE_REDIS__URL"])
    assert url.hostname == "redis" and url.port == int(conf["port"])
    published = service("redis")["ports"][0].rsplit(":", 1)[1]
    assert int(published) == int(conf["port"])
    grafana_ds = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    ds_url = urlsplit(grafana_ds["datasources"][0]["url"])
    assert ds_url.hostname in compose()["services"]
    assert f"127.0.0.1:{ds_url.port}:{ds_url.port}" in service("prometheus")["ports"]


def test_redis_address_port_and_namespace_agree_in_kubernetes() -> None:
    data = configmap()
    url = urlsplit(data["SLUICE_REDIS__URL"])
    assert data["REDIS_ADDRESS"] == f"{url.hostname}:{url.port}"
    egress = manifest("NetworkPolicy", "sluice-redis-only")["spec"]["egress"]
    redis_rule = next(r for r in egress if any(p["port"] == url.port for p in r["ports"]))
    namespace_label = redis_rule["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
    assert url.hostname is not None and url.hostname.split(".")[1] == namespace_label  # <svc>.<namespace>.svc
    dns = next(r for r in egress if r is not redis_rule)
    assert {p["port"] for p in dns["ports"]} == {53}
    assert len(egress) == 2  # Redis and DNS, nothing else


# --- settings named by the deploy files ----------------------------------------------------------


def settings_field(path: str) -> Any:
    """The pydantic field that an env var `SLUICE_A__B` sets; fails on a typo."""
    model: type[BaseModel] = Settings
    parts = path.removeprefix("SLUICE_").lower().split("__")
    field = None
    for i, part in enumerate(parts):
        assert part in model.model_fields, f"{path}: no setting {part!r} in {model.__name__}"
        field = model.model_fields[part]
        if i < len(parts) - 1:
            assert isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel), path
            model = field.annotation
    return field


def deploy_env_sets() -> list[tuple[str, dict[str, str]]]:
    sets = [(name, compose_env(svc)) for name, svc in compose()["services"].items()]
    sets.append(("configmap + sluice-redis", {**configmap(), **secret("sluice-redis")}))
    sets.append(("configmap + sluice-beat", {**configmap(), **secret("sluice-beat")}))
    sets.append(("Dockerfile", dockerfile_env()))
    return sets


def test_every_sluice_env_var_is_a_real_setting_and_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    from sluice_workers.celery_app import RefreshSettings

    for where, env in deploy_env_sets():
        sluice_env = {k: v for k, v in env.items() if k.startswith("SLUICE_")}
        for key in sluice_env:
            if key.startswith("SLUICE_REFRESH_"):
                name = key.removeprefix("SLUICE_REFRESH_").lower()
                assert name in RefreshSettings.model_fields, f"{where}: {key} is no refresh setting"
            else:
                settings_field(key)
        for key in [k for k in os.environ if k.startswith("SLUICE_")]:
            monkeypatch.delenv(key)
        for key, value in sluice_env.items():
            monkeypatch.setenv(key, value)
        Settings()  # raises on a value of the wrong type
        RefreshSettings()
        assert where


# --- Redis configuration ---------------------------------------------------------------------------


def test_redis_runs_redis8_with_aof_noeviction_and_the_acl_file() -> None:
    redis = service("redis")
    assert str(redis["image"]).split(":")[1].startswith("8")
    conf_target = mount_target(redis, "./deploy/redis/redis.conf")
    assert redis["command"] == ["redis-server", conf_target]
    conf = conf_directives(DEPLOY / "redis" / "redis.conf")
    assert conf["appendonly"] == "yes"
    assert conf["maxmemory-policy"] == "noeviction"  # an evicting policy would drop jobs
    assert conf["aclfile"] == mount_target(redis, "./deploy/redis/users.acl")
    assert conf["dir"] == "/data" and any(str(v).endswith(":/data") for v in redis["volumes"])
    for source in volume_mounts(redis):
        assert (ROOT / source).exists(), source


def test_tls_example_includes_the_plain_config_and_requires_client_certificates() -> None:
    tls = conf_directives(DEPLOY / "redis" / "tls.conf")
    assert tls["include"] == mount_target(service("redis"), "./deploy/redis/redis.conf")
    assert tls["port"] == "0" and tls["tls-port"] == conf_directives(DEPLOY / "redis" / "redis.conf")["port"]
    assert tls["tls-auth-clients"] == "yes"
    for key in ("tls-cert-file", "tls-key-file", "tls-ca-cert-file"):
        assert tls[key].startswith("/tls/")
    for name in ("SLUICE_REDIS__SSL_CA_CERTS", "SLUICE_REDIS__SSL_CERTFILE", "SLUICE_REDIS__SSL_KEYFILE"):
        assert name in (DEPLOY / "redis" / "tls.conf").read_text()
        settings_field(name)


@cache
def acl_module() -> ModuleType:
    return load_module(DEPLOY / "redis" / "acl.py")


def acl_lines() -> dict[str, list[str]]:
    lines = (DEPLOY / "redis" / "users.acl").read_text().splitlines()
    return {line.split()[1]: line.split() for line in lines}


def test_users_acl_is_rendered_from_the_namespace_with_the_example_passwords() -> None:
    acl = acl_module()
    namespace = configmap()["SLUICE_NAMESPACE"]
    assert namespace == compose_env(service("worker"))["SLUICE_NAMESPACE"]
    expected = acl.render(namespace, acl.example_passwords())
    assert (DEPLOY / "redis" / "users.acl").read_text() == expected, "run: python deploy/redis/acl.py"
    users = acl_lines()
    assert set(users) == {"default", "app", "worker", "ops", "keda", "beat"}
    assert "off" in users["default"] and "on" not in users["default"]


def test_deploy_passwords_match_the_acl_hashes() -> None:
    users = acl_lines()

    def hash_of(user: str) -> str:
        return next(r[1:] for r in users[user] if r.startswith("#"))

    def check(user: str, password: str) -> None:
        assert hashlib.sha256(password.encode()).hexdigest() == hash_of(user), user

    def check_url(url: str) -> None:
        parts = urlsplit(url)
        assert parts.username and parts.password, url
        check(parts.username, parts.password)

    for name in ("worker", "beat", "ops"):
        env = compose_env(service(name))
        check(env["SLUICE_REDIS__USERNAME"], env["SLUICE_REDIS__PASSWORD"])
    beat_env = compose_env(service("beat"))
    check_url(beat_env["SLUICE_REFRESH_BROKER_URL"])
    assert urlsplit(beat_env["SLUICE_REFRESH_BROKER_URL"]).username == beat_env["SLUICE_REDIS__USERNAME"]
    check("ops", compose_env(service("redis"))["REDISCLI_AUTH"])
    assert "--user ops" in service("redis")["healthcheck"]["test"][1]
    worker = secret("sluice-redis")
    check(worker["SLUICE_REDIS__USERNAME"], worker["SLUICE_REDIS__PASSWORD"])
    keda = secret("sluice-keda")
    check(keda["username"], keda["password"])
    beat = secret("sluice-beat")
    check(beat["SLUICE_REDIS__USERNAME"], beat["SLUICE_REDIS__PASSWORD"])
    check_url(beat["SLUICE_REFRESH_BROKER_URL"])
    broker, redis_url = (
        urlsplit(beat["SLUICE_REFRESH_BROKER_URL"]),
        urlsplit(configmap()["SLUICE_REDIS__URL"]),
    )
    assert (broker.hostname, broker.port) == (redis_url.hostname, redis_url.port)


def test_acl_rules_are_least_privilege() -> None:
    namespace = configmap()["SLUICE_NAMESPACE"]
    for user, rules in acl_lines().items():
        assert rules[2] == "reset", f"{user} must start from reset"
        flat = " ".join(rules).replace("(", " ").replace(")", " ").split()
        commands = {r[1:].lower() for r in flat if r.startswith("+")}
        assert not any(c.startswith("@") for c in commands), f"{user}: name commands, not categories"
        forbidden = FORBIDDEN_COMMANDS - ({"scan"} if user == "ops" else set())  # ops: migrations
        assert not commands & forbidden, f"{user}: {commands & forbidden}"
        for pattern in [r for r in flat if "~" in r]:
            assert pattern.split("~", 1)[1].startswith(f"{namespace}:"), f"{user}: {pattern}"
        assert not [r for r in flat if r.startswith("&") or r in ("allkeys", "allcommands", "allchannels")]
    app = " ".join(acl_lines()["app"])
    root, *selectors = [part.strip(" )").split() for part in app.split("(")]
    root_commands = {r[1:] for r in root if r.startswith("+")}
    assert {"xadd", "blpop", "evalsha", "script|load"} <= root_commands
    assert [r for r in root if "~" in r] == [f"~{namespace}:jobs:*", f"%R~{namespace}:*"]
    writers = {"set", "hset", "zadd", "zincrby", "del", "unlink", "vadd", "vrem", "json.set", "xack", "xdel"}
    writers |= {"xackdel", "ft.create", "ft.dropindex", "ft.aliasupdate", "eval"}
    assert not root_commands & writers
    for selector in selectors:
        commands = {r[1:] for r in selector if r.startswith("+")}
        patterns = [r for r in selector if "~" in r]
        if commands & writers and commands == {"hget", "hset", "pexpire"}:  # enqueue dedupe buckets
            assert patterns == [f"~{namespace}:jobs:{{*}}:enq:*"]
        elif commands == {"sadd", "pexpire"}:  # pending sets of tracked enqueues
            assert patterns == [f"~{namespace}:jobs:{{*}}:pend:*"]
        elif commands == {"pexpire"}:  # checkpointer reads refresh their thread's TTL
            assert patterns == [f"~{namespace}:cp:*"]
        elif commands == {"evalsha", "script|load", "script|exists", "hpexpire"}:  # store reads refresh TTLs
            assert patterns == [f"~{namespace}:st:*"]
        elif "time" in commands:  # the foreground latency report (governor_report.lua), one hash
            assert commands == {
                "evalsha",
                "evalsha_ro",
                "script|load",
                "script|exists",
                "time",
                "hmget",
                "hset",
                "pexpire",
            }
            assert patterns == [f"~{namespace}:governor"]
        elif commands == {"hincrby", "expire"}:  # per-minute lookup counters (hit rates)
            assert patterns == [f"~{namespace}:cache-meta:*:lookups:*"]
        elif commands & writers:  # only the hit counters of the exact cache
            assert commands == {"zincrby", "hset"}, selector
            assert patterns == [f"~{namespace}:cache-meta:*:hits", f"~{namespace}:cache-meta:*:src"]
        else:
            assert all(c.split(".")[0] in ("ft", "json") or c.startswith("v") for c in commands), selector


# --- KEDA --------------------------------------------------------------------------------------------


def test_keda_triggers_watch_every_partition_stream_of_the_workers_group() -> None:
    data = configmap()
    settings = Settings(
        namespace=data["SLUICE_NAMESPACE"],
        queue=QueueSettings(
            partitions=int(data["SLUICE_QUEUE__PARTITIONS"]), group=data["SLUICE_QUEUE__GROUP"]
        ),
    )
    assert settings.queue.group == QueueSettings().group  # the deployment keeps the default group
    keys = Keys(settings.namespace, settings.queue.partitions)
    expected = {keys.stream(kind, p) for kind in JOB_KINDS for p in range(keys.partitions)}
    scaled = manifest("ScaledObject", "sluice-worker")
    triggers = scaled["spec"]["triggers"]
    assert {t["type"] for t in triggers} == {"redis-streams"}
    assert {t["metadata"]["stream"] for t in triggers} == expected
    assert len(triggers) == len(expected) == len(JOB_KINDS) * keys.partitions
    assert {t["metadata"]["consumerGroup"] for t in triggers} == {settings.queue.group}
    assert all(int(t["metadata"]["lagCount"]) > 0 for t in triggers)
    tls = urlsplit(data["SLUICE_REDIS__URL"]).scheme.startswith("rediss")
    assert {t["metadata"]["enableTLS"] for t in triggers} == {"true" if tls else "false"}


def test_keda_scaled_object_is_generated_and_wired_to_the_deployment() -> None:
    generate = load_module(K8S / "generate.py")
    assert (K8S / "keda-scaledobject.yaml").read_text() == generate.render(), (
        "run: python deploy/k8s/generate.py"
    )
    scaled = manifest("ScaledObject", "sluice-worker")
    assert manifest("Deployment", scaled["spec"]["scaleTargetRef"]["name"])
    assert "replicas" not in manifest("Deployment", "sluice-worker")["spec"]  # KEDA owns it
    for t in scaled["spec"]["triggers"]:
        assert manifest("TriggerAuthentication", t["authenticationRef"]["name"])
        assert t["metadata"]["addressFromEnv"] in configmap()
    auth = manifest("TriggerAuthentication", "sluice-keda")
    for ref in auth["spec"]["secretTargetRef"]:
        assert ref["key"] in secret(ref["name"])


# --- Kubernetes workloads --------------------------------------------------------------------------


def test_worker_deployment_terminates_gracefully_and_runs_unprivileged() -> None:
    worker = manifest("Deployment", "sluice-worker")
    pod = worker["spec"]["template"]["spec"]
    visibility = float(
        configmap().get("SLUICE_WORKER__VISIBILITY_TIMEOUT", WorkerSettings().visibility_timeout)
    )
    assert pod["terminationGracePeriodSeconds"] > visibility
    assert int(service("worker")["stop_grace_period"].rstrip("s")) > visibility
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    pdb = manifest("PodDisruptionBudget", "sluice-worker")
    assert pdb["spec"]["selector"]["matchLabels"] == worker["spec"]["selector"]["matchLabels"]
    labels = worker["spec"]["template"]["metadata"]["labels"]
    policy = manifest("NetworkPolicy", "sluice-redis-only")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()


def test_pods_read_settings_only_from_the_configmap_and_secret_that_exist() -> None:
    for _, c in containers():
        for source in c["envFrom"]:
            ref = source.get("configMapRef") or source.get("secretRef")
            kind = "ConfigMap" if "configMapRef" in source else "Secret"
            assert manifest(kind, ref["name"])


# --- dashboard -----------------------------------------------------------------------------------------

_PROMQL_WORDS = frozenset(
    ["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless"]
)


def metric_names(expr: str) -> set[str]:
    """Series names in a PromQL expression (labels, durations, functions and keywords removed)."""
    text = re.sub(r'"[^"]*"', "", expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[match.end() :].lstrip()
        if not following.startswith("(") and match.group() not in _PROMQL_WORDS:
            names.add(match.group())
    return names


def base_metric(name: str) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name.removesuffix(suffix) in HISTOGRAMS:
            return name.removesuffix(suffix)
    return name


def dashboard_queries() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [re.sub(r"label_values\((\w+),.*", r"\1", v["definition"]) for v in dash["templating"]["list"]]
    return exprs


def test_dashboard_uses_only_metrics_the_workers_export_and_shows_all_of_them() -> None:
    assert metric_names('sum by (le) (rate(sluice_batch_seconds_bucket{kind=~"$kind"}[5m]))') == {
        "sluice_batch_seconds_bucket"
    }
    used: set[str] = set()
    for expr in dashboard_queries():
        names = metric_names(expr)
        assert names, expr
        for name in names:
            assert base_metric(name) in (*METRIC_NAMES, *PROMETHEUS_SERIES), (
                f"unknown metric {name} in {expr}"
            )
        used |= {base_metric(n) for n in names}
    assert used >= set(METRIC_NAMES)


def test_dashboard_is_provisioned_against_the_provisioned_datasource() -> None:
    dash = json.loads(DASHBOARD.read_text())
    datasources = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    uid = datasources["datasources"][0]["uid"]
    for panel in dash["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == uid
            assert all(t["datasource"]["uid"] == uid for t in panel["targets"])
    titles = " ".join(p["title"].lower() for p in dash["panels"])
    for topic in ("throughput", "lag", "pending", "dead letters", "latency"):
        assert topic in titles
    assert any("histogram_quantile(0.99" in e for e in dashboard_queries())
    providers = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "sluice.yml").read_text()
    )
    grafana = service("grafana")
    assert providers["providers"][0]["options"]["path"] == mount_target(
        grafana, "./deploy/grafana/dashboards"
    )
    home = compose_env(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{mount_target(grafana, './deploy/grafana/dashboards')}/{DASHBOARD.name}"
    assert mount_target(grafana, "./deploy/grafana/provisioning") == "/etc/grafana/provisioning"
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {j["job_name"] for j in prometheus["scrape_configs"]}
    for expr in dashboard_queries():
        for job in re.findall(r'job="([^"]+)"', expr):
            assert job in jobs
    assert set(service("prometheus")["profiles"]) == set(grafana["profiles"]) == {"monitoring"}


def test_every_bind_mount_in_compose_exists() -> None:
    for svc in compose()["services"].values():
        for source in volume_mounts(svc):
            assert (ROOT / source).exists(), source
        build = svc.get("build")
        if build:
            assert (ROOT / build["context"] / build["dockerfile"]).exists()
    images = {svc.get("image") for svc in compose()["services"].values() if svc.get("build")}
    assert images == {"sluice:local"}
    assert service("worker")["deploy"]["replicas"] >= 1
