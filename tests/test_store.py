"""The content-addressed store: layout, records, usage/status, gc and stale temps."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xxhash
from conftest import ManifestWriter, dataset_toml
from httpserver import TestServer, sha256

from provision import api
from provision.config import Settings
from provision.fsutil import STALE_AFTER, TempName, is_stale_temp, parse_temp_name, temp_name
from provision.manifest.checksum import Checksum
from provision.manifest.parse import load_catalog
from provision.store.cache import Store

HOST = socket.gethostname().replace("-", "_")


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    for _ in range(20):
        proc = subprocess.Popen([sys.executable, "-c", "pass"])
        proc.wait()
        try:
            os.kill(proc.pid, 0)
        except ProcessLookupError:
            return proc.pid
    pytest.skip("could not find a dead pid")


def _fetch_one(
    server: TestServer,
    write_manifest: ManifestWriter,
    settings: Settings,
    name: str,
    body: bytes,
    manifest: str = "test",
    checksum: str | None = None,
) -> Path:
    url = server.add(f"/store/{name}/f.bin", body)
    write_manifest(dataset_toml(name, [("f.bin", [url], body, checksum)]), manifest)
    report = api.fetch([name], settings)
    assert report.ok, report.failures
    return Store(settings.cache_dir).artifact_dir(name) / "f.bin"


def test_ensure_writes_cachedir_tag(tmp_path: Path) -> None:
    store = Store(tmp_path / "fresh" / "cache")
    store.ensure()
    tag = (store.root / "CACHEDIR.TAG").read_text(encoding="utf-8")
    assert tag.startswith("Signature: 8a477f597d28d172789f06886806bc55\n")
    for sub in ("blobs", "artifacts", "records", "locks"):
        assert (store.root / sub).is_dir()
    store.ensure()  # idempotent
    assert (store.root / "CACHEDIR.TAG").read_text(encoding="utf-8") == tag
    assert [p.name for p in store.root.iterdir() if ".part-" in p.name] == []


def test_blob_layout(server: TestServer, write_manifest: ManifestWriter, settings: Settings) -> None:
    body = os.urandom(2048)
    view = _fetch_one(server, write_manifest, settings, "layout", body, checksum=sha256(body))
    hexd = hashlib.sha256(body).hexdigest()
    blob = settings.cache_dir / "blobs" / "sha256" / hexd[:2] / hexd
    assert blob.is_file()
    assert blob.read_bytes() == body
    assert Store(settings.cache_dir).blob_path(Checksum("sha256", hexd)) == blob
    assert os.path.samefile(blob, view)
    assert blob.stat().st_mode & 0o222 == 0  # blobs are read-only


def test_record_is_complete_json(server: TestServer, write_manifest: ManifestWriter, settings: Settings) -> None:
    body = os.urandom(3000)
    view = _fetch_one(server, write_manifest, settings, "recorded", body)
    store = Store(settings.cache_dir)
    path = store.record_path("recorded")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["schema"] == 2
    assert doc["artifact"] == "recorded"
    assert doc["kind"] == "dataset"
    assert doc["complete"] is True
    entry = doc["files"]["f.bin"]
    st = view.stat()
    assert entry["checksum"] == "md5:" + hashlib.md5(body).hexdigest()
    assert entry["xxh3_128"] == xxhash.xxh3_128(body).hexdigest()
    assert (entry["size"], entry["mtime_ns"], entry["ino"]) == (st.st_size, st.st_mtime_ns, st.st_ino)
    assert entry["source"].endswith("/store/recorded/f.bin")
    assert store.record_complete("recorded")
    assert store.load_record("recorded")["f.bin"].xxh3_128 == entry["xxh3_128"]
    assert [p.name for p in path.parent.iterdir()] == ["recorded.json"]


def test_record_is_replaced_atomically(server: TestServer, write_manifest: ManifestWriter, settings: Settings) -> None:
    _fetch_one(server, write_manifest, settings, "atomic", os.urandom(100))
    store = Store(settings.cache_dir)
    path = store.record_path("atomic")
    before = path.read_bytes()
    keep = path.with_name("old-handle")
    os.link(path, keep)  # a reader holding the old file sees it whole
    catalog = load_catalog(settings.all_manifest_dirs)
    art = catalog.artifacts["atomic"]
    store.save_record(art, {})
    assert keep.read_bytes() == before
    assert path.stat().st_ino != keep.stat().st_ino
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["complete"] is False and doc["files"] == {}
    assert not store.record_complete("atomic")
    assert [p for p in path.parent.iterdir() if ".part-" in p.name] == []


def test_partial_fetch_record_not_complete(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    good, bad = os.urandom(500), os.urandom(600)
    u_good = server.add("/store/partial/good.bin", good)
    u_bad = server.url("/store/partial/absent.bin")
    write_manifest(dataset_toml("partial", [("good.bin", [u_good], good, None), ("bad.bin", [u_bad], bad, None)]))
    report = api.fetch(["partial"], settings)
    assert not report.ok
    store = Store(settings.cache_dir)
    doc = json.loads(store.record_path("partial").read_text(encoding="utf-8"))
    assert doc["complete"] is False
    assert list(doc["files"]) == ["good.bin"]
    catalog = load_catalog(settings.all_manifest_dirs)
    usage = store.usage(catalog.artifacts["partial"])
    assert usage["state"] == "partial"
    assert (usage["files"], usage["files_total"], usage["bytes"]) == (1, 2, len(good))


def test_usage_and_status(server: TestServer, write_manifest: ManifestWriter, settings: Settings) -> None:
    body = os.urandom(4321)
    _fetch_one(server, write_manifest, settings, "used", body, "a")
    write_manifest(dataset_toml("unused", [("u.bin", [server.url("/store/unused")], b"u", None)]), "b")
    store = Store(settings.cache_dir)
    catalog = load_catalog(settings.all_manifest_dirs)
    usage = store.usage(catalog.artifacts["used"])
    assert usage["state"] == "present"
    assert usage["bytes"] == len(body)
    assert (usage["files"], usage["files_total"]) == (1, 1)
    assert usage["path"] == str(store.artifact_dir("used"))
    assert store.usage(catalog.artifacts["unused"])["state"] == "absent"
    partial = settings.cache_dir / "blobs" / "md5" / "ab" / f"abc.part-{HOST}-{os.getpid()}-deadbeef"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"p" * 77)
    status = api.status(settings)
    assert status["cache"] == str(settings.cache_dir)
    rows = {r["name"]: r for r in status["artifacts"]}
    assert "unused" not in rows
    assert rows["used"]["state"] == "present"
    assert rows["used"]["bytes"] == len(body)
    assert status["total_bytes"] == len(body)
    assert status["partial_bytes"] == 77
    # A record that is not complete makes a present folder "unverified".
    store.record_path("used").unlink()
    assert store.usage(catalog.artifacts["used"])["state"] == "unverified"


def test_usage_counts_shared_inode_once(server: TestServer, write_manifest: ManifestWriter, settings: Settings) -> None:
    body = os.urandom(1000)
    u1 = server.add("/store/twin/1.bin", body)
    u2 = server.add("/store/twin/2.bin", body)
    write_manifest(dataset_toml("twin", [("1.bin", [u1], body, None), ("2.bin", [u2], body, None)]))
    assert api.fetch(["twin"], settings).ok
    catalog = load_catalog(settings.all_manifest_dirs)
    usage = Store(settings.cache_dir).usage(catalog.artifacts["twin"])
    assert usage["state"] == "present"
    assert usage["files"] == 2
    assert usage["bytes"] == len(body)


def test_gc_removes_unreferenced_and_stale(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    keep_body, drop_body = os.urandom(1500), os.urandom(2500)
    keep_view = _fetch_one(server, write_manifest, settings, "gc-keep", keep_body, "keep")
    drop_view = _fetch_one(server, write_manifest, settings, "gc-drop", drop_body, "drop")
    store = Store(settings.cache_dir)
    catalog = load_catalog(settings.all_manifest_dirs)
    keep_blob = store.blob_path(catalog.artifacts["gc-keep"].files[0].checksum)
    drop_blob = store.blob_path(catalog.artifacts["gc-drop"].files[0].checksum)
    assert os.path.samefile(drop_blob, drop_view)
    parts = settings.cache_dir / "blobs" / "md5" / "00"
    parts.mkdir(parents=True, exist_ok=True)
    stale = parts / f"{'0' * 32}.part-{HOST}-{_dead_pid()}-1a2b3c4d"
    live = parts / f"{'0' * 32}.part-{HOST}-{os.getpid()}-5e6f7a8b"
    stale.write_bytes(b"s" * 10)
    live.write_bytes(b"l" * 20)
    (settings.cache_dir / "manifests-gone").mkdir()  # not gc's business
    (settings.cache_dir.parent / "manifests" / "drop.toml").unlink()

    dry = api.gc(settings, dry_run=True)
    assert dry.dry_run
    listed = {p for p, _, _ in dry.removed}
    assert str(drop_blob) in listed
    assert str(stale) in listed
    assert str(keep_blob) not in listed and str(live) not in listed
    assert str(drop_view) in listed
    assert str(store.record_path("gc-drop")) in listed
    assert dry.bytes >= len(drop_body) + 10
    assert drop_blob.exists() and stale.exists() and drop_view.exists()

    report = api.gc(settings)
    assert {p for p, _, _ in report.removed} == listed
    why = {p: w for p, _, w in report.removed}
    assert why[str(drop_blob)] == "no manifest references it"
    assert why[str(stale)] == "stale partial download"
    assert not drop_blob.exists()
    assert not stale.exists()
    assert not drop_view.exists()
    assert not store.artifact_dir("gc-drop").exists()
    assert not store.record_path("gc-drop").exists()
    assert keep_blob.read_bytes() == keep_body
    assert keep_view.read_bytes() == keep_body
    assert live.exists()
    assert (settings.cache_dir / "manifests-gone").is_dir()
    assert api.verify(["gc-keep"], settings, full=True).ok
    assert api.gc(settings).removed == []


def test_is_stale_temp(tmp_path: Path) -> None:
    now = time.time()
    plain = tmp_path / "data.bin"
    plain.write_bytes(b"x")
    assert not is_stale_temp(plain)
    assert not is_stale_temp(tmp_path / f"gone.part-{HOST}-{_dead_pid()}-aaaa0000")  # no such file
    live = tmp_path / f"f.part-{HOST}-{os.getpid()}-aaaa1111"
    live.write_bytes(b"x")
    assert not is_stale_temp(live)
    os.utime(live, (now - 10 * STALE_AFTER, now - 10 * STALE_AFTER))
    assert not is_stale_temp(live)  # its writer is alive, however old
    dead = tmp_path / f"f.part-{HOST}-{_dead_pid()}-bbbb2222"
    dead.write_bytes(b"x")
    assert is_stale_temp(dead)
    elsewhere = tmp_path / "f.part-otherhost-1-cccc3333"
    elsewhere.write_bytes(b"x")
    assert not is_stale_temp(elsewhere)
    assert is_stale_temp(elsewhere, now=now + STALE_AFTER + 60)
    os.utime(elsewhere, (now - STALE_AFTER - 60, now - STALE_AFTER - 60))
    assert is_stale_temp(elsewhere)


def test_gc_removes_interrupted_extraction_folder(
    write_manifest: ManifestWriter, settings: Settings, tmp_path: Path
) -> None:
    body = b"payload"
    src = tmp_path / "data.bin"
    src.write_bytes(body)
    write_manifest(dataset_toml("keepme", [("data.bin", [str(src)], body, None)]))
    assert api.fetch(["keepme"], settings).ok
    art = Store(settings.cache_dir).artifact_dir("keepme")
    dead = art / f"tree.part-{HOST}-{_dead_pid()}-cafe1234"
    (dead / "sub").mkdir(parents=True)
    (dead / "sub" / "x.JPEG").write_bytes(b"half")
    listed = api.gc(settings, dry_run=True)
    assert any("interrupted extraction" in why for _p, _n, why in listed.removed)
    assert dead.exists()
    api.gc(settings)
    assert not dead.exists()
    assert (art / "data.bin").read_bytes() == body


def test_gc_keeps_extraction_records_of_defined_artifacts(
    write_manifest: ManifestWriter, settings: Settings, tmp_path: Path
) -> None:
    """records/<name>.trees.json belongs to artifact <name>, not to an undefined '<name>.trees'."""
    import tarfile

    member = tmp_path / "a.txt"
    member.write_bytes(b"inside")
    tar = tmp_path / "pack.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(member, arcname="a.txt")
    write_manifest(dataset_toml("packed", [("pack.tar", [str(tar)], tar.read_bytes(), None)]) + 'extract = "tar"\n')
    assert api.fetch(["packed"], settings).ok
    trees = settings.cache_dir / "records" / "packed.trees.json"
    assert trees.is_file()
    report = api.gc(settings)
    assert trees.is_file() and not [p for p, _n, _why in report.removed if "trees" in str(p)]
    assert api.verify(["packed"], settings).ok


def test_gc_removes_preprocessing_leftovers_and_keeps_runs_of_defined_benchmarks(
    write_manifest: ManifestWriter, settings: Settings, tmp_path: Path
) -> None:
    body = b"payload"
    src = tmp_path / "d.bin"
    src.write_bytes(body)
    write_manifest(
        dataset_toml("ppdata", [("d.bin", [str(src)], body, None)])
        + '[[benchmark]]\nname = "ppbench"\ndataset = "ppdata"\n'
    )
    top = settings.cache_dir / "preprocessed"

    def make(rel: str) -> Path:
        path = top / rel / "x.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        return path

    kept = [make("ppbench/aaaa"), make("ppbench/aaaa.validation"), make("ppbench/bbbb")]
    gone = [
        make("gonebench/cccc"),  # a benchmark no manifest defines
        make("ppbench/dddd.rejected"),  # failed its expected_tree pin
        make("ppbench/eeee.validation"),  # its run eeee is gone
        make(f"ppbench/ffff.part-{HOST}-{_dead_pid()}-abcd1234"),  # an interrupted run
    ]
    listed = api.gc(settings, dry_run=True)
    assert {p for p, _n, _why in listed.removed} >= {str(p) for p in gone}
    assert all(p.exists() for p in gone)
    api.gc(settings)
    assert all(p.exists() for p in kept)
    assert not any(p.exists() for p in gone) and not (top / "gonebench").exists()


# -- issue 13: only the tool's own exact temp names are temp names ----------------------------


def test_parse_temp_name_is_exact(tmp_path: Path) -> None:
    made = temp_name(tmp_path / "data.bin")
    parsed = parse_temp_name(made.name)
    assert parsed is not None and parsed.final == "data.bin" and parsed.pid == os.getpid() and not parsed.sidecar
    assert parse_temp_name(made.name + ".json") == TempName("data.bin", HOST, os.getpid(), True)
    assert parse_temp_name(f"{made.name}.json.tmp{os.getpid()}") is not None
    for name in (
        "data.part-1.bin",  # a tar member
        "data.tar.gz.part-00",  # a split archive
        f"x.part-{HOST}-12-abcd",  # 4 hex, not 8
        f"x.part-{HOST}-12-ABCDEF12",  # upper case: temp_name writes lower-case hex
        f"x.part-{HOST}-12-abcdef12.bin",
        "x.part-a-b-12-abcdef12",  # a host never holds '-' (temp_name turns it into '_')
        f"x.part-{HOST}-pid-abcdef12",
    ):
        assert parse_temp_name(name) is None, name


def test_gc_and_status_keep_files_that_merely_contain_part(
    write_manifest: ManifestWriter, settings: Settings, tmp_path: Path
) -> None:
    """A tar member ``data.part-1.bin`` and split-archive files ``data.tar.gz.part-00``, all with old
    mtimes (a hard link from --from keeps the source's), are data: gc keeps them, status counts no
    partial bytes."""
    import io
    import tarfile

    members = {"data.part-1.bin": b"one", "logs/run.part-a-1-bc": b"two", "x.tar.part-00/y.bin": b"three"}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_500_000_000
            tf.addfile(info, io.BytesIO(data))
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    tar = upstream / "pack.tar"
    tar.write_bytes(raw.getvalue())
    splits = {"data.tar.gz.part-00": os.urandom(300), "data.tar.gz.part-01": os.urandom(200)}
    for name, body in splits.items():
        (upstream / name).write_bytes(body)
    old = time.time() - 10 * STALE_AFTER
    for p in upstream.iterdir():
        os.utime(p, (old, old))
    files = [(n, [str(upstream / "gone" / n)], (upstream / n).read_bytes(), None) for n in ["pack.tar", *splits]]
    write_manifest(dataset_toml("parts", files).replace('name = "pack.tar"', 'name = "pack.tar"\nextract = "tar"'))
    assert api.fetch(["parts"], settings, from_paths=[upstream]).ok
    art = Store(settings.cache_dir).artifact_dir("parts")
    assert (art / "data.tar.gz.part-00").stat().st_mtime < time.time() - STALE_AFTER  # linked, mtime kept
    assert api.gc(settings, dry_run=True).removed == []
    assert api.gc(settings).removed == []
    for name, data in members.items():
        assert (art / "pack" / name).read_bytes() == data
    for name, body in splits.items():
        assert (art / name).read_bytes() == body
    assert api.status(settings)["partial_bytes"] == 0
    assert api.verify(["parts"], settings).ok


# -- issue 13: records and trees of the wrong shape are missing records, never a crash --------

_DEEP = "[" * 100_000 + "]" * 100_000  # nesting deeper than the JSON parser's recursion limit

BAD_RECORDS = [
    "null",
    '{"files": []}',
    '{"complete": true, "files": "x"}',
    '{"complete": true, "files": {"f.bin": null}}',
    '{"complete": true, "files": {"f.bin": {"checksum": 5, "xxh3_128": "", "size": 1, "mtime_ns": 1, "ino": 1}}}',
    '{"complete": true, "files": {"f.bin": {"checksum": "md5:00", "xxh3_128": "", "size": true, "mtime_ns": 1, '
    '"ino": 1}}}',
    _DEEP,
    "\x00\xff not json",
]


@pytest.mark.parametrize("text", BAD_RECORDS, ids=range(len(BAD_RECORDS)))
def test_record_of_the_wrong_shape_is_taken_as_missing(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings, text: str
) -> None:
    from typer.testing import CliRunner

    from provision.cli.app import app

    body = os.urandom(999)
    view = _fetch_one(server, write_manifest, settings, "shapes", body)
    store = Store(settings.cache_dir)
    store.record_path("shapes").write_text(text, encoding="utf-8")
    catalog = load_catalog(settings.all_manifest_dirs)
    assert store.load_record("shapes") == {} or "f.bin" not in store.load_record("shapes")
    assert store.usage(catalog.artifacts["shapes"])["state"] == "unverified"
    runner = CliRunner()
    for args in (["status"], ["list"], ["show", "shapes"], ["path", "shapes"], ["gc", "--dry-run"]):
        result = runner.invoke(app, args)
        assert "unexpected" not in result.output, (args, result.output)
    report = api.verify(["shapes"], settings)  # re-hashed against the manifest, then recorded again
    assert report.ok and report.files_hashed == 1
    assert store.load_record("shapes")["f.bin"].size == len(body)
    store.record_path("shapes").write_text(text, encoding="utf-8")
    fetched = api.fetch(["shapes"], settings)
    assert fetched.ok and [f.state for f in fetched.files] == ["cached"]
    assert store.record_complete("shapes") and view.read_bytes() == body
    result = runner.invoke(app, ["path", "shapes"])
    assert result.exit_code == 0 and result.output.strip() == str(store.artifact_dir("shapes"))


BAD_TREES = [
    "null",
    '{"trees": []}',
    '{"trees": {"pack.tar": null}}',
    '{"trees": {"pack.tar": {"key": KEY, "kind": "dir", "files": []}}}',
    '{"trees": {"pack.tar": {"key": KEY, "kind": "dir", "files": {"a.txt": [6, "x"]}}}}',
    '{"trees": {"pack.tar": {"key": KEY, "kind": "dir", "files": {"a.txt": ["6", "x", 1, 1]}}}}',
    '{"trees": {"pack.tar": {"key": KEY, "kind": "blob", "files": {}}}}',
    '{"trees": {"pack.tar": {"key": KEY, "kind": "dir", "files": {}, "links": {"l": 5}}}}',
    _DEEP,
]


@pytest.mark.parametrize("text", BAD_TREES, ids=range(len(BAD_TREES)))
def test_tree_record_of_the_wrong_shape_means_not_extracted(
    write_manifest: ManifestWriter, settings: Settings, tmp_path: Path, text: str
) -> None:
    import tarfile

    from typer.testing import CliRunner

    from provision.cli.app import app
    from provision.store.trees import extraction_key

    member = tmp_path / "a.txt"
    member.write_bytes(b"inside")
    tar = tmp_path / "pack.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(member, arcname="a.txt")
    write_manifest(dataset_toml("treeshape", [("pack.tar", [str(tar)], tar.read_bytes(), None)]) + 'extract = "tar"\n')
    assert api.fetch(["treeshape"], settings).ok
    catalog = load_catalog(settings.all_manifest_dirs)
    key = extraction_key(catalog.artifacts["treeshape"].files[0])
    trees = settings.cache_dir / "records" / "treeshape.trees.json"
    trees.write_text(text.replace("KEY", json.dumps(key)), encoding="utf-8")
    runner = CliRunner()
    for args in (["status"], ["list"], ["verify"], ["verify", "treeshape"], ["gc", "--dry-run"]):
        result = runner.invoke(app, args)
        assert "unexpected" not in result.output, (args, result.output)
    report = api.verify(["treeshape"], settings)
    assert not report.ok and "no completion record" in report.failures[0].message()
    fetched = api.fetch(["treeshape"], settings)  # extracted again, recorded again
    assert fetched.ok, fetched.failures
    assert api.verify(["treeshape"], settings).ok
    assert (Store(settings.cache_dir).artifact_dir("treeshape") / "pack" / "a.txt").read_bytes() == b"inside"


@pytest.mark.parametrize("note", ["[1, 2]", "null", '{"pid": "x", "host": 5}', _DEEP])
def test_lock_owner_note_of_the_wrong_shape(settings: Settings, note: str) -> None:
    import filelock

    from provision.errors import LockTimeoutError

    store = Store(settings.cache_dir)
    store.ensure()
    held = filelock.FileLock(str(store.root / "locks" / "busy.lock"))
    held.acquire()
    try:
        (store.root / "locks" / "busy.owner").write_text(note, encoding="utf-8")
        waits: list[str] = []
        with pytest.raises(LockTimeoutError, match="another process"), store.lock("busy", 0.05, waits.append):
            pass
        assert waits and "another process" in waits[0]
    finally:
        held.release()
