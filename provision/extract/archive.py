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

Small files (tar formats): the calling thread reads the archive once, parses headers,
applies every rule above, charges the budget, reads the member's bytes and hashes them,
then hands the write (create with ``O_EXCL|O_NOFOLLOW``, write, chmod, utime, fstat) to
``WRITERS`` threads, in batches, with at most ``IN_FLIGHT`` bytes queued, where the first
``PROBE_FILES`` writes showed that creating a file is slow (``SLOW_CREATE``); elsewhere it
writes them itself. Folders are made
before a file is queued into them; a hard link waits for every queued write; the first
error of a writer is raised on the calling thread, and the queue is drained before the
temp folder is removed, so a refusal still leaves nothing behind.

Tree digest (``xxh3_128:<hex>``): xxh3_128 over one line per entry, sorted by path
(UTF-8 bytes): ``f\\0<path>\\0<size>\\0<xxh3_128 hex>\\n`` for a file and
``l\\0<path>\\0<target>\\n`` for a symlink; paths are relative, ``/``-separated; empty
folders do not count.
"""

from __future__ import annotations

import bz2
import collections
import contextlib
import fnmatch
import gzip
import io
import lzma
import os
import shutil
import stat
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, cast

import xxhash

from provision.errors import IntegrityError
from provision.fsutil import CHUNK_SIZE, temp_name
from provision.manifest.model import SINGLE_FILE_FORMATS, ExtractSpec
from provision.store.trees import TreeFile, TreeRecord

__all__ = ["DEFAULT_GRACE", "DEFAULT_RATIO", "ExtractError", "detect_format", "extract_archive"]

#: Without a declared ``extracted_size``, at most this many bytes out per compressed byte ...
DEFAULT_RATIO = 100
#: ... once this many bytes are written (by the member for its own ratio, by the archive for the whole).
DEFAULT_GRACE = 64 << 20
#: Tar members up to this size are read whole and written by the writer threads.
SMALL_MEMBER = 1 << 20
#: Threads that create and write small files where creating a file is slow (the syscalls release
#: the GIL); 0: always write them on the calling thread. Two: more threads fight the parsing
#: thread for the GIL after every syscall, and on this project's 2-core ext4 machine 2 beat 4
#: (``benchmarks/smallfiles.py``).
WRITERS = 2
#: The first ``PROBE_FILES`` small files are written on the calling thread and timed; the writer
#: threads start only when a file took more than ``SLOW_CREATE`` seconds on average. Where
#: creating a file costs a few microseconds (tmpfs, a healthy disk) the work is Python's and
#: threads only add GIL hand-offs: 50,000 files took 2.3 s without them and 4.2 s with two on
#: /dev/shm here; where each create waits in the kernel (this VM's ext4 after many deletions,
#: NFS) two threads took 0.42x GNU tar's time.
PROBE_FILES = 256
SLOW_CREATE = 100e-6
#: At most this many bytes of small members read but not yet written.
IN_FLIGHT = 64 << 20
#: Small files handed to a writer thread at once (fewer hand-offs per file).
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


@dataclass
class _Member:
    name: str
    kind: str  # file | dir | symlink | hardlink | special
    size: int
    mode: int
    mtime: float
    linkname: str = ""
    open: Callable[[], IO[bytes]] | None = None
    packed: int | None = None  # compressed size, where the archive declares it (zip)
    read_all: Callable[[], bytes] | None = None  # the whole content, for a small member (tar)


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


def _tar_members(tf: tarfile.TarFile, raw: _Counted | None) -> Iterator[_Member]:
    """The members of ``tf``; ``raw``: the uncompressed, seekable archive (small members are read from it directly)."""
    for info in tf:
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
            opener = lambda i=info: tf.extractfile(i)  # noqa: E731
            if info.size <= SMALL_MEMBER and getattr(info, "sparse", None) is None:
                read_all = _tar_reader(tf, info, raw)
        yield _Member(info.name, kind, info.size, info.mode, float(info.mtime), info.linkname, opener, None, read_all)  # type: ignore[arg-type]


def _tar_reader(tf: tarfile.TarFile, info: tarfile.TarInfo, raw: _Counted | None) -> Callable[[], bytes]:
    """Read the whole (small) member: one read at its offset from ``raw``, else through tarfile."""

    def read() -> bytes:
        if raw is None:
            fh = tf.extractfile(info)
            assert fh is not None
            with fh:
                data = fh.read()
        else:
            data = raw.read_at(info.offset_data, info.size)
        if len(data) != info.size:
            raise tarfile.ReadError("unexpected end of data")
        return data

    return read


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
        self.pool: ThreadPoolExecutor | None = None
        self.batch: list[_Job] = []
        self.batch_bytes = 0
        self.pending: collections.deque[tuple[Future[None], list[_Job], int]] = collections.deque()
        self.in_flight = 0
        self.probed = 0  # small files written and timed on this thread before the choice (PROBE_FILES)
        self.probe_s = 0.0

    def refuse(self, member: str, why: str) -> ExtractError:
        return ExtractError(f"{self.archive}: member {_shown(member)}: {why}; refused, nothing was extracted")

    def target_path(self, m: _Member) -> str | None:
        """The safe relative path for ``m`` after strip/members, or None to skip it."""
        raw = m.name
        if "\\" in raw:
            raise self.refuse(raw, "backslash in the path")
        if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
            raise self.refuse(raw, "absolute path")
        parts = [p for p in raw.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise self.refuse(raw, "'..' in the path")
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
        if _not_utf8(rel) or (m.kind == "symlink" and _not_utf8(m.linkname)):
            what = "its name" if _not_utf8(rel) else f"its symlink target {_shown(m.linkname)}"
            raise self.refuse(
                m.name,
                f"{what} is not UTF-8 (tree records and digests hold UTF-8 paths); "
                "leave it out with 'members', or repack the archive with UTF-8 names",
            )
        for i in range(1, rel.count("/") + 1):
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
        self._mkdir(rel.rpartition("/")[0])
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
        st = os.stat(dest)
        self.record.files[rel] = TreeFile(src.size, src.xxh3_128, st.st_mtime_ns, st.st_ino)

    def _check(self, m: _Member, why: str | None) -> None:
        if why is not None:
            raise self.refuse(m.name, why)

    def _small_file(self, m: _Member, rel: str, dest: str) -> None:
        """Read, check and hash a small member here; queue its write for a writer thread."""
        self._check(m, self.budget.admit(m.size, m.packed))
        assert m.read_all is not None
        consumed = self.budget.consumed
        start = consumed() if consumed is not None else None
        data = m.read_all()
        self._check(m, self.budget.charge(len(data), len(data), start))
        record = TreeFile(len(data), xxhash.xxh3_128_hexdigest(data))
        self.record.files[rel] = record
        self.batch.append((dest, data, m.mode, m.mtime, record))
        self.batch_bytes += len(data)
        if len(self.batch) >= _BATCH_FILES or self.batch_bytes >= _BATCH_BYTES:
            self._submit()

    def _submit(self) -> None:
        """Hand the current batch to a writer thread; wait while too many bytes are in flight."""
        if not self.batch:
            return
        if not self._threaded():
            began = time.perf_counter()
            _write_batch(self.batch)  # here, on the calling thread
            if self.probed < PROBE_FILES:
                self.probe_s += time.perf_counter() - began
                self.probed += len(self.batch)
            for job in self.batch:
                self.advance(len(job[1]))
            self.batch, self.batch_bytes = [], 0
            return
        if self.pool is None:
            self.pool = ThreadPoolExecutor(WRITERS, thread_name_prefix="provision-extract")
        self.pending.append((self.pool.submit(_write_batch, self.batch), self.batch, self.batch_bytes))
        self.in_flight += self.batch_bytes
        self.batch, self.batch_bytes = [], 0
        while self.pending and (self.in_flight > IN_FLIGHT or self.pending[0][0].done()):
            self._reap()

    def _threaded(self) -> bool:
        """Whether small files go to the writer threads: once the probe showed slow creates."""
        if self.pool is not None:
            return True
        if WRITERS <= 0 or self.probed < PROBE_FILES:
            return False
        return self.probe_s >= SLOW_CREATE * self.probed

    def _reap(self) -> None:
        future, jobs, nbytes = self.pending.popleft()
        self.in_flight -= nbytes
        future.result()  # a writer's error is raised here, on the calling thread
        for job in jobs:  # progress counts bytes written
            self.advance(len(job[1]))

    def flush(self) -> None:
        """Write everything queued; raise the first writer error."""
        self._submit()
        while self.pending:
            self._reap()

    def close(self) -> None:
        """Stop the writer threads: queued batches are dropped, running ones finish (nothing writes after)."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
        self.batch, self.batch_bytes = [], 0
        self.pending.clear()

    def _file(self, m: _Member, rel: str, dest: str) -> None:
        self._check(m, self.budget.admit(m.size, m.packed))
        assert m.open is not None
        consumed = self.budget.consumed
        start = consumed() if consumed is not None else None
        h = xxhash.xxh3_128()
        size = 0
        src = m.open()
        try:
            fd = os.open(dest, _NEW_FILE, 0o600)
            try:
                while chunk := src.read(CHUNK_SIZE):
                    self._check(m, self.budget.charge(len(chunk), size + len(chunk), start))
                    h.update(chunk)
                    _write_all(fd, chunk)
                    size += len(chunk)
                    self.advance(len(chunk))
                st = _seal(fd, m.mode, m.mtime)
            finally:
                os.close(fd)
        finally:
            src.close()
        self.record.files[rel] = TreeFile(size, h.hexdigest(), st.st_mtime_ns, st.st_ino)


