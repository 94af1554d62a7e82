"""Small file-system helpers every stage shares: atomic writes, temp names, links, sizes.

Nothing becomes visible at a final path before it is complete: a writer makes a temp name
unique to its process beside the target (:func:`temp_name`), writes, and renames it into place
(:func:`atomic_write_text`). A temp name says who wrote it, so :func:`is_stale_temp` can tell an
abandoned one (its process is gone) from one still being written.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import socket
import stat
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

__all__ = [
    "CHUNK_SIZE",
    "PART_MARKER",
    "STALE_AFTER",
    "Feed",
    "NotRegularFileError",
    "TempName",
    "atomic_write_text",
    "file_kind",
    "human_bytes",
    "is_reclaimable",
    "is_stale_temp",
    "link_or_copy",
    "open_regular",
    "parse_temp_name",
    "read_json",
    "real_folder",
    "start_writeback",
    "stat_key",
    "temp_name",
]


class Feed(Protocol):
    """Something that takes the bytes of a copy as they pass (a hasher)."""

    def update(self, data: bytes, /) -> None: ...  # pragma: no cover - protocol


#: Read size for streaming hashes and copies.
CHUNK_SIZE = 1 << 20


#: What every temp name holds: ``<name>.part-<host>-<pid>-<random>``.
PART_MARKER = ".part-"


#: A temp file from another host is stale after this many seconds without change.
STALE_AFTER = 24 * 3600


#: Exactly what :func:`temp_name` makes (``<final>.part-<host>-<pid>-<8 hex>``; the host has its ``-``
#: turned into ``_``), optionally followed by a sidecar of that temp: the resume state of a partial
#: download (``<temp>.json``) and the temp name that state is written through (``<temp>.json.tmp<pid>``).
_TEMP_NAME = re.compile(
    r"(?P<final>.+)\.part-(?P<host>[^-/]+)-(?P<pid>[0-9]{1,10})-[0-9a-f]{8}(?P<sidecar>\.json(?:\.tmp[0-9]{1,10})?)?"
)


@dataclass(frozen=True)
class TempName:
    """What a temp name says: the final name it stands for, who writes it, and whether it is a sidecar."""

    final: str
    host: str
    pid: int
    sidecar: bool


def parse_temp_name(name: str) -> TempName | None:
    """The parts of ``name`` when it is exactly one of this tool's temp names (or their sidecars), else None.

    A file that merely contains ``.part-`` (a tar member ``data.part-1.bin``, a split archive
    ``data.tar.gz.part-00``) is not a temp name: nothing that looks at temp names touches it.
    """
    m = _TEMP_NAME.fullmatch(name)
    if m is None:
        return None
    return TempName(m["final"], m["host"], int(m["pid"]), m["sidecar"] is not None)


def _this_host() -> str:
    return socket.gethostname().replace("-", "_") or "host"


def is_stale_temp(path: Path, now: float | None = None) -> bool:
    """A temp name of this tool (:func:`parse_temp_name`) whose writer is gone (or, from another host, old).

    Never follows a symlink: a link planted at a temp name is judged by its own mtime.
    """
    parsed = parse_temp_name(path.name)
    if parsed is None:
        return False
    try:
        mtime = path.lstat().st_mtime
    except FileNotFoundError:
        return False
    if parsed.host == _this_host():
        try:
            os.kill(parsed.pid, 0)
        except ProcessLookupError:
            return True
        except (PermissionError, OverflowError):
            pass
        else:
            return False
    return ((now or time.time()) - mtime) > STALE_AFTER


def is_reclaimable(path: Path) -> bool:
    """A partial download this process may continue: a regular temp file (never a sidecar, never a link)
    whose writer is gone, or is this process."""
    parsed = parse_temp_name(path.name)
    if parsed is None or parsed.sidecar:
        return False
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return False
    except FileNotFoundError:
        return False
    if parsed.host == _this_host() and parsed.pid == os.getpid():
        return True
    return is_stale_temp(path)


class NotRegularFileError(OSError):
    """A path that should be a regular file is something else (a FIFO, a device, a folder, a link)."""


def open_regular(path: str | Path, *, follow_symlinks: bool = False) -> int:
    """A read-only descriptor of ``path``, which must be a regular file (a file descriptor to close).

    Opened non-blocking, so a FIFO planted at ``path`` can never hang the caller, and without
    following a final symlink unless ``follow_symlinks``; anything but a regular file raises
    :class:`NotRegularFileError`.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotRegularFileError(errno.ELOOP, "a symbolic link, not a regular file", str(path)) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(errno.EINVAL, f"not a regular file ({file_kind(mode)})", str(path))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def file_kind(mode: int) -> str:
    """``regular file``, ``symlink``, ``folder``, ``FIFO``, ``socket``, ``device``: what ``mode`` is."""
    if stat.S_ISREG(mode):
        return "regular file"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "device"


