"""Safe, atomic, streaming extraction, and deterministic tree digests.

Security rules, checked by this module on every Python version (it never calls
``extractall``): member paths must be relative, without ``..`` and without backslashes;
no member is written through a symlink; symlinks must point inside the target; hard
links must point at a regular file already extracted from the same archive; device
files and FIFOs are refused; a member name seen twice is refused; a name (or symlink
target) that is not UTF-8 is refused; setuid/setgid/sticky bits are dropped. Every
refusal names the archive and the member, quoted with escapes.

Archive bombs: with the manifest's ``extracted_size`` declared, that is the cap on the
bytes written. Without it, once ``DEFAULT_GRACE`` bytes are written, nothing may expand
more than ``DEFAULT_RATIO``:1: neither a member (its bytes written against the compressed
bytes it consumed) nor the whole archive (all bytes written against all compressed bytes
consumed). Tar formats and single streams are measured while they stream, from the
position in the compressed file; a zip member's sizes are declared in the central
directory (and zipfile holds the member to them), so a zip is judged before a byte of the
member is written. Either way nothing can write more than ``DEFAULT_RATIO`` times the
archive size (or ``DEFAULT_GRACE``), and a bomb is refused after about ``DEFAULT_GRACE``
bytes on disk.

Atomicity: members are written into a temp folder beside the target, which is renamed
into place only when everything was written and checked. Members larger than
``SMALL_MEMBER`` are copied in chunks on the calling thread, never read whole into memory.

Small files (tar formats): the calling process reads the archive once, parses each header
(a plain ustar/GNU header by ``_fast_header``, which reads exactly what tarfile reads; any
other by tarfile), applies every rule above and charges the budget. The first
``PROCESS_AFTER`` small files it writes itself (create with ``O_EXCL|O_NOFOLLOW`` relative to
the temp folder, write, utime, fstat; ``fchmod`` only where the umask took mode bits). After
that it hands the writes, in batches, to ``WRITERS`` writer processes
(:mod:`provision.extract.writer_process`), which create, write, hash and stat the files and
reply with the digests and stats: in an uncompressed tar they read each member's data from
the archive themselves, otherwise the data comes with the batch. Processes, not threads:
the GIL would serialise the per-file Python that the syscalls leave. Folders are made before
a file is queued into them; a hard link and a large member wait for every queued write;
the first error of a writer is raised in the calling process, and the writers are stopped
(killed when a batch is unanswered) before the temp folder is removed, so a refusal still
leaves nothing behind.

Tree digest (``xxh3_128:<hex>``): xxh3_128 over one line per entry, sorted by path
(UTF-8 bytes): ``f\\0<path>\\0<size>\\0<xxh3_128 hex>\\n`` for a file and
``l\\0<path>\\0<target>\\n`` for a symlink; paths are relative, ``/``-separated; empty
folders do not count.
"""

from __future__ import annotations

import bz2
import collections
import contextlib
import fcntl
import fnmatch
import functools
import gzip
import io
import lzma
import marshal
import os
import re
import select
import shutil
import stat
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol, cast

import xxhash

from provision.errors import IntegrityError
from provision.extract.writer_process import NEW_FILE, seal, write_all, write_file
from provision.fsutil import CHUNK_SIZE, temp_name
from provision.manifest.model import SINGLE_FILE_FORMATS, ExtractSpec
from provision.store.trees import TreeFile, TreeRecord

#: The writer process's script, run as a file (with the environment of this process): it imports nothing of provision.
_WRITER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "writer_process.py")

__all__ = ["DEFAULT_GRACE", "DEFAULT_RATIO", "ExtractError", "detect_format", "extract_archive"]

#: Without a declared ``extracted_size``, at most this many bytes out per compressed byte ...
DEFAULT_RATIO = 100
#: ... once this many bytes are written (by the member for its own ratio, by the archive for the whole).
DEFAULT_GRACE = 64 << 20
#: Tar members up to this size are read whole (or by a writer process) and written in one write.
SMALL_MEMBER = 1 << 20
#: Writer processes for the small files of a tar; 0: the calling process writes them all. Most
#: of a small file's cost is the kernel's create, which processes run side by side (threads
#: cannot: the GIL serialises the Python between the syscalls). On this project's 2-core VM,
#: 50,000 files of 1-8 KiB took 2.2-2.5 s in one process, 1.6-1.8 s with one writer process,
#: 1.4-1.65 s with two and 1.3-1.55 s with three (GNU tar: 1.52-1.66 s).
WRITERS = 3
#: The small files written by the calling process before the writer processes start (each
#: costs a process start of about 20 ms): an archive of fewer files never starts them.
PROCESS_AFTER = 1000
#: The pipe buffer, in bytes, of each writer process's requests and replies (``F_SETPIPE_SZ``);
#: None: the system's. A smaller one models a machine past ``pipe-user-pages-soft``, where
#: pipe(7) gives an unprivileged user's new pipes a single page: the exchange must not block.
WRITER_PIPE_BYTES: int | None = None
#: A batch sent to a writer process: at most this many files or bytes.
_BATCH_FILES = 64
_BATCH_BYTES = 1 << 20


class ExtractError(IntegrityError):
    """An archive member broke a safety rule, or the archive is corrupt or too big."""


_MAGIC = (
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"\x1f\x8b", "gz"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zst"),
)


