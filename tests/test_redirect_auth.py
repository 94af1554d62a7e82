"""Tokens go to the origin (scheme, host, port) of the URL asked for, never past a redirect to
another one: two real servers on two ports of 127.0.0.1 record what each was sent."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ManifestWriter, dataset_toml
from httpserver import TestServer

from provision import api
from provision.config import Settings
from provision.sources.base import origin

CREDENTIALS = ("Authorization", "X-Team-Key", "CF-Access-Client-Id", "CF-Access-Client-Secret")


@pytest.fixture
def other_port() -> Iterator[TestServer]:
    """A second real server: same host (127.0.0.1), another port."""
    srv = TestServer()
    yield srv
    srv.close()


def _settings(tmp_path: Path) -> Settings:
    auth = tmp_path / "auth.toml"
    auth.write_text('[hosts."127.0.0.1"]\ntoken = "tok-A"\nheaders = { "X-Team-Key" = "team-A" }\n', encoding="utf-8")
    env = {
        **os.environ,
        "PROVISION_AUTH_FILE": str(auth),
        "CF_ACCESS_CLIENT_ID": "cf-id",
        "CF_ACCESS_CLIENT_SECRET": "cf-secret",
        "PROVISION_R2_HOSTS": "127.0.0.1",
    }
    return Settings.from_env(env)


def _sent(srv: TestServer, path: str) -> dict[str, str]:
    found = [h for _m, p, h in srv.requests if p == path]
    assert found, f"{path} was never asked for"
    return {k: v for k, v in found[-1].items() if k in CREDENTIALS}


def test_redirect_to_another_port_of_the_same_host_carries_no_token(
    server: TestServer, other_port: TestServer, write_manifest: ManifestWriter, tmp_path: Path
) -> None:
    body = os.urandom(5_000)
    target = other_port.add("/ra/file.bin", body)
    start = server.add("/ra/start", redirect_to=target)
    write_manifest(dataset_toml("ra-port", [("f.bin", [start], body, None)]), "ra-port")
    report = api.fetch(["ra-port"], _settings(tmp_path))
    assert report.ok, report.failures
    assert _sent(server, "/ra/start") == {
        "Authorization": "Bearer tok-A",
        "X-Team-Key": "team-A",
        "CF-Access-Client-Id": "cf-id",
        "CF-Access-Client-Secret": "cf-secret",
    }
    assert _sent(other_port, "/ra/file.bin") == {}  # same host name, another port: nothing


def test_redirect_within_the_origin_keeps_the_token(
    server: TestServer, write_manifest: ManifestWriter, tmp_path: Path
) -> None:
    body = os.urandom(5_000)
    server.add("/rb/file.bin", body)
    start = server.add("/rb/start", redirect_to="/rb/file.bin")  # a relative Location: the same origin
    write_manifest(dataset_toml("ra-same", [("f.bin", [start], body, None)]), "ra-same")
    report = api.fetch(["ra-same"], _settings(tmp_path))
    assert report.ok, report.failures
    assert _sent(server, "/rb/file.bin")["Authorization"] == "Bearer tok-A"
    assert _sent(server, "/rb/file.bin")["X-Team-Key"] == "team-A"


def test_origin_fills_in_default_ports() -> None:
    assert origin("http://Host.Example/x") == origin("http://host.example:80/y") == ("http", "host.example", 80)
    assert origin("https://h/x") == ("https", "h", 443)
    assert origin("https://h:8443/x") != origin("https://h/x")
    assert origin("http://h/x") != origin("https://h/x")
