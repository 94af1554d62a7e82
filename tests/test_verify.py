"""verify: the stat fast path, the xxh3 re-check, --full, missing and corrupt files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ManifestWriter, dataset_toml
from httpserver import TestServer, md5

from provision import api
from provision.config import Settings
from provision.errors import EXIT_INTEGRITY, IntegrityError
from provision.store.cache import Store


def _fetched(
    server: TestServer,
    write_manifest: ManifestWriter,
    settings: Settings,
    name: str,
    bodies: dict[str, bytes],
    manifest: str = "test",
) -> dict[str, Path]:
    """Serve ``bodies`` under /verify/<name>/, write a manifest, fetch it; the file paths."""
    files = []
    for fname, body in bodies.items():
        url = server.add(f"/verify/{name}/{fname}", body)
        files.append((fname, [url], body, None))
    write_manifest(dataset_toml(name, files), manifest)
    report = api.fetch([name], settings)
    assert report.ok, report.failures
    base = Store(settings.cache_dir).artifact_dir(name)
    return {fname: base / fname for fname in bodies}


def _flip(path: Path, offset: int = 5) -> None:
    """Flip one byte; move mtime on too (a coarse clock tick may not have passed)."""
    st = path.stat()
    os.chmod(path, 0o644)
    with open(path, "r+b") as fh:
        fh.seek(offset)
        b = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([b[0] ^ 0x01]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_verify_after_fetch_reads_nothing(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    _fetched(server, write_manifest, settings, "v-fast", {"a.bin": os.urandom(5000), "b.bin": os.urandom(6000)})
    report = api.verify(["v-fast"], settings)
    assert report.ok
    assert [f.state for f in report.files] == ["ok", "ok"]
    assert report.files_hashed == 0
    assert report.bytes_hashed == 0
    report.raise_for_errors()


def test_touched_file_is_rehashed_once(server: TestServer, write_manifest: ManifestWriter, settings: Settings) -> None:
    body = os.urandom(7000)
    paths = _fetched(server, write_manifest, settings, "v-touch", {"a.bin": body})
    st = paths["a.bin"].stat()
    os.utime(paths["a.bin"], ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    report = api.verify(["v-touch"], settings)
    assert report.ok
    assert report.files_hashed == 1
    assert report.bytes_hashed == len(body)
    assert report.files[0].hashed
    again = api.verify(["v-touch"], settings)
    assert again.ok
    assert again.files_hashed == 0
    assert again.bytes_hashed == 0
    record = Store(settings.cache_dir).load_record("v-touch")["a.bin"]
    assert record.mtime_ns == st.st_mtime_ns + 5_000_000_000


def test_flipped_byte_is_corrupt(server: TestServer, write_manifest: ManifestWriter, settings: Settings) -> None:
    paths = _fetched(server, write_manifest, settings, "v-flip", {"a.bin": os.urandom(5000), "b.bin": os.urandom(10)})
    _flip(paths["a.bin"])
    report = api.verify(["v-flip"], settings)
    assert not report.ok
    assert [f.state for f in report.files] == ["corrupt", "ok"]
    bad = report.failures[0]
    assert bad.path == str(paths["a.bin"])
    msg = bad.message()
    assert str(paths["a.bin"]) in msg
    assert "v-flip/a.bin" in msg
    assert f"expected {bad.expected}" in msg and f"got {bad.got}" in msg
    assert bad.expected and bad.got and bad.expected != bad.got
    with pytest.raises(IntegrityError) as info:
        report.raise_for_errors()
    assert info.value.exit_code == EXIT_INTEGRITY == 3
    assert str(paths["a.bin"]) in str(info.value)
    assert info.value.path == str(paths["a.bin"])
    # The record no longer vouches for the file: the next verify still says corrupt.
    again = api.verify(["v-flip"], settings)
    assert [f.state for f in again.files] == ["corrupt", "ok"]
    assert again.files[0].expected.startswith("md5:")


def test_flip_with_restored_mtime_is_seen_by_ctime(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    """An edit in place that keeps size and mtime moves ctime (git's core.trustctime): the fast path
    re-hashes the file and finds it corrupt, and fetch repairs it."""
    body = os.urandom(8000)
    paths = _fetched(server, write_manifest, settings, "v-sneaky", {"a.bin": body})
    path = paths["a.bin"]
    st = path.stat()
    _flip(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    fast = api.verify(["v-sneaky"], settings)
    assert not fast.ok
    assert fast.files[0].state == "corrupt" and fast.bytes_hashed == len(body)
    assert fast.files[0].expected.startswith("xxh3_128:")
    full = api.verify(["v-sneaky"], settings, full=True)
    assert not full.ok
    assert full.files[0].state == "corrupt"
    assert full.files[0].expected == md5(body)
    assert full.files[0].got.startswith("md5:") and full.files[0].got != md5(body)
    assert full.bytes_hashed == len(body)
    fetched = api.fetch(["v-sneaky"], settings)
    assert fetched.ok and [f.state for f in fetched.files] == ["repaired"]
    assert path.read_bytes() == body
    assert api.verify(["v-sneaky"], settings).files_hashed == 0


def test_record_without_ctime_is_rehashed_once(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    """A schema 1 record (no ctime_ns) still loads; its files are re-hashed once with xxh3_128."""
    import json

    body = os.urandom(5000)
    _fetched(server, write_manifest, settings, "v-old", {"a.bin": body})
    record = Store(settings.cache_dir).record_path("v-old")
    doc = json.loads(record.read_text())
    doc["schema"] = 1
    for entry in doc["files"].values():
        del entry["ctime_ns"]
    record.write_text(json.dumps(doc))
    first = api.verify(["v-old"], settings)
    assert first.ok and first.files_hashed == 1 and first.bytes_hashed == len(body)
    again = api.verify(["v-old"], settings)
    assert again.ok and again.files_hashed == 0
    assert json.loads(record.read_text())["files"]["a.bin"]["ctime_ns"] > 0


def test_missing_file(server: TestServer, write_manifest: ManifestWriter, settings: Settings) -> None:
    paths = _fetched(server, write_manifest, settings, "v-missing", {"a.bin": os.urandom(100), "b.bin": os.urandom(99)})
    paths["b.bin"].unlink()
    report = api.verify(["v-missing"], settings)
    assert [f.state for f in report.files] == ["ok", "missing"]
    assert not report.ok
    assert "missing" in report.failures[0].message()
    assert "provision fetch v-missing" in report.failures[0].message()
    with pytest.raises(IntegrityError):
        report.raise_for_errors()


def test_verify_without_names_checks_every_cached_artifact(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    _fetched(server, write_manifest, settings, "v-all-a", {"a.bin": os.urandom(100)}, "a")
    paths = _fetched(server, write_manifest, settings, "v-all-b", {"b.bin": os.urandom(200)}, "b")
    write_manifest(dataset_toml("v-all-never", [("n.bin", [server.url("/verify/never")], b"n", None)]), "c")
    report = api.verify([], settings)
    assert report.ok
    assert sorted((f.artifact, f.name) for f in report.files) == [("v-all-a", "a.bin"), ("v-all-b", "b.bin")]
    _flip(paths["b.bin"], 0)
    bad = api.verify([], settings)
    assert [(f.artifact, f.state) for f in bad.failures] == [("v-all-b", "corrupt")]


def test_full_hashes_every_byte(server: TestServer, write_manifest: ManifestWriter, settings: Settings) -> None:
    bodies = {"a.bin": os.urandom(3000), "b.bin": os.urandom(4000), "c.bin": os.urandom(1)}
    _fetched(server, write_manifest, settings, "v-full", bodies)
    report = api.verify(["v-full"], settings, full=True)
    assert report.ok
    assert report.files_hashed == 3
    assert report.bytes_hashed == sum(len(b) for b in bodies.values())
    assert api.verify(["v-full"], settings).bytes_hashed == 0


# -- issue 13: only regular files are read; anything else is "changed" and fetch replaces it ---


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``provision ARGS`` as a real process: a hang fails the test (TimeoutExpired) instead of the suite."""
    return subprocess.run(
        [sys.executable, "-m", "provision.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def _plant(path: Path, what: str, outside: Path) -> None:
    path.unlink()
    if what == "fifo":
        os.mkfifo(path)
    elif what == "dev-zero":
        os.symlink("/dev/zero", path)
    elif what == "outside-link":  # a link to a file outside the cache, even one with the right bytes
        os.symlink(outside, path)
    else:
        path.mkdir()
        (path / "inner").write_bytes(b"x")


@pytest.mark.parametrize("what", ["fifo", "dev-zero", "outside-link", "folder"])
def test_file_replaced_by_a_non_regular_file_is_changed_and_fetch_replaces_it(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings, tmp_path: Path, what: str
) -> None:
    body = os.urandom(4000)
    paths = _fetched(server, write_manifest, settings, "v-odd", {"a.bin": body, "b.bin": os.urandom(10)})
    outside = tmp_path / "outside.bin"
    outside.write_bytes(body)
    _plant(paths["a.bin"], what, outside)
    proc = _cli("verify", "v-odd")
    assert proc.returncode == EXIT_INTEGRITY, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("provision: error:")]
    assert len(errors) == 1 and "not a regular file" in errors[0] and str(paths["a.bin"]) in errors[0], errors
    assert "provision fetch v-odd" in errors[0]
    report = api.verify(["v-odd"], settings) if what != "fifo" else None
    if report is not None:
        assert [f.state for f in report.files] == ["changed", "ok"]
    proc = _cli("fetch", "v-odd")
    assert proc.returncode == 0, proc.stderr
    assert paths["a.bin"].is_file() and not paths["a.bin"].is_symlink()
    assert paths["a.bin"].read_bytes() == body
    assert outside.read_bytes() == body
    assert api.verify(["v-odd"], settings, full=True).ok


def test_symlink_to_its_own_blob_is_fine(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    """Where hard links are impossible the view is a symlink to its blob: that stays valid."""
    from provision.manifest.parse import load_catalog

    body = os.urandom(3000)
    paths = _fetched(server, write_manifest, settings, "v-link", {"a.bin": body})
    spec = load_catalog(settings.all_manifest_dirs).artifacts["v-link"].files[0]
    blob = Store(settings.cache_dir).blob_path(spec.checksum)
    paths["a.bin"].unlink()
    os.symlink(os.path.abspath(blob), paths["a.bin"])
    assert api.verify(["v-link"], settings).ok
    assert api.verify(["v-link"], settings).files_hashed == 0
    assert api.verify(["v-link"], settings, full=True).ok
    assert [f.state for f in api.fetch(["v-link"], settings).files] == ["cached"]


# -- issue 13: never-fetched files are "absent" for verify with no names, not "bad" -----------


def test_verify_all_after_a_failed_first_fetch_reports_absent_files(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    import json

    from typer.testing import CliRunner

    from provision.cli.app import app

    files = [(f"f{i}.bin", [server.url(f"/verify/never/f{i}.bin")], os.urandom(100), None) for i in range(6)]
    write_manifest(dataset_toml("v-never", files))
    assert not api.fetch(["v-never"], settings).ok  # every URL answers 404
    runner = CliRunner()
    result = runner.invoke(app, ["verify"])
    assert result.exit_code == 0, result.output
    assert "0 bad, 6 never fetched" in result.stdout
    doc = json.loads(runner.invoke(app, ["verify", "--json"]).stdout)
    assert doc["ok"] is True and {f["state"] for f in doc["files"]} == {"absent"}
    assert set(doc["files"][0]) == {"artifact", "name", "state", "path", "hashed", "expected", "got", "ok"}
    named = runner.invoke(app, ["verify", "v-never"])  # asked for by name: it must be there
    assert named.exit_code == EXIT_INTEGRITY
    assert "v-never/f0.bin: missing" in named.stderr and "provision fetch v-never" in named.stderr
    # gc removes the record of a fetch that completed nothing (and the empty folder): nothing cached
    store = Store(settings.cache_dir)
    report = api.gc(settings)
    assert any(p == str(store.record_path("v-never")) for p, _n, _w in report.removed)
    assert not store.record_path("v-never").exists() and not store.artifact_dir("v-never").exists()
    assert api.verify([], settings).files == []


def test_verify_all_checks_what_was_fetched(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    """Two of three files fetched: the third is absent (ok); a fetched file deleted later is missing,
    and stays missing on the next run (its record is kept), until fetch brings it back."""
    a, b = os.urandom(300), os.urandom(400)
    files = [
        ("a.bin", [server.add("/verify/some/a.bin", a)], a, None),
        ("b.bin", [server.add("/verify/some/b.bin", b)], b, None),
        ("c.bin", [server.url("/verify/some/c.bin")], b"c", None),
    ]
    write_manifest(dataset_toml("v-some", files))
    assert not api.fetch(["v-some"], settings).ok
    report = api.verify([], settings)
    assert report.ok
    assert [(f.name, f.state) for f in report.files] == [("a.bin", "ok"), ("b.bin", "ok"), ("c.bin", "absent")]
    assert [f.name for f in report.absent] == ["c.bin"]
    (Store(settings.cache_dir).artifact_dir("v-some") / "b.bin").unlink()
    for _ in range(2):
        again = api.verify([], settings)
        assert not again.ok and [(f.name, f.state) for f in again.failures] == [("b.bin", "missing")]
    assert api.gc(settings).removed == []  # the record still vouches for a.bin
