"""Least privilege, proven on a real Redis 8.2 loaded with deploy/redis/users.acl and the
directives of deploy/redis/redis.conf: the app enqueues and reads but cannot write a store, a
worker does its whole job and nothing admin, ops runs `sluice status` / `sluice dlq`, and KEDA
reads the lag of the streams its triggers name."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import redis as redis_py
import yaml
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import Generation
from pydantic import SecretStr

import servers
from sluice.embeddings.hashing import HashingEmbeddings
from sluice.errors import PermissionDenied
from sluice.facade.client import Client
from sluice.jobs.models import HistoryAppendPayload
from sluice.keys import Keys
from sluice.models.registry import ModelRegistry
from sluice.settings import Settings
from sluice.stores.history import HistoryStore, HistoryWrite
from sluice.transport.translate import translate_errors
from sluice.vectors.backend import BackendChoice
from sluice_workers.cli.main import main as sluice_main
from support.settings import fast_settings
from support.workers import ProcessWorker, wait_until, worker_env

ROOT = Path(__file__).resolve().parents[2]
REDIS_DIR = ROOT / "deploy" / "redis"
NAMESPACE = "sluice"  # users.acl is rendered for the default namespace
ENVIRONMENT = {"port", "bind", "dir", "aclfile", "daemonize", "include"}  # set by the harness / the test


def acl_module() -> ModuleType:
    name = "sluice_deploy_redis_acl"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REDIS_DIR / "acl.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


PASSWORDS: dict[str, str] = acl_module().example_passwords()


def deploy_directives() -> list[str]:
    """deploy/redis/redis.conf without what only makes sense inside the container."""
    lines = []
    for raw_line in (REDIS_DIR / "redis.conf").read_text().splitlines():
        line = raw_line.strip()
        if line and not line.startswith("#") and line.split()[0].lower() not in ENVIRONMENT:
            lines.append(line)
    return lines


@pytest.fixture(scope="module")
def server() -> Iterator[servers.RedisServer]:
    """Redis 8.2 + modules with the deploy configuration and ACL file. DEBUG and MODULE are
    enabled on purpose, so that refusing them is the ACL's doing."""
    config = [
        *deploy_directives(), f'aclfile "{REDIS_DIR / "users.acl"}"',
        "enable-debug-command yes", "enable-module-command yes",
    ]  # fmt: skip
    srv = servers.RedisServer(
        servers.need(servers.redis8_binary), modules=servers.need(servers.stack_modules), config=config,
        username="ops", password=PASSWORDS["ops"], name="acl",
    )  # fmt: skip
    try:
        yield srv.start()
    finally:
        srv.cleanup()


def settings_as(server: servers.RedisServer, user: str) -> Settings:
    base = fast_settings(server.url, NAMESPACE)
    creds = {"username": user, "password": SecretStr(PASSWORDS[user])}
    return base.model_copy(update={"redis": base.redis.model_copy(update=creds)})


def raw(server: servers.RedisServer, user: str) -> redis_py.Redis:
    return server.client(username=user, password=PASSWORDS[user])


def url_as(server: servers.RedisServer, user: str) -> str:
    return f"redis://{user}:{PASSWORDS[user]}@127.0.0.1:{server.port}/0"


@pytest.fixture(scope="module")
def worker(server: servers.RedisServer) -> Iterator[ProcessWorker]:
    """A real `sluice worker` process connected as the `worker` user, as a deployment runs it."""
    settings = settings_as(server, "worker")
    env = worker_env(settings, SLUICE_REDIS__USERNAME="worker", SLUICE_REDIS__PASSWORD=PASSWORDS["worker"])
    proc = ProcessWorker(settings, "--concurrency", "2", env=env).start()
    try:
        keys = Keys(NAMESPACE)
        probe = raw(server, "ops")
        wait_until(lambda: bool(probe.zcard(keys.workers())), 30, "the worker's first heartbeat")
        yield proc
    finally:
        code, output = proc.terminate()
        assert code == 0, output
        assert "NOPERM" not in output and "PermissionDenied" not in output, output