#: A small file's write: (path, bytes, the member's mode, mtime, the record to complete with its stat).
_Job = tuple[str, bytes, int, float, TreeFile]


#: A member's file is always new, never reached through a link planted at its name.
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _seal(fd: int, mode: int, mtime: float) -> os.stat_result:
    """Give a written member its mode (no setuid/setgid/sticky, no group/other write) and mtime;
    its final stat."""
    os.fchmod(fd, (mode & 0o755) | 0o400)
    if mtime > 0:
        os.utime(fd, (mtime, mtime))
    return os.fstat(fd)


def _write_batch(jobs: list[_Job]) -> None:
    """Create and write each file (in a writer thread); record its final stat."""
    for path, data, mode, mtime, record in jobs:
        fd = os.open(path, _NEW_FILE, 0o600)
        try:
            if data:
                _write_all(fd, data)
            st = _seal(fd, mode, mtime)
        finally:
            os.close(fd)
        record.mtime_ns, record.ino = st.st_mtime_ns, st.st_ino


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` until all of ``data`` is written (a write may be short)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


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
    the temp folder changes no file's inode or mtime.
    """
    st = os.stat(path)
    for f in record.files.values():
        f.mtime_ns, f.ino = st.st_mtime_ns, st.st_ino


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
            if inner == "tar":  # seekable: members' data is read straight from the file, not via 10 KiB records
                tf = stack.enter_context(tarfile.open(fileobj=cast(IO[bytes], raw), mode="r:", **_TAR_NAMES))
            else:
                stream = stack.enter_context(_open_stream(cast(IO[bytes], raw), inner))
                tf = stack.enter_context(tarfile.open(fileobj=stream, mode="r|", **_TAR_NAMES))
            for m in _tar_members(tf, raw if inner == "tar" else None):
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