class _Counted(io.RawIOBase):
    """The archive file, counting the bytes read through it: the compressed bytes consumed."""

    def __init__(self, fh: io.BufferedReader) -> None:
        super().__init__()
        self.fh = fh
        self.count = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.fh.read(size)
        self.count += len(data)
        return data

    def readinto(self, buf: Any) -> int:
        n = self.fh.readinto(buf)
        self.count += n
        return n

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self.fh.seek(offset, whence)

    def read_at(self, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset`` (fewer at the end of the file), counted."""
        self.fh.seek(offset)
        data = self.fh.read(size)
        self.count += len(data)
        return data

    def tell(self) -> int:
        return self.fh.tell()


def _open_stream(raw: IO[bytes], fmt: str) -> IO[bytes]:
    """A decompressed, sequential reader over ``raw`` for a single-stream format.

    Closing it leaves ``raw`` open (the caller owns it).
    """
    if fmt == "gz":
        return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
    if fmt == "bz2":
        return cast(IO[bytes], bz2.BZ2File(raw, "rb"))
    if fmt == "xz":
        return cast(IO[bytes], lzma.LZMAFile(raw, "rb"))
    if fmt == "zst":
        import zstandard

        return cast(IO[bytes], zstandard.ZstdDecompressor().stream_reader(raw, closefd=False))
    raise ValueError(f"not a single-stream format: {fmt!r}")


def _is_tar(head: bytes) -> bool:
    return len(head) >= 262 and head[257:262] == b"ustar"


def detect_format(path: Path) -> str:
    """The archive format from magic bytes (a compressed tar is told apart by peeking in)."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            if fmt == "zip":
                return "zip"
            try:
                with open(path, "rb") as raw, _open_stream(raw, fmt) as inner:
                    peek = inner.read(512)
            except (OSError, EOFError, lzma.LZMAError, ValueError) as exc:
                raise ExtractError(f"{path}: looks like {fmt} but cannot be decompressed ({exc})") from exc
            return f"tar.{fmt}" if _is_tar(peek) else fmt
    if _is_tar(head):
        return "tar"
    raise ExtractError(f'{path}: unknown archive format (no tar/zip/gz/bz2/xz/zst magic); set extract = "<format>"')


# ---------------------------------------------------------------------------------------
# Members


class _Source(Protocol):
    """A member's data, read in chunks."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


@dataclass
class _Member:
    name: str
    kind: str  # file | dir | symlink | hardlink | special
    size: int
    mode: int
    mtime: float
    linkname: str = ""
    open: Callable[[], _Source | None] | None = None
    packed: int | None = None  # compressed size, where the archive declares it (zip)
    read_all: Callable[[], bytes] | None = None  # the whole content, for a small member (tar)
    offset: int | None = None  # where the data lies in the archive file (an uncompressed tar)


def _not_utf8(name: str) -> bool:
    """True for a name decoded with ``surrogateescape`` from bytes that are not UTF-8."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _shown(name: str | bytes) -> str:
    """``name`` quoted with escapes (no control character reaches the terminal); a name that
    is not UTF-8 is shown as the bytes it is (``b'caf\\xe9.txt'``)."""
    if isinstance(name, str) and _not_utf8(name):
        name = name.encode("utf-8", "surrogateescape")
    return repr(name)


class _TarStream:
    """The tar stream as both readers see it: tarfile (for any header the fast reader leaves
    to it) and ``_fast_member``. Reads go forward; a forward seek skips (a real seek on an
    uncompressed file, reading and dropping on a decompressed stream); one header block
    can be pushed back, so a header is read once whichever reader parses it. A decompressor
    is never asked to seek backwards (for gzip that would decompress again from the start).
    """

    def __init__(self, src: IO[bytes], seekable: bool) -> None:
        self.src = src
        self.seekable = seekable
        self.pos = 0  # logical position: what was read, less what was pushed back
        self.back = b""

    def read(self, size: int = -1) -> bytes:
        back = self.back
        if back:
            self.back = b""
            if 0 <= size < len(back):
                self.back = back[size:]
                back = back[:size]
            elif size < 0 or size > len(back):
                back += self.src.read(-1 if size < 0 else size - len(back))
            self.pos += len(back)
            return back
        data = self.src.read(size)
        self.pos += len(data)
        return data

    def unread(self, block: bytes) -> None:
        """Push back ``block``, the bytes just read: the next read starts with them."""
        self.back = block + self.back
        self.pos -= len(block)

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_CUR:
            offset += self.pos
        elif whence != os.SEEK_SET:
            raise io.UnsupportedOperation("a tar stream seeks from its start or its position only")
        if offset < self.pos:
            raise io.UnsupportedOperation(f"a tar stream does not seek backwards ({self.pos} -> {offset})")
        skip = offset - self.pos
        if skip <= len(self.back):
            self.read(skip)
        elif self.seekable:
            self.src.seek(offset - self.pos - len(self.back), os.SEEK_CUR)
            self.back = b""
            self.pos = offset
        else:
            while self.pos < offset and self.read(min(CHUNK_SIZE, offset - self.pos)):
                pass
        return self.pos


class _Slice:
    """Exactly ``size`` bytes of ``stream`` from its position: a tar member's data."""

    def __init__(self, stream: _TarStream, size: int) -> None:
        self.stream = stream
        self.left = size

    def read(self, size: int = -1) -> bytes:
        n = self.left if size < 0 else min(size, self.left)
        data = self.stream.read(n)
        if len(data) != n:
            raise tarfile.ReadError("unexpected end of data")
        self.left -= n
        return data

    def close(self) -> None:
        pass


#: A plain number field of a tar header, as tarfile reads it: octal digits between spaces.
_PLAIN_NUMBER = re.compile(rb" *[0-7]* *")
#: The number fields (offsets) tarfile parses in every header: mode, uid, gid, size, mtime,
#: checksum, devmajor, devminor.
_NUMBER_FIELDS = ((100, 108), (108, 116), (116, 124), (124, 136), (136, 148), (148, 156), (329, 337), (337, 345))
#: The number fields as GNU tar and tarfile write them (zero-padded octal, then NUL; the
#: checksum's six digits, NUL, space): mode, uid, gid, size, mtime, checksum; then the two
#: device numbers, written the same way or left as NULs. A header that differs takes the
#: field-by-field reading, which accepts what tarfile accepts.
_USUAL_NUMBERS = re.compile(rb"([0-7]{7})\0[0-7]{7}\0[0-7]{7}\0([0-7]{11})\0([0-7]{11})\0([0-7]{6})\0 ")
_USUAL_DEVICE = re.compile(rb"(?:[0-7]{7}\0|\0{8}){2}")
#: Header types the fast reader parses itself: a regular file (``0``, NUL) or a folder.
_FAST_TYPES = (b"0", b"\0", b"5")


def _fast_header(buf: bytes) -> tuple[str, str, int, int, int] | None:
    """``(name, kind, size, mode, mtime)`` of a plain ustar/GNU header, read exactly as
    tarfile reads it; ``None`` for anything else (tarfile parses those).

    Plain: a regular file or folder, every number field octal digits between spaces (no
    base-256), the unsigned checksum right. Long names, pax headers, links, sparse files,
    the end of the archive and every invalid header are not plain.
    """
    if len(buf) != tarfile.BLOCKSIZE or buf[156:157] not in _FAST_TYPES:
        return None
    usual = _USUAL_NUMBERS.match(buf, 100)
    if usual is not None and _USUAL_DEVICE.match(buf, 329):
        mode, size, mtime, checksum = int(usual[1], 8), int(usual[2], 8), int(usual[3], 8), int(usual[4], 8)
    else:
        numbers = []
        for start, end in _NUMBER_FIELDS:
            field = buf[start:end]
            cut = field.find(0)
            if cut >= 0:
                field = field[:cut]
            if not _PLAIN_NUMBER.fullmatch(field):
                return None
            field = field.strip(b" ")
            numbers.append(int(field, 8) if field else 0)
        mode, _, _, size, mtime, checksum, _, _ = numbers
    if checksum != sum(buf) - sum(buf[148:156]) + 256:
        return None
    name = buf[:100]
    cut = name.find(0)
    name_s = (name[:cut] if cut >= 0 else name).decode("utf-8", "surrogateescape")
    kind = "file"
    if buf[156:157] == b"5" or (buf[156:157] == b"\0" and name_s.endswith("/")):
        kind = "dir"
        name_s = name_s.rstrip("/")
    prefix = buf[345:500]
    cut = prefix.find(0)
    if cut >= 0:
        prefix = prefix[:cut]
    if prefix:
        name_s = prefix.decode("utf-8", "surrogateescape") + "/" + name_s
    return name_s, kind, size, mode, mtime


def _block(size: int) -> int:
    """``size`` rounded up to whole tar blocks."""
    return -(-size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE


def _tar_members(tf: tarfile.TarFile, stream: _TarStream) -> Iterator[_Member]:
    """The members of ``tf``, read once from ``stream`` (its file object).

    Plain headers (``_fast_header``) are parsed here; every other header, and every header
    after a pax global header, is tarfile's. Either way the member's data is read where it
    lies in the stream, in order, when the writer asks for it (a skipped member is skipped).
    """
    info = tf.next()  # tarfile read the first header when it opened the archive
    while info is not None:
        yield _info_member(tf, info, stream)
        pos = tf.offset
        while not tf.pax_headers:
            if stream.pos != pos:  # as tarfile does: the data before the next header must be there
                stream.seek(pos - 1)
                if not stream.read(1):
                    raise tarfile.ReadError("unexpected end of data")
            buf = stream.read(tarfile.BLOCKSIZE)
            head = _fast_header(buf)
            if head is None:
                stream.unread(buf)
                break
            name, kind, size, mode, mtime = head
            pos += tarfile.BLOCKSIZE
            opener = read_all = None
            if kind == "file":
                if size <= SMALL_MEMBER:
                    read_all = functools.partial(_read_padded, stream, size)
                else:
                    opener = functools.partial(_Slice, stream, size)
                pos += _block(size)
            yield _Member(name, kind, size, mode, float(mtime), "", opener, None, read_all, pos - _block(size))
        tf.offset = pos
        info = tf.next()


def _read_padded(stream: _TarStream, size: int) -> bytes:
    """A member's ``size`` bytes, read with the padding to the next header in one read."""
    data = stream.read(_block(size))
    if len(data) < size:
        raise tarfile.ReadError("unexpected end of data")
    return data[:size] if len(data) > size else data


def _info_member(tf: tarfile.TarFile, info: tarfile.TarInfo, stream: _TarStream) -> _Member:
    """The member tarfile parsed as ``info``."""
    if info.isreg():
        kind = "file"
    elif info.isdir():
        kind = "dir"
    elif info.issym():
        kind = "symlink"
    elif info.islnk():
        kind = "hardlink"
    else:
        kind = "special"
    opener = read_all = None
    if kind == "file":
        opener = lambda: tf.extractfile(info)  # noqa: E731
        if info.size <= SMALL_MEMBER and getattr(info, "sparse", None) is None:

            def read_all() -> bytes:
                stream.seek(info.offset_data)
                return _Slice(stream, info.size).read()

    offset = info.offset_data if read_all is not None else None
    return _Member(
        info.name, kind, info.size, info.mode, float(info.mtime), info.linkname, opener, None, read_all, offset
    )


#: The longest symlink target accepted (Linux's PATH_MAX).
_MAX_LINK = 4096


def _zip_members(zf: zipfile.ZipFile) -> Iterator[_Member]:
    for info in zf.infolist():
        mode = (info.external_attr >> 16) & 0xFFFF
        fmt = stat.S_IFMT(mode)
        if info.is_dir():
            kind = "dir"
        elif fmt == stat.S_IFLNK:
            kind = "symlink"
        elif fmt in (0, stat.S_IFREG):
            kind = "file"
        else:
            kind = "special"
        link = ""
        if kind == "symlink":  # read no more than a symlink can hold (a huge "target" is a memory bomb)
            with zf.open(info) as fh:
                link = fh.read(_MAX_LINK + 1).decode("utf-8", "surrogateescape")  # not UTF-8: refused
        mtime = 0.0
        with contextlib.suppress(ValueError, OverflowError):
            import datetime

            mtime = datetime.datetime(*info.date_time).timestamp()
        opener = (lambda i=info: zf.open(i)) if kind == "file" else None
        mode = mode & 0o7777 or 0o644
        yield _Member(info.filename, kind, info.file_size, mode, mtime, link, opener, info.compress_size)


class _Budget:
    """How many bytes an extraction may write (the module docstring has the rules).

    ``consumed`` tells the compressed bytes read so far, for formats measured while they
    stream; ``None`` where each member declares its compressed size (zip).
    """

    def __init__(self, declared: int | None, archive_size: int, consumed: Callable[[], int] | None) -> None:
        self.declared = declared
        self.archive_size = archive_size
        self.consumed = consumed
        self.cap = declared if declared is not None else max(DEFAULT_GRACE, DEFAULT_RATIO * archive_size)
        self.written = 0
        self.packed = 0  # declared compressed bytes of the members admitted so far (zip)

    def over_cap(self, total: int) -> str | None:
        """Why writing ``total`` bytes in all is refused, or ``None``."""
        if total <= self.cap:
            return None
        if self.declared is not None:
            return (
                f"extraction exceeds the cap of {self.cap} bytes (the declared extracted_size); "
                "correct extracted_size if the archive is right"
            )
        return (
            f"extraction exceeds the cap of {self.cap} bytes ({DEFAULT_RATIO}x the {self.archive_size}-byte "
            "archive; an archive bomb?); declare extracted_size in the manifest if that is expected"
        )

    def over_ratio(self, what: str, written: int, packed: int) -> str | None:
        """Why ``what`` writing ``written`` bytes from ``packed`` compressed is refused, or ``None``."""
        if self.declared is not None or written <= DEFAULT_GRACE or written <= DEFAULT_RATIO * packed:
            return None
        return (
            f"{what} expands more than {DEFAULT_RATIO}:1 ({written} bytes out of {packed} compressed; "
            "an archive bomb?); declare extracted_size in the manifest if that is expected"
        )

    def admit(self, size: int, packed: int | None) -> str | None:
        """Why a member announcing ``size`` bytes (from ``packed`` compressed) is refused before a byte is written."""
        why = None
        if packed is not None:
            why = self.over_ratio("the member", size, packed) or self.over_ratio(
                "the archive", self.written + size, self.packed + packed
            )
            self.packed += packed
        return why or self.over_cap(self.written + size)

    def charge(self, n: int, member_written: int = 0, start: int | None = None) -> str | None:
        """Count ``n`` more bytes written: why that is refused, or ``None``.

        ``member_written`` is what the member wrote so far (``n`` included) and ``start`` the
        compressed position where it began; the member's ratio is checked only with both.
        """
        self.written += n
        why = None
        if self.consumed is not None:
            now = self.consumed()
            if start is not None:
                why = self.over_ratio("the member", member_written, now - start)
            why = why or self.over_ratio("the archive", self.written, now)
        return why or self.over_cap(self.written)


class _Writer:
    """Applies the safety rules and writes members under ``root`` (the temp folder)."""

    def __init__(
        self, archive: str, root: Path, spec: ExtractSpec, budget: _Budget, advance: Callable[[int], None]
    ) -> None:
        self.archive = archive
        self.root = root
        self.spec = spec
        self.budget = budget
        self.advance = advance
        self.base = os.fspath(root)
        self.record = TreeRecord("dir")
        self.seen: dict[str, str] = {}  # path -> kind
        self.links: set[str] = set()
        self.made: set[str] = {""}  # folders (relative) known to exist: mkdir once, not per member
        self.root_fd = -1  # the temp folder, opened once the first small file is written
        self.archive_fd = -1  # the uncompressed tar, for writer processes that read members' data themselves
        self.small = 0  # small files seen (PROCESS_AFTER)
        self.pool: list[_Process] | None = None
        self.turn = 0
        self.relinked: list[str] = []  # files whose inode a hard link changed (their ctime moved)

    def refuse(self, member: str, why: str) -> ExtractError:
        return ExtractError(f"{self.archive}: member {_shown(member)}: {why}; refused, nothing was extracted")

    def target_path(self, m: _Member) -> str | None:
        """The safe relative path for ``m`` after strip/members, or None to skip it."""
        raw = m.name
        if "\\" in raw:
            raise self.refuse(raw, "backslash in the path")
        if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
            raise self.refuse(raw, "absolute path")
        split = raw.split("/")
        parts = [p for p in split if p not in ("", ".")]
        if ".." in parts:
            raise self.refuse(raw, "'..' in the path")
        if len(parts) == len(split) and not self.spec.strip_components:
            rel = raw  # already clean
        else:
            parts = parts[self.spec.strip_components :]
            if not parts:
                return None
            rel = "/".join(parts)
        if self.spec.members and not any(fnmatch.fnmatchcase(rel, pat) for pat in self.spec.members):
            return None
        return rel

    def add(self, m: _Member) -> None:
        rel = self.target_path(m)
        if rel is None:
            return
        if m.kind == "special":
            raise self.refuse(m.name, "device file or FIFO")
        if m.size < 0 or not m.mtime < _MTIME_LIMIT:  # tarfile reads a negative base-256 size; a pax mtime may be 1e300
            raise ExtractError(
                f"{self.archive}: corrupt archive (member {_shown(m.name)} has size {m.size} and mtime "
                f"{m.mtime}); delete it and fetch again"
            )
        if (not rel.isascii() and _not_utf8(rel)) or (m.kind == "symlink" and _not_utf8(m.linkname)):
            what = "its name" if _not_utf8(rel) else f"its symlink target {_shown(m.linkname)}"
            raise self.refuse(
                m.name,
                f"{what} is not UTF-8 (tree records and digests hold UTF-8 paths); "
                "leave it out with 'members', or repack the archive with UTF-8 names",
            )
        folder = rel.rpartition("/")[0]
        for i in range(1, 0 if folder in self.made else rel.count("/") + 1):  # a made folder's are all folders
            parent = rel.rsplit("/", i)[0]
            if self.seen.get(parent) in ("file", "symlink", "hardlink"):
                raise self.refuse(m.name, f"its parent {parent!r} is a {self.seen[parent]} (writing through it)")
            self.seen.setdefault(parent, "dir")
        prior = self.seen.get(rel)
        if prior is not None and not (prior == "dir" and m.kind == "dir"):
            raise self.refuse(m.name, "duplicate member name (would overwrite)")
        self.seen[rel] = m.kind
        dest = self.base + "/" + rel
        if m.kind == "dir":
            self._mkdir(rel)
            return
        self._mkdir(folder)
        if m.kind == "symlink":
            self._symlink(m, rel, dest)
        elif m.kind == "hardlink":
            self.flush()  # its target must be on disk
            self._hardlink(m, rel, dest)
        elif m.read_all is not None:
            self._small_file(m, rel, dest)
        else:
            self.flush()  # keep the bytes in flight bounded while a big member streams
            self._file(m, rel, dest)

    def _mkdir(self, rel: str) -> None:
        """Create the folder ``rel`` (and its parents) unless this writer already did."""
        if rel not in self.made:
            os.makedirs(self.base + "/" + rel, exist_ok=True)
            self.made.add(rel)

    def _symlink(self, m: _Member, rel: str, dest: str) -> None:
        target = m.linkname
        if len(target) > _MAX_LINK:
            raise self.refuse(m.name, f"symlink target longer than {_MAX_LINK} bytes")
        if not target or target.startswith("/") or "\\" in target:
            raise self.refuse(m.name, f"symlink to {_shown(target)} (absolute or empty)")
        resolved: list[str] = rel.split("/")[:-1]
        for part in PurePosixPath(target).parts:
            if part == "..":
                if not resolved:
                    raise self.refuse(m.name, f"symlink to {_shown(target)} points outside the target")
                resolved.pop()
            elif part not in ("", "."):
                resolved.append(part)
        os.symlink(target, dest)
        self.record.links[rel] = target

    def check_links(self) -> None:
        """Refuse a symlink that escapes through another symlink (``a -> ..``, ``b -> a/..``)."""
        base = os.path.realpath(self.root)
        for rel, target in self.record.links.items():
            real = os.path.realpath(self.root / rel)
            if real != base and not real.startswith(base + os.sep):
                raise self.refuse(
                    rel, f"symlink to {_shown(target)} points outside the target (through another symlink)"
                )

    def _hardlink(self, m: _Member, rel: str, dest: str) -> None:
        try:
            link = self.target_path(_Member(m.linkname, "file", 0, 0, 0.0))
        except ExtractError:
            link = None
        if link is None or self.seen.get(link) != "file" or link not in self.record.files:
            raise self.refuse(m.name, f"hard link to {_shown(m.linkname)}, which is not a file extracted before it")
        src = self.record.files[link]
        self._check(m, self.budget.charge(src.size))  # a hard link's bytes count in the archive's total
        os.link(self.base + "/" + link, dest)
        self.record.files[rel] = TreeFile(src.size, src.xxh3_128)
        self.relinked += [link, rel]  # a link moves the inode's ctime: both are stat-ed at the end

    def _check(self, m: _Member, why: str | None) -> None:
        if why is not None:
            raise self.refuse(m.name, why)

    def _small_file(self, m: _Member, rel: str, dest: str) -> None:
        """Check a small member and write it: here, or (after ``PROCESS_AFTER`` of them) in a writer process."""
        self._check(m, self.budget.admit(m.size, m.packed))
        assert m.read_all is not None
        if self.root_fd < 0:
            self.root_fd = os.open(self.base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        self.small += 1
        record = TreeFile(m.size, "")
        mode = _final_mode(m.mode)
        pool = self.pool if self.pool is not None or self.small <= PROCESS_AFTER else self._start()
        if pool and m.offset is not None and self.archive_fd >= 0:  # the process reads the data itself
            self._check(m, self.budget.charge(m.size))
            self._queue(rel, (rel, None, m.offset, m.size, mode, m.mtime), m.size, record)
            return
        consumed = self.budget.consumed
        start = consumed() if consumed is not None else None
        data = m.read_all()
        self._check(m, self.budget.charge(len(data), len(data), start))
        record.size = len(data)
        if pool:
            self._queue(rel, (rel, data, 0, len(data), mode, m.mtime), len(data), record)
            return
        _fill(record, write_file(self.root_fd, rel, data, mode, m.mtime))
        self.record.files[rel] = record
        self.advance(len(data))

    def _start(self) -> list[_Process]:
        """Start the writer processes (none where they cannot be started: the files are written here)."""
        self.pool = []
        if WRITERS > 0 and sys.executable:
            self.pool = [_Process(self.root_fd, self.archive_fd) for _ in range(WRITERS)]
        return self.pool

    def _queue(self, rel: str, job: _Job, size: int, record: TreeFile) -> None:
        """Add a write to the next process's batch; send the batch once it is full."""
        assert self.pool
        proc = self.pool[self.turn]
        self.record.files[rel] = record  # its digest and stat come with the reply
        proc.batch.append(job)
        proc.records.append(record)
        proc.batch_bytes += size
        if len(proc.batch) >= _BATCH_FILES or proc.batch_bytes >= _BATCH_BYTES:
            self._send(proc)
            self.turn = (self.turn + 1) % len(self.pool)

    def _send(self, proc: _Process) -> None:
        if len(proc.sent) >= _IN_FLIGHT_BATCHES:
            self._reap(proc)
        proc.send()

    def _reap(self, proc: _Process) -> None:
        """Wait for ``proc``'s oldest reply; raise its error."""
        written = proc.reap(self.archive)
        self.advance(written)

    def flush(self) -> None:
        """Wait until everything queued is written; raise the first writer error."""
        for proc in self.pool or ():
            if proc.batch:
                self._send(proc)
            while proc.sent:
                self._reap(proc)

    def close(self) -> None:
        """Stop the writer processes (none writes after this returns) and close the folder."""
        for proc in self.pool or ():
            proc.stop()
        self.pool = None
        for fd in (self.root_fd, self.archive_fd):
            if fd >= 0:
                os.close(fd)
        self.root_fd = self.archive_fd = -1

    def stamp_relinked(self) -> None:
        """Record the final stat of the files a hard link touched (after the writes are done)."""
        for rel in self.relinked:
            st = os.lstat(self.base + "/" + rel)
            f = self.record.files[rel]
            f.mtime_ns, f.ino, f.ctime_ns = st.st_mtime_ns, st.st_ino, st.st_ctime_ns

    def _file(self, m: _Member, rel: str, dest: str) -> None:
        self._check(m, self.budget.admit(m.size, m.packed))
        assert m.open is not None
        consumed = self.budget.consumed
        start = consumed() if consumed is not None else None
        h = xxhash.xxh3_128()
        size = 0
        src = m.open()
        if src is None:
            raise self.refuse(m.name, "tarfile gives no data for this regular file")
        try:
            fd = os.open(dest, NEW_FILE, _final_mode(m.mode))
            try:
                while chunk := src.read(CHUNK_SIZE):
                    self._check(m, self.budget.charge(len(chunk), size + len(chunk), start))
                    h.update(chunk)
                    write_all(fd, chunk)
                    size += len(chunk)
                    self.advance(len(chunk))
                st = seal(fd, _final_mode(m.mode), m.mtime)
            finally:
                os.close(fd)
        finally:
            src.close()
        self.record.files[rel] = TreeFile(size, h.hexdigest(), st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


#: A small file's write, as a writer process takes it: (path, data or None, offset, size, mode, mtime).
_Job = tuple[str, bytes | None, int, int, int, float]
#: Batches sent to one writer process and not yet answered, at most (memory, not deadlock: a
#: request is written without blocking, and the replies that arrive meanwhile are read).
_IN_FLIGHT_BATCHES = 4
_F_SETPIPE_SZ = 1031  # linux/fcntl.h
#: An mtime ``os.utime`` can set (seconds that fit a 64-bit time_t); at or above it, or NaN: corrupt.
_MTIME_LIMIT = 2.0**63


def _final_mode(mode: int) -> int:
    """A member's mode on disk: no setuid/setgid/sticky, no group/other write, owner read."""
    return (mode & 0o755) | 0o400


def _fill(record: TreeFile, result: tuple[str, int, int, int]) -> None:
    record.xxh3_128, record.mtime_ns, record.ino, record.ctime_ns = result


class _Process:
    """One writer process (:mod:`provision.extract.writer_process`) and the batches it was sent."""

    def __init__(self, root_fd: int, archive_fd: int) -> None:
        fds = tuple(fd for fd in (root_fd, archive_fd) if fd >= 0)
        quiet = os.environ.get("PROVISION_DEBUG") != "1"
        self.proc = subprocess.Popen(
            [sys.executable, _WRITER_SCRIPT, str(root_fd), str(archive_fd)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL if quiet else None,
            pass_fds=fds,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.wfd, self.rfd = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        if WRITER_PIPE_BYTES is not None:
            for fd in (self.wfd, self.rfd):
                fcntl.fcntl(fd, _F_SETPIPE_SZ, WRITER_PIPE_BYTES)
        os.set_blocking(self.wfd, False)
        self.inbox = bytearray()  # replies read while a request was being written
        self.batch: list[_Job] = []
        self.records: list[TreeFile] = []
        self.batch_bytes = 0
        self.sent: collections.deque[tuple[list[TreeFile], int]] = collections.deque()

    def send(self) -> None:
        """Write the batch without blocking on a full pipe: while the process cannot take more, the
        replies it writes meanwhile are read (kept for :meth:`reap`), so neither side waits on the other."""
        payload = marshal.dumps(self.batch)
        view = memoryview(len(payload).to_bytes(8, "little") + payload)
        while view:
            try:
                view = view[os.write(self.wfd, view) :]
                continue
            except BlockingIOError:
                pass
            except BrokenPipeError:  # it ended: its reply (or its absence) says why
                break
            readable, _, _ = select.select([self.rfd], [self.wfd], [])
            if readable:
                chunk = os.read(self.rfd, 1 << 16)
                if not chunk:  # it ended
                    break
                self.inbox += chunk
        self.sent.append((self.records, self.batch_bytes))
        self.batch, self.records, self.batch_bytes = [], [], 0

    def _take(self, n: int) -> bytes:
        """``n`` bytes of replies: first those read during :meth:`send`; fewer only at the end."""
        while len(self.inbox) < n:
            chunk = os.read(self.rfd, max(n - len(self.inbox), 1 << 16))
            if not chunk:
                break
            self.inbox += chunk
        out = bytes(self.inbox[:n])
        del self.inbox[:n]
        return out

    def reap(self, archive: str) -> int:
        """Complete the records of the oldest batch from its reply: the bytes written."""
        records, nbytes = self.sent.popleft()
        head = self._take(8)
        reply = marshal.loads(self._take(int.from_bytes(head, "little"))) if len(head) == 8 else None
        if not isinstance(reply, tuple) or not reply:
            try:
                code: int | None = self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
            raise ExtractError(
                f"{archive}: a writer process of the extraction ended without a reply (exit status {code}); "
                "nothing was extracted; run again (PROVISION_DEBUG=1 shows its error)"
            )
        if reply[0] == "oserror":
            _, err, why, path = reply
            raise OSError(err, why, path)
        if reply[0] == "short":
            raise ExtractError(
                f"{archive}: corrupt or truncated tar archive (the data of member {_shown(reply[1])} ends early); "
                "delete it and fetch again"
            )
        for record, result in zip(records, reply[1], strict=True):
            _fill(record, result)
        return nbytes

    def stop(self) -> None:
        """End the process: at once if batches are unanswered (an error stops the extraction)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        if self.sent or self.batch:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


# ---------------------------------------------------------------------------------------
# Entry point


def _place(tmp: Path, dest: Path) -> None:
    """Move the finished ``tmp`` to ``dest``, replacing an older ``dest`` atomically enough."""
    old = None
    if dest.exists() or dest.is_symlink():
        old = temp_name(dest.with_name(dest.name + ".old"))
        os.rename(dest, old)
    os.rename(tmp, dest)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()


def _stat_single(path: Path, record: TreeRecord) -> None:
    """Record the final stat of a single-file extraction (the fast path of ``verify``).

    A tree needs no second stat: each file's was taken once it was written, and renaming
    the temp folder changes no file's inode, mtime or ctime (a hard link does: those files
    are stat-ed again, ``_Writer.stamp_relinked``).
    """
    st = os.stat(path)
    for f in record.files.values():
        f.mtime_ns, f.ino, f.ctime_ns = st.st_mtime_ns, st.st_ino, st.st_ctime_ns


def extract_archive(
    archive: Path,
    spec: ExtractSpec,
    dest: Path,
    *,
    label: str,
    advance: Callable[[int], None] = lambda n: None,
) -> TreeRecord:
    """Extract ``archive`` to ``dest`` (a folder; a file for gz/bz2/xz/zst) safely and atomically.

    ``label`` names the archive in errors. Raises :class:`ExtractError` (exit 3) for any
    refused member, a corrupt archive, an exceeded cap, or a tree/count mismatch; nothing
    is left at ``dest`` then.
    """
    fmt = detect_format(archive) if spec.format == "auto" else spec.format
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(dest)
    try:
        with open(archive, "rb", buffering=CHUNK_SIZE) as fh:  # tar: headers and small members from one buffer
            raw = _Counted(cast(io.BufferedReader, fh))
            size = os.fstat(fh.fileno()).st_size
            budget = _Budget(spec.extracted_size, size, None if fmt == "zip" else (lambda: raw.count))
            if fmt in SINGLE_FILE_FORMATS:
                record = _single(raw, fmt, tmp, dest.name, label, budget, advance)
            else:
                tmp.mkdir()
                writer = _Writer(label, tmp, spec, budget, advance)
                try:
                    _unpack(raw, fmt, writer, label)
                    writer.flush()
                    writer.stamp_relinked()
                finally:
                    writer.close()  # before the temp folder can be removed: no write comes after
                writer.check_links()
                record = writer.record
        _check_result(record, spec, label)
        _place(tmp, dest)
        if record.kind == "file":
            _stat_single(dest, record)
        return record
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise


#: Member names are read as UTF-8 whatever the locale, so every machine gets the same answer;
#: bytes that are not UTF-8 come back as surrogates, which the writer refuses.
_TAR_NAMES: dict[str, Any] = {"encoding": "utf-8", "errors": "surrogateescape"}


def _unpack(raw: _Counted, fmt: str, writer: _Writer, label: str) -> None:
    try:
        if fmt == "zip":
            with zipfile.ZipFile(cast(IO[bytes], raw)) as zf:
                for m in _zip_members(zf):
                    writer.add(m)
            return
        inner = fmt.split(".", 1)[1] if "." in fmt else "tar"
        with contextlib.ExitStack() as stack:
            if inner == "tar":  # uncompressed: skipped data is seeked over; its position is what it consumed
                stream = _TarStream(cast(IO[bytes], raw.fh), seekable=True)
                writer.budget.consumed = stream.tell
                writer.archive_fd = os.dup(raw.fh.fileno())  # writer processes read members' data from it
            else:
                stream = _TarStream(stack.enter_context(_open_stream(cast(IO[bytes], raw), inner)), seekable=False)
            tf = stack.enter_context(tarfile.open(fileobj=cast(IO[bytes], stream), mode="r:", **_TAR_NAMES))
            for m in _tar_members(tf, stream):
                writer.add(m)
            _check_tar_end(tf, label, fmt)
    except ExtractError:
        raise
    except UnicodeDecodeError as exc:  # zip: a name flagged UTF-8 that is not (zipfile decodes them strictly)
        flagged = " is flagged UTF-8 but" if fmt == "zip" else ""
        raise ExtractError(
            f"{label}: member {_shown(exc.object)}: its name{flagged} is not UTF-8; "
            "refused, nothing was extracted (repack the archive with UTF-8 names)"
        ) from exc
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, lzma.LZMAError, OSError, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None and not isinstance(exc, gzip.BadGzipFile):
            raise
        raise ExtractError(f"{label}: corrupt or truncated {fmt} archive ({exc}); delete it and fetch again") from exc
    except Exception as exc:  # zstandard.ZstdError and other decoder errors
        raise ExtractError(f"{label}: corrupt {fmt} archive ({exc.__class__.__name__}: {exc})") from exc


def _check_tar_end(tf: tarfile.TarFile, label: str, fmt: str) -> None:
    """tarfile stops without an error at a corrupt or truncated header; refuse that.

    Where it stopped it read one block (the end-of-archive zero block, or a bad header);
    only zeros may follow. Reading to the end also checks a compressed stream's trailer.
    """
    stream = cast(Any, tf.fileobj)
    if 0 < stream.tell() - tf.offset < tarfile.BLOCKSIZE:
        raise ExtractError(
            f"{label}: corrupt or truncated {fmt} archive (truncated header at byte {tf.offset}); "
            "delete it and fetch again"
        )
    while chunk := stream.read(CHUNK_SIZE):
        if chunk.count(0) != len(chunk):
            raise ExtractError(
                f"{label}: corrupt or truncated {fmt} archive (invalid header at byte {tf.offset}); "
                "delete it and fetch again"
            )


def _single(
    raw: _Counted, fmt: str, tmp: Path, name: str, label: str, budget: _Budget, advance: Callable[[int], None]
) -> TreeRecord:
    h = xxhash.xxh3_128()
    size = 0
    try:
        with _open_stream(cast(IO[bytes], raw), fmt) as src, open(tmp, "wb") as out:
            while chunk := src.read(CHUNK_SIZE):
                size += len(chunk)
                why = budget.charge(len(chunk))
                if why is not None:
                    raise ExtractError(
                        f"{label}: decompressed file {_shown(name)}: {why}; refused, nothing was extracted"
                    )
                h.update(chunk)
                out.write(chunk)
                advance(len(chunk))
    except ExtractError:
        raise
    except (EOFError, lzma.LZMAError, gzip.BadGzipFile, OSError, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        raise ExtractError(f"{label}: corrupt or truncated {fmt} stream ({exc}); delete it and fetch again") from exc
    except Exception as exc:  # zstandard.ZstdError
        raise ExtractError(f"{label}: corrupt {fmt} stream ({exc.__class__.__name__}: {exc})") from exc
    os.chmod(tmp, 0o644)
    return TreeRecord("file", {name: TreeFile(size, h.hexdigest())})


def _check_result(record: TreeRecord, spec: ExtractSpec, label: str) -> None:
    if spec.expect_files is not None and len(record.files) != spec.expect_files:
        raise ExtractError(
            f"{label}: expected {spec.expect_files} files, extracted {len(record.files)}; "
            "the archive or the manifest's expect_files is wrong"
        )
    if spec.tree is not None and record.digest != str(spec.tree):
        raise ExtractError(
            f"{label}: tree digest mismatch: expected {spec.tree}, got {record.digest} "
            f"({len(record.files)} files, {record.total_bytes} bytes)"
        )