@pytest.fixture
def app(server: servers.RedisServer) -> Iterator[Client]:
    client = Client(settings_as(server, "app"))
    yield client
    client.close()


def refused(call: Any) -> str:
    """Run a redis-py call through sluice's error translation; it must be refused for permissions."""
    with pytest.raises(PermissionDenied) as info, translate_errors("test"):
        call()
    return str(info.value)


def test_the_default_user_is_switched_off(server: servers.RedisServer) -> None:
    anonymous = server.client(username=None, password=None)
    message = refused(anonymous.ping)
    assert "credentials" in message or "permission" in message


def test_app_enqueues_waits_for_and_reads_its_history(app: Client, worker: ProcessWorker) -> None:
    # Given the app user and a worker user's worker: enqueue (EVALSHA enqueue.lua), wait
    # (XINFO GROUPS, XPENDING, MGET, BLPOP) and read (ZRANGE) are all the app needs
    history = app.chat_history("alice")
    history.add_messages([HumanMessage("hello"), AIMessage("hi there", id="a1")])
    history.add_messages([HumanMessage("bye")])
    assert [m.content for m in history.messages] == ["hello", "hi there", "bye"]
    # fire-and-forget too
    app.producer.enqueue_many([HistoryAppendPayload(session_id="bob", messages=[])])
    assert not app.capabilities.cluster  # probed without INFO and MODULE LIST (HELLO, COMMAND INFO)


def test_app_runs_a_checkpointer_but_cannot_write_checkpoints(app: Client, worker: ProcessWorker) -> None:
    # Given the app user with a checkpointer whose threads expire (a read refreshes the TTL)
    from langgraph.checkpoint.base import empty_checkpoint

    from sluice.jobs.models import CheckpointPayload
    from sluice.scripts import source
    from sluice.stores.checkpoints import write_call

    saver = app.checkpointer(ttl=600)
    config = {"configurable": {"thread_id": "acl-thread", "checkpoint_ns": ""}}
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"messages": ["hello"]}
    checkpoint["channel_versions"] = {"messages": "1"}
    # When it puts a checkpoint and a task's writes (tracked enqueues: SADD to a pending set),
    # reads them back (SMEMBERS, EVALSHA_RO, PEXPIRE), copies and prunes the thread
    stored = saver.put(config, checkpoint, {"source": "input", "step": -1}, {"messages": "1"})
    saver.put_writes(stored, [("messages", "pending")], "task-1")
    found = saver.get_tuple(config)
    # Then all of it works, and the worker applied every job
    assert found is not None and found.checkpoint["channel_values"] == {"messages": ["hello"]}
    assert found.pending_writes == [("task-1", "messages", "pending")]
    saver.copy_thread("acl-thread", "acl-copy")
    saver.prune(["acl-copy"])
    assert [t.checkpoint["id"] for t in saver.list({"configurable": {"thread_id": "acl-copy"}})] == [
        checkpoint["id"]
    ]
    # But the app cannot write a checkpoint itself
    forged = CheckpointPayload(thread_id="acl-thread", op="delete")
    call = write_call(app.keys, forged, "1-0")
    assert "permission" in refused(
        lambda: app.redis.evalsha(
            app.redis.script_load(source("checkpoint_write")),
            len(call.keys),
            *call.keys,
            *call.args,
        )
    )
    refused(lambda: app.redis.delete(app.keys.checkpoint_keys("acl-thread")[1]))
    assert saver.get_tuple(config) is not None


def test_app_runs_a_langgraph_store_but_cannot_write_items(app: Client, worker: ProcessWorker) -> None:
    # Given the app user with a semantic store whose items expire (reads refresh them: HPEXPIRE)
    from sluice.scripts import source
    from sluice.stores.items import write_call

    store = app.store(index={"dims": 256, "embed": "hashing"}, ttl={"default_ttl": 10})
    # When it puts (a tracked enqueue), gets, searches by meaning and lists namespaces
    store.put(("acl", "ada"), "m1", {"text": "likes redis streams", "tag": "a"})
    store.put(("acl", "ada"), "m2", {"text": "bakes bread", "tag": "b"})
    # Then all of it works
    assert store.get(("acl", "ada"), "m1") is not None
    assert [i.key for i in store.search(("acl",), query="redis streams", filter={"tag": "a"})] == ["m1"]
    assert {i.key for i in store.search(("acl",))} == {"m1", "m2"}
    assert store.list_namespaces(prefix=("acl",)) == [("acl", "ada")]
    store.delete(("acl", "ada"), "m2")
    assert store.get(("acl", "ada"), "m2") is None
    # But the app cannot write an item itself
    call = write_call(app.keys, ["acl", "ada"], "m1", "99999999999999-0", None, None)  # newer than any
    sha = app.redis.script_load(source("store_write"))
    refused(lambda: app.redis.evalsha(sha, len(call.keys), *call.keys, *call.args))
    refused(lambda: app.redis.hset(call.keys[0], "forged", "x"))
    assert store.get(("acl", "ada"), "m1") is not None


def test_app_gets_permission_denied_writing_a_store(app: Client, worker: ProcessWorker) -> None:
    keys = app.keys
    app.chat_history("carol").add_messages([HumanMessage("mine")])
    write = HistoryWrite("carol", "1-0", "append", [{"type": "human", "data": {"content": "forged"}}])
    assert "permission" in refused(lambda: HistoryStore(app.redis, keys).write([write]))
    refused(lambda: app.redis.set(f"{NAMESPACE}:cache:default:x", "forged"))
    refused(lambda: app.redis.zadd(keys.history("carol"), {"forged": 0}))
    refused(lambda: app.redis.delete(keys.history("carol")))
    stream = keys.stream("history-append", 0)
    refused(lambda: app.redis.xack(stream, "workers", "0-1"))
    refused(lambda: app.redis.xdel(stream, "0-1"))
    refused(lambda: app.redis.xadd(keys.dead_letters(), {"job": "x"}))
    refused(
        lambda: app.redis.execute_command(
            "FT.CREATE", f"{NAMESPACE}:idx:evil", "ON", "HASH", "SCHEMA", "t", "TEXT"
        )
    )
    refused(app.redis.flushall)
    assert [m.content for m in app.chat_history("carol").messages] == ["mine"]


def test_app_reads_search_vector_and_json_stores_but_cannot_write_them(
    server: servers.RedisServer, app: Client
) -> None:
    # Given an index ops created and stores the worker wrote (module commands need selectors)
    raw(server, "ops").execute_command(
        "FT.CREATE", f"{NAMESPACE}:idx:acl", "ON", "HASH", "PREFIX", "1", f"{NAMESPACE}:doc:acl:", "SCHEMA", "text", "TEXT"
    )  # fmt: skip
    w = raw(server, "worker")
    w.hset(f"{NAMESPACE}:doc:acl:1", mapping={"text": "redis streams"})
    w.execute_command("VADD", f"{NAMESPACE}:vec:acl", "VALUES", 2, 1.0, 0.0, "v1")
    w.execute_command("JSON.SET", f"{NAMESPACE}:json:acl", "$", '{"a": 1}')
    # When the app reads them, Then it gets the data
    r = app.redis
    found = r.execute_command("FT.SEARCH", f"{NAMESPACE}:idx:acl", "streams")
    assert found[0] == 1
    assert r.execute_command("VSIM", f"{NAMESPACE}:vec:acl", "VALUES", 2, 1.0, 0.0) == [b"v1"]
    assert json.loads(r.execute_command("JSON.GET", f"{NAMESPACE}:json:acl")) == {"a": 1}
    # and it cannot write them
    refused(lambda: r.execute_command("VADD", f"{NAMESPACE}:vec:acl", "VALUES", 2, 0.0, 1.0, "evil"))
    refused(lambda: r.execute_command("JSON.SET", f"{NAMESPACE}:json:acl", "$", "1"))
    refused(lambda: r.hset(f"{NAMESPACE}:doc:acl:2", mapping={"text": "forged"}))
    refused(lambda: r.execute_command("FT.DROPINDEX", f"{NAMESPACE}:idx:acl", "DD"))
    # nor read outside the namespace
    refused(lambda: r.get("other-app:secret"))


