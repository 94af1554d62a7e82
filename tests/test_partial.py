"""The partial-download file: byte-range bookkeeping, resume state, in-order hashing."""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
from pathlib import Path

import pytest
import xxhash

from provision.manifest.checksum import Checksum
from provision.manifest.model import FileSpec
from provision.progress import NullProgress
from provision.sources.base import AttemptFailed
from provision.sources.partial import RangeSet, Sink, state_path


def _spec(body: bytes, size: bool = True) -> FileSpec:
    return FileSpec(
        "f.bin", ("http://x/f.bin",), Checksum("md5", hashlib.md5(body).hexdigest()), len(body) if size else None
    )


def test_rangeset_merges_and_reports_gaps() -> None:
    r = RangeSet()
    r.add(10, 20)
    r.add(30, 40)
    r.add(20, 30)
    r.add(0, 5)
    assert r.as_list() == [[0, 5], [10, 40]]
    assert r.prefix() == 5
    assert r.total() == 35
    assert r.missing(50) == [(5, 10), (40, 50)]
    r.add(3, 12)
    assert r.as_list() == [[0, 40]] and r.prefix() == 40
    assert RangeSet([(5, 9)]).prefix() == 0


def test_out_of_order_segments_hash_in_order(tmp_path: Path) -> None:
    body = os.urandom(5 * 1024 * 1024 + 123)
    sink = Sink(_spec(body), tmp_path / "f.part", "k", NullProgress())
    sink.begin_segmented(len(body), {"url": "http://x/f.bin"})
    pieces = [(a, min(len(body), a + 700_000)) for a in range(0, len(body), 700_000)]
    random.Random(1).shuffle(pieces)

    def put(a: int, b: int) -> None:
        for s in range(a, b, 65536):
            sink.write_at(s, body[s : min(b, s + 65536)])

    threads = [threading.Thread(target=put, args=p) for p in pieces]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sink.close()
    digests = sink.hexdigests()
    assert digests["md5"] == hashlib.md5(body).hexdigest()
    assert digests["xxh3_128"] == xxhash.xxh3_128(body).hexdigest()
    assert (tmp_path / "f.part").read_bytes() == body


def test_state_is_saved_and_resume_hashes_prefix_once(tmp_path: Path) -> None:
    body = os.urandom(300_000)
    dest = tmp_path / "f.part"
    sink = Sink(_spec(body), dest, "k", NullProgress())
    sink.begin(len(body), {"url": "http://x/f.bin", "etag": '"e"', "last_modified": None})
    sink.write(body[:120_000])
    sink.suspend()
    state = json.loads(state_path(dest).read_text())
    assert state["done"] == [[0, 120_000]] and state["etag"] == '"e"' and state["size"] == len(body)

    again = Sink(_spec(body), dest, "k", NullProgress())
    saved = again.saved_state()
    assert saved is not None and saved["url"] == "http://x/f.bin"
    again.resume(120_000, len(body), {"url": "http://x/f.bin", "etag": '"e"', "last_modified": None})
    again.write(body[120_000:])
    again.close()
    assert again.hexdigests()["md5"] == hashlib.md5(body).hexdigest()
    assert dest.read_bytes() == body


def test_state_of_another_checksum_is_ignored(tmp_path: Path) -> None:
    body = os.urandom(1000)
    dest = tmp_path / "f.part"
    sink = Sink(_spec(body), dest, "k", NullProgress())
    sink.begin(len(body), {"url": "u"})
    sink.write(body[:10])
    sink.suspend()
    other = Sink(_spec(b"something else"), dest, "k", NullProgress())
    assert other.saved_state() is None


def test_overflow_and_html_are_refused(tmp_path: Path) -> None:
    body = b"\x00" * 100
    sink = Sink(_spec(body), tmp_path / "a.part", "k", NullProgress())
    sink.begin_segmented(100, {"url": "u"})
    with pytest.raises(AttemptFailed, match="size mismatch"):
        sink.write_at(90, b"\x00" * 20)
    sink.write_at(0, b"<!DOCTYPE html><html>")  # kept: the published checksum decides at the end
    refusal = sink.html_refusal("checksum mismatch")
    assert refusal is not None and "HTML page" in refusal.answer and "checksum mismatch" in refusal.answer
    sink.reset()
    assert sink.html_refusal("checksum mismatch") is None
    assert not (tmp_path / "a.part").exists()


def test_a_link_planted_at_the_partial_is_never_written_through(tmp_path: Path) -> None:
    """The data file and the state's temp are opened O_NOFOLLOW: a symlink there fails the write
    (one WriteFailure naming the path) and the file it points at is untouched."""
    from provision.sources.base import WriteFailure

    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"precious")
    dest = tmp_path / "cache" / "f.part"
    dest.parent.mkdir()
    dest.symlink_to(outside)
    body = os.urandom(1000)
    sink = Sink(_spec(body), dest, "k", NullProgress())
    with pytest.raises(WriteFailure) as info:
        sink.begin(len(body))
        sink.write(body)
    assert str(dest) in str(info.value)
    assert outside.read_bytes() == b"precious"
    sink.reset()
    # The state's temp name: a link planted there is replaced, never written through.
    dest.unlink(missing_ok=True)  # reset() removed the link itself (never its target)
    good = Sink(_spec(body), dest, "k", NullProgress())
    good.begin(len(body))
    good.write(body[:10])
    tmp = dest.with_name(dest.name + f".json.tmp{os.getpid()}")
    tmp.symlink_to(outside)
    good.save_state(force=True)
    assert outside.read_bytes() == b"precious"
    assert json.loads(state_path(dest).read_text())["done"] == [[0, 10]]
    good.reset()
