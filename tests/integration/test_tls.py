"""TLS end to end on a real TLS redis-server (Debian's Redis 7 build) with a throwaway CA: the
TLS directives of deploy/redis/tls.conf, `rediss://` with certificate and host-name checks, a
`sluice worker` configured through the same environment variables as the deployment, and a
clear error when the CA is the wrong one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from pydantic import SecretStr

import servers
from sluice.errors import ConfigError
from sluice.facade.client import Client
from sluice.settings import Settings
from sluice_workers.cli.main import main as sluice_main
from support.settings import fast_settings
from support.workers import ProcessWorker, worker_env

TLS_CONF = Path(__file__).resolve().parents[2] / "deploy" / "redis" / "tls.conf"
# Where the harness puts its own files and port; everything else in tls.conf is used as written.
HARNESS_OWNS = {"include", "port", "tls-port", "tls-cert-file", "tls-key-file", "tls-ca-cert-file"}


def tls_directives() -> list[str]:
    lines = []
    for raw_line in TLS_CONF.read_text().splitlines():
        line = raw_line.strip()
        if line and not line.startswith("#") and line.split()[0] not in HARNESS_OWNS:
            lines.append(line)
    assert any(line.startswith("tls-auth-clients") for line in lines)
    return lines


def tls_settings(url: str, namespace: str, ca: Path, files: servers.TLSFiles) -> Settings:
    base = fast_settings(url, namespace)
    tls = {
        "ssl_ca_certs": str(ca),
        "ssl_certfile": str(files.client_cert),
        "ssl_keyfile": str(files.client_key),
    }
    return base.model_copy(update={"redis": base.redis.model_copy(update=tls)})


def localhost(server: servers.RedisServer) -> str:
    # `localhost`, not 127.0.0.1: the host-name check must match the certificate's DNS name.
    return f"rediss://localhost:{server.port}/0"


def test_rediss_with_verification_runs_enqueue_worker_and_lookup(
    redis_factory: Any, tls_files: servers.TLSFiles, namespace: str
) -> None:
    # Given a TLS-only server configured with deploy/redis/tls.conf's directives (mutual TLS)
    server = redis_factory.redis(7, tls=tls_files, config=tls_directives())
    settings = tls_settings(localhost(server), namespace, tls_files.ca, tls_files)
    assert settings.redis.ssl_cert_reqs == "required" and settings.redis.ssl_check_hostname
    # and a worker configured by environment, as docker-compose / Kubernetes would
    env = worker_env(
        settings,
        SLUICE_REDIS__SSL_CA_CERTS=tls_files.ca,
        SLUICE_REDIS__SSL_CERTFILE=tls_files.client_cert,
        SLUICE_REDIS__SSL_KEYFILE=tls_files.client_key,
    )
    client = Client(settings)
    try:
        with ProcessWorker(settings, env=env) as worker:
            # When the app enqueues and reads its own writes over rediss://
            history = client.chat_history("tls-session")
            history.add_messages([HumanMessage("over TLS"), AIMessage("verified", id="t1")])
            # Then the worker applied them and the lookup returns them
            assert [m.content for m in history.messages] == ["over TLS", "verified"]
            assert client.capabilities.version[0] == 7
            code, output = worker.terminate()
        assert code == 0, output
        assert "applied={'history-append': 1}" in output
    finally:
        client.close()


def test_a_wrong_ca_fails_with_a_clear_error(
    tls_redis: servers.RedisServer, tls_files: servers.TLSFiles, namespace: str,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # Given a CA that did not sign the server's certificate
    other = servers.make_tls_files(servers.short_tempdir("wrong-ca"), name="other")
    settings = tls_settings(localhost(tls_redis), namespace, other.ca, tls_files)
    settings = settings.model_copy(
        update={"redis": settings.redis.model_copy(update={"password": SecretStr("s3cret-pw"), "retries": 0})}
    )
    # When the app enqueues, Then it is told to check the CA, without the password
    client = Client(settings)
    with pytest.raises(ConfigError) as info:
        client.chat_history("x").add_messages([HumanMessage("never sent")])
    message = str(info.value)
    assert "TLS handshake failed" in message and "ssl_ca_certs" in message
    assert "CERTIFICATE_VERIFY_FAILED" in message.upper().replace(" ", "_")
    assert "s3cret-pw" not in message
    client.close()
    # And an operator running the CLI with that CA sees the same advice and exit code 2
    monkeypatch.setenv("SLUICE_REDIS__SSL_CA_CERTS", str(other.ca))
    monkeypatch.setenv("SLUICE_REDIS__SSL_CERTFILE", str(tls_files.client_cert))
    monkeypatch.setenv("SLUICE_REDIS__SSL_KEYFILE", str(tls_files.client_key))
    monkeypatch.setenv("SLUICE_REDIS__RETRIES", "0")
    assert sluice_main(["--url", localhost(tls_redis), "--namespace", namespace, "status"]) == 2
    err = capsys.readouterr().err
    assert "TLS handshake failed" in err and "ssl_ca_certs" in err
