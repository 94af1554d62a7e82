"""A writer process of the small-file extraction: creates, writes and seals the files it is sent.

Run by :mod:`provision.extract.archive` as ``python <this file> ROOT_FD ARCHIVE_FD`` (it
imports nothing of provision, so it starts in milliseconds). ``ROOT_FD`` is the extraction's
temp folder, ``ARCHIVE_FD`` the uncompressed tar (``-1`` when the archive is compressed); both
are inherited. The calling process has already applied every safety rule to every path: this
process only writes, and never through a link (``O_EXCL|O_NOFOLLOW`` relative to ``ROOT_FD``,
in folders the caller made).

Protocol, on stdin and stdout: frames of an 8-byte little-endian length and a ``marshal``
payload. A request is a list of jobs ``(path, data, offset, size, mode, mtime)``: ``data`` is
the file's bytes, or ``None`` to read ``size`` bytes at ``offset`` of ``ARCHIVE_FD``; ``mode``
is the final mode (the caller has dropped setuid/setgid/sticky and group/other write);
``mtime`` is seconds (``<= 0``: left as written). The reply is ``("ok", [(xxh3_128 hex,
mtime_ns, ino, ctime_ns), ...])`` in job order, or ``("oserror", errno, strerror, path)``,
or ``("short", path)`` when the archive ended inside the file's data. After an error reply
the process reads no more requests. End of stdin, or its caller gone (a batch still in
the pipe is then not written): it exits 0.
"""

from __future__ import annotations

import marshal
import os
import sys
from typing import Any

import xxhash

__all__ = ["NEW_FILE", "read_exact", "seal", "write_all", "write_file"]

#: A member's file is always new, never reached through a link planted at its name.
NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def read_exact(fd: int, n: int) -> bytes:
    """``n`` bytes from ``fd``; fewer only at its end."""
    parts = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            break
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until all of ``data`` is written (a write may be short)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _send(obj: Any) -> None:
    payload = marshal.dumps(obj)
    write_all(1, len(payload).to_bytes(8, "little") + payload)


def seal(fd: int, mode: int, mtime: float) -> os.stat_result:
    """Give the written file ``fd`` its ``mtime`` (``<= 0``: left as written) and ``mode`` (it was
    created with it; ``fchmod`` only where the umask took bits away): its final stat."""
    if mtime > 0:
        os.utime(fd, (mtime, mtime))
    st = os.fstat(fd)
    if st.st_mode & 0o7777 != mode:
        os.fchmod(fd, mode)
        st = os.fstat(fd)
    return st


def write_file(root: int, path: str, data: bytes, mode: int, mtime: float) -> tuple[str, int, int, int]:
    """Create ``path`` under the folder ``root`` with ``data``, ``mode`` and ``mtime``: its
    xxh3_128 and final ``(mtime_ns, ino, ctime_ns)``."""
    fd = os.open(path, NEW_FILE, mode, dir_fd=root)
    try:
        if data:
            write_all(fd, data)
        st = seal(fd, mode, mtime)
    finally:
        os.close(fd)
    return xxhash.xxh3_128_hexdigest(data), st.st_mtime_ns, st.st_ino, st.st_ctime_ns


def main(argv: list[str]) -> int:
    """Serve requests until stdin ends (module docstring)."""
    root, archive = int(argv[1]), int(argv[2])
    parent = os.getppid()
    while True:
        head = read_exact(0, 8)
        if len(head) < 8 or os.getppid() != parent:  # the caller is gone (killed): its temp folder will be removed
            return 0
        jobs = marshal.loads(read_exact(0, int.from_bytes(head, "little")))
        out = []
        path = ""
        try:
            for path, data, offset, size, mode, mtime in jobs:
                if data is None:
                    data = os.pread(archive, size, offset)
                    if len(data) != size:
                        _send(("short", path))
                        return 1
                out.append(write_file(root, path, data, mode, mtime))
        except OSError as exc:
            _send(("oserror", exc.errno or 0, exc.strerror or str(exc), path))
            return 1
        _send(("ok", out))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
