"""Local sources (plain paths, ``file://``): the one-read copy, its checks, and a fetch end to end.

Real files only: a FIFO, a symlink, a file that changes while it is copied (changed by a Progress
that the copy calls from its hashing thread), an interruption through the context's cancel event.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest
import xxhash
from conftest import ManifestWriter, dataset_toml

from provision import api
from provision.config import Settings
from provision.fsutil import CHUNK_SIZE, start_writeback
from provision.manifest.checksum import Checksum
from provision.manifest.model import FileSpec
from provision.progress import NullProgress, Progress
from provision.sources.base import AttemptFailed, IntegrityFailure, SourceContext
from provision.sources.file import fetch_file
from provision.sources.partial import Sink, state_path
from provision.store.cache import Store


def _spec(body: bytes, name: str = "f.bin") -> FileSpec:
    return FileSpec(
        name=name,
        urls=("/unused",),
        checksum=Checksum("md5", hashlib.md5(body).hexdigest()),
        size=len(body),
    )


def _sink(tmp_path: Path, spec: FileSpec, progress: Progress | None = None) -> Sink:
    return Sink(spec, tmp_path / "out" / "f.bin.part-test", "art/f.bin", progress or NullProgress())


class Counting:
    """A Progress that adds up what it was told, and may run ``on_advance`` once (from any thread)."""

    def __init__(self, on_advance: object = None) -> None:
        self.lock = threading.Lock()
        self.total = 0
        self.on_advance = on_advance

    def start(self, key: str, label: str, total: int | None, done: int = 0) -> None:
        self.total = done

    def advance(self, key: str, nbytes: int) -> None:
        with self.lock:
            self.total += nbytes
            hook, self.on_advance = self.on_advance, None
        if callable(hook):
            hook()

    def finish(self, key: str, ok: bool) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def retry(self, key: str, url: str, text: str) -> None:
        pass


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 5 * CHUNK_SIZE + 12345])
def test_copy_is_exact_and_hashed_once(tmp_path: Path, settings: Settings, size: int) -> None:
    body = os.urandom(size)
    src = tmp_path / "src.bin"
    src.write_bytes(body)
    progress = Counting()
    sink = _sink(tmp_path, _spec(body), progress)
    fetch_file(str(src), sink, SourceContext(settings))
    assert not state_path(sink.dest).exists()  # a local copy writes no resume state
    sink.close()
    assert sink.dest.read_bytes() == body
    assert sink.written == size and progress.total == size
    digests = sink.hexdigests()
    assert digests["md5"] == hashlib.md5(body).hexdigest()
    assert digests["xxh3_128"] == xxhash.xxh3_128(body).hexdigest()
    sink.reset()


def test_symlink_is_followed_and_fifo_refused(tmp_path: Path, settings: Settings) -> None:
    body = os.urandom(3 * CHUNK_SIZE)
    src = tmp_path / "real.bin"
    src.write_bytes(body)
    link = tmp_path / "link.bin"
    link.symlink_to(src)
    sink = _sink(tmp_path, _spec(body))
    fetch_file(f"file://{link}", sink, SourceContext(settings))
    sink.close()
    assert sink.dest.read_bytes() == body
    sink.reset()
    fifo = tmp_path / "pipe.bin"
    os.mkfifo(fifo)
    with pytest.raises(AttemptFailed, match="not a regular file"):
        fetch_file(str(fifo), _sink(tmp_path, _spec(body)), SourceContext(settings))  # never blocks


def test_wrong_size_is_refused_before_any_byte(tmp_path: Path, settings: Settings) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(2 * CHUNK_SIZE))
    sink = _sink(tmp_path, _spec(os.urandom(2 * CHUNK_SIZE + 1)))
    with pytest.raises(IntegrityFailure, match="size mismatch"):
        fetch_file(str(src), sink, SourceContext(settings))
    assert sink.written == 0
    sink.reset()


def test_a_source_changed_during_the_copy_fails_the_attempt(tmp_path: Path, settings: Settings) -> None:
    body = os.urandom(4 * CHUNK_SIZE)
    src = tmp_path / "src.bin"
    src.write_bytes(body)

    def rewrite() -> None:  # another writer appends while the file is being copied
        with open(src, "ab") as fh:
            fh.write(b"x" * 10)

    sink = _sink(tmp_path, _spec(body), Counting(on_advance=rewrite))
    with pytest.raises(AttemptFailed, match="changed while it was copied"):
        fetch_file(str(src), sink, SourceContext(settings))
    sink.reset()


def test_cancel_stops_the_copy(tmp_path: Path, settings: Settings) -> None:
    body = os.urandom(4 * CHUNK_SIZE)
    src = tmp_path / "src.bin"
    src.write_bytes(body)
    ctx = SourceContext(settings)
    sink = _sink(tmp_path, _spec(body), Counting(on_advance=ctx.cancel.set))
    with pytest.raises(KeyboardInterrupt):
        fetch_file(str(src), sink, ctx)
    assert sink.written < len(body)
    sink.reset()


def test_start_writeback_is_a_harmless_hint(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    with open(path, "wb") as fh:
        fh.write(b"a" * 100_000)
        fh.flush()
        start_writeback(fh.fileno(), 0, 100_000)
        start_writeback(fh.fileno(), 50_000, 0)  # 0: to the end of the file
    assert path.read_bytes() == b"a" * 100_000


def test_fetch_of_a_local_path_twice(tmp_path: Path, write_manifest: ManifestWriter, settings: Settings) -> None:
    body = os.urandom(3 * CHUNK_SIZE + 7)
    src = tmp_path / "mirror" / "data.bin"
    src.parent.mkdir()
    src.write_bytes(body)
    write_manifest(dataset_toml("local", [("data.bin", [str(src)], body, None)]))
    report = api.fetch(["local"], settings)
    assert report.ok, report.failures
    assert [f.state for f in report.files] == ["fetched"]
    store = Store(settings.cache_dir)
    view = store.artifact_dir("local") / "data.bin"
    assert view.read_bytes() == body
    blob = store.blob_path(Checksum("md5", hashlib.md5(body).hexdigest()))
    assert os.stat(blob).st_ino != os.stat(src).st_ino  # a copy, never a link to the source
    assert not [p for p in settings.cache_dir.rglob("*") if ".part-" in p.name]
    again = api.fetch(["local"], settings)
    assert [f.state for f in again.files] == ["cached"]


def test_fetch_of_a_wrong_local_file_leaves_nothing(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    body = os.urandom(2 * CHUNK_SIZE)
    src = tmp_path / "data.bin"
    src.write_bytes(body[:-1] + bytes([body[-1] ^ 1]))  # same size, one bit off
    write_manifest(dataset_toml("wrong", [("data.bin", [str(src)], body, None)]))
    report = api.fetch(["wrong"], settings)
    assert not report.ok
    assert "checksum mismatch" in str(report.files[0].failure)
    blobs = settings.cache_dir / "blobs"
    assert not [p for p in blobs.rglob("*") if p.is_file()]
