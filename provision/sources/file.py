"""``file://`` URLs and plain paths: local mirrors, NFS exports, removable disks.

A local file is read once: each chunk is written into the sink's temp file by the reading
thread while a second thread feeds the same buffer to the sink's hashers (md5 or sha256 and
xxh3_128), so that copying and hashing take two cores instead of running one after the other
(``cp`` then ``md5sum``). The bytes hashed are exactly the bytes written; nothing is read back
from the temp file. No resume state is written while a local file is copied (reading it again
costs less than the fdatasyncs the state needs): a killed copy leaves a temp file without state,
which the next run starts over. The source must not change while it is copied: its size, mtime
and ctime are compared before and after, and a change fails the attempt.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from provision.fsutil import CHUNK_SIZE, NotRegularFileError, open_regular, start_writeback, stat_key
from provision.sources.base import AttemptFailed, SourceContext, WriteFailure
from provision.sources.partial import Sink

__all__ = ["fetch_file", "url_to_path"]

#: Buffers in flight between the reading (and writing) thread and the hashing thread.
_BUFFERS = 4

#: The kernel is asked to start writing the copy to disk each time this many bytes were written, so
#: that the fsync before the commit finds little left to write (:func:`provision.fsutil.start_writeback`).
_WRITEBACK_EVERY = 8 << 20


def url_to_path(url: str) -> Path:
    """The local path a ``file://`` URL or plain path names."""
    if url.startswith("file://"):
        parsed = urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise AttemptFailed(f"file URL names a remote host {parsed.netloc!r}; mount it and use a path")
        return Path(unquote(parsed.path))
    return Path(url).expanduser()


def _open_source(path: Path) -> int:
    """A read-only descriptor of the regular file at ``path`` (a FIFO there never blocks the open)."""
    try:
        return open_regular(path, follow_symlinks=True)
    except FileNotFoundError:
        raise AttemptFailed("no such file") from None
    except NotRegularFileError:
        raise AttemptFailed("not a regular file") from None
    except OSError as exc:
        raise AttemptFailed(f"cannot open {path}: {exc.strerror or exc}") from None


def fetch_file(url: str, sink: Sink, ctx: SourceContext) -> None:
    """Copy a local file into ``sink``, hashing it from the same read (see the module docstring)."""
    path = url_to_path(url)
    fd = _open_source(path)
    try:
        before = os.fstat(fd)
        size = before.st_size
        sink.begin(size)  # the manifest's size against the file's, free space, a fresh temp file
        first = _read(fd, path, min(CHUNK_SIZE, size))
        if len(first) < min(CHUNK_SIZE, size):
            raise AttemptFailed(f"{path} shrank while it was read ({len(first)} of {size} bytes)")
        if first:
            sink.write(first)  # the first chunk takes the sink's own checks (an HTML page, the size)
        if size > len(first):
            _copy_rest(fd, path, sink, ctx, len(first), size)
        if stat_key(os.fstat(fd)) != stat_key(before):
            why = "changed while it was copied (size, mtime or ctime); fetch again when it is complete"
            raise AttemptFailed(f"{path} {why}")
    finally:
        os.close(fd)


def _read(fd: int, path: Path, n: int) -> bytes:
    try:
        return os.read(fd, n)
    except OSError as exc:
        raise AttemptFailed(f"cannot read {path}: {exc.strerror or exc}") from None


def _copy_rest(fd: int, path: Path, sink: Sink, ctx: SourceContext, start: int, size: int) -> None:
    """Bytes ``[start, size)`` of ``fd`` into ``sink``: written here, hashed on a second thread, in order."""
    free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
    for _ in range(_BUFFERS):
        free.put(bytearray(CHUNK_SIZE))
    filled: queue.SimpleQueue[tuple[bytearray, int, int] | None] = queue.SimpleQueue()
    failed: list[BaseException] = []

    def hash_in_order() -> None:
        while (item := filled.get()) is not None:
            buf, pos, n = item
            try:
                if not failed:
                    sink.hasher.update(memoryview(buf)[:n])
                    sink.done.add(pos, pos + n)
                    sink.progress.advance(sink.key, n)
            except BaseException as exc:  # surfaced by the copying thread
                failed.append(exc)
            free.put(buf)

    hasher = threading.Thread(target=hash_in_order, name=f"hash:{sink.key}", daemon=True)
    hasher.start()
    try:
        with _writer(sink.dest) as out:
            pos = flushed = start
            while pos < size and not failed:
                if ctx.cancel.is_set():
                    raise KeyboardInterrupt
                buf = free.get()
                view = memoryview(buf)[: min(CHUNK_SIZE, size - pos)]
                try:
                    n = os.readv(fd, [view])
                except OSError as exc:
                    free.put(buf)
                    raise AttemptFailed(f"cannot read {path}: {exc.strerror or exc}") from None
                if n == 0:
                    free.put(buf)
                    raise AttemptFailed(f"{path} shrank while it was read ({pos} of {size} bytes)")
                _write_all(out, view[:n], pos, sink.dest)
                filled.put((buf, pos, n))
                pos += n
                if pos - flushed >= _WRITEBACK_EVERY:
                    start_writeback(out, flushed, pos - flushed)
                    flushed = pos
    finally:
        filled.put(None)
        hasher.join()
    if failed:
        raise AttemptFailed(f"hashing failed: {failed[0]}")


@contextlib.contextmanager
def _writer(dest: Path) -> Iterator[int]:
    """A second descriptor of the sink's temp file (made by ``Sink.begin``; never through a link)."""
    try:
        out = os.open(dest, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise WriteFailure(dest, exc) from exc
    try:
        yield out
    finally:
        os.close(out)


def _write_all(out: int, data: memoryview, pos: int, dest: Path) -> None:
    try:
        while data:
            n = os.pwrite(out, data, pos)
            data = data[n:]
            pos += n
    except OSError as exc:
        raise WriteFailure(dest, exc) from exc