def test_worker_user_is_refused_admin_and_keyspace_wide_commands(server: servers.RedisServer) -> None:
    w = raw(server, "worker")
    for command in (
        ("FLUSHALL",), ("FLUSHDB",), ("CONFIG", "GET", "*"), ("KEYS", "*"), ("SCAN", "0"),
        ("DEBUG", "SLEEP", "0"), ("ACL", "LIST"), ("SHUTDOWN", "NOSAVE"), ("MODULE", "LOAD", "/x.so"),
        ("SCRIPT", "FLUSH"), ("EVAL", "return 1", "0"), ("FUNCTION", "LIST"),
    ):  # fmt: skip
        message = refused(lambda c=command: w.execute_command(*c))
        assert "permission" in message, command
    refused(lambda: w.set("other-app:key", "x"))
    refused(lambda: w.execute_command("FT.CREATE", "other-app:idx", "ON", "HASH", "SCHEMA", "t", "TEXT"))
    refused(lambda: w.execute_command("FT.CREATE", f"{NAMESPACE}:idx:w", "ON", "HASH", "SCHEMA", "t", "TEXT"))
    refused(lambda: w.execute_command("FT.DROPINDEX", f"{NAMESPACE}:idx:any"))
    assert server.running


def test_worker_check_passes_for_the_running_worker(
    server: servers.RedisServer, worker: ProcessWorker, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        sluice_main(["--url", url_as(server, "worker"), "--namespace", NAMESPACE, "worker", "--check"]) == 0
    )
    assert "beat" in capsys.readouterr().out


def test_keda_reads_the_lag_of_every_stream_its_triggers_name(
    server: servers.RedisServer, worker: ProcessWorker
) -> None:
    scaled = yaml.safe_load((ROOT / "deploy" / "k8s" / "keda-scaledobject.yaml").read_text())
    keda = raw(server, "keda")
    for t in scaled["spec"]["triggers"]:
        stream, group = t["metadata"]["stream"], t["metadata"]["consumerGroup"]
        groups = {g["name"]: g for g in keda.xinfo_groups(stream)}  # the worker created them
        assert group in groups and groups[group]["lag"] is not None, stream
        keda.xpending(stream, group)
        keda.xlen(stream)
    refused(lambda: keda.get(f"{NAMESPACE}:cache:default:x"))
    refused(lambda: keda.xadd(scaled["spec"]["triggers"][0]["metadata"]["stream"], {"job": "x"}))


