"""``file://`` URLs and plain paths: local mirrors, NFS exports, removable disks."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from provision.sources.base import AttemptFailed, SourceContext
from provision.sources.partial import Sink

__all__ = ["fetch_file", "url_to_path"]


def url_to_path(url: str) -> Path:
    """The local path a ``file://`` URL or plain path names."""
    if url.startswith("file://"):
        parsed = urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise AttemptFailed(f"file URL names a remote host {parsed.netloc!r}; mount it and use a path")
        return Path(unquote(parsed.path))
    return Path(url).expanduser()


def fetch_file(url: str, sink: Sink, ctx: SourceContext) -> None:
    """Copy (or reflink) a local file into ``sink``, hashing it in the same read."""
    path = url_to_path(url)
    if not path.is_file():
        raise AttemptFailed("no such file" if not path.exists() else "not a regular file")
    size = path.stat().st_size
    sink.begin(size)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            sink.write(chunk)
