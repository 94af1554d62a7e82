"""Trust on first use: files with no published checksum are pinned in provision.lock."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from conftest import ManifestWriter
from httpserver import TestServer

from provision import api
from provision.config import Settings
from provision.errors import EXIT_INTEGRITY
from provision.manifest.lockfile import LockFile
from provision.store.cache import Store


def _manifest(url: str, name: str, size: int | None = None) -> str:
    size_line = f"size = {size}\n" if size is not None else ""
    return (
        "schema = 1\n[[model]]\n"
        f'name = "{name}"\nformat = "other"\n[[model.files]]\nname = "w.bin"\n'
        f'urls = ["{url}"]\n{size_line}checksum = "unpublished"\n'
        'trust = "no checksum is published upstream; pinned by sha256 on first fetch"\n'
    )


def test_unpublished_file_is_pinned_on_first_fetch(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    body = os.urandom(50_000)
    url = server.add("/tofu/w.bin", body)
    write_manifest(_manifest(url, "tofu"))
    report = api.fetch(["tofu"], settings)
    assert report.ok, report.failures
    pins = json.loads(settings.lock_path.read_text())["files"]
    import hashlib

    assert pins["tofu/w.bin"]["checksum"] == "sha256:" + hashlib.sha256(body).hexdigest()
    assert pins["tofu/w.bin"]["size"] == len(body) and pins["tofu/w.bin"]["url"] == url
    view = Store(settings.cache_dir).artifact_dir("tofu") / "w.bin"
    assert view.read_bytes() == body
    # A second fetch is served from the cache; verify and gc keep the pinned blob.
    assert [f.state for f in api.fetch(["tofu"], settings).files] == ["cached"]
    assert api.verify(["tofu"], settings).ok
    assert not api.gc(settings).removed
    assert view.read_bytes() == body


def test_changed_upstream_bytes_are_refused_after_pinning(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    body = os.urandom(20_000)
    url = server.add("/tofu2/w.bin", body)
    write_manifest(_manifest(url, "tofu2"))
    assert api.fetch(["tofu2"], settings).ok
    shutil.rmtree(settings.cache_dir / "artifacts")
    shutil.rmtree(settings.cache_dir / "blobs")
    server.add("/tofu2/w.bin", os.urandom(20_000))  # upstream silently replaced the file
    report = api.fetch(["tofu2"], settings)
    assert report.exit_code == EXIT_INTEGRITY
    assert "checksum mismatch" in report.failures[0].error
    assert not (Store(settings.cache_dir).artifact_dir("tofu2") / "w.bin").exists()


def test_shared_lock_file_makes_another_machine_byte_identical(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings, tmp_path: Path
) -> None:
    body = os.urandom(10_000)
    url = server.add("/tofu3/w.bin", body)
    write_manifest(_manifest(url, "tofu3"))
    shared = tmp_path / "fleet" / "provision.lock"
    first = settings.with_(lock_file=shared)
    assert api.fetch(["tofu3"], first).ok
    server.add("/tofu3/w.bin", os.urandom(10_000))
    second = first.with_(cache_dir=tmp_path / "machine-b")
    report = api.fetch(["tofu3"], second)
    assert report.exit_code == EXIT_INTEGRITY  # machine B refuses bytes other than machine A's
    assert LockFile(shared).pinned("tofu3", "w.bin") is not None


def test_lint_requires_trust_note(write_manifest: ManifestWriter, manifests: Path) -> None:
    write_manifest(
        'schema = 1\n[[dataset]]\nname = "nt"\n[[dataset.files]]\nname = "a"\n'
        'urls = ["https://e.org/a"]\nchecksum = "unpublished"\n'
    )
    problems = api.lint([manifests])
    assert len(problems) == 1 and "trust" in problems[0] and "dataset 'nt'" in problems[0]
