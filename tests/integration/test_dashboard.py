"""`sluice dashboard` in headless Chromium: a real Redis, a real worker, the page as an operator sees it.

Chromium is Debian's (`apt-get install chromium`), driven by Playwright's Python client with
`executable_path`; nothing downloads a browser. A missing Chromium skips these tests, or fails
them under CI=true, like a missing redis-server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from langchain_core.messages import HumanMessage

from servers import Missing, need
from sluice.facade.client import Client
from sluice.jobs.models import HistoryAppendPayload, IndexDocument, IndexPayload
from sluice.settings import DashboardSettings, Settings
from support.settings import fast_settings
from support.workers import ThreadWorker, wait_until, worker_env

CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
XSS = "<script>alert(1)</script>"


def chromium_binary() -> str:
    path = os.environ.get("SLUICE_CHROMIUM", "/usr/bin/chromium")
    if not os.access(path, os.X_OK):
        raise Missing(
            f"Chromium not found at {path}: `apt-get install chromium` (Debian) or set SLUICE_CHROMIUM"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        raise Missing("the Playwright Python client is missing: `pip install -e '.[dev]'`") from None
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium with a fresh profile for this module; a new page per test."""
    path = need(chromium_binary)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="sluice-chromium-") as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=path,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1360, "height": 900},
        )
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs
    try:
        yield page
    finally:
        page.close()


def dashboard(settings: Settings, **options: Any) -> Any:
    from sluice_workers.dashboard.server import DashboardServer

    board = settings.model_copy(update={"dashboard": DashboardSettings(port=0, **options)})
    return DashboardServer(board)


def sluice_status_json(settings: Settings) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "sluice_workers.cli.main", "status", "--json"],
        env=worker_env(settings), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def text_of(page: Any, selector: str) -> str:
    return str(page.locator(selector).inner_text()).strip()


def test_numbers_on_the_page_match_sluice_status_json(redis8: Any, namespace: str, page: Any) -> None:
    # Given a backlog of chat appends no worker consumes, and a worker serving index jobs only
    settings = fast_settings(redis8.url, namespace, kinds=["index"])
    client = Client(settings)
    client.enqueue([HistoryAppendPayload(session_id=f"s{i}", messages=[]) for i in range(30)])
    with ThreadWorker(settings), dashboard(settings) as board:
        wait_until(lambda: len(client.status().workers) == 1, 10, "the worker's heartbeat")
        wait_until(
            lambda: all(s.consumers for s in client.status().streams if s.kind == "index"), 10, "consumers"
        )
        # When the operator opens the page, and `sluice status --json` runs
        page.goto(board.url + "/")
        expected = sluice_status_json(settings)
        page.reload()
        # Then every total and every stream row shows the same numbers
        for name in ("backlog", "pending", "dead_letters", "workers"):
            assert text_of(page, f'[data-metric="{name}"]') == str(expected["totals"][name]), name
        assert expected["totals"]["backlog"] == 30
        for s in expected["streams"]:
            row = f'tr[data-stream="{s["stream"]}"]'
            assert text_of(page, f'{row} [data-field="length"]') == str(s["length"])
            assert text_of(page, f'{row} [data-field="pending"]') == str(s["pending"])
            assert text_of(page, f'{row} [data-field="lag"]') == ("-" if s["lag"] is None else str(s["lag"]))
            assert text_of(page, f'{row} [data-field="consumers"]') == str(len(s["consumers"]))
        assert page.locator('[data-testid="workers"] tbody tr').count() == 1
        # and the JSON endpoint is the same document
        api = httpx.get(board.url + "/api/status").json()
        assert api["totals"] == expected["totals"]


