"""A download in progress: the data file, its resume state, and its in-order hasher.

The data lives at a temp path beside its blob; the resume state (URL, validator, total
size, byte ranges done) lives in ``<temp>.json`` and is rewritten atomically, after the
data it describes has been flushed to disk. Bytes may arrive out of order (segments);
the published digest is computed in order by a follower thread that hashes the
contiguous prefix as it completes, while the data is still in the page cache. Bytes that
arrive in order are hashed straight from memory.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from provision.fsutil import CHUNK_SIZE, human_bytes, link_or_copy
from provision.manifest.model import FileSpec
from provision.progress import Progress
from provision.sources.base import AttemptFailed, IntegrityFailure, WriteFailure, expects_html, looks_like_html
from provision.store.hashing import FAST_ALG, MultiHasher

__all__ = ["RangeSet", "Sink", "state_path"]

STATE_SCHEMA = 1
#: The resume state is saved at least this often while data arrives (seconds) ...
STATE_EVERY = 1.0
#: ... and sooner once this many bytes arrived since the last save, but not more often
#: than every STATE_MIN seconds: a killed fast download loses at most about
#: max(STATE_BYTES, STATE_MIN x rate) instead of a whole second's worth.
STATE_BYTES = 8 << 20
STATE_MIN = 0.05

#: A body of undeclared size checks the free space each time this many bytes arrived (and needs
#: that much above the reserve to go on).
ROOM_EVERY = 8 << 20

_HTML_PAGE = "got an HTML page where data was expected (a login or error page?)"


def state_path(data: Path) -> Path:
    """The resume-state sidecar of a partial data file."""
    return data.with_name(data.name + ".json")


def _state_temp(data: Path) -> Path:
    """Where this process writes the next resume state of ``data`` before renaming it into place."""
    path = state_path(data)
    return path.with_name(path.name + f".tmp{os.getpid()}")


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """An ``OSError`` of the local filesystem inside becomes a :class:`WriteFailure` naming ``path``."""
    try:
        yield
    except OSError as exc:
        raise WriteFailure(path, exc) from exc


class RangeSet:
    """Merged, sorted half-open byte ranges ``[a, b)``."""

    def __init__(self, ranges: Iterable[Iterable[int]] = ()) -> None:
        self._r: list[list[int]] = []
        for a, b in ranges:
            self.add(a, b)

    def add(self, a: int, b: int) -> None:
        """Mark ``[a, b)`` as done."""
        if b <= a:
            return
        out: list[list[int]] = []
        placed = False
        for lo, hi in self._r:
            if hi < a:
                out.append([lo, hi])
            elif b < lo:
                if not placed:
                    out.append([a, b])
                    placed = True
                out.append([lo, hi])
            else:
                a, b = min(a, lo), max(b, hi)
        if not placed:
            out.append([a, b])
        self._r = sorted(out)

    def prefix(self) -> int:
        """End of the done range that starts at 0 (0 when none)."""
        return self._r[0][1] if self._r and self._r[0][0] == 0 else 0

    def total(self) -> int:
        """Bytes covered."""
        return sum(b - a for a, b in self._r)

    def missing(self, size: int) -> list[tuple[int, int]]:
        """The gaps in ``[0, size)``."""
        gaps = []
        pos = 0
        for a, b in self._r:
            if a > pos:
                gaps.append((pos, min(a, size)))
            pos = max(pos, b)
        if pos < size:
            gaps.append((pos, size))
        return [(a, b) for a, b in gaps if b > a]

    def as_list(self) -> list[list[int]]:
        """JSON-ready copy."""
        return [list(r) for r in self._r]


class Sink:
    """The temp file a source writes into, with checks, resume state and hashing.

    Sequential use: :meth:`begin` (or :meth:`resume`), then :meth:`write` repeatedly.
    Segmented use: :meth:`begin_segmented`, then :meth:`write_at` from many threads.
    Either way :meth:`close` then :meth:`hexdigests`.
    """

    def __init__(self, spec: FileSpec, dest: Path, key: str, progress: Progress, reserve: int | None = None) -> None:
        self.spec = spec
        #: Free bytes a body of undeclared size must leave on the disk (None: not watched).
        self.reserve = reserve
        self._room_at = 0  # bytes written when free space is next checked
        self.dest = dest
        self.key = key
        self.progress = progress
        self.algs = [spec.checksum.alg, FAST_ALG]
        self.hasher = MultiHasher(self.algs)
        self.meta: dict[str, Any] = {}  # url, etag, last_modified, size (resume validator)
        self.done = RangeSet()
        self.resumed = 0
        self._fd: int | None = None
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._follower: threading.Thread | None = None
        self._hash_buf: memoryview | None = None  # the buffer _hash_range reads through
        self._follow_error: BaseException | None = None
        self._closing = False
        self._last_state = 0.0
        self._saved_bytes = 0
        self._state_lock = threading.Lock()
        self.size: int | None = None
        self.mode: str | None = None  # "seq" (in-order writes) or "seg" (segments)
        #: The body starts like an HTML page (kept, not refused: the published checksum decides).
        self.html_head = False

    # -- state -------------------------------------------------------------------------
    @property
    def written(self) -> int:
        """Bytes done (resumed + new)."""
        return self.done.total()

    def saved_state(self) -> dict[str, Any] | None:
        """The resume state on disk for ``dest``, if it is usable."""
        try:
            doc = json.loads(state_path(self.dest).read_text(encoding="utf-8"))
            if doc.get("schema") != STATE_SCHEMA or doc.get("checksum") != str(self.spec.checksum):
                return None
            if not self.dest.is_file():
                return None
            return dict(doc)
        except (OSError, ValueError):
            return None

    def save_state(self, force: bool = False) -> None:
        """Flush the data, then atomically write the state that describes it."""
        now = time.monotonic()
        if self._fd is None:
            return
        if not force:
            since = now - self._last_state
            if since < STATE_MIN or (since < STATE_EVERY and self.written - self._saved_bytes < STATE_BYTES):
                return
        if not self._state_lock.acquire(blocking=force):
            return
        try:
            self._last_state = now
            with self._lock:
                done = self.done.as_list()
                self._saved_bytes = self.done.total()
            with _writing(self.dest):
                os.fdatasync(self._fd)
            doc = {
                "schema": STATE_SCHEMA,
                "checksum": str(self.spec.checksum),
                **self.meta,
                "size": self.size,
                "done": done,
                "updated": time.time(),
            }
            path = state_path(self.dest)
            tmp = _state_temp(self.dest)
            try:
                with _writing(tmp):
                    with contextlib.suppress(FileNotFoundError):
                        tmp.unlink()  # a leftover of this pid's earlier, failed write
                    # New, never through a link planted at the name (O_EXCL | O_NOFOLLOW).
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
                    with os.fdopen(fd, "w", encoding="utf-8") as fh:
                        fh.write(json.dumps(doc))
                    os.replace(tmp, path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()  # gone after the rename; a failed write leaves no empty temp
        finally:
            self._state_lock.release()

    # -- opening -------------------------------------------------------------------------
    def _check_total(self, total: int | None) -> None:
        size = self.spec.size
        if size is not None and total is not None and total != size:
            raise IntegrityFailure(f"size mismatch: manifest says {size} bytes, source announces {total}")

    def _open(self, truncate: bool) -> None:
        self._close_fd()
        # Never through a link planted at the temp name: O_NOFOLLOW fails (ELOOP) instead.
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_TRUNC if truncate else 0)
        with _writing(self.dest):
            self.dest.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.dest, flags, 0o644)
        # The first state is written after STATE_MIN at the earliest: a small file that
        # arrives at once never pays for a state file and its fdatasync.
        self._last_state = time.monotonic()

    def _check_room(self, coming: int) -> None:
        """Stop a file of undeclared size before the next ``coming`` bytes would take free space under the
        reserve (the check before the download could not count it)."""
        if self.reserve is None or self.spec.size is not None:
            return
        try:
            free = shutil.disk_usage(self.dest.parent).free
        except OSError as exc:
            raise WriteFailure(self.dest, exc) from exc
        if free - coming < self.reserve:
            have = f"after {human_bytes(self.written)} " if self.written else ""
            raise WriteFailure(
                self.dest,
                reason=(
                    f"{self.dest}: stopped {have}of a file whose size the manifest does not declare"
                    + (f" ({human_bytes(self.size)} announced)" if self.size is not None else "")
                    + f": only {human_bytes(free)} free, and the {human_bytes(self.reserve)} reserve"
                    " (PROVISION_DISK_RESERVE) is kept"
                ),
            )

    def begin(self, total: int | None, meta: dict[str, Any] | None = None) -> None:
        """Start from byte 0 (truncating); ``total`` is the size the source announced."""
        self._check_total(total)
        self._stop_follower()
        self.hasher = MultiHasher(self.algs)
        self.done = RangeSet()
        self.resumed = 0
        self.size = self.spec.size if self.spec.size is not None else total
        self.meta = dict(meta or {})
        self.mode = "seq"
        self.html_head = False
        self._open(truncate=True)
        with contextlib.suppress(FileNotFoundError):
            state_path(self.dest).unlink()
        self._room_at = 0
        if total is not None:
            self._check_room(total)
            self._room_at = total + 1  # it fits: no need to look again
        self.progress.start(self.key, self.spec.name, self.size)

    def resume(self, offset: int, total: int | None, meta: dict[str, Any]) -> None:
        """Continue a sequential download at ``offset``: hash the prefix once, then append."""
        self._check_total(total)
        self._stop_follower()
        self.size = self.spec.size if self.spec.size is not None else total
        self.meta = dict(meta)
        self.mode = "seq"
        self._open(truncate=False)
        assert self._fd is not None
        with _writing(self.dest):
            os.ftruncate(self._fd, offset)
        self.hasher = MultiHasher(self.algs)
        self._hash_range(0, offset)
        self.done = RangeSet([(0, offset)] if offset else [])
        self.resumed = offset
        self._sniff_kept()
        self._room_at = offset
        if total is not None:
            self._check_room(total - offset)
            self._room_at = total + 1
        self.progress.start(self.key, self.spec.name, self.size, done=offset)

    def begin_segmented(self, size: int, meta: dict[str, Any], done: RangeSet | None = None) -> None:
        """Preallocate ``size`` bytes for out-of-order writes (keeping ``done`` ranges)."""
        self._check_total(size)
        self._stop_follower()
        self.size = size
        self.meta = {k: v for k, v in meta.items() if k != "size"}
        self.mode = "seg"
        keep = done is not None and done.total() > 0
        self._check_room(size - (done.total() if done is not None and keep else 0))
        self._open(truncate=not keep)
        assert self._fd is not None
        if not keep:
            with contextlib.suppress(FileNotFoundError):
                state_path(self.dest).unlink()
        with _writing(self.dest):
            try:
                os.posix_fallocate(self._fd, 0, size)
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO):
                    raise  # the file does not fit: say so now, not after a share of it arrived
                os.ftruncate(self._fd, size)  # no fallocate on this filesystem: a sparse file
        self.done = done if keep and done is not None else RangeSet()
        self.resumed = self.done.total()
        self._sniff_kept()
        self.hasher = MultiHasher(self.algs)
        self._closing = False
        self._follow_error = None
        self._follower = threading.Thread(target=self._follow, name=f"hash:{self.key}", daemon=True)
        self._follower.start()
        self.progress.start(self.key, self.spec.name, size, done=self.resumed)
        self.save_state(force=True)

    # -- writing -------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Append ``data`` (sequential mode), hashing it from memory."""
        if self._fd is None:
            raise RuntimeError("Sink.write before begin()")
        pos = self.done.prefix()
        self._check_chunk(pos, data)
        if pos + len(data) > self._room_at:
            self._check_room(ROOM_EVERY)  # undeclared size, nothing announced: look every ROOM_EVERY bytes
            self._room_at = pos + ROOM_EVERY
        with _writing(self.dest):
            os.pwrite(self._fd, data, pos)
        self.hasher.update(data)
        with self._lock:
            self.done.add(pos, pos + len(data))
        self.progress.advance(self.key, len(data))
        self.save_state()

    def write_at(self, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` (segmented mode); the follower hashes it in order."""
        if self._fd is None:
            raise RuntimeError("Sink.write_at before begin_segmented()")
        if self._follow_error is not None:
            raise AttemptFailed(f"hashing failed: {self._follow_error}")
        self._check_chunk(offset, data)
        with _writing(self.dest):
            os.pwrite(self._fd, data, offset)
        with self._cond:
            self.done.add(offset, offset + len(data))
            self._cond.notify()
        self.progress.advance(self.key, len(data))

    def _check_chunk(self, offset: int, data: bytes) -> None:
        if offset == 0 and not expects_html(self.spec) and looks_like_html(data[:512]):
            if not self.spec.checksum.known:
                raise AttemptFailed(_HTML_PAGE)
            # A published checksum decides: an XML file may begin with "<!--" too.
            self.html_head = True
        limit = self.spec.size if self.spec.size is not None else self.size
        if limit is not None and offset + len(data) > limit:
            raise IntegrityFailure(f"size mismatch: more than the {limit} bytes expected")

    def html_refusal(self, why: str) -> AttemptFailed | None:
        """The failure to report when the bytes are not the file (``why``: how they differ) and the
        body began like an HTML page: a login or error page, not wrong data; None otherwise."""
        return AttemptFailed(f"{_HTML_PAGE}: {why}") if self.html_head else None

    def _sniff_kept(self) -> None:
        """Whether the data kept from an earlier attempt began like an HTML page."""
        assert self._fd is not None
        head = os.pread(self._fd, 512, 0) if self.done.prefix() else b""
        self.html_head = bool(head) and not expects_html(self.spec) and looks_like_html(head)

    def adopt(self, src: Path) -> str:
        """Take a local file in by reflink/hard link (or copy), hashing it in one read."""
        self.reset()
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self.progress.start(self.key, self.spec.name, self.spec.size)
        with _writing(self.dest):
            how = link_or_copy(src, self.dest, allow_hardlink=True, hasher=self.hasher)
        size = self.dest.stat().st_size
        if how != "copy":
            self._fd = os.open(self.dest, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            self._hash_range(0, size)
            self._close_fd()
        else:
            self.progress.advance(self.key, size)
        self.done = RangeSet([(0, size)])
        self.size = size
        return how

    # -- hashing ---------------------------------------------------------------------------
    def _hash_range(self, start: int, end: int) -> None:
        """Feed bytes ``[start, end)`` of the data file to the hasher, through one reused buffer."""
        assert self._fd is not None
        if self._hash_buf is None:  # one per sink: the follower calls this each time the prefix grows
            self._hash_buf = memoryview(bytearray(CHUNK_SIZE))
        view = self._hash_buf
        pos = start
        while pos < end:
            n = os.preadv(self._fd, [view[: min(len(view), end - pos)]], pos)
            if not n:
                raise AttemptFailed(f"partial file shorter than its state ({pos} < {end})")
            self.hasher.update(view[:n])
            pos += n

    def _follow(self) -> None:
        frontier = 0
        try:
            while True:
                with self._cond:
                    while self.done.prefix() <= frontier and not self._closing:
                        self._cond.wait(0.5)
                    ready = self.done.prefix()
                    if ready <= frontier and self._closing:
                        return
                self._hash_range(frontier, ready)
                frontier = ready
                if self.size is not None and frontier >= self.size:
                    return
        except BaseException as exc:  # surfaced by write_at/close
            self._follow_error = exc

    def _stop_follower(self) -> None:
        if self._follower is not None:
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            self._follower.join()
            self._follower = None
            self._closing = False

    # -- finishing -------------------------------------------------------------------------
    def close(self) -> None:
        """Wait for the hasher, flush and fsync the file, and drop the resume state."""
        self._stop_follower()
        if self._follow_error is not None:
            raise AttemptFailed(f"hashing failed: {self._follow_error}")
        if self._fd is not None:
            with _writing(self.dest):
                os.fsync(self._fd)
        self._close_fd()

    def hexdigests(self) -> dict[str, str]:
        """``{alg: hex}`` of the whole file (call after :meth:`close`)."""
        return self.hasher.hexdigests()

    def suspend(self) -> None:
        """Keep the partial data and its state for a later resume (after a failure)."""
        self._stop_follower()
        if self._fd is not None:
            with contextlib.suppress(OSError, WriteFailure):
                self.save_state(force=True)
        self._close_fd()

    def _close_fd(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def reset(self) -> None:
        """Drop the data and the state (before a fresh attempt or after a failure)."""
        self._stop_follower()
        self._close_fd()
        for p in (self.dest, state_path(self.dest), _state_temp(self.dest)):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        self.hasher = MultiHasher(self.algs)
        self.done = RangeSet()
        self.meta = {}
        self.resumed = 0
        self.size = None
        self.mode = None
        self.html_head = False
