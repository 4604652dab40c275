"""Fuzzing the URL parser: any text gives a `ConnectionSpec` or a `URLError` naming a part; a URL
built from known parts parses back to exactly those parts; and no password ever reaches an error
message, `redact_url` or a repr."""

from __future__ import annotations

from typing import get_args
from urllib.parse import quote

from fuzzing import FUZZ
from hypothesis import assume, example, given
from hypothesis import strategies as st

from sluice.connection.secrecy import URLPart
from sluice.connection.urls import ConnectionSpec, parse_url, redact_url
from sluice.errors import URLError

PARTS = set(get_args(URLPart))
SCHEMES = ["redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster"]
PIECES = [
    *(f"{s}://" for s in SCHEMES), "REDIS://", "redis:", "//", "@", ":", "/", "?", "&", "=", "#", ",", "[", "]",
    "%", "%40", "%3A", "%2F", "%ZZ", "%00", "localhost", "127.0.0.1", "::1", "[::1]", "h1", "6379", "0",
    "65536", "-1", "99999999999999999999", "mymaster", "db=", "password=", "sentinel_password=",
    "socket_timeout=", "ssl_cert_reqs=none", "client_name=a b", "nan", "inf", " ", "\t", "é", "\x00", "\ud800",
]  # fmt: skip


def parses_or_names_the_part(url: str) -> ConnectionSpec | None:
    try:
        spec = parse_url(url)
    except URLError as e:
        assert e.part in PARTS
        assert str(e).startswith(f"bad Redis URL ({e.part}): ")
        return None
    assert spec.mode in ("standalone", "unix", "sentinel", "cluster")
    assert spec.db >= 0
    if spec.mode == "unix":
        assert spec.path and not spec.hosts
    else:
        assert spec.hosts and all(1 <= h.port <= 65535 and h.host for h in spec.hosts)
    if spec.mode == "sentinel":
        assert spec.service_name
    if spec.mode == "cluster":
        assert spec.db == 0
    return spec


@FUZZ
@given(st.text(max_size=80))
@example("")
@example("redis://")
@example("redis://:@/")
@example("redis://h:0")
@example("redis://[::1")
@example("redis+sentinel://h/")
def test_any_text(url: str) -> None:
    parses_or_names_the_part(url)


@FUZZ
@given(st.lists(st.sampled_from(PIECES) | st.text(max_size=4), max_size=16).map("".join))
def test_url_shaped_text(url: str) -> None:
    parses_or_names_the_part(url)


# --- round trip: the parts that went in come out -------------------------------------------------

hosts = st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?", fullmatch=True) | st.sampled_from(
    ["127.0.0.1", "localhost", "cache.internal"]
)
secrets = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=20)


@FUZZ
@given(
    tls=st.booleans(),
    user=st.none() | secrets,
    password=st.none() | secrets,
    host=hosts,
    port=st.none() | st.integers(1, 65535),
    db=st.none() | st.integers(0, 2**31 - 1),
)
def test_a_url_built_from_parts_parses_back_to_them(
    tls: bool, user: str | None, password: str | None, host: str, port: int | None, db: int | None
) -> None:
    # Given a URL assembled from parts, user and password percent-encoded as documented
    auth = ""
    if user is not None or password is not None:
        auth = quote(user or "", safe="") + (":" + quote(password, safe="") if password else "") + "@"
    url = f"{'rediss' if tls else 'redis'}://{auth}{host}{f':{port}' if port else ''}{f'/{db}' if db is not None else ''}"
    # When it is parsed
    spec = parse_url(url)
    # Then every part comes back as it went in
    assert (spec.mode, spec.tls) == ("standalone", tls)
    assert spec.hosts[0].host == host.lower() and spec.hosts[0].port == (port or 6379)
    assert spec.db == (db or 0)
    assert spec.username == (user or None)
    assert spec.password == (password or None)


# --- passwords never leak -------------------------------------------------------------------------

MARK = "Zq7"  # in every generated password, so "the password" is never a common word of a message


@FUZZ
@given(
    scheme=st.sampled_from(SCHEMES),
    before=st.text(max_size=12),
    password=st.text(max_size=12).map(lambda s: MARK + s + "W9x"),
    after=st.lists(st.sampled_from(PIECES) | st.text(max_size=4), max_size=8).map("".join),
    in_query=st.booleans(),
)
@example(scheme="redis", before="u", password="Zq7p@ss:w/rdW9x", after="h:6379", in_query=False)
@example(scheme="redis", before="u", password="Zq7:99999W9x", after="h", in_query=False)
@example(scheme="redis+sentinel", before="", password="Zq7&db=xW9x", after="", in_query=True)
def test_no_password_in_errors_redactions_or_reprs(
    scheme: str, before: str, password: str, after: str, in_query: bool
) -> None:
    # Given a URL carrying a password, raw (unencoded), wherever a user may put one
    if in_query:
        key = "sentinel_password" if "sentinel" in scheme else "password"
        url = f"{scheme}://h1:26379/mymaster?{key}={password}{after}"
    else:
        url = f"{scheme}://{before}:{password}@{after}"
    assume(password in url)
    # unix://user:password@/path: a "user" that starts with '/' makes it all one socket path (documented)
    assume(not (scheme == "unix" and before.startswith("/")))
    # Then neither the error, nor the redacted URL, nor the spec's repr contains it
    try:
        spec = parse_url(url)
    except URLError as e:
        assert password not in str(e) and password not in repr(e)
    else:
        assert password not in repr(spec)
    assert password not in redact_url(url)