def test_a_dead_letter_is_inspected_then_retried_and_applied(redis8: Any, namespace: str, page: Any) -> None:
    # Given an index job for an index that does not exist yet: it is dead-lettered
    settings = fast_settings(redis8.url, namespace)
    client = Client(settings)
    doc = IndexDocument(
        id="doc-1", text="sluice keeps jobs", metadata={"api_key": "sk-very-secret", "lang": "en"}
    )
    with ThreadWorker(settings), dashboard(settings) as board:
        client.enqueue([IndexPayload(index="kb", upserts=[doc], embedder="hashing")])
        wait_until(lambda: client.status().dead_letters == 1, 15, "the dead letter")
        # When the operator opens it from the table
        page.goto(board.url + "/")
        page.locator('[data-testid="dead-letters"] a').first.click()
        # Then it shows the reason and the payload, with the secret redacted
        assert "does not exist" in text_of(page, '[data-testid="dead-letter-error"]')
        payload = text_of(page, '[data-testid="payload"]')
        assert "sluice keeps jobs" in payload and "[redacted]" in payload
        assert "sk-very-secret" not in page.content()
        # When the index is created and the operator retries the entry, confirming on the next page
        store = client.vectorstore("kb", "hashing")
        assert store.get_by_ids(["doc-1"]) == []
        page.goto(board.url + "/")
        page.locator('[data-testid="dead-letters"] input[name="id"]').first.check()
        page.get_by_role("button", name="Retry selected…").click()
        assert page.url.startswith(board.url + "/dead-letters/confirm")
        page.locator('[data-testid="confirm"]').click()
        # Then it is re-enqueued, applied by the worker, and gone from the dead letters
        assert "1 dead letter(s) re-enqueued" in text_of(page, '[data-testid="notice"]')
        wait_until(
            lambda: [d.page_content for d in store.get_by_ids(["doc-1"])] == ["sluice keeps jobs"],
            15,
            "applied",
        )
        assert client.status().dead_letters == 0
        page.goto(board.url + "/")
        assert page.locator('[data-testid="no-dead-letters"]').count() == 1


def test_read_only_mode_refuses_actions_even_when_posted_directly(
    redis8: Any, namespace: str, page: Any
) -> None:
    # Given a dead letter and a read-only dashboard
    settings = fast_settings(redis8.url, namespace)
    client = Client(settings)
    bad = HistoryAppendPayload(session_id="d", messages=[{"type": "alien", "data": {"content": "x"}}])
    with ThreadWorker(settings):
        client.enqueue([bad])
        wait_until(lambda: client.status().dead_letters == 1, 15, "the dead letter")
    with dashboard(settings, read_only=True) as board:
        # Then the page offers no action
        page.goto(board.url + "/")
        assert text_of(page, '[data-testid="read-only"]') == "read-only"
        assert page.locator('[data-testid="dead-letters"] input[type="checkbox"]').count() == 0
        assert page.get_by_role("button", name="Retry selected…").count() == 0
        ident = text_of(page, '[data-testid="dead-letters"] tbody a')
        # and the confirmation page and the actions answer 403, from the browser or posted directly
        response = page.goto(f"{board.url}/dead-letters/confirm?action=retry&id={ident}")
        assert response.status == 403
        status = page.evaluate(
            """async (id) => (await fetch('/actions/retry', {method: 'POST',
                 headers: {'Content-Type': 'application/x-www-form-urlencoded'},
                 body: 'id=' + encodeURIComponent(id) + '&csrf=anything'})).status""",
            ident,
        )
        assert status == 403
        with httpx.Client(base_url=board.url) as http:
            http.get("/")  # a session cookie, as a browser would have
            session = http.cookies["sluice_dashboard"]
            token = board.app.state.dashboard.guard.csrf_token(session)  # even a valid CSRF token
            for action in ("retry", "purge"):
                refused = http.post(f"/actions/{action}", data={"id": ident, "csrf": token})
                assert refused.status_code == 403, action
        assert client.status().dead_letters == 1


