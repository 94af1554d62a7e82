"""fetch: real HTTP server on 127.0.0.1, real files, the real cache."""

from __future__ import annotations

import os

from conftest import ManifestWriter, dataset_toml
from httpserver import TestServer

from provision import api
from provision.config import Settings
from provision.store import Store


def test_fetch_dataset_by_name(server: TestServer, write_manifest: ManifestWriter, settings: Settings) -> None:
    body = os.urandom(300_000)
    url = server.add("/basic/data.bin", body)
    write_manifest(dataset_toml("basic", [("data.bin", [url], body, None)]))
    report = api.fetch(["basic"], settings)
    assert report.ok, report.failures
    view = Store(settings.cache_dir).artifact_dir("basic") / "data.bin"
    assert view.read_bytes() == body
    assert [f.state for f in report.files] == ["fetched"]
    again = api.fetch(["basic"], settings)
    assert [f.state for f in again.files] == ["cached"]
    assert server.hits["/basic/data.bin"] == 1
