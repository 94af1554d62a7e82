"""The fast tar header reader reads every archive exactly as tarfile does.

Extraction parses plain ustar/GNU headers itself and leaves every other header to tarfile
(:mod:`provision.extract.archive`). These tests build archives in each format, with the
headers that must go to tarfile (long names, pax headers, a pax global header, links,
base-256 numbers, a signed checksum, odd number fields, a corrupt header), extract them from
an uncompressed file and through gzip, and compare every path, kind, byte, mode and mtime on
disk with what tarfile's own reading of the same bytes says must be there.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from provision.extract.archive import SMALL_MEMBER, ExtractError, extract_archive
from provision.manifest.model import ExtractSpec

NAMES = {"encoding": "utf-8", "errors": "surrogateescape"}


def member(name: str, data: bytes = b"", **fields: object) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 1_600_000_000
    info.mode = 0o644
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data


def build(members: list[tuple[tarfile.TarInfo, bytes]], fmt: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, **NAMES) as tf:  # type: ignore[call-overload]
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def on_disk(root: Path) -> dict[str, tuple[object, ...]]:
    """What an extraction left: per path, its kind and what identifies it."""
    out: dict[str, tuple[object, ...]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        st = path.lstat()
        if path.is_symlink():
            out[rel] = ("symlink", os.readlink(path))
        elif path.is_dir():
            out[rel] = ("dir",)
        else:
            out[rel] = ("file", path.read_bytes(), stat.S_IMODE(st.st_mode), st.st_mtime)
    return out


def expected(path: Path) -> dict[str, tuple[object, ...]]:
    """What the extraction must leave, from tarfile's reading of the archive."""
    out: dict[str, tuple[object, ...]] = {}
    with tarfile.open(path, **NAMES) as tf:  # type: ignore[call-overload]
        for info in tf:
            parts = info.name.split("/")
            for i in range(1, len(parts)):
                out.setdefault("/".join(parts[:i]), ("dir",))
            if info.isdir():
                out[info.name] = ("dir",)
            elif info.issym():
                out[info.name] = ("symlink", info.linkname)
            elif info.islnk():
                out[info.name] = out[info.linkname]
            else:
                fh = tf.extractfile(info)
                assert fh is not None
                out[info.name] = ("file", fh.read(), (info.mode & 0o755) | 0o400, float(info.mtime))
    return out


def agree(tmp_path: Path, data: bytes) -> dict[str, tuple[object, ...]]:
    """Extract ``data`` as a tar and as a tar.gz; both trees must be what tarfile reads."""
    plain = tmp_path / "a.tar"
    plain.write_bytes(data)
    packed = tmp_path / "a.tar.gz"
    packed.write_bytes(gzip.compress(data))
    want = expected(plain)
    for archive, fmt in ((plain, "tar"), (packed, "tar.gz")):
        dest = tmp_path / f"out-{fmt}"
        extract_archive(archive, ExtractSpec(fmt, "out"), dest, label=f"art/{archive.name}")
        assert on_disk(dest) == want, fmt
    return want


def patch(block: bytes, start: int, field: bytes, *, signed: bool = False) -> bytes:
    """``block`` (a header) with ``field`` at ``start`` and the checksum made right again."""
    raw = bytearray(block)
    raw[start : start + len(field)] = field
    raw[148:156] = b" " * 8
    total = sum(b - 256 if signed and b > 127 else b for b in raw)
    raw[148:156] = b"%06o\0 " % total
    return bytes(raw)


