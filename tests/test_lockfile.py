"""Trust on first use: files with no published checksum are pinned in provision.lock."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import ManifestWriter
from httpserver import TestServer
from typer.testing import CliRunner

from provision import api
from provision.cli.app import app
from provision.config import Settings
from provision.errors import EXIT_INTEGRITY, ProvisionError
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


# -- issue 13: a pin of the wrong type is one line naming the lock file and the entry ---------

BAD_PINS = [
    5,
    None,
    "sha256:" + "0" * 64,
    {},
    {"checksum": 5},
    {"checksum": "sha256:abc"},
    {"checksum": "unpublished"},
    {"checksum": "sha256:" + "0" * 64, "size": "big"},
    {"checksum": "sha256:" + "0" * 64, "size": -1},
    {"checksum": "sha256:" + "0" * 64, "url": ["x"]},
]


@pytest.mark.parametrize("pin", BAD_PINS, ids=range(len(BAD_PINS)))
def test_pin_of_the_wrong_type_is_a_one_line_error(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings, pin: object
) -> None:
    body = os.urandom(3_000)
    url = server.add("/tofu-bad/w.bin", body)
    write_manifest(_manifest(url, "tofubad"))
    assert api.fetch(["tofubad"], settings).ok
    doc = json.loads(settings.lock_path.read_text())
    doc["files"]["tofubad/w.bin"] = pin
    settings.lock_path.write_text(json.dumps(doc))
    runner = CliRunner()
    for args in (["fetch", "tofubad"], ["verify", "tofubad"], ["verify"], ["path", "tofubad"], ["status"], ["gc"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "unexpected" not in lines[0], (args, result.output)
        assert str(settings.lock_path) in lines[0] and "'tofubad/w.bin'" in lines[0], lines[0]
        assert "delete this entry" in lines[0]
    with pytest.raises(ProvisionError):
        LockFile(settings.lock_path).pinned("tofubad", "w.bin")
    assert (Store(settings.cache_dir).artifact_dir("tofubad") / "w.bin").read_bytes() == body  # gc kept it


BAD_LISTINGS = [
    "x",
    [5],
    [{"path": 5, "url": "https://e.org/a", "checksum": "unpublished", "size": 1}],
    [{"path": "a.bin", "url": None, "checksum": "unpublished", "size": 1}],
    [{"path": "a.bin", "url": "https://e.org/a", "checksum": "md5:zz", "size": 1}],
    [{"path": "a.bin", "url": "https://e.org/a", "checksum": "unpublished", "size": 1.5}],
]


@pytest.mark.parametrize("listing", BAD_LISTINGS, ids=range(len(BAD_LISTINGS)))
def test_listing_pin_of_the_wrong_type_is_a_one_line_error(
    write_manifest: ManifestWriter, settings: Settings, listing: object
) -> None:
    write_manifest(
        'schema = 1\n[[dataset]]\nname = "listed"\ndescription = "d"\n[[dataset.files]]\nname = "imgs/"\n'
        'urls = ["s3://bucket/imgs/"]\nchecksum = "listed"\n'
    )
    settings.lock_path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"schema": 1, "files": {"listed/imgs/": {"url": "s3://bucket/imgs/", "listing": listing}}}
    settings.lock_path.write_text(json.dumps(doc))
    runner = CliRunner()
    for args in (["fetch", "listed"], ["verify", "listed"], ["path", "listed"], ["status"], ["list"], ["gc"]):
        result = runner.invoke(app, args, env={"PROVISION_OFFLINE": "1"})
        assert result.exit_code == 1, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "unexpected" not in lines[0], (args, result.output)
        assert str(settings.lock_path) in lines[0] and "'listed/imgs/'" in lines[0], lines[0]
