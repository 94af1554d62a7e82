"""Listing folder entries at their source, and pinning the listing on first use.

See :mod:`provision.manifest.folders` for what a folder entry is. :func:`list_folders` asks
each unpinned folder entry's source for its files (in URL order), pins the first listing that
names any in the lock file, and returns the artifact as fetched.
"""

from __future__ import annotations

from typing import Any

from provision.errors import SourceError
from provision.fetching.report import shown_attempt
from provision.manifest.folders import as_fetched
from provision.manifest.lockfile import LockFile
from provision.manifest.model import Artifact, FileSpec
from provision.sources.base import AttemptFailed, IntegrityFailure, SourceContext
from provision.sources.schemes import list_url

__all__ = ["list_folders", "listing_disagrees"]


def listing_disagrees(spec: FileSpec, listed: dict[str, str]) -> str:
    """Why a listing (``path -> checksum``) contradicts the folder entry's ``pins`` and
    ``listed_count``; empty when it agrees."""
    if spec.listed_count is not None and len(listed) != spec.listed_count:
        return f"the listing names {len(listed)} files, the manifest expects {spec.listed_count}"
    for path, pin in sorted(spec.pins.items()):
        got = listed.get(path)
        if got is None:
            return f"the listing has no {path!r} (the manifest pins {pin})"
        if got != str(pin):
            return f"the listing gives {path!r} checksum {got or 'none'}, the manifest pins {pin}"
    return ""


def _listing(art: Artifact, spec: FileSpec, ctx: SourceContext) -> tuple[str, list[dict[str, Any]]]:
    attempts: list[tuple[str, AttemptFailed]] = []
    for url in spec.urls:
        try:
            listed = list_url(url, ctx)
        except AttemptFailed as exc:
            attempts.append(shown_attempt(url, exc))
            continue
        if not listed:
            attempts.append(shown_attempt(url, AttemptFailed("listed no files")))
            continue
        disagreement = listing_disagrees(spec, {i.path: str(i.checksum) for i in listed})
        if disagreement:
            attempts.append(shown_attempt(url, IntegrityFailure(disagreement)))
            continue
        items: list[dict[str, Any]] = [
            {"path": i.path, "url": i.url, "checksum": str(i.checksum), "size": i.size}
            for i in sorted(listed, key=lambda i: i.path)
        ]
        return url, items
    tried = "; ".join(f"{u} -> {a}" for u, a in attempts)
    raise SourceError(f"{art.name}/{spec.name}: could not list the folder ({tried})", attempts=attempts)


def list_folders(art: Artifact, lock: LockFile, ctx: SourceContext) -> Artifact:
    """``art`` as fetched, after listing (and pinning) every folder entry not pinned yet.

    :class:`SourceError` when no URL of a folder entry can list it.
    """
    for spec in art.files:
        if spec.is_folder and lock.listing(art.name, spec.name) is None:
            url, items = _listing(art, spec, ctx)
            lock.pin_listing(art.name, spec.name, url, items)
    return as_fetched(art, lock)
