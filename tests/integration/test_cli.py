"""The operator CLI as a user runs it: `sluice worker`, `status`, `dlq`, as real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage

from sluice.facade.client import Client
from sluice.jobs.models import HistoryAppendPayload
from support.settings import fast_settings
from support.workers import ProcessWorker, ThreadWorker, wait_until, worker_env


def sluice(settings: Any, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluice_workers.cli.main", *args],
        env=worker_env(settings, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_worker_process_applies_history_and_stops_cleanly_on_sigterm(redis8: Any, namespace: str) -> None:
    settings = fast_settings(redis8.url, namespace)
    client = Client(settings)
    a, b = client.chat_history("alice"), client.chat_history("bob")
    with ProcessWorker(settings, "--concurrency", "2") as worker:
        for i in range(25):
            a.add_messages([HumanMessage(f"a{i}"), AIMessage(f"ra{i}", id=f"id{i}")])
            b.add_messages([HumanMessage(f"b{i}")])
        assert [m.content for m in a.messages] == [x for i in range(25) for x in (f"a{i}", f"ra{i}")]
        assert [m.id for m in a.messages if isinstance(m, AIMessage)] == [f"id{i}" for i in range(25)]
        assert [m.content for m in b.messages] == [f"b{i}" for i in range(25)]
        wait_until(lambda: client.status().workers, 10, "a heartbeat")
        check = sluice(settings, "worker", "--check")
        assert check.returncode == 0, check.stdout + check.stderr
        code, output = worker.terminate()
    assert code == 0, output
    assert "stopped: applied={'history-append': 50}" in output
    after = sluice(settings, "worker", "--check")
    assert after.returncode == 1 and "no worker" in after.stdout


def test_status_json_matches_the_queues(redis8: Any, namespace: str) -> None:
    settings = fast_settings(redis8.url, namespace)
    client = Client(settings)
    client.enqueue([HistoryAppendPayload(session_id=f"s{i}", messages=[]) for i in range(40)])
    out = sluice(settings, "status", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["namespace"] == namespace
    assert data["totals"]["backlog"] == 40 == sum(s["length"] for s in data["streams"])
    assert {s["stream"] for s in data["streams"]} >= set(client.keys.streams("history-append"))
    text = sluice(settings, "status")
    assert "backlog 40" in text.stdout


def test_dlq_list_show_retry_and_purge(redis8: Any, namespace: str) -> None:
    settings = fast_settings(redis8.url, namespace)
    client = Client(settings)
    bad = HistoryAppendPayload(session_id="d", messages=[{"type": "alien", "data": {"content": "x"}}])
    with ThreadWorker(settings):
        handles = client.enqueue([bad, bad, bad])
        wait_until(lambda: client.status().dead_letters == 3, 10, "three dead letters")
    listed = json.loads(sluice(settings, "dlq", "list", "--json", "--kind", "history-append").stdout)
    assert len(listed) == 3 and all("alien" in d["error"] for d in listed)
    shown = json.loads(sluice(settings, "dlq", "show", handles[0].entry_id).stdout)
    assert shown["entry_id"] == handles[0].entry_id and "alien" in shown["job"]
    # retrying a job that still fails puts it back in the dead letters with a new entry id
    retried = sluice(settings, "dlq", "retry", listed[0]["id"])
    assert "re-enqueued" in retried.stdout
    with ThreadWorker(settings):
        wait_until(lambda: client.status().totals()["backlog"] == 0, 10, "the retry to run")
    assert client.status().dead_letters == 3
    refused = sluice(settings, "dlq", "purge")
    assert refused.returncode != 0 and "--all" in refused.stderr
    purged = sluice(settings, "dlq", "purge", "--all", "--kind", "history-append")
    assert "purged 3" in purged.stdout
    assert client.status().dead_letters == 0


def test_server_starts_a_local_redis_with_aof_and_stops_on_ctrl_c(tmp_path: Any, redis8: Any) -> None:
    import redis as redis_py

    proc = subprocess.Popen(
        [sys.executable, "-m", "sluice_workers.cli.main", "server", "--dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = ""
        deadline = time.monotonic() + 30
        assert proc.stdout is not None
        while time.monotonic() < deadline and not url:
            line = proc.stdout.readline()
            if line.startswith("export SLUICE_REDIS__URL="):
                url = line.split("=", 1)[1].strip()
        assert url, "no URL printed"
        client = redis_py.Redis.from_url(url)
        assert client.config_get("appendonly")["appendonly"] == "yes"
        assert client.execute_command("FT._LIST") == []  # RediSearch loaded
        client.close()
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=20)[0]
    assert proc.returncode == 0
    assert "stopped" in out
    assert (tmp_path / "data" / "appendonlydir").exists()


# --- `--processes N`: the supervisor --------------------------------------------------------------


def test_processes_with_a_bad_url_exit_2_at_once_like_one_process(redis8: Any, namespace: str) -> None:
    # Given a URL whose port cannot exist
    settings = fast_settings(redis8.url, namespace)
    env = {**worker_env(settings), "SLUICE_REDIS__URL": "redis://localhost:99999/0"}
    for processes in ("1", "2"):
        # When the worker starts, Then it exits with 2 and one line naming the problem, no restart loop
        out = subprocess.run(
            [sys.executable, "-m", "sluice_workers.cli.main", "worker", "--processes", processes],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert out.returncode == 2, out.stderr
        assert "port '99999' is out of range" in out.stderr and "Traceback" not in out.stderr
        assert "; restarting in" not in out.stderr


def test_processes_stop_when_a_child_exits_with_a_configuration_error(redis8: Any, namespace: str) -> None:
    # Given a password the server refuses: only the children find out (they connect)
    settings = fast_settings(redis8.url, namespace)
    env = {**worker_env(settings), "SLUICE_REDIS__URL": redis8.url.replace("redis://", "redis://:wrong@")}
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "sluice_workers.cli.main", "worker", "--processes", "2"],
        env=env, capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    # Then the supervisor does not restart them: it exits with 2, the children's message above its own
    assert out.returncode == 2, out.stderr
    assert "refused the credentials" in out.stderr
    assert "a configuration error" in out.stderr and "; restarting in" not in out.stderr
    assert time.monotonic() - started < 60


def test_processes_restart_a_child_that_dies_and_stop_on_sigterm(redis8: Any, namespace: str) -> None:
    settings = fast_settings(redis8.url, namespace)
    client = Client(settings)

    def pids() -> set[int]:
        return {int(w["pid"]) for w in client.status().workers}

    with ProcessWorker(settings, "--processes", "2") as supervisor:
        wait_until(lambda: len(pids()) == 2, 60, "two worker processes")
        first = pids()
        # When one child is killed
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        # Then the supervisor starts another in its place
        wait_until(lambda: len(pids() - first) == 1, 60, "a replacement process")
        code, output = supervisor.terminate()
    assert "; restarting in" in output
    # And SIGTERM stops the supervisor and its children cleanly
    assert code == 0, output
    client.close()


# --- input files and `sluice warm --embedder` -----------------------------------------------------

MODELS = json.dumps({"fake": {"import_path": "sluice.models.fake:EchoChatModel"}})


def one_line_error(out: subprocess.CompletedProcess[str], *parts: str) -> None:
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    [line] = [s for s in out.stderr.splitlines() if s.startswith("sluice:")]
    for part in parts:
        assert part in line, line


def test_warm_and_index_load_name_a_missing_or_non_utf8_file_in_one_line(
    redis8: Any, namespace: str, tmp_path: Any
) -> None:
    settings = fast_settings(redis8.url, namespace)
    missing = tmp_path / "missing.jsonl"
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes(b'"fine"\n"caf\xe9"\n')
    # When warm reads a file that is not there, or not UTF-8, Then one line names the file (and line), rc 2
    one_line_error(
        sluice(settings, "warm", str(missing), "--model", "fake", SLUICE_MODELS=MODELS), str(missing)
    )
    one_line_error(
        sluice(settings, "warm", str(latin1), "--model", "fake", SLUICE_MODELS=MODELS),
        f"{latin1}:2", "not UTF-8",
    )  # fmt: skip
    # And so does index load
    load = ("index", "load", "--index", "docs", "--embedder", "hashing")
    one_line_error(sluice(settings, *load[:2], str(latin1), *load[2:]), f"{latin1}:2", "not UTF-8")
    one_line_error(sluice(settings, *load[:2], str(missing), *load[2:]), str(missing))
    one_line_error(sluice(settings, *load[:2], str(tmp_path), *load[2:]), str(tmp_path))  # a directory
    # And nothing was enqueued
    assert Client(settings).status().totals()["backlog"] == 0


def test_warm_with_an_embedder_fills_the_semantic_cache_of_its_default_name(
    redis8: Any, namespace: str, tmp_path: Any
) -> None:
    from sluice.embeddings.hashing import HashingEmbeddings
    from sluice.models.prompts import cache_prompt
    from sluice.models.registry import ModelRegistry
    from sluice.settings import ComponentSpec

    settings = fast_settings(redis8.url, namespace).model_copy(
        update={"models": {"fake": ComponentSpec(import_path="sluice.models.fake:EchoChatModel")}}
    )
    client = Client(settings)
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps("what keeps a job until it is acknowledged?") + "\n")
    # Given no semantic cache yet: refused before enqueueing, naming what creates it
    one_line_error(
        sluice(settings, "warm", str(prompts), "--model", "fake", "--embedder", "hashing", SLUICE_MODELS=MODELS),
        "no semantic cache 'semantic'", "client.semantic_cache(",
    )  # fmt: skip
    # Given the app's semantic cache (default name), an unknown embedder is refused before enqueueing
    semantic = client.semantic_cache(HashingEmbeddings(), embedder="hashing")
    llm_string = ModelRegistry(settings.models).llm_string("fake")
    prompt = cache_prompt("what keeps a job until it is acknowledged?")
    assert semantic.lookup(prompt, llm_string) is None  # the first lookup creates its index
    one_line_error(
        sluice(settings, "warm", str(prompts), "--model", "fake", "--embedder", "nosuch", SLUICE_MODELS=MODELS),
        "no embedder named 'nosuch'",
    )  # fmt: skip
    # And so is a cache that holds the app's vectors (no settings embedder to warm it with)
    app_vectors = client.semantic_cache(HashingEmbeddings(), name="appvec")
    assert app_vectors.lookup(prompt, llm_string) is None
    one_line_error(
        sluice(settings, "warm", str(prompts), "--model", "fake", "--embedder", "hashing", "--cache", "appvec", SLUICE_MODELS=MODELS),
        "'appvec' holds the app's vectors",
    )  # fmt: skip
    assert client.status().totals()["backlog"] == 0
    # When warm runs with the cache's embedder and no --cache
    with ThreadWorker(settings):
        out = sluice(
            settings, "warm", str(prompts), "--model", "fake", "--embedder", "hashing", SLUICE_MODELS=MODELS
        )
    # Then the job is applied, the summary says so, and the app's semantic cache hits
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 of 1 prompts warmed into semantic cache 'semantic'" in out.stdout
    hit = semantic.lookup(prompt, llm_string)
    assert hit and "echo: what keeps a job" in hit[0].text
    client.close()
