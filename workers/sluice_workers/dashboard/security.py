"""Who may see the page and who may act: optional token, per-session CSRF tokens, strict headers.

- **Token** (`DashboardSettings.token`): when set, every request needs ``Authorization: Bearer
  <token>`` or basic auth with the configured user name and the token as password (what a
  browser prompts for). Compared in constant time.
- **Session and CSRF**: the first response sets an HttpOnly, SameSite=Strict cookie holding a
  random session id; a form's CSRF token is an HMAC of that id with a per-process secret. An
  action is refused (403) without the cookie, without a matching token, or from another origin.
- **Headers**: a Content-Security-Policy that allows scripts and styles from this origin only
  (an injected ``<script>`` would not run even if escaping failed), no framing, no sniffing,
  no caching, no referrer outside this origin.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Final

from pydantic import SecretStr
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

COOKIE: Final = "sluice_dashboard"
CSRF_FIELD: Final = "csrf"
HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # "no-referrer" would make browsers send `Origin: null` on POST
    "Cache-Control": "no-store",
}


class Guard:
    """The checks, independent of the web framework's plumbing (unit-testable)."""

    def __init__(self, token: SecretStr | None, username: str, secret: bytes | None = None) -> None:
        self._token = token.get_secret_value().encode() if token is not None else None
        self._username = username.encode()
        self._secret = secret or secrets.token_bytes(32)

    @property
    def protected(self) -> bool:
        return self._token is not None

    def authorized(self, header: str | None) -> bool:
        if self._token is None:
            return True
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return hmac.compare_digest(value.strip().encode(), self._token)
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value.strip(), validate=True).partition(b":")
            except (binascii.Error, ValueError):
                return False
            ok_user = hmac.compare_digest(user, self._username)
            ok_password = hmac.compare_digest(password, self._token)
            return ok_user and ok_password
        return False

    def csrf_token(self, session: str) -> str:
        return hmac.new(self._secret, session.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: str | None, token: str | None) -> bool:
        if not session or not token:
            return False
        return hmac.compare_digest(self.csrf_token(session), token)


def same_origin(request: Request) -> bool:
    """A browser's POST names its origin (and, in current browsers, Sec-Fetch-Site); another is refused."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None  # "null" comes from sandboxed or privacy-redirected contexts: refuse
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


class SecurityMiddleware(BaseHTTPMiddleware):
    """Authentication, the session cookie, and the security headers on every response."""

    def __init__(self, app: object, guard: Guard) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.guard = guard

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.url.path != "/healthz" and not self.guard.authorized(request.headers.get("authorization")):
            response: Response = PlainTextResponse(
                "sluice dashboard: authentication required (the token from SLUICE_DASHBOARD__TOKEN)",
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="sluice dashboard", charset="UTF-8"'},
            )
        else:
            cookie = request.cookies.get(COOKIE)
            fresh = cookie is None or len(cookie) != 43
            session = secrets.token_urlsafe(32) if fresh or cookie is None else cookie
            request.state.session = session
            response = await call_next(request)
            if fresh:
                response.set_cookie(COOKIE, session, httponly=True, samesite="strict", path="/")
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response
