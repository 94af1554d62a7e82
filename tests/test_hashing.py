"""hashing: alg:hex parsing and streaming digests checked against hashlib/xxhash."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import xxhash

from provision.fsutil import CHUNK_SIZE
from provision.manifest.checksum import ALGORITHMS, Checksum
from provision.store.hashing import FAST_ALG, MultiHasher, hash_file, new_hasher

MD5_EMPTY = "d41d8cd98f00b204e9800998ecf8427e"


def reference_hex(alg: str, data: bytes) -> str:
    """The digest computed independently of provision."""
    if alg in ("xxh3_128", "xxh64"):
        return str(getattr(xxhash, alg)(data).hexdigest())
    return hashlib.new(alg, data).hexdigest()


# --- Checksum.parse -------------------------------------------------------------------


@pytest.mark.parametrize("alg", sorted(ALGORITHMS))
def test_parse_every_algorithm(alg: str) -> None:
    hexd = reference_hex(alg, b"abc")
    assert len(hexd) == ALGORITHMS[alg]
    c = Checksum.parse(f"{alg}:{hexd}")
    assert (c.alg, c.hex) == (alg, hexd)
    assert str(c) == f"{alg}:{hexd}"


def test_parse_normalises_case_and_whitespace() -> None:
    c = Checksum.parse(" MD5 : " + MD5_EMPTY.upper() + " ")
    assert c == Checksum("md5", MD5_EMPTY)
    assert str(c) == "md5:" + MD5_EMPTY


def test_checksum_is_frozen_and_hashable() -> None:
    c = Checksum.parse("md5:" + MD5_EMPTY)
    assert {c, Checksum.parse("MD5:" + MD5_EMPTY.upper())} == {c}
    with pytest.raises(AttributeError):
        c.hex = "0" * 32  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "not of the form 'alg:hex'"),
        ("d41d8cd98f00b204e9800998ecf8427e", "not of the form 'alg:hex'"),
        ("crc32:deadbeef", "unknown checksum algorithm 'crc32'"),
        (":" + MD5_EMPTY, "unknown checksum algorithm ''"),
        ("md5:", "md5 digest must be 32 hex digits, got 0 characters"),
        ("md5:" + MD5_EMPTY[:-1], "md5 digest must be 32 hex digits, got 31 characters"),
        ("md5:" + MD5_EMPTY + "0", "md5 digest must be 32 hex digits, got 33 characters"),
        ("md5:" + "g" * 32, "md5 digest must be 32 hex digits"),
        ("sha256:" + "z" * 64, "sha256 digest must be 64 hex digits"),
        ("md5:" + MD5_EMPTY[:16] + ":" + MD5_EMPTY[17:], "md5 digest must be 32 hex digits"),
        ("sha1:" + "0x" + "a" * 38, "sha1 digest must be 40 hex digits"),
    ],
)
def test_parse_rejects(text: str, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        Checksum.parse(text)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_parse_unknown_alg_lists_supported() -> None:
    with pytest.raises(ValueError) as info:
        Checksum.parse("blake3:" + "0" * 64)
    for alg in ALGORITHMS:
        assert alg in str(info.value)


@pytest.mark.parametrize("value", [None, 123, b"md5:" + MD5_EMPTY.encode()])
def test_parse_non_string(value: object) -> None:
    with pytest.raises(ValueError, match="alg:hex"):
        Checksum.parse(value)  # type: ignore[arg-type]


def test_checksums_order() -> None:
    a = Checksum.parse("md5:" + "0" * 32)
    b = Checksum.parse("md5:" + "f" * 32)
    c = Checksum.parse("sha1:" + "0" * 40)
    assert sorted([c, b, a]) == [a, b, c]


# --- new_hasher / MultiHasher ---------------------------------------------------------


@pytest.mark.parametrize("alg", sorted(ALGORITHMS))
def test_new_hasher_matches_reference(alg: str) -> None:
    h = new_hasher(alg)
    h.update(b"hello ")
    h.update(b"world")
    assert h.hexdigest() == reference_hex(alg, b"hello world")
    assert len(h.hexdigest()) == ALGORITHMS[alg]


def test_new_hasher_returns_fresh_instances() -> None:
    a = new_hasher("sha256")
    a.update(b"x")
    assert new_hasher("sha256").hexdigest() == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize("alg", ["crc32", "MD5", "", "sha3_256"])
def test_new_hasher_unknown(alg: str) -> None:
    with pytest.raises(ValueError, match="unknown checksum algorithm") as info:
        new_hasher(alg)
    assert repr(alg) in str(info.value)
    assert "xxh3_128" in str(info.value)


def test_multihasher_one_pass_many_algs() -> None:
    data = os.urandom(10_000)
    mh = MultiHasher(["md5", "sha256", "xxh3_128", "xxh64", "sha1", "sha512"])
    for i in range(0, len(data), 777):
        mh.update(data[i : i + 777])
    digests = mh.hexdigests()
    assert set(digests) == {"md5", "sha256", "xxh3_128", "xxh64", "sha1", "sha512"}
    for alg, hexd in digests.items():
        assert hexd == reference_hex(alg, data), alg
    assert mh.bytes == len(data)


def test_multihasher_dedups_and_keeps_order() -> None:
    mh = MultiHasher(["sha1", "md5", "sha1"])
    mh.update(b"abc")
    assert list(mh.hexdigests()) == ["sha1", "md5"]
    assert mh.hexdigests()["sha1"] == hashlib.sha1(b"abc").hexdigest()


def test_multihasher_empty_and_unknown() -> None:
    mh = MultiHasher(["md5"])
    assert mh.hexdigests() == {"md5": MD5_EMPTY}
    assert mh.bytes == 0
    with pytest.raises(ValueError, match="'nope'"):
        MultiHasher(["md5", "nope"])


# --- hash_file ------------------------------------------------------------------------


def test_hash_file_default_is_fast_alg(tmp_path: Path) -> None:
    p = tmp_path / "f.bin"
    p.write_bytes(b"some bytes")
    assert FAST_ALG == "xxh3_128"
    assert hash_file(p) == {"xxh3_128": xxhash.xxh3_128(b"some bytes").hexdigest()}


def test_hash_file_empty(tmp_path: Path) -> None:
    p = tmp_path / "empty"
    p.write_bytes(b"")
    out = hash_file(p, ["md5", "sha256", "xxh3_128"])
    assert out == {
        "md5": MD5_EMPTY,
        "sha256": hashlib.sha256(b"").hexdigest(),
        "xxh3_128": xxhash.xxh3_128(b"").hexdigest(),
    }


@pytest.mark.parametrize("size", [1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE + 12345])
def test_hash_file_matches_reference(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    p = tmp_path / "data.bin"
    p.write_bytes(data)
    algs = sorted(ALGORITHMS)
    out = hash_file(str(p), algs)  # str path accepted too
    assert out == {alg: reference_hex(alg, data) for alg in algs}


def test_hash_file_larger_than_chunk_differs_in_last_byte(tmp_path: Path) -> None:
    # The tail beyond the first chunk must be hashed (not just the first CHUNK_SIZE bytes).
    data = bytearray(os.urandom(CHUNK_SIZE + 10))
    a = tmp_path / "a"
    b = tmp_path / "b"
    a.write_bytes(bytes(data))
    data[-1] ^= 0xFF
    b.write_bytes(bytes(data))
    assert hash_file(a, ["md5"]) != hash_file(b, ["md5"])
    assert hash_file(b, ["md5"])["md5"] == hashlib.md5(bytes(data)).hexdigest()


def test_hash_file_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        hash_file(tmp_path / "nope", ["md5"])
