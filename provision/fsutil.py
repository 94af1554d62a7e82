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
import os
import shutil
import socket
import time
import uuid
from pathlib import Path
from typing import Protocol

__all__ = [
    "CHUNK_SIZE",
    "PART_MARKER",
    "STALE_AFTER",
    "Feed",
    "atomic_write_text",
    "human_bytes",
    "is_reclaimable",
    "is_stale_temp",
    "link_or_copy",
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


def is_stale_temp(path: Path, now: float | None = None) -> bool:
    """A ``*.part-<host>-<pid>-<rand>`` file whose writer is gone (or, elsewhere, old)."""
    name = path.name
    if PART_MARKER not in name:
        return False
    tail = name.rsplit(PART_MARKER, 1)[1].split("-")
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return False
    if len(tail) >= 3 and tail[0] == socket.gethostname().replace("-", "_"):
        try:
            os.kill(int(tail[1]), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, ValueError):
            pass
        else:
            return False
    return ((now or time.time()) - mtime) > STALE_AFTER


def is_reclaimable(path: Path) -> bool:
    """A partial download this process may continue: its writer is gone, or is this process."""
    tail = path.name.rsplit(PART_MARKER, 1)[-1].split("-")
    if len(tail) >= 3 and tail[0] == socket.gethostname().replace("-", "_") and tail[1] == str(os.getpid()):
        return True
    return is_stale_temp(path)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a fsynced temp file and one rename (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def temp_name(final: Path) -> Path:
    """A temp path beside ``final``, unique to this process: ``<name>.part-<host>-<pid>-<rand>``."""
    host = socket.gethostname().replace("-", "_") or "host"
    return final.with_name(f"{final.name}.part-{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


_FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)


#: Devices (st_dev) where FICLONE failed: not tried again in this process.
_NO_REFLINK: set[int] = set()


def _reflink(src: Path, dst: Path) -> bool:
    try:
        dev = os.stat(src).st_dev
    except OSError:
        return False
    if dev in _NO_REFLINK:
        return False
    try:
        with open(src, "rb") as s, open(dst, "wb") as d:
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
    with open(src, "rb") as s, open(dst, "wb") as d:
        if hasher is None:
            shutil.copyfileobj(s, d, CHUNK_SIZE)
        else:
            while chunk := s.read(CHUNK_SIZE):
                hasher.update(chunk)
                d.write(chunk)
    return "copy"


def human_bytes(n: float) -> str:
    """``1.5 GiB`` style."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover
