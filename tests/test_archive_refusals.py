"""Refused archives through fetch: exit 3 naming archive and member, nothing left, every rerun alike.

The archives are real files built here (a bomb, a tar with a latin-1 name) and named by
plain paths in the manifest; the cache, the records and the CLI are provision's own.
"""

from __future__ import annotations

import gzip
import io
import random
import tarfile
from pathlib import Path

import pytest
from conftest import ManifestWriter, dataset_toml
from typer.testing import CliRunner

from provision import api
from provision.cli.app import app
from provision.config import Settings
from provision.errors import EXIT_INTEGRITY
from provision.extract.archive import DEFAULT_GRACE
from provision.store.cache import Store

runner = CliRunner()
MIB = 1 << 20


def _manifest(write_manifest: ManifestWriter, name: str, archive: Path, keys: str) -> None:
    text = dataset_toml(name, [(archive.name, [str(archive)], archive.read_bytes(), None)])
    write_manifest(text + keys + "\n", name=name)


def _zeros_then_noise(path: Path) -> Path:
    """A .tar.gz: 66 MiB of zeros, then a MiB of noise (which lifts 100x the archive past the zeros)."""
    members = {"zeros.bin": bytes(DEFAULT_GRACE + 2 * MIB), "noise.bin": random.Random(3).randbytes(MIB)}
    with tarfile.open(path, "w:gz", compresslevel=6) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _latin1_tar_gz(path: Path) -> Path:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT, encoding="latin-1") as tf:
        for name in ("ok.txt", "caf\u00e9.txt"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tf.addfile(info, io.BytesIO(b"hi"))
    path.write_bytes(gzip.compress(raw.getvalue(), mtime=0))
    return path


CASES = {
    # case -> (archive builder, manifest keys, the message after the label)
    "bomb": (_zeros_then_noise, 'extract = "tar.gz"', "member 'zeros.bin': the member expands more than 100:1"),
    "not-utf8": (_latin1_tar_gz, 'extract = "auto"', "member b'caf\\xe9.txt': its name is not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_refused_archive_leaves_nothing_and_reruns_alike(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings, case: str
) -> None:
    build, keys, want = CASES[case]
    (tmp_path / "upstream").mkdir()
    archive = build(tmp_path / "upstream" / "odd.tar.gz")
    _manifest(write_manifest, "odd", archive, keys)
    folder = Store(settings.cache_dir).artifact_dir("odd")
    errors = []
    for _ in range(2):
        report = api.fetch(["odd"], settings)
        assert not report.ok and report.exit_code == EXIT_INTEGRITY
        (failure,) = report.failures
        errors.append(failure.error)
        assert sorted(p.name for p in folder.iterdir()) == ["odd.tar.gz"]  # no tree, no temp folder
        assert not (Path(settings.cache_dir) / "records" / "odd.trees.json").exists()  # nothing recorded
    assert errors[0] == errors[1]
    assert errors[0].startswith(f"odd/odd.tar.gz: {want}"), errors[0]
    verify = api.verify(["odd"], settings)
    assert not verify.ok
    assert any("no completion record" in c.message() for c in verify.failures)

    result = runner.invoke(app, ["fetch", "odd"])
    assert result.exit_code == EXIT_INTEGRITY
    assert f"odd/odd.tar.gz: {want}" in result.stderr
    lines = [line for line in result.stderr.splitlines() if "odd/odd.tar.gz" in line]
    assert len(lines) == 1 and lines[0].isprintable(), result.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["odd.tar.gz"]
