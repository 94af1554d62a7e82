"""What a folder source (R2 ``.uri``, a Hub pattern, an S3 prefix) lists."""

from __future__ import annotations

from dataclasses import dataclass

from provision.manifest.checksum import Checksum

__all__ = ["Listed"]


@dataclass(frozen=True)
class Listed:
    """One file of a folder entry: its path inside the folder, a URL any file source can
    fetch (``https://…``, ``s3://…``, ``hf://…``), its checksum (``Checksum.unpublished()``
    when the listing has none) and its size when known."""

    path: str
    url: str
    checksum: Checksum
    size: int | None = None
