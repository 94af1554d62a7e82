"""Content-addressed mirrors (``PROVISION_MIRRORS``): any static server or bucket laid out by checksum.

A mirror serves a file at ``<base>/<alg>/<hex>`` of its published checksum (``md5/3e85de…``), so one
mirror serves every file of every manifest, and since every byte is verified a wrong mirror can
never poison the cache. Files with no published checksum have no mirror address.
"""

from __future__ import annotations

from collections.abc import Iterable

from provision.manifest.checksum import Checksum

__all__ = ["mirror_path", "mirror_urls"]


def mirror_path(checksum: Checksum) -> str:
    """Where a mirror holds the content with ``checksum``: ``<alg>/<hex>``."""
    return f"{checksum.alg}/{checksum.hex}"


def mirror_urls(checksum: Checksum, mirrors: Iterable[str]) -> list[str]:
    """The URL of ``checksum``'s content on each mirror base, in order (none when it is unpublished)."""
    if not checksum.known:
        return []
    return [f"{base.rstrip('/')}/{mirror_path(checksum)}" for base in mirrors]
