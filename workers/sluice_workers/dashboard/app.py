"""The web app: routes, templates, and the two actions (retry, purge) with their guards.

Pages are rendered on the server with Jinja2 (autoescape on for every template: a value read
from Redis is always text). `/live` returns the same sections for the page's refresh script.
Actions are POSTs that need the session's CSRF token and a same-origin request; in read-only
mode they, and their confirmation page, answer 403 whatever the request looks like.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final, Literal

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from sluice.connection.secrecy import redact_url
from sluice.errors import SluiceError
from sluice.ops import stores
from sluice.ops.deadletters import DeadLetter
from sluice.settings import Settings
from sluice_workers.dashboard.format import FILTERS
from sluice_workers.dashboard.redact import payload_text
from sluice_workers.dashboard.security import CSRF_FIELD, Guard, SecurityMiddleware, same_origin
from sluice_workers.dashboard.snapshot import Source

HERE: Final = Path(__file__).parent
MAX_SELECTED: Final = 500
Action = Literal["retry", "purge"]
ACTIONS: Final[tuple[Action, ...]] = ("retry", "purge")
DONE: Final = {"retry": "re-enqueued", "purge": "purged"}


def templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every template, whatever its name: values from Redis are text
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    return Jinja2Templates(env=env)


class Dashboard:
    """Route handlers around one `Source`."""

    def __init__(self, source: Source, guard: Guard) -> None:
        self.source = source
        self.guard = guard
        self.settings = source.settings.dashboard
        self.templates = templates()

    # --- helpers -----------------------------------------------------------------------------
    def _context(self, request: Request, **extra: Any) -> dict[str, Any]:
        return {
            "namespace": self.source.keys.namespace,
            "redis_url": redact_url(self.source.settings.redis.url.get_secret_value()),
            "read_only": self.settings.read_only,
            "refresh": self.settings.refresh_seconds,
            "csrf": self.guard.csrf_token(request.state.session),
            "csrf_field": CSRF_FIELD,
            **extra,
        }

    def _page(self, request: Request, name: str, status_code: int = 200, **extra: Any) -> Response:
        return self.templates.TemplateResponse(
            request, name, self._context(request, **extra), status_code=status_code
        )

    def _refuse(self, request: Request, why: str) -> Response:
        return self._page(request, "refused.html", status_code=403, why=why)

    # --- pages -------------------------------------------------------------------------------
    def overview(self, request: Request) -> Response:
        done = request.query_params.get("done")
        notice = None
        if done in DONE:
            notice = f"{_int(request.query_params.get('n'))} dead letter(s) {DONE[done]}"
            missing = _int(request.query_params.get("missing"))
            if missing:
                notice += f"; {missing} were already gone"
        return self._page(request, "overview.html", snap=self.source.take(), notice=notice)

    def live(self, request: Request) -> Response:
        return self._page(request, "live.html", snap=self.source.take())

    def dead_letter(self, request: Request) -> Response:
        letter = self._find(request.path_params["ident"])
        if letter is None:
            return self._page(request, "missing.html", status_code=404, ident=request.path_params["ident"])
        return self._page(request, "dead_letter.html", d=letter, payload=payload_text(letter.job))

    def confirm(self, request: Request) -> Response:
        if self.settings.read_only:
            return self._refuse(request, "the dashboard runs read-only")
        action = request.query_params.get("action")
        if action not in ACTIONS:
            raise HTTPException(400, "action must be retry or purge")
        ids = request.query_params.getlist("id")[:MAX_SELECTED]
        letters = [d for d in (self._find(i) for i in ids) if d is not None]
        return self._page(
            request, "confirm.html", action=action, letters=letters, missing=len(ids) - len(letters)
        )

    async def act(self, request: Request) -> Response:
        action = request.path_params["action"]
        if action not in ACTIONS:
            raise HTTPException(404)
        if self.settings.read_only:
            return self._refuse(request, "the dashboard runs read-only: retry and purge are disabled")
        if not same_origin(request):
            return self._refuse(request, "the request came from another site")
        form = await request.form()
        token = form.get(CSRF_FIELD)
        if not self.guard.csrf_ok(request.state.session, token if isinstance(token, str) else None):
            return self._refuse(
                request, "the form is stale or was not sent by this page; reload and try again"
            )
        ids = [str(i) for i in form.getlist("id")][:MAX_SELECTED]
        done, missing = await run_in_threadpool(self._apply, action, ids)
        return RedirectResponse(f"/?done={action}&n={done}&missing={missing}", status_code=303)

    def _apply(self, action: Action, ids: list[str]) -> tuple[int, int]:
        letters = [d for d in (self._find(i) for i in ids) if d is not None]
        done = len(self.source.dead.retry(letters)) if action == "retry" else self.source.dead.purge(letters)
        return done, len(ids) - len(letters)

    def _find(self, ident: str) -> DeadLetter | None:
        if not ident or len(ident) > 64:
            return None
        try:
            return self.source.dead.get(ident)
        except SluiceError as e:
            if "no dead letter" in str(e):
                return None
            raise

    # --- machine-readable ----------------------------------------------------------------------
    def api_status(self, request: Request) -> Response:
        """The same document as `sluice status --json`."""
        return Response(
            json.dumps(self.source.status().as_dict(), default=str), media_type="application/json"
        )

    def api_stores(self, request: Request) -> Response:
        summary = stores.collect(
            self.source.redis,
            self.source.keys,
            caches=self.settings.caches,
            indexes=self.settings.indexes,
            cluster=self.source.cluster,
        )
        return JSONResponse(json.loads(json.dumps(summary.as_dict(), default=str)))


def _int(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def create_app(settings: Settings, redis: Any, *, cluster: bool = False) -> Starlette:
    """The ASGI app over an open sync redis-py client (`sluice.connection.factory.connect`)."""
    dash = Dashboard(
        Source(redis, settings, cluster=cluster), Guard(settings.dashboard.token, settings.dashboard.username)
    )

    async def unavailable(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(f"sluice dashboard: {exc}", status_code=503)

    routes = [
        Route("/", dash.overview),
        Route("/live", dash.live),
        Route("/dead-letters/confirm", dash.confirm),
        Route("/dead-letters/{ident}", dash.dead_letter),
        Route("/actions/{action}", dash.act, methods=["POST"]),
        Route("/api/status", dash.api_status),
        Route("/api/stores", dash.api_stores),
        Route("/healthz", lambda request: PlainTextResponse("ok")),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityMiddleware, guard=dash.guard)],
        exception_handlers={SluiceError: unavailable},
    )
    app.state.dashboard = dash
    return app
