"""extract_archive: real archives built here (tar, zip, gz, bz2, xz, zst), malicious ones included.

Nothing of provision is mocked: every test writes an archive with the standard library (or
zstandard), extracts it with :func:`provision.extract.extract_archive` and looks at the disk.
"""

from __future__ import annotations

import bz2
import contextlib
import dataclasses
import datetime
import gzip
import io
import lzma
import os
import random
import shutil
import stat
import subprocess
import tarfile
import tracemalloc
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, cast

import pytest
import xxhash
import zstandard

from provision.errors import EXIT_INTEGRITY
from provision.extract.archive import DEFAULT_GRACE, DEFAULT_RATIO, ExtractError, detect_format, extract_archive
from provision.fsutil import CHUNK_SIZE as CHUNK
from provision.manifest.model import SINGLE_FILE_FORMATS, ExtractSpec
from provision.store.trees import TreeFile, TreeRecord, hash_tree, tree_digest

MTIME = 1_600_000_000
LABEL = "art/archive"

Entry = tuple[tarfile.TarInfo, bytes]


# -- builders ----------------------------------------------------------------------------


def f(name: str, data: bytes = b"data", *, mode: int = 0o644, mtime: int = MTIME) -> Entry:
    """A regular file member."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, mtime
    return info, data


def d(name: str) -> Entry:
    """A folder member."""
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, MTIME
    return info, b""


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> Entry:
    """A symlink (or, with LNKTYPE, a hard link) member."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mtime = kind, target, MTIME
    return info, b""


def special(name: str, kind: bytes) -> Entry:
    """A device or FIFO member."""
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = kind, 1, 3
    return info, b""


def tar_bytes(entries: Sequence[Entry]) -> bytes:
    """An uncompressed tar holding ``entries`` exactly as given (no name clean-up)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in entries:
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def zst(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gz": gzip.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "zst": zst,
}


def tar_as(fmt: str, entries: Sequence[Entry]) -> bytes:
    """``entries`` as a ``tar`` / ``tar.gz`` / ``tar.bz2`` / ``tar.xz`` / ``tar.zst``."""
    raw = tar_bytes(entries)
    return raw if fmt == "tar" else COMPRESS[fmt.split(".", 1)[1]](raw)


def zip_bytes(entries: Sequence[tuple[zipfile.ZipInfo | str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are made on purpose
        with zipfile.ZipFile(buf, "w", compression) as zf:
            for info, data in entries:
                zf.writestr(info, data)
    return buf.getvalue()


def zip_symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def snapshot(root: Path) -> dict[str, tuple[str, object]]:
    """Every path under ``root`` (never following symlinks): kind and size, content or target."""
    out: dict[str, tuple[str, object]] = {}
    for dirpath, dirs, names in os.walk(root):
        for name in [*dirs, *names]:
            p = Path(dirpath) / name
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[str(p)] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[str(p)] = ("dir", None)
            else:
                out[str(p)] = ("file", p.read_bytes())
    return out


def siblings(dest: Path) -> list[str]:
    """Names beside ``dest`` (temp folders would show up here)."""
    return sorted(p.name for p in dest.parent.iterdir()) if dest.parent.exists() else []


def files_of(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def xxh(data: bytes) -> str:
    return xxhash.xxh3_128(data).hexdigest()


# -- one malicious archive per rule --------------------------------------------------------

# outside folder -> (archive bytes, format, the member the error must name)
Case = Callable[[Path], tuple[bytes, str, str]]


def _tar_case(entries: Callable[[Path], list[Entry]], member: Callable[[Path], str], fmt: str = "tar") -> Case:
    return lambda out: (tar_as(fmt, entries(out)), fmt, member(out))


MALICIOUS: dict[str, Case] = {
    "absolute-path": _tar_case(
        lambda out: [f("ok.txt"), f(str(out / "abs.txt"), b"pwned")], lambda out: str(out / "abs.txt")
    ),
    "dotdot": _tar_case(lambda out: [f("../outside/evil.txt", b"pwned")], lambda out: "../outside/evil.txt"),
    "dotdot-inner": _tar_case(lambda out: [f("a/../../outside/x", b"pwned")], lambda out: "a/../../outside/x"),
    "dotdot-gz": _tar_case(
        lambda out: [f("../outside/evil.txt", b"pwned")], lambda out: "../outside/evil.txt", "tar.gz"
    ),
    "backslash": _tar_case(lambda out: [f("..\\outside\\evil.txt", b"pwned")], lambda out: "..\\outside\\evil.txt"),
    "symlink-absolute": _tar_case(lambda out: [link("ln", str(out)), f("ln/evil.txt")], lambda out: "ln"),
    "symlink-dotdot": _tar_case(
        lambda out: [link("sub/ln", "../../outside"), f("sub/ln/evil.txt")], lambda out: "sub/ln"
    ),
    "symlink-empty": _tar_case(lambda out: [link("ln", "")], lambda out: "ln"),
    "write-through-dot-link": _tar_case(lambda out: [link("ln", "."), f("ln/evil.txt")], lambda out: "ln/evil.txt"),
    "write-through-sub-link": _tar_case(
        lambda out: [d("sub/"), link("ln", "sub"), f("ln/evil.txt")], lambda out: "ln/evil.txt"
    ),
    "dir-through-link": _tar_case(lambda out: [link("ln", "."), d("ln/deeper/")], lambda out: "ln/deeper"),
    "symlink-chain-escape": _tar_case(lambda out: [link("a/l1", ".."), link("l2", "a/l1/..")], lambda out: "l2"),
    "symlink-chain-escape-later": _tar_case(lambda out: [link("l2", "x/.."), link("x", ".")], lambda out: "l2"),
    "hardlink-absolute": _tar_case(
        lambda out: [link("hl", str(out / "sentinel.txt"), tarfile.LNKTYPE)], lambda out: "hl"
    ),
    "hardlink-dotdot": _tar_case(
        lambda out: [link("hl", "../outside/sentinel.txt", tarfile.LNKTYPE)], lambda out: "hl"
    ),
    "hardlink-before-target": _tar_case(
        lambda out: [link("hl", "later.txt", tarfile.LNKTYPE), f("later.txt")], lambda out: "hl"
    ),
    "hardlink-to-symlink": _tar_case(
        lambda out: [f("a.txt"), link("ln", "a.txt"), link("hl", "ln", tarfile.LNKTYPE)], lambda out: "hl"
    ),
    "char-device": _tar_case(lambda out: [f("ok.txt"), special("dev/null", tarfile.CHRTYPE)], lambda out: "dev/null"),
    "block-device": _tar_case(lambda out: [special("sda", tarfile.BLKTYPE)], lambda out: "sda"),
    "fifo": _tar_case(lambda out: [special("pipe", tarfile.FIFOTYPE)], lambda out: "pipe"),
    "duplicate-file": _tar_case(lambda out: [f("a.txt", b"one"), f("a.txt", b"two")], lambda out: "a.txt"),
    "file-over-dir": _tar_case(lambda out: [d("a/"), f("a", b"two")], lambda out: "a"),
    "file-over-implicit-dir": _tar_case(lambda out: [f("a/b", b"one"), f("a", b"two")], lambda out: "a"),
    "symlink-over-implicit-dir": _tar_case(lambda out: [f("a/b", b"one"), link("a", "elsewhere")], lambda out: "a"),
    "symlink-over-file": _tar_case(lambda out: [f("a", b"one"), link("a", str(out))], lambda out: "a"),
    "zip-dotdot": lambda out: (
        zip_bytes([("ok.txt", b"ok"), ("../outside/evil.txt", b"pwned")]),
        "zip",
        "../outside/evil.txt",
    ),
    "zip-absolute": lambda out: (zip_bytes([(str(out / "evil.txt"), b"pwned")]), "zip", str(out / "evil.txt")),
    "zip-backslash": lambda out: (zip_bytes([("..\\outside\\evil.txt", b"pwned")]), "zip", "..\\outside\\evil.txt"),
    "zip-symlink-dotdot": lambda out: (zip_bytes([zip_symlink("ln", "../outside")]), "zip", "ln"),
    "zip-symlink-absolute": lambda out: (zip_bytes([zip_symlink("ln", str(out)), ("ln/evil.txt", b"x")]), "zip", "ln"),
    "zip-duplicate": lambda out: (zip_bytes([("a.txt", b"one"), ("a.txt", b"two")]), "zip", "a.txt"),
}


@pytest.mark.parametrize("case", sorted(MALICIOUS))
@pytest.mark.parametrize("auto", [False, True], ids=["declared", "auto"])
def test_malicious_member_is_refused(tmp_path: Path, case: str, auto: bool) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    sentinel = outside / "sentinel.txt"
    sentinel.write_bytes(b"keep me")
    data, fmt, member = MALICIOUS[case](outside)
    archive = tmp_path / "evil.bin"
    archive.write_bytes(data)
    dest = tmp_path / "work" / "tree"
    dest.parent.mkdir()
    before = snapshot(tmp_path)

    with pytest.raises(ExtractError) as info:
        extract_archive(archive, ExtractSpec("auto" if auto else fmt, "tree"), dest, label=LABEL)

    msg = str(info.value)
    assert msg.startswith(f"{LABEL}: "), msg
    assert f"member {member!r}" in msg, msg
    assert "refused" in msg
    assert info.value.exit_code == EXIT_INTEGRITY
    assert not dest.exists() and not dest.is_symlink()
    assert siblings(dest) == []  # no temp folder left beside the target
    assert snapshot(tmp_path) == before  # nothing written anywhere, outside included
    assert sentinel.read_bytes() == b"keep me"
    assert sorted(p.name for p in outside.iterdir()) == ["sentinel.txt"]


def test_gzip_bomb_single_stream_is_capped(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.gz"
    archive.write_bytes(gzip.compress(bytes(8 << 20), compresslevel=9))
    assert archive.stat().st_size < 64 << 10
    dest = tmp_path / "work" / "bomb"
    before = snapshot(tmp_path)
    with pytest.raises(ExtractError) as info:
        extract_archive(archive, ExtractSpec("gz", "bomb", extracted_size=1 << 20), dest, label="art/bomb.gz")
    msg = str(info.value)
    assert msg.startswith("art/bomb.gz: ") and f"cap of {1 << 20} bytes" in msg, msg
    assert not dest.exists() and siblings(dest) == []
    assert {k: v for k, v in snapshot(tmp_path).items() if k != str(dest.parent)} == before


@pytest.mark.parametrize(
    "entries",
    [
        [f("zeros.bin", bytes(4 << 20))],  # refused by the member's declared size
        [f(f"part{i}.bin", bytes(400 << 10)) for i in range(4)],  # by the running total
        [f("one.bin", bytes(700 << 10)), link("two.bin", "one.bin", tarfile.LNKTYPE)],  # hard links count too
    ],
    ids=["one-member", "many-members", "hardlink"],
)
def test_tar_bomb_is_capped_by_extracted_size(tmp_path: Path, entries: list[Entry]) -> None:
    archive = tmp_path / "bomb.tar.gz"
    archive.write_bytes(tar_as("tar.gz", entries))
    dest = tmp_path / "out" / "tree"
    with pytest.raises(ExtractError) as info:
        extract_archive(archive, ExtractSpec("tar.gz", "tree", extracted_size=1 << 20), dest, label=LABEL)
    msg = str(info.value)
    assert f"cap of {1 << 20} bytes" in msg and "member '" in msg and LABEL in msg, msg
    assert not dest.exists() and siblings(dest) == []


def test_exact_extracted_size_is_allowed(tmp_path: Path) -> None:
    archive = tmp_path / "ok.tar"
    archive.write_bytes(tar_as("tar", [f("a", bytes(1000)), f("b", bytes(24))]))
    record = extract_archive(archive, ExtractSpec("tar", "t", extracted_size=1024), tmp_path / "t", label=LABEL)
    assert record.total_bytes == 1024


def _huge_header(name: str, size: int) -> bytes:
    """A tar header announcing ``size`` bytes, followed by a little data and no end."""
    info = tarfile.TarInfo(name)
    info.size = size
    return info.tobuf(tarfile.GNU_FORMAT) + bytes(512)


def test_default_cap_is_the_grace_for_small_archives(tmp_path: Path) -> None:
    archive = tmp_path / "huge.tar.gz"
    archive.write_bytes(gzip.compress(tar_bytes([f("small.txt", b"hi")])[:1024] + _huge_header("huge.bin", 2 << 30)))
    dest = tmp_path / "out" / "tree"
    with pytest.raises(ExtractError) as info:
        extract_archive(archive, ExtractSpec("tar.gz", "tree"), dest, label=LABEL)
    msg = str(info.value)
    assert f"cap of {DEFAULT_GRACE} bytes" in msg and "member 'huge.bin'" in msg, msg
    assert not dest.exists() and siblings(dest) == []


def test_default_cap_is_the_ratio_for_big_archives(tmp_path: Path) -> None:
    archive = tmp_path / "big.tar"
    body = os.urandom(1 << 20)  # 1 MiB * 100 > the 64 MiB grace
    archive.write_bytes(tar_bytes([f("random.bin", body)])[: 512 + len(body)] + _huge_header("huge.bin", 2 << 30))
    size = archive.stat().st_size
    assert size * DEFAULT_RATIO > DEFAULT_GRACE
    dest = tmp_path / "out" / "tree"
    with pytest.raises(ExtractError) as info:
        extract_archive(archive, ExtractSpec("tar", "tree"), dest, label=LABEL)
    assert f"cap of {size * DEFAULT_RATIO} bytes" in str(info.value)
    assert "member 'huge.bin'" in str(info.value)
    assert not dest.exists() and siblings(dest) == []


def test_zip_symlink_bomb_is_not_read_into_memory(tmp_path: Path) -> None:
    info, _ = zip_symlink("ln", "")
    info.compress_type = zipfile.ZIP_DEFLATED
    archive = tmp_path / "linkbomb.zip"
    archive.write_bytes(zip_bytes([(info, bytes(64 << 20))]))
    assert archive.stat().st_size < 1 << 20
    dest = tmp_path / "out" / "tree"
    tracemalloc.start()
    try:
        with pytest.raises(ExtractError) as exc:
            extract_archive(archive, ExtractSpec("zip", "tree"), dest, label=LABEL)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "member 'ln'" in str(exc.value) and "longer than" in str(exc.value)
    assert peak < 4 << 20
    assert not dest.exists() and siblings(dest) == []


# -- permissions and symlinks inside ------------------------------------------------------


def test_special_mode_bits_are_dropped(tmp_path: Path) -> None:
    archive = tmp_path / "modes.tar"
    archive.write_bytes(
        tar_as(
            "tar",
            [
                f("suid", mode=0o4755),
                f("sgid", mode=0o2755),
                f("sticky", mode=0o1644),
                f("all", mode=0o7777),
                f("none", mode=0),
            ],
        )
    )
    dest = tmp_path / "tree"
    extract_archive(archive, ExtractSpec("tar", "tree"), dest, label=LABEL)
    modes = {p.name: p.stat().st_mode for p in dest.iterdir()}
    for name, mode in modes.items():
        assert not mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX), name
        assert not mode & (stat.S_IWGRP | stat.S_IWOTH), name
    assert stat.S_IMODE(modes["suid"]) == 0o755
    assert stat.S_IMODE(modes["all"]) == 0o755
    assert stat.S_IMODE(modes["sticky"]) == 0o644
    assert stat.S_IMODE(modes["none"]) == 0o400  # still readable by its owner


def test_zip_modes_are_dropped_too(tmp_path: Path) -> None:
    info = zipfile.ZipInfo("suid")
    info.create_system = 3
    info.external_attr = (stat.S_IFREG | 0o6777) << 16
    archive = tmp_path / "modes.zip"
    archive.write_bytes(zip_bytes([(info, b"x"), ("plain", b"y")]))
    extract_archive(archive, ExtractSpec("zip", "tree"), tmp_path / "tree", label=LABEL)
    assert stat.S_IMODE((tmp_path / "tree" / "suid").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "tree" / "plain").stat().st_mode) == 0o600  # writestr's default


def test_symlinks_inside_the_target_are_kept_and_recorded(tmp_path: Path) -> None:
    archive = tmp_path / "links.tar"
    entries = [
        d("sub/"),
        f("sub/data.txt", b"payload"),
        link("top-file", "sub/data.txt"),
        link("top-dir", "sub"),
        link("sub/self", "."),
        link("sub/deeper/up", "../data.txt"),
        link("dangling", "sub/not-there"),
        link("hard", "sub/data.txt", tarfile.LNKTYPE),
    ]
    archive.write_bytes(tar_as("tar", entries))
    dest = tmp_path / "tree"
    record = extract_archive(archive, ExtractSpec("tar", "tree"), dest, label=LABEL)
    assert record.links == {
        "top-file": "sub/data.txt",
        "top-dir": "sub",
        "sub/self": ".",
        "sub/deeper/up": "../data.txt",
        "dangling": "sub/not-there",
    }
    assert sorted(record.files) == ["hard", "sub/data.txt"]
    for rel, target in record.links.items():
        assert os.readlink(dest / rel) == target
    assert (dest / "top-file").read_bytes() == b"payload"
    assert (dest / "sub/deeper/up").read_bytes() == b"payload"
    assert (dest / "hard").stat().st_ino == (dest / "sub/data.txt").stat().st_ino
    assert hash_tree(dest).digest == record.digest  # symlinks to folders count in both


def test_zip_symlink_inside_is_kept(tmp_path: Path) -> None:
    archive = tmp_path / "links.zip"
    archive.write_bytes(zip_bytes([("dir/a.txt", b"A"), zip_symlink("dir/b.txt", "a.txt")]))
    dest = tmp_path / "tree"
    record = extract_archive(archive, ExtractSpec("zip", "tree"), dest, label=LABEL)
    assert record.links == {"dir/b.txt": "a.txt"}
    assert (dest / "dir/b.txt").is_symlink() and (dest / "dir/b.txt").read_bytes() == b"A"


# -- every format ----------------------------------------------------------------------

TREE = {"a.txt": b"alpha\n", "sub/b.bin": bytes(range(256)) * 12, "sub/deeper/c": b"", "z/\u00e9t\u00e9.txt": b"summer"}
TAR_FORMATS = ["tar", "tar.gz", "tar.bz2", "tar.xz", "tar.zst"]
SINGLE_FORMATS = ["gz", "bz2", "xz", "zst"]


def tree_archive(fmt: str, tree: dict[str, bytes] = TREE) -> bytes:
    if fmt == "zip":
        return zip_bytes(list(tree.items()))
    return tar_as(fmt, [d("sub/"), *(f(name, data) for name, data in tree.items())])


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "auto"])
@pytest.mark.parametrize("fmt", [*TAR_FORMATS, "zip"])
def test_tree_formats_extract(tmp_path: Path, fmt: str, declared: bool) -> None:
    archive = tmp_path / "archive.bin"
    archive.write_bytes(tree_archive(fmt))
    assert detect_format(archive) == fmt
    dest = tmp_path / "out" / "tree"
    seen: list[int] = []
    record = extract_archive(
        archive, ExtractSpec(fmt if declared else "auto", "tree"), dest, label=LABEL, advance=seen.append
    )
    assert files_of(dest) == TREE
    assert record.kind == "dir"
    assert {p: (r.size, r.xxh3_128) for p, r in record.files.items()} == {p: (len(b), xxh(b)) for p, b in TREE.items()}
    assert record.links == {}
    assert sum(seen) == record.total_bytes == sum(map(len, TREE.values()))
    assert hash_tree(dest).digest == record.digest
    for rel, entry in record.files.items():  # the stat recorded is the final one
        st = (dest / rel).stat()
        assert (entry.mtime_ns, entry.ino) == (st.st_mtime_ns, st.st_ino)
    assert siblings(dest) == ["tree"]


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "auto"])
@pytest.mark.parametrize("fmt", SINGLE_FORMATS)
def test_single_stream_formats_extract(tmp_path: Path, fmt: str, declared: bool) -> None:
    payload = b"one stream, not a tar\n" * 5000
    archive = tmp_path / f"data.{fmt}"
    archive.write_bytes(COMPRESS[fmt](payload))
    assert detect_format(archive) == fmt
    dest = tmp_path / "out" / "data.txt"
    record = extract_archive(archive, ExtractSpec(fmt if declared else "auto", "data.txt"), dest, label=LABEL)
    assert dest.is_file() and dest.read_bytes() == payload
    assert record.kind == "file"
    st = dest.stat()
    assert record.files == {"data.txt": TreeFile(len(payload), xxh(payload), st.st_mtime_ns, st.st_ino, st.st_ctime_ns)}
    assert hash_tree(dest).digest == record.digest
    assert siblings(dest) == ["data.txt"]


def test_detect_format_refuses_a_non_archive(tmp_path: Path) -> None:
    plain = tmp_path / "notes.txt"
    plain.write_bytes(b"just text, no magic\n" * 50)
    with pytest.raises(ExtractError, match="unknown archive format"):
        detect_format(plain)
    with pytest.raises(ExtractError, match="unknown archive format"):
        extract_archive(plain, ExtractSpec("auto", "t"), tmp_path / "t", label=LABEL)
    assert not (tmp_path / "t").exists()
    fake = tmp_path / "fake.gz"
    fake.write_bytes(b"\x1f\x8b" + b"garbage" * 100)
    with pytest.raises(ExtractError, match="looks like gz but cannot be decompressed"):
        detect_format(fake)


def test_strip_components(tmp_path: Path) -> None:
    archive = tmp_path / "pkg.tar.gz"
    archive.write_bytes(
        tar_as(
            "tar.gz",
            [d("pkg-1.0/"), f("pkg-1.0/a.txt", b"A"), f("pkg-1.0/sub/b.txt", b"B"), f("README", b"top")],
        )
    )
    record = extract_archive(archive, ExtractSpec("tar.gz", "pkg", strip_components=1), tmp_path / "pkg", label=LABEL)
    assert files_of(tmp_path / "pkg") == {"a.txt": b"A", "sub/b.txt": b"B"}  # README had nothing left to keep
    assert sorted(record.files) == ["a.txt", "sub/b.txt"]
    record = extract_archive(archive, ExtractSpec("tar.gz", "pkg", strip_components=2), tmp_path / "pkg", label=LABEL)
    assert files_of(tmp_path / "pkg") == {"b.txt": b"B"}


def test_strip_components_applies_to_hard_links(tmp_path: Path) -> None:
    archive = tmp_path / "hl.tar"
    archive.write_bytes(tar_as("tar", [f("top/a.txt", b"A"), link("top/b.txt", "top/a.txt", tarfile.LNKTYPE)]))
    record = extract_archive(archive, ExtractSpec("tar", "t", strip_components=1), tmp_path / "t", label=LABEL)
    assert files_of(tmp_path / "t") == {"a.txt": b"A", "b.txt": b"A"}
    assert record.files["a.txt"].xxh3_128 == record.files["b.txt"].xxh3_128


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_members_globs(tmp_path: Path, fmt: str) -> None:
    archive = tmp_path / "sel.bin"
    archive.write_bytes(tree_archive(fmt))
    spec = ExtractSpec(fmt, "sel", members=("*.txt", "sub/deeper/*"))
    record = extract_archive(archive, spec, tmp_path / "sel", label=LABEL)
    want = {"a.txt": TREE["a.txt"], "sub/deeper/c": b"", "z/\u00e9t\u00e9.txt": TREE["z/\u00e9t\u00e9.txt"]}
    assert files_of(tmp_path / "sel") == want
    assert sorted(record.files) == sorted(want)


def test_unselected_members_are_still_checked(tmp_path: Path) -> None:
    archive = tmp_path / "sel.tar"
    archive.write_bytes(tar_as("tar", [f("a.txt"), f("../evil.txt")]))
    with pytest.raises(ExtractError, match="evil"):
        extract_archive(archive, ExtractSpec("tar", "sel", members=("a.txt",)), tmp_path / "sel", label=LABEL)


def test_mtimes_are_preserved(tmp_path: Path) -> None:
    tar = tmp_path / "t.tar"
    tar.write_bytes(tar_as("tar", [f("old.txt", b"1", mtime=1_000_000_000), f("new.txt", b"2", mtime=MTIME)]))
    extract_archive(tar, ExtractSpec("tar", "t"), tmp_path / "t", label=LABEL)
    assert (tmp_path / "t/old.txt").stat().st_mtime == 1_000_000_000
    assert (tmp_path / "t/new.txt").stat().st_mtime == MTIME
    info = zipfile.ZipInfo("z.txt", date_time=(2019, 5, 17, 12, 30, 10))
    zipped = tmp_path / "z.zip"
    zipped.write_bytes(zip_bytes([(info, b"z")]))
    extract_archive(zipped, ExtractSpec("zip", "z"), tmp_path / "z", label=LABEL)
    assert (tmp_path / "z/z.txt").stat().st_mtime == datetime.datetime(2019, 5, 17, 12, 30, 10).timestamp()


# -- corrupt archives -----------------------------------------------------------------------


def _corrupt_header(raw: bytes) -> bytes:
    """Flip a byte inside the second member's header (its checksum then fails)."""
    out = bytearray(raw)
    second = 512 + 1024  # first header + its 1000-byte body padded to 1024
    out[second + 5] ^= 0xFF
    return bytes(out)


