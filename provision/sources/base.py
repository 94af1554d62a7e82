"""What every source shares: the verifying sink it writes into and the failure it reports.

A source moves bytes from one URL into a :class:`Sink`. The sink writes them to a
temp file unique to this process, hashes them as they stream (published algorithm
and xxh3_128 in one pass), and refuses bytes past the expected size and HTML where
data was expected, before the file is written in full.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

from ..config import Settings
from ..hashing import CHUNK_SIZE, FAST_ALG, MultiHasher
from ..manifest import FileSpec
from ..progress import NullProgress, Progress

__all__ = [
    "AttemptFailed",
    "Sink",
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
    """What a source may use: settings, the one HTTP session, extra local folders."""

    settings: Settings
    session: requests.Session | None = None
    from_paths: tuple[Path, ...] = ()
    progress: Progress = field(default_factory=NullProgress)


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


class Sink:
    """A temp file that hashes what is written and checks size and HTML on the way."""

    def __init__(self, spec: FileSpec, dest: Path, key: str, progress: Progress) -> None:
        self.spec = spec
        self.dest = dest
        self.key = key
        self.progress = progress
        self.hasher = MultiHasher([spec.checksum.alg, FAST_ALG])
        self._fh: object | None = None
        self._started = False

    @property
    def written(self) -> int:
        """Bytes accepted so far."""
        return self.hasher.bytes

    def begin(self, total: int | None) -> None:
        """Open (truncate) the temp file; ``total`` is the size the source announced."""
        size = self.spec.size
        if size is not None and total is not None and total != size:
            raise AttemptFailed(
                f"size mismatch: manifest says {size} bytes, source announces {total}",
                integrity=True,
            )
        self.reset()
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.dest, "wb")  # noqa: SIM115 - closed in close()
        self._started = True
        self.progress.start(self.key, self.spec.name, size if size is not None else total)

    def write(self, data: bytes) -> None:
        """Hash and write ``data``; refuse it when it overflows the size or is HTML."""
        if self._fh is None:
            raise RuntimeError("Sink.write before begin()")
        if self.hasher.bytes == 0 and not expects_html(self.spec) and looks_like_html(data[:512]):
            raise AttemptFailed("got an HTML page where data was expected (a login or error page?)")
        size = self.spec.size
        if size is not None and self.hasher.bytes + len(data) > size:
            raise AttemptFailed(
                f"size mismatch: more than the {size} bytes the manifest declares",
                integrity=True,
            )
        self.hasher.update(data)
        self._fh.write(data)  # type: ignore[attr-defined]
        self.progress.advance(self.key, len(data))

    def adopt(self, src: Path) -> str:
        """Take a local file in by reflink/hard link (or copy), hashing it in one read."""
        self.reset()
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self.progress.start(self.key, self.spec.name, self.spec.size)
        how = link_or_copy(src, self.dest, allow_hardlink=True, hasher=self.hasher)
        if how != "copy":
            with open(self.dest, "rb", buffering=0) as fh:
                buf = bytearray(CHUNK_SIZE)
                view = memoryview(buf)
                while n := fh.readinto(buf):
                    self.hasher.update(view[:n])  # type: ignore[arg-type]
                    self.progress.advance(self.key, n)
        self._started = True
        return how

    def close(self) -> None:
        """Flush and fsync the temp file."""
        if self._fh is not None:
            fh = self._fh
            self._fh = None
            fh.flush()  # type: ignore[attr-defined]
            os.fsync(fh.fileno())  # type: ignore[attr-defined]
            fh.close()  # type: ignore[attr-defined]

    def reset(self) -> None:
        """Drop what was written (before a new attempt or after a failure)."""
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()  # type: ignore[attr-defined]
            self._fh = None
        with contextlib.suppress(FileNotFoundError):
            self.dest.unlink()
        self.hasher = MultiHasher([self.spec.checksum.alg, FAST_ALG])


_FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)


def _reflink(src: Path, dst: Path) -> bool:
    try:
        with open(src, "rb") as s, open(dst, "wb") as d:
            fcntl.ioctl(d.fileno(), _FICLONE, s.fileno())
        return True
    except OSError:
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