def test_actions_need_the_sessions_csrf_token(redis8: Any, namespace: str) -> None:
    settings = fast_settings(redis8.url, namespace)
    client = Client(settings)
    bad = HistoryAppendPayload(session_id="d", messages=[{"type": "alien", "data": {"content": "x"}}])
    with ThreadWorker(settings):
        client.enqueue([bad, bad])
        wait_until(lambda: client.status().dead_letters == 2, 15, "two dead letters")
    ids = [d.id for d in client_dead(client)]
    with dashboard(settings) as board, httpx.Client(base_url=board.url) as http:
        http.get("/")
        token = board.app.state.dashboard.guard.csrf_token(http.cookies["sluice_dashboard"])
        assert http.post("/actions/purge", data={"id": ids[0]}).status_code == 403  # no token
        assert http.post("/actions/purge", data={"id": ids[0], "csrf": "0" * 64}).status_code == 403
        other = httpx.post(board.url + "/actions/purge", data={"id": ids[0], "csrf": token})  # no cookie
        assert other.status_code == 403
        cross = http.post(
            "/actions/purge", data={"id": ids[0], "csrf": token}, headers={"Origin": "http://evil.example"}
        )
        assert cross.status_code == 403
        assert client.status().dead_letters == 2
        done = http.post("/actions/purge", data={"id": ids[0], "csrf": token})
        assert done.status_code == 303 and done.headers["location"] == "/?done=purge&n=1&missing=0"
        assert client.status().dead_letters == 1


def client_dead(client: Client) -> list[Any]:
    from sluice.ops.deadletters import DeadLetters

    return DeadLetters(client.redis, client.keys).recent(10)


def test_html_from_redis_shows_as_text(redis8: Any, namespace: str, page: Any) -> None:
    # Given a session id and a dead letter's error that both hold a script tag
    settings = fast_settings(redis8.url, namespace)
    client = Client(settings)
    with ThreadWorker(settings), dashboard(settings, refresh_seconds=1) as board:
        client.chat_history(XSS).add_messages([HumanMessage("hello")])
        client.enqueue(
            [HistoryAppendPayload(session_id="x", messages=[{"type": XSS, "data": {"content": "x"}}])]
        )
        wait_until(lambda: client.status().dead_letters == 1, 15, "the dead letter")
        # When the operator opens the page and the dead letter
        page.goto(board.url + "/")
        # Then the values read as text, no script runs, and the only script is the page's own
        assert XSS in text_of(page, '[data-testid="sessions"] td.session')
        assert XSS in text_of(page, '[data-testid="dead-letters"] [data-field="error"]')
        assert page.locator("script").count() == 1
        page.locator('[data-testid="dead-letters"] a').first.click()
        assert XSS in text_of(page, '[data-testid="dead-letter-error"]')
        assert page.locator("script").count() == 1
        # and a refresh of the live sections keeps it that way
        page.goto(board.url + "/")
        wait_until(lambda: ":" in text_of(page, "#updated"), 15, "a live refresh")  # "updated HH:MM:SS"
        assert XSS in text_of(page, '[data-testid="sessions"] td.session')
        assert page.locator("script").count() == 1
        assert page.dialogs == []
        assert "&lt;script&gt;" in httpx.get(board.url + "/live").text


def test_a_token_is_required_when_set(redis8: Any, namespace: str) -> None:
    from pydantic import SecretStr

    settings = fast_settings(redis8.url, namespace)
    with dashboard(settings, token=SecretStr("s3cret"), username="ops") as board:
        assert httpx.get(board.url + "/").status_code == 401
        assert httpx.get(board.url + "/", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(board.url + "/", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert httpx.get(board.url + "/api/status", auth=("ops", "s3cret")).status_code == 200
        assert httpx.get(board.url + "/api/status", auth=("root", "s3cret")).status_code == 401
        assert httpx.get(board.url + "/healthz").status_code == 200
        headers = httpx.get(board.url + "/", headers={"Authorization": "Bearer s3cret"}).headers
        assert "script-src 'self'" in headers["content-security-policy"]
