"""What every source shares: its context, the failure it reports, temp names, links.

A source moves bytes from one URL into a :class:`~provision.sources.partial.Sink`, the
temp file that hashes and checks them on the way.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import socket
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from ..config import Settings
from ..hashing import CHUNK_SIZE, MultiHasher
from ..manifest import FileSpec
from ..progress import NullProgress, Progress

__all__ = [
    "AttemptFailed",
    "SourceContext",
    "link_or_copy",
    "looks_like_html",
    "temp_name",
]

_HTML_PREFIXES = (b"<!doctype html", b"<html", b"<head", b"<body", b"<!--")
_HTML_NAMES = (".html", ".htm", ".xhtml")


class AttemptFailed(Exception):
    """One URL failed; the fetcher moves to the next. ``answer`` is what it said.

    ``integrity`` marks data that arrived but was wrong (size/checksum), as opposed to
    a source that could not deliver.
    """

    def __init__(self, answer: str, *, integrity: bool = False, offline: bool = False) -> None:
        super().__init__(answer)
        self.answer = answer
        self.integrity = integrity
        self.offline = offline


@dataclass
class SourceContext:
    """What a source may use: settings, the one HTTP session, extra local folders.

    ``http`` holds the shared HTTP client (connection budget) once created; ``cancel``
    is set when the user interrupts, and every transfer stops at its next chunk.
    """

    settings: Settings
    session: requests.Session | None = None
    from_paths: tuple[Path, ...] = ()
    progress: Progress = field(default_factory=NullProgress)
    http: Any = None
    cancel: threading.Event = field(default_factory=threading.Event)


def temp_name(final: Path) -> Path:
    """A temp path beside ``final``, unique to this process: ``<name>.part-<host>-<pid>-<rand>``."""
    host = socket.gethostname().replace("-", "_") or "host"
    return final.with_name(f"{final.name}.part-{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def looks_like_html(head: bytes) -> bool:
    """True when ``head`` (the first bytes of a body) starts like an HTML document."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith(_HTML_PREFIXES)


def expects_html(spec: FileSpec) -> bool:
    """Whether the manifest file is itself an HTML page (then HTML is not an error)."""
    return spec.name.lower().endswith(_HTML_NAMES)


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
    hasher: MultiHasher | None = None,
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