def _three_members() -> bytes:
    return tar_bytes([f("one", os.urandom(1000)), f("two", os.urandom(1000)), f("three", os.urandom(1000))])


CORRUPT: dict[str, tuple[str, Callable[[], bytes]]] = {
    "tar-truncated-in-data": ("tar", lambda: _three_members()[:700]),
    "tar-truncated-in-header": ("tar", lambda: _three_members()[: 512 + 1024 + 100]),
    "tar-corrupt-header": ("tar", lambda: _corrupt_header(_three_members())),
    "tar.gz-truncated": ("tar.gz", lambda: gzip.compress(_three_members())[:-300]),
    "tar.gz-corrupt-header": ("tar.gz", lambda: gzip.compress(_corrupt_header(_three_members()))),
    "tar.gz-bad-trailer": ("tar.gz", lambda: gzip.compress(_three_members())[:-8] + b"\0" * 8),
    "tar.bz2-truncated": ("tar.bz2", lambda: bz2.compress(_three_members())[:-200]),
    "tar.xz-truncated": ("tar.xz", lambda: lzma.compress(_three_members())[:-200]),
    "tar.zst-truncated": ("tar.zst", lambda: zst(_three_members())[:-200]),
    "tar.zst-garbage": ("tar.zst", lambda: zst(_three_members())[:20] + os.urandom(3000)),
    "zip-truncated": ("zip", lambda: zip_bytes([("a", os.urandom(3000))])[:-40]),
    "gz-truncated": ("gz", lambda: gzip.compress(os.urandom(5000))[:-100]),
    "gz-garbage": ("gz", lambda: gzip.compress(b"x" * 5000)[:12] + os.urandom(300)),
    "bz2-truncated": ("bz2", lambda: bz2.compress(os.urandom(5000))[:-100]),
    "xz-truncated": ("xz", lambda: lzma.compress(os.urandom(5000))[:-100]),
    "zst-garbage": ("zst", lambda: zst(b"y" * 5000)[:8] + os.urandom(300)),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_corrupt_or_truncated_archive(tmp_path: Path, case: str) -> None:
    fmt, build = CORRUPT[case]
    archive = tmp_path / "broken.bin"
    archive.write_bytes(build())
    dest = tmp_path / "out" / "tree"
    with pytest.raises(ExtractError) as info:
        extract_archive(archive, ExtractSpec(fmt, "tree"), dest, label=LABEL)
    msg = str(info.value)
    assert msg.startswith(f"{LABEL}: ") and "corrupt" in msg, msg
    assert info.value.exit_code == EXIT_INTEGRITY
    assert not dest.exists() and siblings(dest) == []


def test_tar_without_end_blocks_is_accepted(tmp_path: Path) -> None:
    """Some writers omit the two zero blocks; every member is complete, so nothing is lost."""
    archive = tmp_path / "short.tar"
    archive.write_bytes(tar_bytes([f("a", b"A" * 600)])[: 512 + 1024])
    extract_archive(archive, ExtractSpec("tar", "t"), tmp_path / "t", label=LABEL)
    assert files_of(tmp_path / "t") == {"a": b"A" * 600}


def test_zip_crc_error(tmp_path: Path) -> None:
    body = b"0123456789abcdef" * 64
    raw = bytearray(zip_bytes([("good.txt", b"fine"), ("bad.txt", body)], zipfile.ZIP_STORED))
    at = bytes(raw).index(body) + 100
    raw[at] ^= 0x01
    archive = tmp_path / "crc.zip"
    archive.write_bytes(bytes(raw))
    dest = tmp_path / "out" / "tree"
    with pytest.raises(ExtractError) as info:
        extract_archive(archive, ExtractSpec("zip", "tree"), dest, label=LABEL)
    assert "corrupt" in str(info.value) and "CRC" in str(info.value)
    assert not dest.exists() and siblings(dest) == []


# -- atomicity -------------------------------------------------------------------------------


def test_extracting_over_an_existing_target_replaces_it(tmp_path: Path) -> None:
    dest = tmp_path / "out" / "tree"
    (dest / "sub").mkdir(parents=True)
    (dest / "old-extra.txt").write_bytes(b"stale")
    (dest / "sub" / "b.bin").write_bytes(b"stale too")
    os.chmod(dest / "sub" / "b.bin", 0o400)
    archive = tmp_path / "new.tar.xz"
    archive.write_bytes(tree_archive("tar.xz"))
    record = extract_archive(archive, ExtractSpec("tar.xz", "tree"), dest, label=LABEL)
    assert files_of(dest) == TREE  # the extra file is gone, the changed one replaced
    assert hash_tree(dest).digest == record.digest
    assert siblings(dest) == ["tree"]  # no .old or temp folder left


def test_single_stream_over_an_existing_file(tmp_path: Path) -> None:
    dest = tmp_path / "data.txt"
    dest.write_bytes(b"old")
    archive = tmp_path / "data.bz2"
    archive.write_bytes(bz2.compress(b"new"))
    extract_archive(archive, ExtractSpec("bz2", "data.txt"), dest, label=LABEL)
    assert dest.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.bz2", "data.txt", "home", "manifests"]


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_failure_midway_leaves_the_old_target_untouched(tmp_path: Path, fmt: str) -> None:
    dest = tmp_path / "out" / "tree"
    dest.mkdir(parents=True)
    (dest / "old.txt").write_bytes(b"previous extraction")
    before = snapshot(dest)
    inode = (dest / "old.txt").stat().st_ino
    archive = tmp_path / "dup.bin"
    many = [(f"f{i:02d}.txt", os.urandom(2000)) for i in range(20)]
    if fmt == "zip":
        archive.write_bytes(zip_bytes([*many, ("f03.txt", b"again")]))
    else:
        archive.write_bytes(tar_as(fmt, [*(f(n, b) for n, b in many), f("f03.txt", b"again")]))
    with pytest.raises(ExtractError, match="duplicate member name"):
        extract_archive(archive, ExtractSpec(fmt, "tree"), dest, label=LABEL)
    assert snapshot(dest) == before
    assert (dest / "old.txt").stat().st_ino == inode
    assert siblings(dest) == ["tree"]


# -- streaming -------------------------------------------------------------------------------


class _Zeros(io.RawIOBase):
    """``n`` zero bytes, produced on demand (the archive is built without holding them)."""

    def __init__(self, n: int) -> None:
        self.left = n

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        n = min(len(buf), self.left)
        buf[:n] = bytes(n)
        self.left -= n
        return n


def test_a_big_member_is_streamed(tmp_path: Path) -> None:
    size = 50 << 20
    archive = tmp_path / "big.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=1) as tf:
        info = tarfile.TarInfo("big.bin")
        info.size = size
        tf.addfile(info, io.BufferedReader(_Zeros(size)))
    assert archive.stat().st_size < size // 100
    dest = tmp_path / "tree"
    tracemalloc.start()
    try:
        record = extract_archive(archive, ExtractSpec("tar.gz", "tree"), dest, label=LABEL)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (dest / "big.bin").stat().st_size == size
    assert record.files["big.bin"].size == size
    assert record.files["big.bin"].xxh3_128 == xxh(bytes(size))
    assert peak < 16 << 20, f"peak {peak} bytes while extracting a {size}-byte member"


# -- tree digest -------------------------------------------------------------------------------


def _make_tree(root: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    for rel, target in (links or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, root / rel)
    return root


def test_tree_digest_exact_definition(tmp_path: Path) -> None:
    files = {"b/c.bin": b"\x00\x01binary", "a.txt": b"hello\n"}
    root = _make_tree(tmp_path / "t", files)
    (root / "empty-dir").mkdir()  # empty folders do not count
    lines = sorted((path.encode(), f"f\0{path}\0{len(data)}\0{xxh(data)}\n".encode()) for path, data in files.items())
    want = "xxh3_128:" + xxhash.xxh3_128(b"".join(line for _, line in lines)).hexdigest()
    assert hash_tree(root).digest == want
    assert tree_digest({p: TreeFile(len(b), xxh(b)) for p, b in files.items()}) == want

    os.symlink("a.txt", root / "b" / "ln")
    ordered = sorted([*lines, (b"b/ln", b"l\0b/ln\0a.txt\n")])
    with_link = b"".join(line for _, line in ordered)
    assert hash_tree(root).digest == "xxh3_128:" + xxhash.xxh3_128(with_link).hexdigest()
    assert hash_tree(root).links == {"b/ln": "a.txt"}


def test_tree_digest_sorts_by_utf8_bytes(tmp_path: Path) -> None:
    files = {"\u00e9.txt": b"1", "Z.txt": b"2", "z.txt": b"3", "a/b": b"4", "a-b": b"5"}
    root = _make_tree(tmp_path / "t", files)
    body = b"".join(
        f"f\0{p}\0{len(b)}\0{xxh(b)}\n".encode() for p, b in sorted(files.items(), key=lambda kv: kv[0].encode())
    )
    assert hash_tree(root).digest == "xxh3_128:" + xxhash.xxh3_128(body).hexdigest()


def test_tree_digest_ignores_order_and_mtimes(tmp_path: Path) -> None:
    files = {"x/1.bin": os.urandom(100), "y.txt": b"why", "x/z/2.bin": os.urandom(50)}
    one = _make_tree(tmp_path / "one", files, {"ln": "y.txt"})
    two = _make_tree(tmp_path / "two", dict(reversed(list(files.items()))), {"ln": "y.txt"})
    for p in two.rglob("*"):
        if p.is_file() and not p.is_symlink():
            os.utime(p, (1, 1))
    assert hash_tree(one).digest == hash_tree(two).digest
    assert hash_tree(one).files != hash_tree(two).files  # the stats differ, the digest does not


@pytest.mark.parametrize("change", ["byte", "name", "link-target", "new-empty-file", "link-to-file"])
def test_tree_digest_changes_with_content(tmp_path: Path, change: str) -> None:
    files = {"a.txt": b"alpha", "sub/b.txt": b"beta"}
    root = _make_tree(tmp_path / "t", files, {"ln": "a.txt"})
    before = hash_tree(root).digest
    if change == "byte":
        (root / "sub/b.txt").write_bytes(b"bete")
    elif change == "name":
        (root / "sub/b.txt").rename(root / "sub/c.txt")
    elif change == "link-target":
        (root / "ln").unlink()
        os.symlink("sub/b.txt", root / "ln")
    elif change == "new-empty-file":
        (root / "sub/empty").write_bytes(b"")
    else:
        (root / "ln").unlink()
        (root / "ln").write_bytes(b"alpha")
    assert hash_tree(root).digest != before


def test_tree_record_json_round_trip(tmp_path: Path) -> None:
    archive = tmp_path / "t.tar"
    archive.write_bytes(tar_as("tar", [f("a", b"A"), link("l", "a")]))
    record = extract_archive(archive, ExtractSpec("tar", "t"), tmp_path / "t", label=LABEL)
    doc = record.to_json()
    assert doc["digest"] == record.digest
    assert TreeRecord.from_json(doc) == record


def test_expect_files_mismatch(tmp_path: Path) -> None:
    archive = tmp_path / "t.tar.bz2"
    archive.write_bytes(tree_archive("tar.bz2"))
    dest = tmp_path / "out" / "tree"
    extract_archive(archive, ExtractSpec("tar.bz2", "tree", expect_files=len(TREE)), dest, label=LABEL)
    with pytest.raises(ExtractError) as info:
        extract_archive(archive, ExtractSpec("tar.bz2", "tree", expect_files=99), tmp_path / "other", label=LABEL)
    assert f"expected 99 files, extracted {len(TREE)}" in str(info.value)
    assert str(info.value).startswith(LABEL)
    assert not (tmp_path / "other").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("other")]  # no temp folder either


def test_tree_pin_mismatch(tmp_path: Path) -> None:
    from provision.manifest.checksum import Checksum

    archive = tmp_path / "t.zip"
    archive.write_bytes(tree_archive("zip"))
    good = hash_tree(_make_tree(tmp_path / "by-hand", TREE)).digest
    record = extract_archive(
        archive, ExtractSpec("zip", "tree", tree=Checksum.parse(good)), tmp_path / "tree", label=LABEL
    )
    assert record.digest == good
    wrong = "xxh3_128:" + "0" * 32
    dest = tmp_path / "out" / "tree"
    with pytest.raises(ExtractError) as info:
        extract_archive(archive, ExtractSpec("zip", "tree", tree=Checksum.parse(wrong)), dest, label=LABEL)
    msg = str(info.value)
    assert f"expected {wrong}, got {good}" in msg, msg
    assert f"{len(TREE)} files" in msg
    assert not dest.exists() and siblings(dest) == []


# -- archive bombs: the ratio, without a declared extracted_size -----------------------------------

ZEROS = bytes(CHUNK)


def disk_use(root: Path) -> int:
    """Bytes of disk (``st_blocks``) the files under ``root`` take, temp folders included."""
    total = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


class PeakDisk:
    """An ``advance`` callback measuring the disk taken under ``root`` after every chunk written.

    The extraction calls it after each chunk it wrote, and refuses a chunk before writing
    it, so the largest figure seen is the peak of the extraction's own disk use.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.peak = 0
        self.calls = 0

    def __call__(self, n: int) -> None:
        self.calls += 1
        self.peak = max(self.peak, disk_use(self.root))


def _write_zeros(out: IO[bytes], size: int) -> None:
    view = memoryview(ZEROS)
    while size > 0:
        n = min(size, len(ZEROS))
        out.write(view[:n])
        size -= n


def _compressor(fh: IO[bytes], fmt: str) -> IO[bytes]:
    """A streaming writer for ``gz``/``bz2``/``xz``/``zst`` over ``fh`` (left open)."""
    if fmt == "gz":
        return cast(IO[bytes], gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=6, mtime=0))
    if fmt == "bz2":
        return cast(IO[bytes], bz2.BZ2File(fh, "wb"))
    if fmt == "xz":
        return cast(IO[bytes], lzma.LZMAFile(fh, "wb", preset=0))
    return cast(IO[bytes], zstandard.ZstdCompressor().stream_writer(fh, closefd=False))


Filler = Callable[[str, int], bytes]  # (member, chunk index) -> that MiB of the member


def zeros_archive(path: Path, fmt: str, sizes: dict[str, int], filler: Filler | None = None) -> Path:
    """An archive of members made of zeros (or of ``filler``'s MiBs), built by streaming.

    Never holds a member in memory: 1 GiB of zeros costs a megabyte of archive and no RAM.
    """

    def chunks(name: str, size: int) -> Iterator[bytes]:
        for i, at in enumerate(range(0, size, CHUNK)):
            data = filler(name, i) if filler is not None else ZEROS
            yield data[: size - at]

    with contextlib.ExitStack() as stack:
        fh = stack.enter_context(open(path, "wb"))
        if fmt == "zip":
            zf = stack.enter_context(zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED, compresslevel=6))
            for name, size in sizes.items():
                with zf.open(name, "w") as out:
                    for data in chunks(name, size):
                        out.write(data)
            return path
        if fmt in SINGLE_FILE_FORMATS:
            out = stack.enter_context(_compressor(fh, fmt))
            ((name, size),) = sizes.items()
            for data in chunks(name, size):
                out.write(data)
            return path
        stream = fh if fmt == "tar" else stack.enter_context(_compressor(fh, fmt.split(".", 1)[1]))
        tf = stack.enter_context(tarfile.open(fileobj=stream, mode="w|", format=tarfile.GNU_FORMAT))
        for name, size in sizes.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = size, MTIME
            tf.addfile(info, io.BufferedReader(_Chunks(chunks(name, size))))
    return path


class _Chunks(io.RawIOBase):
    """A readable stream over an iterator of byte strings."""

    def __init__(self, parts: Iterator[bytes]) -> None:
        self.parts = parts
        self.left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        while not self.left:
            part = next(self.parts, None)
            if part is None:
                return 0
            self.left = part
        n = min(len(buf), len(self.left))
        buf[:n] = self.left[:n]
        self.left = self.left[n:]
        return n


def gzip_of_zeros_tar(path: Path, size: int, noise: bytes = b"") -> Path:
    """A real .tar.gz: ``zeros.bin``, ``size`` bytes of zeros (then ``noise.bin`` holding ``noise``).

    A gzip file is a series of members (RFC 1952) that ``gzip -d`` and Python read as one
    stream; repeating one compressed 4 MiB of zeros builds a 1 GiB bomb in milliseconds.
    """
    step = 4 * CHUNK
    assert size % step == 0
    info = tarfile.TarInfo("zeros.bin")
    info.size, info.mtime = size, MTIME
    zeros = gzip.compress(bytes(step), compresslevel=6, mtime=0)
    with open(path, "wb") as out:
        out.write(gzip.compress(info.tobuf(tarfile.GNU_FORMAT), mtime=0))
        for _ in range(size // step):
            out.write(zeros)
        tail = b""
        if noise:
            info = tarfile.TarInfo("noise.bin")
            info.size, info.mtime = len(noise), MTIME
            tail = info.tobuf(tarfile.GNU_FORMAT) + noise + bytes(-len(noise) % tarfile.BLOCKSIZE)
        out.write(gzip.compress(tail + bytes(2 * tarfile.BLOCKSIZE), mtime=0))
    return path


GIB = 1 << 30
CAP_SEEN = 100 << 20  # the most disk a refused bomb may have taken ("under ~100 MiB")


@pytest.mark.parametrize("case", ["zip", "tar.gz", "tar.gz-streamed"])
def test_a_1gib_bomb_is_refused_with_little_disk(tmp_path: Path, case: str) -> None:
    """1 GiB of zeros from about 1 MiB (1029:1), which the old 1 GiB floor let through.

    ``streamed``: 11 MiB of noise follow, so 100x the archive (1.2 GB) is past the whole
    tree (86:1 in all) and only the member's own ratio, measured as it streams, stops it.
    """
    fmt = case.split("-")[0]
    archive = tmp_path / f"bomb.{fmt}"
    if fmt == "zip":
        zeros_archive(archive, "zip", {"zeros.bin": GIB})
    else:
        gzip_of_zeros_tar(archive, GIB, random.Random(1).randbytes(11 * CHUNK) if "streamed" in case else b"")
    size = archive.stat().st_size
    if "streamed" in case:
        assert DEFAULT_RATIO * size > GIB + 11 * CHUNK
    else:
        assert size < 1100 << 10 and GIB // size > 1000  # about 1 MiB, expanding more than 1000:1
    work = tmp_path / "work"
    dest = work / "tree"
    peak = PeakDisk(work)
    with pytest.raises(ExtractError) as info:
        extract_archive(archive, ExtractSpec(fmt, "tree"), dest, label=LABEL, advance=peak)
    msg = str(info.value)
    assert msg.startswith(f"{LABEL}: member 'zeros.bin': "), msg
    # zip: the member's declared sizes say 1029:1; tar: its 1 GiB header is past 100x the archive
    assert (f"100x the {size}-byte archive" if case == "tar.gz" else "the member expands more than 100:1") in msg
    assert "an archive bomb?" in msg and "declare extracted_size in the manifest" in msg, msg
    assert "\n" not in msg
    assert info.value.exit_code == EXIT_INTEGRITY
    assert peak.peak < CAP_SEEN, f"{peak.peak} bytes on disk while refusing a {GIB}-byte bomb"
    assert peak.peak <= (DEFAULT_GRACE if "streamed" in case else 0)  # refused at the first MiB past the grace
    assert not dest.exists() and siblings(dest) == []  # no temp folder left
    assert disk_use(work) == 0


# tar.bz2 and tar.xz read through the same BZ2File/LZMAFile as bz2 and xz, and through tarfile as tar.gz
STREAMED = ["tar.gz", "tar.zst", "gz", "bz2", "xz", "zst"]
NOISE = random.Random(13).randbytes(CHUNK)


def noise_last(name: str, i: int) -> bytes:
    """``noise.bin`` is incompressible, every other member zeros."""
    return NOISE if name == "noise.bin" else ZEROS


@pytest.mark.parametrize("fmt", ["zip", *STREAMED])
def test_every_format_refuses_a_ratio_over_100_past_the_grace(tmp_path: Path, fmt: str) -> None:
    """A member of zeros; a MiB of noise after it lifts 100x the archive size over the member's size."""
    size = DEFAULT_GRACE + 2 * CHUNK
    single = fmt in SINGLE_FILE_FORMATS
    members = {"zeros.bin": size} if single else {"zeros.bin": size, "noise.bin": CHUNK}
    archive = zeros_archive(tmp_path / "bomb.bin", fmt, members, noise_last)
    assert single or size < DEFAULT_RATIO * archive.stat().st_size  # not refused by its header alone
    dest = tmp_path / "work" / "zeros.bin"
    peak = PeakDisk(dest.parent)
    with pytest.raises(ExtractError) as info:
        extract_archive(archive, ExtractSpec(fmt, "zeros.bin"), dest, label=LABEL, advance=peak)
    msg = str(info.value)
    assert msg.startswith(f"{LABEL}: decompressed file 'zeros.bin': " if single else f"{LABEL}: member 'zeros.bin'")
    assert f"{'the archive' if single else 'the member'} expands more than {DEFAULT_RATIO}:1" in msg, msg
    if fmt != "zip":  # streamed: refused at the first chunk past the grace (a zip member before its first byte)
        assert peak.calls == DEFAULT_GRACE // CHUNK
    assert peak.peak <= DEFAULT_GRACE + CHUNK, peak.peak
    assert not dest.exists() and siblings(dest) == []


@pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar builds the sparse archive")
def test_a_sparse_tar_member_is_held_to_the_ratio(tmp_path: Path) -> None:
    """A plain tar cannot compress, but a GNU sparse member stores only its data: 200 MiB of holes."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "noise.bin").write_bytes(random.Random(5).randbytes(3 * CHUNK))  # 100x the archive > the member
    with open(src / "holes.bin", "wb") as fh:
        fh.truncate(200 * CHUNK)
    archive = tmp_path / "sparse.tar"
    subprocess.run(["tar", "-cSf", str(archive), "-C", str(src), "holes.bin", "noise.bin"], check=True)
    with tarfile.open(archive) as tf:
        assert tf.getmember("holes.bin").issparse()
    assert DEFAULT_RATIO * archive.stat().st_size > 200 * CHUNK  # not refused by its header alone
    dest = tmp_path / "work" / "tree"
    peak = PeakDisk(dest.parent)
    with pytest.raises(ExtractError) as info:
        extract_archive(archive, ExtractSpec("tar", "tree"), dest, label=LABEL, advance=peak)
    msg = str(info.value)
    assert f"member 'holes.bin': the member expands more than {DEFAULT_RATIO}:1" in msg, msg
    assert peak.peak <= DEFAULT_GRACE + CHUNK
    assert not dest.exists() and siblings(dest) == []


@pytest.mark.parametrize("fmt", ["zip", "tar.gz", "tar.zst"])
def test_the_archive_ratio_counts_all_members(tmp_path: Path, fmt: str) -> None:
    """Three members of 30 MiB of zeros: each is under the grace, the archive is not."""
    members = {**{f"part{i}.bin": 30 << 20 for i in range(3)}, "noise.bin": CHUNK}
    archive = zeros_archive(tmp_path / "many.bin", fmt, members, noise_last)
    dest = tmp_path / "work" / "tree"
    peak = PeakDisk(dest.parent)
    with pytest.raises(ExtractError) as info:
        extract_archive(archive, ExtractSpec(fmt, "tree"), dest, label=LABEL, advance=peak)
    msg = str(info.value)
    assert "member 'part2.bin'" in msg and f"the archive expands more than {DEFAULT_RATIO}:1" in msg, msg
    assert peak.peak <= DEFAULT_GRACE + CHUNK
    assert not dest.exists() and siblings(dest) == []


@pytest.mark.parametrize("fmt", ["zip", "tar.gz", "gz"])
def test_a_declared_extracted_size_allows_the_ratio(tmp_path: Path, fmt: str) -> None:
    size = 80 << 20
    archive = zeros_archive(tmp_path / "zeros.bin.archive", fmt, {"zeros.bin": size})
    assert size > 200 * archive.stat().st_size  # well past 100:1
    spec = ExtractSpec(fmt, "zeros.bin", extracted_size=size)
    record = extract_archive(archive, spec, tmp_path / "zeros.bin", label=LABEL)
    assert record.total_bytes == size
    path = tmp_path / "zeros.bin" if fmt in SINGLE_FILE_FORMATS else tmp_path / "zeros.bin" / "zeros.bin"
    assert path.stat().st_size == size
    with pytest.raises(ExtractError, match=f"cap of {size - 1} bytes"):  # the declared size is the cap
        extract_archive(archive, dataclasses.replace(spec, extracted_size=size - 1), tmp_path / "o", label=LABEL)


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_ordinary_compression_past_the_grace_needs_no_declared_size(tmp_path: Path, fmt: str) -> None:
    """80 MiB that compresses about 30:1 (32 KiB of noise in every MiB) is no bomb."""
    size = 80 << 20
    archive = zeros_archive(
        tmp_path / "data.bin",
        fmt,
        {"data.bin": size},
        lambda name, i: random.Random(i).randbytes(32 << 10) + ZEROS[32 << 10 :],
    )
    assert 10 < size / archive.stat().st_size < DEFAULT_RATIO
    record = extract_archive(archive, ExtractSpec(fmt, "tree"), tmp_path / "tree", label=LABEL)
    assert record.total_bytes == size


# -- member names that are not UTF-8 ------------------------------------------------------------


def latin1_tar(entries: Sequence[Entry], fmt: int = tarfile.GNU_FORMAT) -> bytes:
    """A tar whose names are written in latin-1 (PAX: raw bytes, ``hdrcharset=BINARY``)."""
    buf = io.BytesIO()
    if fmt == tarfile.PAX_FORMAT:  # a surrogate name cannot be UTF-8, so tarfile writes its bytes as BINARY
        names = {"encoding": "utf-8", "errors": "surrogateescape"}
        for info, _ in entries:
            info.name = info.name.encode("latin-1").decode("utf-8", "surrogateescape")
            info.linkname = info.linkname.encode("latin-1").decode("utf-8", "surrogateescape")
    else:
        names = {"encoding": "latin-1", "errors": "strict"}
    with tarfile.open(fileobj=buf, mode="w", format=fmt, **names) as tf:  # type: ignore[call-overload]
        for info, data in entries:
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


NOT_UTF8: dict[str, tuple[Callable[[], bytes], str, str]] = {
    # case -> (tar bytes, the member the error names, what is wrong)
    "gnu-name": (lambda: latin1_tar([f("ok.txt"), f("caf\u00e9.txt", b"x")]), "b'caf\\xe9.txt'", "its name"),
    "ustar-name": (
        lambda: latin1_tar([f("caf\u00e9.txt", b"x")], tarfile.USTAR_FORMAT),
        "b'caf\\xe9.txt'",
        "its name",
    ),
    "pax-binary-name": (
        lambda: latin1_tar([f("d\u00e9j\u00e0/vu.txt", b"x")], tarfile.PAX_FORMAT),
        "b'd\\xe9j\\xe0/vu.txt'",
        "its name",
    ),
    "folder": (lambda: latin1_tar([d("r\u00e9sum\u00e9/")]), "b'r\\xe9sum\\xe9'", "its name"),
    "symlink-target": (
        lambda: latin1_tar([f("caf\u00e9", b"x"), link("ln", "caf\u00e9")]),
        "b'caf\\xe9'",
        "its name",
    ),
    "symlink-target-only": (
        lambda: latin1_tar([link("ln", "na\u00efve.txt")]),
        "'ln'",
        "its symlink target b'na\\xefve.txt'",
    ),
}


@pytest.mark.parametrize("case", sorted(NOT_UTF8))
@pytest.mark.parametrize("fmt", ["tar", "tar.gz"])
def test_a_tar_name_that_is_not_utf8_is_refused(tmp_path: Path, case: str, fmt: str) -> None:
    build, member, what = NOT_UTF8[case]
    raw = build()
    archive = tmp_path / "names.bin"
    archive.write_bytes(raw if fmt == "tar" else gzip.compress(raw, mtime=0))
    dest = tmp_path / "work" / "tree"
    dest.parent.mkdir()
    before = snapshot(tmp_path)
    messages = []
    for _ in range(2):  # every run gives the same answer
        with pytest.raises(ExtractError) as info:
            extract_archive(archive, ExtractSpec(fmt, "tree"), dest, label=LABEL)
        messages.append(str(info.value))
        assert info.value.exit_code == EXIT_INTEGRITY
        assert snapshot(tmp_path) == before and siblings(dest) == []  # nothing left, no temp folder
    assert messages[0] == messages[1]
    msg = messages[0]
    assert msg.startswith(f"{LABEL}: member {member}: {what} is not UTF-8"), msg
    assert "leave it out with 'members', or repack the archive with UTF-8 names" in msg
    assert msg.isprintable(), msg  # shown with escapes, never as raw bytes


def test_a_name_not_utf8_outside_the_selection_is_no_obstacle(tmp_path: Path) -> None:
    archive = tmp_path / "names.tar"
    archive.write_bytes(latin1_tar([f("top/a.txt", b"A"), f("top/caf\u00e9.txt", b"x"), f("r\u00e9/b.txt", b"B")]))
    record = extract_archive(archive, ExtractSpec("tar", "t", members=("top/a.txt",)), tmp_path / "t", label=LABEL)
    assert sorted(record.files) == ["top/a.txt"]
    archive.write_bytes(latin1_tar([f("r\u00e9/b.txt", b"B")]))  # the odd folder is stripped away
    record = extract_archive(archive, ExtractSpec("tar", "s", strip_components=1), tmp_path / "s", label=LABEL)
    assert files_of(tmp_path / "s") == {"b.txt": b"B"}
    assert hash_tree(tmp_path / "s").digest == record.digest


def test_tar_names_are_read_as_utf8(tmp_path: Path) -> None:
    archive = tmp_path / "utf8.tar"
    archive.write_bytes(tar_as("tar", [f("caf\u00e9/\u00fcber.txt", b"u")]))
    record = extract_archive(archive, ExtractSpec("tar", "t"), tmp_path / "t", label=LABEL)
    assert os.listdir(os.fsencode(tmp_path / "t")) == ["caf\u00e9".encode()]
    assert sorted(record.files) == ["caf\u00e9/\u00fcber.txt"]
    assert hash_tree(tmp_path / "t").digest == record.digest


def _zip_with_name_bytes(name: bytes, *, flagged: bool) -> bytes:
    """A zip of one member whose stored name is ``name``, with or without the UTF-8 flag.

    zipfile sets the flag only for a name that is not ASCII: an ASCII placeholder of the
    same length gives none, a non-ASCII one gives it; the bytes are then swapped in.
    """
    placeholder = ("\u00e9" * (len(name) // 2) + "N" * (len(name) % 2)) if flagged else "N" * len(name)
    raw = zip_bytes([(placeholder, b"payload")])
    stored = placeholder.encode("utf-8")
    assert len(stored) == len(name) and raw.count(stored) == 2  # local header and central directory
    return raw.replace(stored, name)


def test_a_zip_name_flagged_utf8_that_is_not_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "names.zip"
    archive.write_bytes(_zip_with_name_bytes(b"caf\xe9\xe9\xe9", flagged=True))
    dest = tmp_path / "work" / "tree"
    for _ in range(2):
        with pytest.raises(ExtractError) as info:
            extract_archive(archive, ExtractSpec("zip", "tree"), dest, label=LABEL)
        msg = str(info.value)
        assert msg.startswith(f"{LABEL}: member b'caf\\xe9\\xe9\\xe9': its name is flagged UTF-8 but is not UTF-8"), msg
        assert info.value.exit_code == EXIT_INTEGRITY
        assert not dest.exists() and siblings(dest) == []


def test_a_zip_name_without_the_utf8_flag_is_cp437(tmp_path: Path) -> None:
    """The zip standard's encoding for unflagged names, as zipfile reads them: byte 0xE9 is 'Θ'."""
    archive = tmp_path / "names.zip"
    archive.write_bytes(_zip_with_name_bytes(b"caf\xe9.txt", flagged=False))
    digests = set()
    for i in range(2):
        dest = tmp_path / f"tree{i}"
        record = extract_archive(archive, ExtractSpec("zip", "tree"), dest, label=LABEL)
        assert files_of(dest) == {"caf\u0398.txt": b"payload"}
        assert hash_tree(dest).digest == record.digest
        digests.add(record.digest)
    assert len(digests) == 1


def test_a_zip_symlink_target_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    """It used to be decoded with U+FFFD replacements: a symlink to a renamed target."""
    info, _ = zip_symlink("ln", "")
    archive = tmp_path / "links.zip"
    archive.write_bytes(zip_bytes([("caf\u00e9", b"x"), (info, b"caf\xe9")]))
    dest = tmp_path / "work" / "tree"
    with pytest.raises(ExtractError) as exc:
        extract_archive(archive, ExtractSpec("zip", "tree"), dest, label=LABEL)
    msg = str(exc.value)
    assert msg.startswith(f"{LABEL}: member 'ln': its symlink target b'caf\\xe9' is not UTF-8"), msg
    assert not dest.exists() and siblings(dest) == []