def read_json(path: Path, *, follow_symlinks: bool = False) -> Any:
    """The JSON document in the regular file ``path``; None when it is missing, not a regular file,
    unreadable, or not JSON (nesting too deep for the parser included). Never hangs on a FIFO."""
    try:
        with os.fdopen(open_regular(path, follow_symlinks=follow_symlinks), "rb") as fh:
            return json.loads(fh.read())
    except (OSError, ValueError, RecursionError):
        return None


def atomic_write_text(path: Path, text: str, *, durable: bool = True) -> None:
    """Write ``text`` to ``path`` through a temp file and one rename (never half-written).

    The temp file is created new (``O_EXCL | O_NOFOLLOW``: never written through a planted link)
    and the rename replaces whatever is at ``path`` — a symlink there is replaced, never followed.
    ``durable`` fsyncs the data before the rename (records); a note that may be lost skips it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        with open(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def temp_name(final: Path) -> Path:
    """A temp path beside ``final``, unique to this process: ``<name>.part-<host>-<pid>-<8 hex>``."""
    return final.with_name(f"{final.name}.part-{_this_host()}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


_FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)


#: Devices (st_dev) where FICLONE failed: not tried again in this process.
_NO_REFLINK: set[int] = set()


def _open_new(dst: Path) -> BinaryIO:
    """``dst`` opened for writing from byte 0; a symlink at ``dst`` is refused, never written through."""
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    return open(fd, "wb")


def _reflink(src: Path, dst: Path) -> bool:
    try:
        dev = os.stat(src).st_dev
    except OSError:
        return False
    if dev in _NO_REFLINK:
        return False
    try:
        with open(src, "rb") as s, _open_new(dst) as d:
            fcntl.ioctl(d.fileno(), _FICLONE, s.fileno())
        return True
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS):
            _NO_REFLINK.add(dev)
        with contextlib.suppress(FileNotFoundError):
            dst.unlink()
        return False


def link_or_copy(
    src: Path,
    dst: Path,
    *,
    allow_hardlink: bool = True,
    allow_symlink: bool = False,
    hasher: Feed | None = None,
) -> str:
    """Make ``dst`` hold ``src``'s bytes: reflink, else hard link, else symlink/copy.

    Returns how (``"reflink"``, ``"hardlink"``, ``"symlink"`` or ``"copy"``). A copy
    feeds ``hasher`` as it goes, so the bytes are read once.
    """
    if _reflink(src, dst):
        return "reflink"
    if allow_hardlink:
        try:
            os.link(src, dst)
            return "hardlink"
        except OSError as exc:
            if exc.errno not in (
                errno.EXDEV,
                errno.EPERM,
                errno.EMLINK,
                errno.ENOTSUP,
                errno.EACCES,
            ):
                raise
    if allow_symlink:
        os.symlink(os.path.abspath(src), dst)
        return "symlink"
    with open(src, "rb") as s, _open_new(dst) as d:
        if hasher is None:
            shutil.copyfileobj(s, d, CHUNK_SIZE)
        else:
            while chunk := s.read(CHUNK_SIZE):
                hasher.update(chunk)
                d.write(chunk)
    return "copy"


_SYNC_FILE_RANGE_WRITE = 2  # linux/fs.h: start writeback of the dirty pages in the range, do not wait


#: ``sync_file_range`` of the C library (False: looked for and absent; None: not looked for yet).
_sync_file_range: Any = None


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing ``fd``'s dirty pages in ``[offset, offset + length)`` to disk now,
    without waiting for them (Linux ``sync_file_range(SYNC_FILE_RANGE_WRITE)``; nothing elsewhere).

    Only a hint, never a durability step: the ``fsync`` before a commit still guarantees the data. A
    large copy that calls this as it goes leaves that ``fsync`` little to write, instead of all of it.
    """
    global _sync_file_range
    if _sync_file_range is None:
        _sync_file_range = False
        if sys.platform.startswith("linux"):
            import ctypes

            with contextlib.suppress(OSError, AttributeError):
                call = ctypes.CDLL(None, use_errno=True).sync_file_range
                call.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
                call.restype = ctypes.c_int
                _sync_file_range = call
    if _sync_file_range:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)  # an error (EIO...) shows at the fsync


def stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    """What proves a file unchanged since it was recorded (DVC's idea, with git's ``core.trustctime``):
    size, mtime, inode and ctime, all in nanoseconds where they are times."""
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns


def human_bytes(n: float) -> str:
    """``1.5 GiB`` style."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def real_folder(path: Path) -> Path:
    """``path`` as a real folder, made if absent (its parent must exist); a symlink, file or anything
    else there raises :class:`NotADirectoryError`: nothing is ever created or written through a link."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path)
    mode = os.lstat(path).st_mode
    if not stat.S_ISDIR(mode):
        raise NotADirectoryError(errno.ENOTDIR, f"not a real folder ({file_kind(mode)})", str(path))
    return path
