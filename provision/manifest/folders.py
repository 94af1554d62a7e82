"""Folder entries, and "the artifact as fetched".

A manifest file ``name = "dir/"`` stands for the files its source lists (an R2 ``.uri`` +
``.md5``, a Hub glob, an S3 prefix). The first fetch asks the source for the list and pins it
in the lock file (:mod:`provision.fetching.folders`), so later fetches, ``verify`` and other
machines given the lock file see exactly the same files — and need no network to know them.
Listed files without a checksum are pinned by sha256 on first use like any other.

:func:`as_fetched` is the one way every stage sees an artifact: its folder entries replaced by
their pinned listings, and its unpublished checksums by their first-use pins.
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Any

from provision.manifest.checksum import Checksum
from provision.manifest.lockfile import LockFile
from provision.manifest.model import Artifact, FileSpec

__all__ = ["as_fetched", "expand", "listed_files"]


def listed_files(spec: FileSpec, items: list[dict[str, Any]]) -> list[FileSpec]:
    """The files of folder entry ``spec`` given its listing (``[{"path", "url", "checksum", "size"}]``)."""
    files = []
    for item in items:
        text = str(item.get("checksum") or "unpublished")
        checksum = Checksum.unpublished() if text == "unpublished" else Checksum.parse(text)
        size = item.get("size")
        files.append(
            replace(
                spec,
                name=spec.name + str(item["path"]),
                urls=(str(item["url"]),),
                checksum=checksum,
                size=size if isinstance(size, int) else None,
                approx_size=None,  # the folder's rounded figure is not any one file's
                pins=MappingProxyType({}),
                listed_count=None,
            )
        )
    return files


def expand(art: Artifact, lock: LockFile) -> Artifact:
    """``art`` with each folder entry replaced by the files of its pinned listing.

    A folder entry whose listing was never pinned stays as it is and counts as not fetched.
    """
    if not any(f.is_folder for f in art.files):
        return art
    files: list[FileSpec] = []
    for spec in art.files:
        items = lock.listing(art.name, spec.name) if spec.is_folder else None
        files.extend([spec] if items is None else listed_files(spec, items))
    return replace(art, files=tuple(files))


def as_fetched(art: Artifact, lock: LockFile) -> Artifact:
    """``art`` as fetched: pinned folder listings expanded, first-use pins applied (no network)."""
    return lock.apply(expand(art, lock))
