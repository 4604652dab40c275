"""The README's quick start runs as written (against a test server, with a worker)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from langchain_core.globals import set_llm_cache

from support.settings import fast_settings
from support.workers import ThreadWorker

README = Path(__file__).resolve().parents[2] / "README.md"


def quick_start() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Quick start") :]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return str(blocks[0])


def test_the_quick_start_runs_as_written(redis8: Any, namespace: str) -> None:
    code = quick_start().replace("redis://localhost:6379/0", redis8.url).replace('"myapp"', f'"{namespace}"')
    assert "from sluice import Client" in code
    scope: dict[str, Any] = {}
    try:
        with ThreadWorker(fast_settings(redis8.url, namespace)):
            exec(compile(code, "README.md", "exec"), scope)
    finally:
        set_llm_cache(None)  # the quick start sets the global LangChain cache
    assert [d.page_content for d in scope["hits"]] == [
        "Redis Streams keep a job until a consumer acknowledges it"
    ]
    assert len(scope["ids"]) == 2
    scope["cache"].close()
