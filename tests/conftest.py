"""Shared fixtures: isolated env/cache per test, a real HTTP server, manifest writers."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from httpserver import TestServer, md5

from provision.config import Settings


@pytest.fixture(autouse=True)
def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the cache and HOME into tmp_path and clear every PROVISION_* variable."""
    for key in list(os.environ):
        if key.startswith(("PROVISION_", "HF_", "HUGGING_FACE_", "CF_ACCESS_", "AWS_")) or key == "XDG_CACHE_HOME":
            monkeypatch.delenv(key, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("PROVISION_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PROVISION_MANIFESTS", str(tmp_path / "manifests"))
    monkeypatch.setenv("PROVISION_BACKOFF", "0.01")  # retries back off in milliseconds in tests
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HOME", str(home / ".cache" / "huggingface"))
    (tmp_path / "manifests").mkdir()


@pytest.fixture(scope="session")
def server() -> Iterator[TestServer]:
    """One real HTTP server on 127.0.0.1 for the whole session."""
    srv = TestServer()
    yield srv
    srv.close()


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """The cache root the isolated environment points at."""
    return tmp_path / "cache"


@pytest.fixture
def settings() -> Settings:
    """Settings read from the isolated environment (cache in tmp_path)."""
    return Settings.from_env()


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    """The PROVISION_MANIFESTS folder of this test."""
    return tmp_path / "manifests"


ManifestWriter = Callable[..., Path]


@pytest.fixture
def write_manifest(manifests: Path) -> ManifestWriter:
    """Write ``text`` as ``<name>.toml`` in this test's PROVISION_MANIFESTS folder."""

    def write(text: str, name: str = "test") -> Path:
        path = manifests / f"{name}.toml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


def dataset_toml(
    name: str,
    files: list[tuple[str, list[str], bytes | None, str | None]],
    kind: str = "dataset",
    extra: str = "",
) -> str:
    """A one-artifact manifest: files are (name, urls, body for size/checksum, checksum override)."""
    out = ["schema = 1", f"[[{kind}]]", f'name = "{name}"', f'description = "test {kind}"']
    if kind == "model":
        out.append('format = "onnx"')
    out.append(extra)
    for fname, urls, body, checksum in files:
        out.append(f"[[{kind}.files]]")
        out.append(f'name = "{fname}"')
        out.append("urls = [" + ", ".join(f'"{u}"' for u in urls) + "]")
        if body is not None:
            out.append(f"size = {len(body)}")
        out.append(f'checksum = "{checksum or md5(body or b"")}"')
    return "\n".join(out) + "\n"


def sigint_at_default() -> None:
    """``preexec_fn`` for a child process that a test interrupts with SIGINT.

    A launcher that ignores SIGINT (``nohup``, a background job of a non-interactive shell)
    passes SIG_IGN on to every process it starts, through exec. Python then installs no
    KeyboardInterrupt handler and the test's SIGINT does nothing. This puts SIGINT back to
    its default in the child before exec, so the child behaves as after a Ctrl-C at a terminal.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
