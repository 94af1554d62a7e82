"""Folder entries: a manifest file ``name = "dir/"`` whose source lists the files.

The first fetch asks the source (an R2 ``.uri`` + ``.md5``, a Hub glob, an S3 prefix)
for the list and pins it in the lock file, so later fetches, ``verify`` and other
machines given the lock file see exactly the same files — and need no network to know
them. Listed files without a checksum are pinned by sha256 on first use like any other.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .errors import SourceError
from .hashing import Checksum
from .lockfile import LockFile
from .manifest import Artifact, FileSpec
from .sources import AttemptFailed, SourceContext, list_url

__all__ = ["expand"]


def _items_from_source(art: Artifact, spec: FileSpec, ctx: SourceContext) -> tuple[str, list[dict[str, Any]]]:
    attempts: list[tuple[str, str]] = []
    for url in spec.urls:
        try:
            listed = list_url(url, ctx)
        except AttemptFailed as exc:
            attempts.append((url, exc.answer))
            continue
        if not listed:
            attempts.append((url, "listed no files"))
            continue
        items: list[dict[str, Any]] = [
            {"path": i.path, "url": i.url, "checksum": str(i.checksum), "size": i.size}
            for i in sorted(listed, key=lambda i: i.path)
        ]
        return url, items
    tried = "; ".join(f"{u} -> {a}" for u, a in attempts)
    raise SourceError(f"{art.name}/{spec.name}: could not list the folder ({tried})", attempts=attempts)


def expand(art: Artifact, lock: LockFile, ctx: SourceContext | None = None) -> Artifact:
    """``art`` with each folder entry replaced by the files of its (pinned) listing.

    With ``ctx`` an unpinned listing is fetched from the source and pinned; without it
    (verify, status) the folder entry stays as it is and counts as not fetched.
    Raises :class:`SourceError` when no URL of a folder entry can list it.
    """
    if not any(f.is_folder for f in art.files):
        return art
    files: list[FileSpec] = []
    for spec in art.files:
        if not spec.is_folder:
            files.append(spec)
            continue
        items = lock.listing(art.name, spec.name)
        if items is None:
            if ctx is None:
                files.append(spec)
                continue
            url, items = _items_from_source(art, spec, ctx)
            lock.pin_listing(art.name, spec.name, url, items)
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
                )
            )
    return replace(art, files=tuple(files))