def test_ops_runs_status_and_the_dead_letter_commands(
    server: servers.RedisServer, app: Client, worker: ProcessWorker, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two dead letters: an entry no worker can decode, and a job the handler refuses
    stream = app.keys.stream("history-append", 1)
    app.redis.xadd(stream, {"job": b"not a job"})
    (refused_job,) = app.enqueue([HistoryAppendPayload(session_id="bad", messages=[{"type": "alien"}])])
    ops = url_as(server, "ops")

    def status() -> dict[str, Any]:
        capsys.readouterr()
        assert sluice_main(["--url", ops, "--namespace", NAMESPACE, "status", "--json"]) == 0
        data: dict[str, Any] = json.loads(capsys.readouterr().out)
        return data

    wait_until(lambda: status()["dead_letters"] == 2, 15, "both entries to be dead-lettered")
    assert status()["workers"], "ops sees the worker's heartbeat"
    # When ops lists, retries and purges dead letters
    assert sluice_main(["--url", ops, "--namespace", NAMESPACE, "dlq", "list", "--json"]) == 0
    listed = {d["entry_id"]: d for d in json.loads(capsys.readouterr().out)}
    assert {d["stream"] for d in listed.values()} == {stream, refused_job.stream}
    job = listed[refused_job.entry_id]
    (undecodable,) = [d for d in listed.values() if d["kind"] == "unknown"]
    # an entry that holds no job cannot be retried, and says so
    assert sluice_main(["--url", ops, "--namespace", NAMESPACE, "dlq", "retry", undecodable["id"]]) == 2
    assert "holds no valid job" in capsys.readouterr().err
    # a job is enqueued again (through enqueue.lua, which ops may run) and fails again
    assert sluice_main(["--url", ops, "--namespace", NAMESPACE, "dlq", "retry", job["id"]]) == 0
    assert "re-enqueued" in capsys.readouterr().out
    wait_until(lambda: status()["dead_letters"] == 2, 15, "the retried job to fail again")
    assert sluice_main(["--url", ops, "--namespace", NAMESPACE, "dlq", "purge", "--all"]) == 0
    assert "purged 2" in capsys.readouterr().out
    # Then ops may write nothing else
    o = raw(server, "ops")
    refused(lambda: o.set(f"{NAMESPACE}:cache:default:x", "x"))
    refused(lambda: o.xdel(stream, "0-1"))
    refused(lambda: o.zadd(app.keys.history("alice"), {"x": 0}))
    refused(o.flushall)


def test_ops_loads_an_index_and_follows_its_jobs_to_applied(
    server: servers.RedisServer, worker: ProcessWorker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a JSON-lines file of documents
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"id": f"d{i}", "text": f"document {i}"}) + "\n" for i in range(20)))
    # When ops loads it: the index created, the jobs enqueued, and followed (job_state.lua, a
    # read-only script) until the worker has applied them
    ops = url_as(server, "ops")
    load = ["index", "load", str(path), "--index", "acl-load", "--embedder", "hashing"]
    code = sluice_main(["--url", ops, "--namespace", NAMESPACE, *load])
    # Then every document is indexed, and ops says so
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "20 of 20 documents indexed into 'acl-load'" in out.out


def test_app_uses_the_exact_llm_cache_through_the_workers(app: Client, worker: ProcessWorker) -> None:
    # Given the app's cache in background mode: a fill is a job the worker applies (cache_write.lua)
    cache = app.llm_cache(name="acl")
    cache.update("what is sluice?", "llm-a", [Generation(text="a write-behind memory")])
    # When the app looks it up (waiting for its own fill), Then it reads the worker's write
    found = cache.lookup("what is sluice?", "llm-a")
    assert found is not None and [g.text for g in found] == ["a write-behind memory"]
    cache.flush_hits()  # hit counters: the app's one write outside the job streams
    # And its lookup latency reaches the workers' governor (governor_report.lua on ns:governor)
    for _ in range(app.settings.governor.report_min_lookups):
        cache.lookup("what is sluice?", "llm-a")
    app.foreground.report()
    assert app.foreground.last is not None
    assert app.redis.hget(app.keys.governor(), "fg_kind") == b"exact"
    # But writing the cache itself, directly, is refused (skipped and counted: a cache never
    # fails the LLM call whose answer it was given), and nothing is written
    direct = app.llm_cache(name="acl", write="direct")
    direct.update("forged", "llm-a", [Generation(text="x")])
    assert direct.skipped.counts["PermissionDenied"] == 1
    assert direct.lookup("forged", "llm-a") is None


def ops_client(server: servers.RedisServer) -> Client:
    return Client(settings_as(server, "ops"))


@pytest.mark.parametrize("backend", ["search", "vsets"])
def test_ops_creates_vector_indexes_and_semantic_caches(
    server: servers.RedisServer, backend: BackendChoice
) -> None:
    ops = ops_client(server)
    try:
        assert ops.vectorstore(f"acl-{backend}", "hashing", backend=backend).get_by_ids(["none"]) == []
        if backend == "search":  # a lookup on Vector Sets runs a script, which ops may not
            ops.semantic_cache(HashingEmbeddings(), name="acl-search", backend=backend).lookup("p", "llm")
    finally:
        ops.close()


