"""Connection URLs: every form parses to the right spec; malformed ones name the bad part; no leaks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from sluice.connection.urls import ConnectionSpec, HostPort, parse_url, redact_url
from sluice.errors import ConfigError, URLError
from sluice.settings import RedisSettings

PW = "Sup3r-S3cret-PW"  # distinctive: must never appear in a message or a repr


# --- forms that parse ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "redis://localhost",
            ConnectionSpec(mode="standalone", tls=False, hosts=(HostPort("localhost", 6379),)),
        ),
        (
            f"redis://app:{PW}@cache.internal:6380/3",
            ConnectionSpec(
                mode="standalone",
                tls=False,
                hosts=(HostPort("cache.internal", 6380),),
                db=3,
                username="app",
                password=PW,
            ),
        ),
        (
            "REDIS://:p%40ss%3Aw%2Fd@Cache:6379/0",
            ConnectionSpec(
                mode="standalone", tls=False, hosts=(HostPort("cache", 6379),), password="p@ss:w/d"
            ),
        ),
        (
            "redis://h/2?db=2&socket_timeout=2.5&socket_connect_timeout=1&max_connections=8"
            "&health_check_interval=0&client_name=sluice-app",
            ConnectionSpec(
                mode="standalone",
                tls=False,
                hosts=(HostPort("h", 6379),),
                db=2,
                options={
                    "socket_timeout": 2.5,
                    "socket_connect_timeout": 1.0,
                    "max_connections": 8,
                    "health_check_interval": 0.0,
                    "client_name": "sluice-app",
                },
            ),
        ),
        (
            "rediss://h:6390?ssl_ca_certs=/etc/ca.pem&ssl_certfile=/c.pem&ssl_keyfile=/k.pem"
            "&ssl_cert_reqs=OPTIONAL&ssl_check_hostname=false",
            ConnectionSpec(
                mode="standalone",
                tls=True,
                hosts=(HostPort("h", 6390),),
                options={
                    "ssl_ca_certs": "/etc/ca.pem",
                    "ssl_certfile": "/c.pem",
                    "ssl_keyfile": "/k.pem",
                    "ssl_cert_reqs": "optional",
                    "ssl_check_hostname": False,
                },
            ),
        ),
        (
            "redis://[::1]:6380/1",
            ConnectionSpec(mode="standalone", tls=False, hosts=(HostPort("::1", 6380),), db=1),
        ),
        (
            "rediss://[2001:db8::7]",
            ConnectionSpec(mode="standalone", tls=True, hosts=(HostPort("2001:db8::7", 6379),)),
        ),
        (
            "unix:///run/redis/redis.sock?db=4",
            ConnectionSpec(mode="unix", tls=False, hosts=(), path="/run/redis/redis.sock", db=4),
        ),
        (
            f"unix://app:{PW}@/tmp/r%20s.sock",
            ConnectionSpec(
                mode="unix", tls=False, hosts=(), path="/tmp/r s.sock", username="app", password=PW
            ),
        ),
        (
            f"unix:///tmp/r.sock?username=app&password={PW}",
            ConnectionSpec(mode="unix", tls=False, hosts=(), path="/tmp/r.sock", username="app", password=PW),
        ),
        (
            f"redis+sentinel://app:{PW}@s1:26380,s2,[::1]:26382/mymaster/1"
            f"?sentinel_username=watcher&sentinel_password=w%26tch",
            ConnectionSpec(
                mode="sentinel",
                tls=False,
                hosts=(HostPort("s1", 26380), HostPort("s2", 26379), HostPort("::1", 26382)),
                db=1,
                username="app",
                password=PW,
                service_name="mymaster",
                sentinel_username="watcher",
                sentinel_password="w&tch",
            ),
        ),
        (
            "rediss+sentinel://s1/svc-a/?ssl_ca_certs=/ca.pem",
            ConnectionSpec(
                mode="sentinel",
                tls=True,
                hosts=(HostPort("s1", 26379),),
                service_name="svc-a",
                options={"ssl_ca_certs": "/ca.pem"},
            ),
        ),
        (
            "redis+cluster://a:7000,b:7001,c",
            ConnectionSpec(
                mode="cluster",
                tls=False,
                hosts=(HostPort("a", 7000), HostPort("b", 7001), HostPort("c", 6379)),
            ),
        ),
        (
            f"rediss+cluster://u:{PW}@a:7000/0",
            ConnectionSpec(mode="cluster", tls=True, hosts=(HostPort("a", 7000),), username="u", password=PW),
        ),
    ],
)
def test_url_forms_parse_to_their_spec(url: str, expected: ConnectionSpec) -> None:
    # Given a well-formed URL / When it is parsed
    spec = parse_url(url)
    # Then every field is as the URL says
    assert spec == expected


def test_ipv6_host_port_prints_with_brackets() -> None:
    assert str(HostPort("::1", 6379)) == "[::1]:6379"
    assert str(HostPort("h", 1)) == "h:1"


def test_spec_repr_hides_both_passwords() -> None:
    # Given a sentinel URL with data-node and sentinel passwords
    spec = parse_url(f"redis+sentinel://app:{PW}@s1/m?sentinel_password={PW}x")
    # When it is printed / Then neither password shows
    assert PW not in repr(spec)
    assert spec.password == PW
    assert spec.sentinel_password == PW + "x"


def test_settings_repr_redacts_the_url_password() -> None:
    settings = RedisSettings(url=SecretStr(f"redis://app:{PW}@h:6379/0"))
    assert PW not in repr(settings)
    assert "redis://app:***@h:6379/0" in repr(settings)


# --- malformed URLs --------------------------------------------------------------------------

MALFORMED = [
    (f"http://u:{PW}@h", "scheme", "unknown scheme 'http'"),
    (f"u:{PW}@localhost:6379", "scheme", "has no scheme"),
    (f"redis:/u:{PW}@h", "scheme", "followed by '://'"),
    (f"redis://u:{PW}@", "host", "no host"),
    (f"redis://u:{PW}@:6379", "host", "empty before ':port'"),
    (f"redis://u:{PW}@bad_host!", "host", "not a host name"),
    (f"redis://u:{PW}@h1,h2", "host", "takes one host"),
    (f"redis://u:{PW}@[::1", "host", "closing ']'"),
    (f"redis://u:{PW}@::1:6379", "host", "in brackets"),
    (f"redis://u:{PW}@[fe80::zz]:1", "host", "not an IPv6 address"),
    (f"redis://u:{PW}@h:abc", "port", "'abc' is not a number"),
    (f"redis://u:{PW}@h:", "port", "empty"),
    (f"redis://u:{PW}@h:70000", "port", "out of range"),
    (f"redis://u:{PW}@h:0", "port", "out of range"),
    (f"redis://u:{PW}@h/abc", "db", "'abc' is not a number"),
    (f"redis://u:{PW}@h/-1", "db", "0 or more"),
    (f"redis://u:{PW}@h/1?db=2", "db", "given twice"),
    (f"redis://u:{PW}@h/0/1", "path", "at most /db"),
    (f"redis://u:{PW}@h#x", "path", "%23"),
    (f"redis+sentinel://u:{PW}@s1,s2", "service", "service (master) name"),
    (f"redis+sentinel://u:{PW}@s1,s2/", "service", "service (master) name"),
    (f"redis+sentinel://u:{PW}@s1,,s3/m", "host", "number 2 of the list is empty"),
    (f"redis+sentinel://u:{PW}@s1,s1:26379/m", "host", "'s1' port 26379 is listed twice"),
    (f"redis+sentinel://u:{PW}@s1/m/0/x", "path", "only /service and /db"),
    (f"redis+cluster://u:{PW}@a:7000/2", "db", "only database 0"),
    (f"redis+cluster://u:{PW}@a:7000?db=1", "db", "only database 0"),
    (f"redis://u:{PW}@h?timeout=3", "query", "unknown option 'timeout'"),
    (f"redis://u:{PW}@h?socket_timeout=-1", "query", "above 0"),
    (f"redis://u:{PW}@h?socket_timeout=1&socket_timeout=2", "query", "given twice"),
    (f"redis://u:{PW}@h?socket_timeout", "query", "has no value"),
    (f"redis://u:{PW}@h?ssl_ca_certs=/ca.pem", "query", "use rediss://"),
    (f"redis+cluster://u:{PW}@h?ssl_certfile=/c.pem", "query", "use rediss+cluster://"),
    (f"rediss://u:{PW}@h?ssl_cert_reqs=maybe", "query", "one of required, optional, none"),
    (f"redis://u:{PW}@h?sentinel_password=x", "query", "only to redis+sentinel://"),
    (f"redis://u:{PW}@h?password=other", "query", "password is given twice"),
    ("unix://", "path", "needs a socket path"),
    (f"unix://u:{PW}@", "path", "absolute socket path"),
    (f"unix://u:{PW}@/", "path", "socket's path"),
    (f"unix://u:{PW}@host/tmp/r.sock", "path", "absolute socket path"),
    (f"unix:///tmp/r.sock?db=x&password={PW}", "db", "'x' is not a number"),
]


@pytest.mark.parametrize(("url", "part", "wording"), MALFORMED)
def test_malformed_url_names_the_part_and_never_the_password(url: str, part: str, wording: str) -> None:
    # Given a malformed URL carrying a distinctive password
    # When it is parsed
    with pytest.raises(URLError) as caught:
        parse_url(url)
    # Then the error names the bad part, says what is wrong, and does not leak the password
    error = caught.value
    assert isinstance(error, ConfigError)
    assert error.part == part
    assert wording in str(error)
    for shown in (str(error), repr(error), repr(error.args)):
        assert PW not in shown
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


@pytest.mark.parametrize(
    ("url", "pieces"),
    [
        ("redis://u:Sup3r/S3cret@host:6379", ("Sup3r", "S3cret")),  # '/' not encoded
        ("redis://u:ab?Sup3r@host", ("Sup3r",)),  # '?' not encoded
        ("redis://u:Sup3r:99@host:x", ("Sup3r",)),
        ("redis+sentinel://u:Sup3r,S3cret@h/m", ("Sup3r", "S3cret")),  # ',' in a password
        ("redis://h?password=Sup3r&socket_timeout=S3cret", ("Sup3r",)),
    ],
)
def test_a_badly_encoded_password_leaks_no_piece(url: str, pieces: tuple[str, ...]) -> None:
    # Given a password whose reserved characters were not percent-encoded
    # When parsing fails (or succeeds with a garbled split)
    try:
        parse_url(url)
    except URLError as error:
        message = str(error)
    else:
        return
    # Then no piece of the password is echoed
    for piece in pieces:
        assert piece not in message


# --- redaction -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        (f"redis://app:{PW}@h:6379/0", "redis://app:***@h:6379/0"),
        (f"rediss://:{PW}@h", "rediss://:***@h"),
        ("redis://app@h", "redis://app@h"),
        ("redis://h:6379/0", "redis://h:6379/0"),
        (f"unix://u:{PW}@/tmp/r.sock?db=1", "unix://u:***@/tmp/r.sock?db=1"),
        (
            f"redis+sentinel://app:{PW}@s1,s2/m?sentinel_username=w&sentinel_password={PW}&db=1",
            "redis+sentinel://app:***@s1,s2/m?sentinel_username=w&sentinel_password=***&db=1",
        ),
        (f"unix:///tmp/r.sock?password={PW}", "unix:///tmp/r.sock?password=***"),
        (f"redis://u:{PW}@x@h", "redis://u:***@h"),  # unencoded '@': hide up to the last one
        (f"u:{PW}@h:6379", "u:***@h:6379"),  # no scheme
    ],
)
def test_redact_url_replaces_passwords(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


@pytest.mark.parametrize("garbage", ["", "://", "@", ":@", "redis://[", "\x00\udcff", "a" * 10_000])
def test_redact_url_never_raises_on_garbage(garbage: str) -> None:
    assert isinstance(redact_url(garbage), str)


def test_redact_url_survives_a_non_string() -> None:
    assert redact_url(None) == "<a Redis URL that could not be redacted>"  # type: ignore[arg-type]


@given(
    password=st.text(
        alphabet=st.characters(blacklist_characters="@", blacklist_categories=["Cs"]), min_size=6
    ),
    user=st.from_regex(r"[a-z]{0,8}", fullmatch=True),
)
def test_redact_url_hides_any_password(password: str, user: str) -> None:
    # Given any password placed raw (even unencoded) in the authority
    url = f"redis://{user}:{password}@cache:6379/0"
    # When redacted / Then the password is gone and the host is kept
    redacted = redact_url(url)
    assert password not in redacted
    assert redacted.endswith("@cache:6379/0")
