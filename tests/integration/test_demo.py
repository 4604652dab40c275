"""`sluice demo` as a newcomer runs it: no Redis configured, exit 0, a summary, nothing left running."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from sluice.embeddings import minilm
from support.workers import wait_until


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0): look at its state
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_demo_runs_end_to_end_on_an_embedded_redis_and_cleans_up(redis8: object) -> None:
    # redis8 is requested only so that a missing Redis 8 binary fails/skips with the harness's reason
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    out = subprocess.run(
        [sys.executable, "-m", "sluice_workers.cli.main", "demo", "--turns", "8"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "embedded redis-server" in out.stdout
    assert re.search(r"workers ready after \d+\.\d s", out.stdout)  # steps are timed from then
    assert "conversation (history-append)" in out.stdout
    assert "16 messages read back in order" in out.stdout
    assert "agent memory (checkpoint)" in out.stdout
    assert "4 turns over 2 clients, each saw every earlier one; 20 checkpoints in its history" in out.stdout
    assert "300 documents" in out.stdout and "5/5 queries answered" in out.stdout
    assert "exact cache: LangChain calls (sync)" in out.stdout and "hit rate 8/8" in out.stdout
    assert "semantic cache: paraphrases, near-misses" in out.stdout
    if minilm.available() or os.environ.get("CI"):  # dev and demo install it (sluice[embed]); CI must have it
        assert "embeddings: minilm" in out.stdout
        assert "paraphrases served 4/4; near-misses refused 4/4" in out.stdout
        assert re.search(r"hit +0\.\d\d  'I forgot my password, how can I reset it\?'", out.stdout)
        assert "(the verifier: only one is negated ('not'))" in out.stdout
    else:
        assert "embeddings: hashing (lexical, not semantic" in out.stdout
    assert "dead letters 0" in out.stdout
    assert "sluice worker" in out.stdout and "sluice status" in out.stdout
    pids = [int(p) for p in re.findall(r"pid (\d+)", out.stdout)]
    pids += [int(p) for p in re.findall(r"pids \[(\d+), (\d+)\]", out.stdout)[0]]
    assert len(pids) == 3
    wait_until(lambda: not any(alive(p) for p in pids), 10, "demo processes to exit")