@pytest.mark.parametrize("backend", ["search", "vsets"])
def test_app_indexes_and_queries_vectors_in_an_index_ops_created(
    server: servers.RedisServer, app: Client, worker: ProcessWorker, backend: BackendChoice
) -> None:
    test_ops_creates_vector_indexes_and_semantic_caches(server, backend)
    store = app.vectorstore(f"acl-{backend}", "hashing", backend=backend)
    store.add_texts(["redis streams carry the jobs", "grafana shows the lag"], ids=["a", "b"])
    assert [d.id for d in store.similarity_search("streams of jobs", k=1)] == ["a"]
    if backend == "search":
        semantic = app.semantic_cache(HashingEmbeddings(), name="acl-search", backend=backend)
        semantic.update("what carries the jobs?", "llm", [Generation(text="streams")])
        found = semantic.lookup("what carries the jobs?", "llm")
        assert found is not None and found[0].text == "streams"
    # an index the app would have to create is refused
    refused(lambda: app.vectorstore("acl-new", "hashing", backend=backend).get_by_ids(["x"]))


def test_beat_refreshes_hot_cache_entries_as_the_beat_user(
    server: servers.RedisServer, tmp_path: Path
) -> None:
    from sluice_workers.celery_app import make_app

    conf = make_app(Settings(namespace=NAMESPACE)).conf
    if conf.broker_transport_options.get("global_keyprefix") != f"{NAMESPACE}:celery:" or conf.get(
        "worker_enable_remote_control", True
    ):
        pytest.xfail("sluice_workers.celery_app keeps Celery's broker keys outside the namespace")
    # Given a hot exact-cache entry about to expire, with how to recompute it
    keys, w = Keys(NAMESPACE), raw(server, "worker")
    llm_string = ModelRegistry(Settings().models).llm_string("fake")
    w.set(keys.cache_entry_of("default", "m1"), "x", px=60_000)
    w.zadd(keys.cache_hits("default"), {"m1": 10})
    w.hset(
        keys.cache_sources("default"), "m1", json.dumps({"llm_string": llm_string, "prompt": "hi", "ttl": 60})
    )
    # When the beat runs exactly as docker-compose runs it, as the `beat` user
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    command = [str(a) for a in compose["services"]["beat"]["command"]]
    command[command.index("--schedule") + 1] = str(tmp_path / "schedule")
    password = PASSWORDS["beat"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env |= {
        "SLUICE_NAMESPACE": NAMESPACE, "SLUICE_REDIS__URL": server.url, "SLUICE_REDIS__USERNAME": "beat",
        "SLUICE_REDIS__PASSWORD": password, "SLUICE_REFRESH_INTERVAL": "0.5",
        "SLUICE_REFRESH_BROKER_URL": f"redis://beat:{password}@127.0.0.1:{server.port}/0",
    }  # fmt: skip
    log = tmp_path / "beat.log"
    executable = str(Path(sys.executable).parent / command[0])
    with log.open("wb") as out:
        proc = subprocess.Popen([executable, *command[1:]], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        # Then it enqueues one cache-warm job for the entry (and claims it). The module's worker
        # may already have applied and deleted it: count entries ever added, not entries left.
        warm = keys.streams("cache-warm")
        ops = raw(server, "ops")

        def added() -> int:
            return sum(int(ops.xinfo_stream(s)["entries-added"]) for s in warm if ops.exists(s))

        wait_until(lambda: added() >= 1, 60, "a cache-warm job (see beat.log)")
        time.sleep(1.5)  # a few more beats: the claim must keep it at one
        assert added() == 1
        assert w.exists(keys.cache_warming("default", "m1"))
    finally:
        proc.terminate()
        proc.wait(15)
    output = log.read_text()
    assert "NOPERM" not in output and "no permissions" not in output.lower(), output[-3000:]
