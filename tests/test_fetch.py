"""fetch: real HTTP server on 127.0.0.1, real files, the real cache."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import ManifestWriter, dataset_toml
from httpserver import TestServer, md5

from provision import api
from provision.config import Settings
from provision.errors import EXIT_INTEGRITY, EXIT_SOURCE, DiskSpaceError, IntegrityError, LockTimeoutError, UsageError
from provision.sources.base import AttemptFailed, IntegrityFailure, StatusFailure
from provision.store.cache import Store


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


# -- helpers ---------------------------------------------------------------------------


class RecordingProgress:
    """A Progress that remembers every event (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.notes: list[str] = []
        self.events: list[tuple[str, str]] = []

    def start(self, key: str, label: str, total: int | None, done: int = 0) -> None:
        with self.lock:
            self.events.append(("start", key))

    def advance(self, key: str, nbytes: int) -> None:
        with self.lock:
            self.events.append(("advance", key))

    def finish(self, key: str, ok: bool) -> None:
        with self.lock:
            self.events.append(("finish" if ok else "failed", key))

    def note(self, text: str) -> None:
        with self.lock:
            self.notes.append(text)

    def retry(self, key: str, url: str, text: str) -> None:
        self.note(text)


def blob_files(cache: Path) -> list[Path]:
    """Every file under the cache's blobs folder."""
    return sorted(p for p in (cache / "blobs").rglob("*") if p.is_file())


def part_files(cache: Path) -> list[Path]:
    """Every temp file left anywhere under the cache."""
    return sorted(p for p in cache.rglob("*") if ".part-" in p.name)


def view_of(settings: Settings, artifact: str, name: str) -> Path:
    return Store(settings.cache_dir).artifact_dir(artifact) / name


def flip_byte(path: Path, offset: int = 10) -> None:
    """Flip one byte of ``path`` in place and move its mtime on (as a later edit would)."""
    st = path.stat()
    os.chmod(path, 0o644)  # the cache makes blobs read-only
    with open(path, "r+b") as fh:
        fh.seek(offset)
        b = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([b[0] ^ 0xFF]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def manual_toml(name: str, fname: str, body: bytes, page: str = "https://example.org/register") -> str:
    return dataset_toml(name, [(fname, [f"manual:{page}"], body, None)])


# -- by name, alias, benchmark -----------------------------------------------------------


def test_fetch_model_by_name(server: TestServer, write_manifest: ManifestWriter, settings: Settings) -> None:
    body = os.urandom(5000)
    url = server.add("/model-by-name/m.onnx", body)
    write_manifest(dataset_toml("tiny-model", [("m.onnx", [url], body, None)], kind="model"))
    report = api.fetch(["tiny-model"], settings)
    assert report.ok, report.failures
    assert [f.state for f in report.files] == ["fetched"]
    assert report.files[0].source == url
    assert report.files[0].bytes == len(body)
    assert view_of(settings, "tiny-model", "m.onnx").read_bytes() == body
    assert set(report.artifacts) == {"tiny-model"}


def test_fetch_by_alias(server: TestServer, write_manifest: ManifestWriter, settings: Settings) -> None:
    body = os.urandom(4000)
    url = server.add("/alias/a.bin", body)
    write_manifest(dataset_toml("aliased-ds", [("a.bin", [url], body, None)], extra='aliases = ["nick", "other"]'))
    report = api.fetch(["nick"], settings)
    assert report.ok, report.failures
    assert set(report.artifacts) == {"aliased-ds"}
    assert report.files[0].artifact == "aliased-ds"
    assert view_of(settings, "aliased-ds", "a.bin").read_bytes() == body
    again = api.fetch(["other", "aliased-ds"], settings)
    assert [f.state for f in again.files] == ["cached"]
    assert server.hits["/alias/a.bin"] == 1


def test_fetch_benchmark_brings_dataset_labels_and_models(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    data = os.urandom(6000)
    labels = b"img1.jpg 3\nimg2.jpg 7\n"
    m1 = os.urandom(3000)
    m2 = os.urandom(3500)
    u_data = server.add("/bench/data.tar", data)
    u_labels = server.add("/bench/val_map.txt", labels)
    u_m1 = server.add("/bench/m1.onnx", m1)
    u_m2 = server.add("/bench/m2.pt", m2)
    text = f"""schema = 1
[[dataset]]
name = "bench-data"
[[dataset.files]]
name = "data.tar"
urls = ["{u_data}"]
size = {len(data)}
checksum = "{md5(data)}"

[[dataset]]
name = "bench-labels"
[[dataset.files]]
name = "val_map.txt"
urls = ["{u_labels}"]
size = {len(labels)}
checksum = "{md5(labels)}"

[[model]]
name = "bench-m1"
format = "onnx"
[[model.files]]
name = "m1.onnx"
urls = ["{u_m1}"]
checksum = "{md5(m1)}"

[[model]]
name = "bench-m2"
format = "pytorch"
[[model.files]]
name = "m2.pt"
urls = ["{u_m2}"]
size = {len(m2)}
checksum = "{md5(m2)}"

[[benchmark]]
name = "bench"
aliases = ["the-bench"]
dataset = "bench-data"
labels = "bench-labels/val_map.txt"
models = ["bench-m1", "bench-m2"]
"""
    write_manifest(text)
    report = api.fetch(["the-bench"], settings)
    assert report.ok, report.failures
    assert list(report.artifacts) == ["bench-data", "bench-labels", "bench-m1", "bench-m2"]
    assert [(f.artifact, f.state) for f in report.files] == [
        ("bench-data", "fetched"),
        ("bench-labels", "fetched"),
        ("bench-m1", "fetched"),
        ("bench-m2", "fetched"),
    ]
    assert view_of(settings, "bench-data", "data.tar").read_bytes() == data
    assert view_of(settings, "bench-labels", "val_map.txt").read_bytes() == labels
    assert view_of(settings, "bench-m1", "m1.onnx").read_bytes() == m1
    assert view_of(settings, "bench-m2", "m2.pt").read_bytes() == m2
    paths = dict(api.path("bench", settings))
    assert set(paths) == {"bench-data", "bench-labels", "bench-m1", "bench-m2"}


def test_fetch_benchmark_brings_its_extra_datasets(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    """flux.1's shape: a training set, an evaluation set and encodings, all fetched by the benchmark's name."""
    bodies = {name: os.urandom(2000 + i) for i, name in enumerate(("train", "eval", "enc"))}
    parts = [
        dataset_toml(name, [(f"{name}.bin", [server.add(f"/x/{name}.bin", body)], body, None)]).replace(
            "schema = 1\n", ""
        )
        for name, body in bodies.items()
    ]
    tail = '[[benchmark]]\nname = "b"\ndataset = "train"\nextra_datasets = ["eval", "enc"]\n'
    write_manifest("schema = 1\n" + "".join(parts) + tail)
    report = api.fetch(["b"], settings)
    assert report.ok, report.failures
    assert list(report.artifacts) == ["train", "eval", "enc"]
    for name, body in bodies.items():
        assert view_of(settings, name, f"{name}.bin").read_bytes() == body
    assert set(dict(api.path("b", settings))) == {"train", "eval", "enc"}


# -- mirrors ---------------------------------------------------------------------------------


def test_mirror_fallback_records_attempts(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    body = os.urandom(7000)
    u1 = server.add("/mirrors/one/f.bin", body, status=500)
    u2 = server.url("/mirrors/two/f.bin")  # no route: 404
    u3 = server.add("/mirrors/three/f.bin", body)
    write_manifest(dataset_toml("mirrored", [("f.bin", [u1, u2, u3], body, None)]))
    progress = RecordingProgress()
    report = api.fetch(["mirrored"], settings, progress=progress)
    assert report.ok, report.failures
    result = report.files[0]
    assert result.state == "fetched"
    assert result.source == u3
    assert [u for u, _ in result.attempts] == [u1, u2]
    # Each attempt keeps the source's own failure: its kind and status, not only its text.
    (_, first), (_, second) = result.attempts
    assert isinstance(first, StatusFailure) and first.status == 500 and str(first).startswith("HTTP 500")
    assert isinstance(second, StatusFailure) and second.status == 404 and str(second).startswith("HTTP 404")
    assert any(u1 in n and "HTTP 500" in n for n in progress.notes)
    assert view_of(settings, "mirrored", "f.bin").read_bytes() == body
    assert server.hits["/mirrors/three/f.bin"] == 1


def test_wrong_checksum_everywhere_leaves_nothing(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    body = os.urandom(8000)
    other = os.urandom(8000)
    u1 = server.add("/badsum/a/f.bin", other)
    u2 = server.add("/badsum/b/f.bin", other)
    write_manifest(dataset_toml("badsum", [("f.bin", [u1, u2], body, None)]))
    report = api.fetch(["badsum"], settings)
    assert not report.ok
    assert report.exit_code == EXIT_INTEGRITY == 3
    failure = report.failures[0]
    assert failure.state == "failed"
    assert [u for u, _ in failure.attempts] == [u1, u2]
    assert all(isinstance(a, IntegrityFailure) for _, a in failure.attempts)
    assert isinstance(failure.failure, IntegrityError)
    with pytest.raises(IntegrityError) as info:
        report.raise_for_errors()
    msg = str(info.value)
    assert f"expected {md5(body)}" in msg
    assert f"got {md5(other)}" in msg
    cache = settings.cache_dir
    assert not view_of(settings, "badsum", "f.bin").exists()
    assert blob_files(cache) == []
    assert part_files(cache) == []
    assert server.hits["/badsum/a/f.bin"] == 1
    assert server.hits["/badsum/b/f.bin"] == 1


def test_wrong_mirror_then_good_one(server: TestServer, write_manifest: ManifestWriter, settings: Settings) -> None:
    body = os.urandom(9000)
    u1 = server.add("/wrongfirst/a/f.bin", os.urandom(9000))
    u2 = server.add("/wrongfirst/b/f.bin", body)
    write_manifest(dataset_toml("wrongfirst", [("f.bin", [u1, u2], body, None)]))
    report = api.fetch(["wrongfirst"], settings)
    assert report.ok, report.failures
    result = report.files[0]
    assert result.source == u2
    assert len(result.attempts) == 1
    assert result.attempts[0][0] == u1
    assert isinstance(result.attempts[0][1], IntegrityFailure)
    assert "checksum mismatch" in str(result.attempts[0][1])
    assert view_of(settings, "wrongfirst", "f.bin").read_bytes() == body
    assert len(blob_files(settings.cache_dir)) == 1
    assert part_files(settings.cache_dir) == []


# -- hostile hosts ---------------------------------------------------------------------------


def test_html_content_type_rejected(server: TestServer, write_manifest: ManifestWriter, settings: Settings) -> None:
    body = os.urandom(2000)
    page = b"<html><body>Please log in</body></html>"
    url = server.add("/html-ctype/f.bin", page, content_type="text/html; charset=utf-8")
    write_manifest(dataset_toml("html-ctype", [("f.bin", [url], body, None)]))
    report = api.fetch(["html-ctype"], settings)
    assert not report.ok
    assert report.exit_code == EXIT_SOURCE == 4
    failed = report.failures[0].attempts[0][1]
    assert type(failed) is AttemptFailed and "text/html" in str(failed)  # not the file; not wrong bytes
    assert not view_of(settings, "html-ctype", "f.bin").exists()
    assert blob_files(settings.cache_dir) == []
    assert part_files(settings.cache_dir) == []


def test_html_body_sniffed_under_octet_stream(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    page = b"\n  <!DOCTYPE html><html><head><title>Sign in</title></head></html>"
    body = os.urandom(len(page))  # same size: only sniffing can tell
    url = server.add("/html-sniff/f.bin", page, content_type="application/octet-stream")
    write_manifest(dataset_toml("html-sniff", [("f.bin", [url], body, None)]))
    report = api.fetch(["html-sniff"], settings)
    assert not report.ok
    assert report.exit_code == EXIT_SOURCE
    assert "HTML" in str(report.failures[0].attempts[0][1])
    assert not view_of(settings, "html-sniff", "f.bin").exists()
    assert blob_files(settings.cache_dir) == []
    assert part_files(settings.cache_dir) == []


def test_content_length_differs_from_manifest_size(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    body = os.urandom(4000)
    url = server.add("/size-cl/f.bin", body + b"extra")
    write_manifest(dataset_toml("size-cl", [("f.bin", [url], body, None)]))
    report = api.fetch(["size-cl"], settings)
    assert not report.ok
    assert report.exit_code == EXIT_INTEGRITY
    failed = report.failures[0].attempts[0][1]
    answer = str(failed)
    assert isinstance(failed, IntegrityFailure)
    assert "size mismatch" in answer and "4000" in answer and "4005" in answer
    assert blob_files(settings.cache_dir) == []
    assert part_files(settings.cache_dir) == []


def test_body_longer_than_size_without_length(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    body = os.urandom(4000)
    url = server.add("/size-nolen/f.bin", body + os.urandom(100_000), no_length=True, accept_ranges=False)
    write_manifest(dataset_toml("size-nolen", [("f.bin", [url], body, None)]))
    report = api.fetch(["size-nolen"], settings)
    assert not report.ok
    assert report.exit_code == EXIT_INTEGRITY
    failed = report.failures[0].attempts[0][1]
    assert isinstance(failed, IntegrityFailure) and "more than the 4000 bytes" in str(failed)
    assert not view_of(settings, "size-nolen", "f.bin").exists()
    assert blob_files(settings.cache_dir) == []
    assert part_files(settings.cache_dir) == []


def test_connection_dropped_truncated_body_rejected(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    body = os.urandom(200_000)
    # Every connection drops and the server cannot resume: the URL is given up.
    url = server.add("/dropped/f.bin", body, drop_after=70_000, accept_ranges=False)
    write_manifest(dataset_toml("dropped", [("f.bin", [url], body, None)]))
    report = api.fetch(["dropped"], settings.with_(backoff=0.01))
    assert not report.ok
    result = report.failures[0]
    assert [u for u, _ in result.attempts] == [url]
    assert "IncompleteRead" in str(result.attempts[0][1])
    assert report.exit_code == EXIT_SOURCE
    assert not view_of(settings, "dropped", "f.bin").exists()
    assert blob_files(settings.cache_dir) == []
    assert part_files(settings.cache_dir) == []


def test_truncated_body_without_length_rejected(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    body = os.urandom(50_000)
    # No Content-Length and no range support: the short body cannot be continued.
    url = server.add("/truncated-nolen/f.bin", body, truncate_to=20_000, no_length=True, accept_ranges=False)
    write_manifest(dataset_toml("trunc-nolen", [("f.bin", [url], body, None)]))
    report = api.fetch(["trunc-nolen"], settings.with_(backoff=0.01))
    assert not report.ok
    assert report.exit_code == EXIT_SOURCE
    failed = report.failures[0].attempts[0][1]
    assert "ended early at 20000 of 50000" in str(failed)
    assert blob_files(settings.cache_dir) == []
    assert part_files(settings.cache_dir) == []


# -- cache behaviour -------------------------------------------------------------------------


def test_fetch_repairs_corrupted_file(server: TestServer, write_manifest: ManifestWriter, settings: Settings) -> None:
    body = os.urandom(20_000)
    url = server.add("/repair/f.bin", body)
    write_manifest(dataset_toml("repairme", [("f.bin", [url], body, None)]))
    assert api.fetch(["repairme"], settings).ok
    view = view_of(settings, "repairme", "f.bin")
    flip_byte(view)
    assert view.read_bytes() != body
    report = api.fetch(["repairme"], settings)
    assert report.ok, report.failures
    assert [f.state for f in report.files] == ["repaired"]
    assert view.read_bytes() == body
    assert server.hits["/repair/f.bin"] == 2
    blobs = blob_files(settings.cache_dir)
    assert len(blobs) == 1 and blobs[0].read_bytes() == body
    assert api.verify(["repairme"], settings, full=True).ok
    assert [f.state for f in api.fetch(["repairme"], settings).files] == ["cached"]


def test_second_fetch_served_from_cache(server: TestServer, write_manifest: ManifestWriter, settings: Settings) -> None:
    b1, b2 = os.urandom(3000), os.urandom(3100)
    u1 = server.add("/cached-twice/1.bin", b1)
    u2 = server.add("/cached-twice/2.bin", b2)
    write_manifest(dataset_toml("twice", [("1.bin", [u1], b1, None), ("2.bin", [u2], b2, None)]))
    assert api.fetch(["twice"], settings).ok
    hits = (server.hits["/cached-twice/1.bin"], server.hits["/cached-twice/2.bin"])
    assert hits == (1, 1)
    again = api.fetch(["twice"], settings)
    assert again.ok
    assert [f.state for f in again.files] == ["cached", "cached"]
    assert (server.hits["/cached-twice/1.bin"], server.hits["/cached-twice/2.bin"]) == hits


def test_shared_checksum_shares_one_blob(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    body = os.urandom(12_000)
    u1 = server.add("/shared/a.bin", body)
    u2 = server.add("/shared/b.bin", body)
    text = dataset_toml("shared-a", [("a.bin", [u1], body, None)])
    write_manifest(text, "a")
    write_manifest(dataset_toml("shared-b", [("b.bin", [u2], body, None)]), "b")
    report = api.fetch(["shared-a", "shared-b"], settings)
    assert report.ok, report.failures
    a = view_of(settings, "shared-a", "a.bin")
    b = view_of(settings, "shared-b", "b.bin")
    blobs = blob_files(settings.cache_dir)
    assert len(blobs) == 1
    assert os.stat(a).st_ino == os.stat(b).st_ino == os.stat(blobs[0]).st_ino
    assert server.hits.get("/shared/a.bin", 0) + server.hits.get("/shared/b.bin", 0) == 1
    assert sorted(f.state for f in report.files) == ["fetched", "linked"]


def test_shared_checksum_fetched_separately_is_linked(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    body = os.urandom(12_000)
    u1 = server.add("/shared-sep/a.bin", body)
    u2 = server.add("/shared-sep/b.bin", body)
    write_manifest(dataset_toml("sep-a", [("a.bin", [u1], body, None)]), "a")
    write_manifest(dataset_toml("sep-b", [("b.bin", [u2], body, None)]), "b")
    assert api.fetch(["sep-a"], settings).ok
    report = api.fetch(["sep-b"], settings)
    assert report.ok, report.failures
    assert [f.state for f in report.files] == ["linked"]
    assert server.hits.get("/shared-sep/b.bin", 0) == 0
    a = view_of(settings, "sep-a", "a.bin")
    b = view_of(settings, "sep-b", "b.bin")
    assert os.stat(a).st_ino == os.stat(b).st_ino
    assert len(blob_files(settings.cache_dir)) == 1


def test_disk_space_refused_before_any_request(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    url = server.add("/huge/f.bin", b"x")
    write_manifest(
        f"""schema = 1
[[dataset]]
name = "huge"
[[dataset.files]]
name = "f.bin"
urls = ["{url}"]
size = {10**15}
checksum = "{md5(b"x")}"
"""
    )
    with pytest.raises(DiskSpaceError) as info:
        api.fetch(["huge"], settings)
    assert "huge" in str(info.value) and "disk space" in str(info.value)
    assert server.hits.get("/huge/f.bin", 0) == 0
    assert blob_files(settings.cache_dir) == []


# -- manual: and --from ---------------------------------------------------------------------


def test_manual_without_from_explains(write_manifest: ManifestWriter, settings: Settings) -> None:
    body = os.urandom(3000)
    write_manifest(manual_toml("licensed", "VAL.tar", body, "https://example.org/register-here"))
    report = api.fetch(["licensed"], settings)
    assert not report.ok
    assert report.exit_code == EXIT_SOURCE == 4
    err = report.failures[0].error
    assert "https://example.org/register-here" in err
    assert "VAL.tar" in err
    assert "3000 bytes" in err
    assert md5(body) in err
    assert "--from" in err


def test_manual_from_folder_found_by_size_and_checksum(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    body = os.urandom(3000)
    write_manifest(manual_toml("licensed-b", "VAL.tar", body))
    folder = tmp_path / "downloads"
    (folder / "deep" / "er").mkdir(parents=True)
    (folder / "unrelated.txt").write_bytes(b"hello")
    renamed = folder / "deep" / "er" / "renamed-by-browser (1).tar"
    renamed.write_bytes(body)
    report = api.fetch(["licensed-b"], settings, from_paths=[folder])
    assert report.ok, report.failures
    result = report.files[0]
    assert result.state == "fetched"
    assert result.source == str(renamed)
    assert view_of(settings, "licensed-b", "VAL.tar").read_bytes() == body
    assert renamed.read_bytes() == body  # the user's file is left alone
    assert part_files(settings.cache_dir) == []


def test_manual_from_skips_decoy_with_right_name(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    body = os.urandom(3000)
    decoy = os.urandom(3000)
    write_manifest(manual_toml("licensed-c", "VAL.tar", body))
    folder = tmp_path / "downloads"
    (folder / "sub").mkdir(parents=True)
    (folder / "VAL.tar").write_bytes(decoy)
    good = folder / "sub" / "copy.bin"
    good.write_bytes(body)
    report = api.fetch(["licensed-c"], settings, from_paths=[folder])
    assert report.ok, report.failures
    result = report.files[0]
    assert result.source == str(good)
    assert [u for u, _ in result.attempts] == [str(folder / "VAL.tar")]
    assert isinstance(result.attempts[0][1], IntegrityFailure)
    assert "checksum mismatch" in str(result.attempts[0][1])
    assert view_of(settings, "licensed-c", "VAL.tar").read_bytes() == body
    assert (folder / "VAL.tar").read_bytes() == decoy
    assert len(blob_files(settings.cache_dir)) == 1


def test_manual_from_folder_without_it(tmp_path: Path, write_manifest: ManifestWriter, settings: Settings) -> None:
    body = os.urandom(3000)
    write_manifest(manual_toml("licensed-d", "VAL.tar", body, "https://example.org/reg"))
    folder = tmp_path / "empty-ish"
    folder.mkdir()
    (folder / "other.tar").write_bytes(os.urandom(100))
    report = api.fetch(["licensed-d"], settings, from_paths=[folder])
    assert not report.ok
    assert report.exit_code == EXIT_SOURCE
    err = report.failures[0].error
    assert f"not found under {folder}" in err
    assert "VAL.tar" in err and "3000 bytes" in err and md5(body) in err
    assert "https://example.org/reg" in err
    assert not view_of(settings, "licensed-d", "VAL.tar").exists()
    assert blob_files(settings.cache_dir) == []


# -- offline ---------------------------------------------------------------------------------


def test_offline_refuses_network_but_serves_cache(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    cached_body = os.urandom(2000)
    new_body = os.urandom(2100)
    u_cached = server.add("/offline/cached.bin", cached_body)
    u_new = server.add("/offline/new.bin", new_body)
    write_manifest(dataset_toml("off-cached", [("cached.bin", [u_cached], cached_body, None)]), "a")
    write_manifest(dataset_toml("off-new", [("new.bin", [u_new], new_body, None)]), "b")
    assert api.fetch(["off-cached"], settings).ok
    offline = settings.with_(offline=True)
    report = api.fetch(["off-new"], offline)
    assert not report.ok
    assert report.exit_code == EXIT_SOURCE
    err = report.failures[0].error
    assert "PROVISION_OFFLINE" in err
    assert "off-new/new.bin" in err
    assert server.hits.get("/offline/new.bin", 0) == 0
    ok = api.fetch(["off-cached"], offline)
    assert ok.ok, ok.failures
    assert [f.state for f in ok.files] == ["cached"]
    assert server.hits["/offline/cached.bin"] == 1


# -- concurrency and locks -----------------------------------------------------------------


def test_two_processes_fetch_same_artifact(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    body = os.urandom(3 << 20)
    url = server.add("/concurrent/big.bin", body, rate=6 << 20)
    write_manifest(dataset_toml("concurrent", [("big.bin", [url], body, None)]))
    env = dict(os.environ)
    assert env["PROVISION_CACHE"] == str(settings.cache_dir)
    cmd = [sys.executable, "-m", "provision.cli", "fetch", "concurrent", "--json"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err.decode()
    states = sorted(json.loads(out)["files"][0]["state"] for out, _ in outs)
    assert states == ["cached", "fetched"]
    assert server.hits["/concurrent/big.bin"] == 1
    assert view_of(settings, "concurrent", "big.bin").read_bytes() == body
    assert part_files(settings.cache_dir) == []
    assert api.verify(["concurrent"], settings, full=True).ok


def test_lock_timeout_names_holder(server: TestServer, write_manifest: ManifestWriter, settings: Settings) -> None:
    body = os.urandom(1000)
    url = server.add("/locked/f.bin", body)
    write_manifest(dataset_toml("locked", [("f.bin", [url], body, None)]))
    store = Store(settings.cache_dir)
    store.ensure()
    with store.lock("locked", 5):
        began = time.monotonic()
        with pytest.raises(LockTimeoutError) as info:
            api.fetch(["locked"], settings.with_(lock_timeout=0.3))
        assert time.monotonic() - began < 4
    assert f"pid {os.getpid()}" in str(info.value)
    assert "locked" in str(info.value)
    assert server.hits.get("/locked/f.bin", 0) == 0


def test_lock_wait_is_reported_then_fetch_proceeds(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    body = os.urandom(1000)
    url = server.add("/lockwait/f.bin", body)
    write_manifest(dataset_toml("lockwait", [("f.bin", [url], body, None)]))
    store = Store(settings.cache_dir)
    store.ensure()
    progress = RecordingProgress()
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["report"] = api.fetch(["lockwait"], settings.with_(lock_timeout=20), progress=progress)
        except BaseException as exc:
            outcome["error"] = exc

    with store.lock("lockwait", 5):
        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 10
        while not progress.notes and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.hits.get("/lockwait/f.bin", 0) == 0
        assert thread.is_alive()
    thread.join(15)
    assert not thread.is_alive()
    assert "error" not in outcome, outcome
    waiting = [n for n in progress.notes if n.startswith("waiting for")]
    assert waiting, progress.notes
    assert f"waiting for pid {os.getpid()} on {socket.gethostname()}" in waiting[0]
    report = outcome["report"]
    assert getattr(report, "ok", False)
    assert view_of(settings, "lockwait", "f.bin").read_bytes() == body


def test_fetch_benchmark_subset(server: TestServer, write_manifest: ManifestWriter, settings: Settings) -> None:
    full, small, model = os.urandom(5000), os.urandom(500), os.urandom(300)
    u_full = server.add("/subset/full.bin", full)
    u_small = server.add("/subset/small.bin", small)
    u_model = server.add("/subset/m.onnx", model)
    write_manifest(
        dataset_toml("sub-full", [("d.bin", [u_full], full, None)])
        + dataset_toml("sub-small", [("d.bin", [u_small], small, None)]).replace("schema = 1\n", "")
        + dataset_toml("sub-model", [("m.onnx", [u_model], model, None)], kind="model").replace("schema = 1\n", "")
        + '[[benchmark]]\nname = "sub-bench"\ndataset = "sub-full"\nmodels = ["sub-model"]\n'
        + '[benchmark.subsets]\n"2" = "sub-small"\n'
    )
    report = api.fetch(["sub-bench"], settings, subset="2")
    assert report.ok, report.failures
    assert sorted(report.artifacts) == ["sub-model", "sub-small"]
    assert "/subset/full.bin" not in server.hits
    with pytest.raises(UsageError, match="no subset '9'; subsets: 2"):
        api.fetch(["sub-bench"], settings, subset="9")
    with pytest.raises(UsageError, match="--subset applies to benchmarks"):
        api.fetch(["sub-full"], settings, subset="2")