MIXED = [
    member("top.txt", b"hello\n"),
    member("dir", type=tarfile.DIRTYPE, mode=0o755),
    member("dir/a.bin", bytes(range(256)) * 5),
    member("dir/empty"),
    member("dir/exact", b"x" * 1024),
    member("d/" + "long" * 40 + ".txt", b"a long name"),
    member("link", type=tarfile.SYMTYPE, linkname="dir/a.bin"),
    member("hard", type=tarfile.LNKTYPE, linkname="dir/a.bin"),
    member("café/naïve.txt", b"utf-8 names"),
    member("exec.sh", b"#!/bin/sh\n", mode=0o4755),
    member("big.bin", b"\1" * (SMALL_MEMBER + 100)),
    member("after/last", b"last"),
]


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT, tarfile.PAX_FORMAT])
def test_every_format_reads_as_tarfile_reads_it(tmp_path: Path, fmt: int) -> None:
    members = [m for m in MIXED if fmt != tarfile.USTAR_FORMAT or (m[0].name.isascii() and "long" not in m[0].name)]
    if fmt == tarfile.USTAR_FORMAT:  # ustar splits a long path into prefix and name
        members.append(member("p" * 90 + "/" + "n" * 90, b"split"))
    got = agree(tmp_path, build(members, fmt))
    assert {m[0].name for m in members} <= set(got)


def test_a_pax_global_header_leaves_every_later_header_to_tarfile(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"mtime": "1234.5"}) as tf:
        for info, data in MIXED[:5]:
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    got = agree(tmp_path, buf.getvalue())
    assert {v[3] for v in got.values() if v[0] == "file"} == {1234.5}  # the global mtime reached every file


def test_odd_headers_read_as_tarfile_reads_them(tmp_path: Path) -> None:
    """Number fields with spaces, NULs, underscores, base-256; a signed checksum; V7 folders."""
    blocks = []
    for i, (field_at, field) in enumerate(
        [
            (100, b"   644 \0"),  # mode with spaces
            (124, b"\0" * 12),  # an empty size: 0
            (108, b"0_7\0\0\0\0\0"),  # int() reads underscores
            (136, b"\x80" + b"\0" * 7 + (1_700_000_000).to_bytes(4, "big")),  # base-256 mtime
            (329, b"  \0     "),  # devmajor of spaces
        ]
    ):
        info, data = member(f"odd{i}", b"" if field_at == 124 else b"%d" % i)
        head = patch(info.tobuf(tarfile.GNU_FORMAT), field_at, field)
        blocks.append(head + data.ljust(512, b"\0") if data else head)
    info, _ = member("signed-\u00e9.txt", b"s")  # UTF-8 bytes over 127: the signed checksum differs
    blocks.append(
        patch(info.tobuf(tarfile.GNU_FORMAT, "utf-8", "strict"), 0, b"", signed=True) + b"s".ljust(512, b"\0")
    )
    info, _ = member("v7dir/", type=tarfile.AREGTYPE)
    blocks.append(info.tobuf(tarfile.GNU_FORMAT))
    got = agree(tmp_path, b"".join(blocks) + b"\0" * 1024)
    assert sorted(got) == [*(f"odd{i}" for i in range(5)), "signed-\u00e9.txt", "v7dir"]
    assert got["v7dir"] == ("dir",) and got["odd3"][3] == 1_700_000_000


def test_a_corrupt_header_where_tarfile_stops_is_refused(tmp_path: Path) -> None:
    data = bytearray(build(MIXED[:5], tarfile.GNU_FORMAT))
    second = 512 + 512  # top.txt's header and data, then dir's header
    data[second + 148] ^= 1  # a wrong checksum
    archive = tmp_path / "bad.tar"
    archive.write_bytes(bytes(data))
    assert list(expected(archive)) == ["top.txt"]  # tarfile stops there, without an error
    with pytest.raises(ExtractError, match="invalid header at byte 1024"):
        extract_archive(archive, ExtractSpec("tar", "out"), tmp_path / "out", label="art/bad.tar")


def test_a_skipped_member_cut_short_is_still_a_truncated_archive(tmp_path: Path) -> None:
    data = build([member("keep.txt", b"k"), member("skip/me.bin", b"z" * 5000)], tarfile.GNU_FORMAT)
    archive = tmp_path / "cut.tar"
    archive.write_bytes(data[: 512 * 3 + 100])  # inside skip/me.bin's data
    spec = ExtractSpec("tar", "out", members=["keep.txt"])
    with pytest.raises(ExtractError, match="corrupt or truncated tar archive"):
        extract_archive(archive, spec, tmp_path / "out", label="art/cut.tar")
    assert not (tmp_path / "out").exists()
