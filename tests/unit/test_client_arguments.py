"""The client's first hour, without a server: what construction refuses, and the shape of the arguments.

Everything here fails before any I/O (the ports are closed on purpose: a connection attempt would
show as a different error).
"""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from sluice import Client
from sluice.errors import ConfigError, InvalidArgument, InvalidArgumentType, SluiceError, URLError
from sluice.settings import RedisSettings, Settings
from sluice.types import EntryId, NotifiedEntryRef, StreamEntryRef


@pytest.mark.parametrize(
    ("url", "part"),
    [
        ("redis://localhost:99999/0", "port"),
        ("http://localhost:6379", "scheme"),
        ("redis://localhost:6379/notadb", "db"),
        ("redis+sentinel://localhost:26379", "service"),
    ],
)
def test_a_bad_url_is_refused_when_the_client_is_built(url: str, part: str) -> None:
    # When a client is built from a malformed URL (as redis-py's from_url refuses one)
    with pytest.raises(URLError) as raised:
        Client.from_url(url)
    # Then it fails here, naming the part, as a ValueError too (what redis-py raises)
    assert raised.value.part == part
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, SluiceError)


def test_a_bad_url_in_settings_is_refused_by_client_settings_too() -> None:
    settings = Settings(redis=RedisSettings(url=SecretStr("redis://:secret@localhost:0/0")))
    with pytest.raises(URLError) as raised:
        Client(settings)
    assert "secret" not in str(raised.value)


def test_tls_files_without_tls_are_refused_at_construction() -> None:
    settings = Settings(redis=RedisSettings(url=SecretStr("redis://localhost:1/0"), ssl_ca_certs="/ca.pem"))
    with pytest.raises(ConfigError, match="rediss://"):
        Client(settings)


def test_a_good_url_builds_without_io() -> None:
    client = Client.from_url("redis://localhost:1/0")  # nothing listens on port 1
    assert client.keys.namespace == "sluice"


@pytest.mark.parametrize("bad", ["1-0", b"x", 5, None, [5], [("s", "1-0", "extra")]])
def test_wait_refuses_what_is_not_a_handle_by_name(bad: object) -> None:
    client = Client.from_url("redis://localhost:1/0")
    with pytest.raises(InvalidArgumentType, match="handle"):
        client.wait(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, -0.5, float("nan")])
def test_a_negative_timeout_is_refused(bad: float) -> None:
    client = Client.from_url("redis://localhost:1/0")
    with pytest.raises(InvalidArgument, match=">= 0 seconds"):
        client.wait([], timeout=bad)
    with pytest.raises(InvalidArgumentType):
        client.wait([], timeout="1")  # type: ignore[arg-type]


def test_timeout_none_is_the_default_and_zero_stays_zero() -> None:
    client = Client.from_url("redis://localhost:1/0", queue={"wait_timeout": 7.0})
    assert client.wait_budget(None) == 7.0
    assert client.wait_budget(0) == 0.0
    assert client.wait_budget(2) == 2.0


def test_a_notified_handle_is_equal_to_the_plain_one() -> None:
    # (a read-your-writes record keyed by plain handles still finds a notified one)
    plain = StreamEntryRef("s", EntryId("1-0"))
    notified = NotifiedEntryRef("s", EntryId("1-0"))
    assert plain == notified and hash(plain) == hash(notified) and {plain: 1}[notified] == 1


@pytest.mark.parametrize(
    ("make", "error", "base"),
    [
        (lambda c: c.llm_cache(write="nope"), InvalidArgument, ValueError),
        (lambda c: c.llm_cache(ttl=0), InvalidArgument, ValueError),
        (lambda c: c.llm_cache(ttl="1"), InvalidArgumentType, TypeError),
        (lambda c: c.llm_cache(name="a b"), InvalidArgument, ValueError),
        (lambda c: c.llm_cache(wait_timeout=-1), InvalidArgument, ValueError),
        (lambda c: c.llm_cache(on_timeout="ignore"), InvalidArgument, ValueError),
        (lambda c: c.llm_cache().clear(model="x"), InvalidArgumentType, TypeError),
        (lambda c: c.chat_history(""), InvalidArgument, ValueError),
        (lambda c: c.chat_history(42), InvalidArgumentType, TypeError),
        (lambda c: c.chat_history("s", write="direct"), InvalidArgument, ValueError),
        (lambda c: c.chat_history("s", ttl=-5), InvalidArgument, ValueError),
        (lambda c: c.chat_history("s", max_messages=0), InvalidArgument, ValueError),
        (lambda c: c.chat_history("s").get_recent(0), InvalidArgument, ValueError),
        (lambda c: c.chat_history("s").add_messages(["hello"]), InvalidArgumentType, TypeError),
        (lambda c: c.vectorstore("bad name!", "hashing"), InvalidArgument, ValueError),
        (lambda c: c.vectorstore("docs", "hashing", on_timeout="never"), InvalidArgument, ValueError),
        (lambda c: c.vectorstore("docs", "hashing").delete(None), InvalidArgument, ValueError),
    ],
)
def test_bad_arguments_raise_our_errors_that_are_value_or_type_errors(
    make: object, error: type, base: type
) -> None:
    # Given a client (no server: each of these is refused before any I/O)
    client = Client.from_url("redis://localhost:1/0")
    # Then a bad argument raises our error, which is also the builtin callers expect
    with pytest.raises(error) as raised:
        make(client)  # type: ignore[operator]
    assert isinstance(raised.value, SluiceError) and isinstance(raised.value, base)
    assert str(raised.value)  # says what is wrong


@pytest.mark.parametrize(
    ("facade", "old", "new"),
    [
        ("llm_cache", "background", "enqueued"),
        ("llm_cache", "sync", "direct"),
        ("chat_history", "sync", "enqueued"),
    ],
)
def test_old_write_spellings_still_work_with_a_deprecation_warning(facade: str, old: str, new: str) -> None:
    client = Client.from_url("redis://localhost:1/0")
    make = (
        (lambda w: client.llm_cache(write=w))
        if facade == "llm_cache"
        else (lambda w: client.chat_history("s", write=w))
    )
    with pytest.warns(DeprecationWarning, match=f"write={new!r}") as warned:
        obj = make(old)
    assert obj.write == new
    assert warned[0].filename == __file__  # the warning points at the caller's line


def test_asyncio_wait_has_a_parallel_name_and_the_old_one_warns() -> None:
    import asyncio

    client = Client.from_url("redis://localhost:1/0")

    async def both() -> None:
        await client.await_wait([])
        with pytest.warns(DeprecationWarning, match="await_wait"):
            await client.await_([])

    asyncio.run(both())
