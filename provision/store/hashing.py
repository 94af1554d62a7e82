"""``alg:hex`` digests and streaming hashers.

Checksums are written ``alg:hex`` (pooch's notation) with ``alg`` one of
:data:`ALGORITHMS`. ``xxh3_128`` is the fast digest the cache records beside the
published one, so that re-checks are cheap.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import xxhash

from provision.fsutil import CHUNK_SIZE, open_regular
from provision.manifest.checksum import ALGORITHMS

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

__all__ = ["FAST_ALG", "Hasher", "MultiHasher", "hash_file", "new_hasher"]


#: The fast digest recorded for every cached file.
FAST_ALG = "xxh3_128"


class Hasher(Protocol):
    """The part of hashlib's interface provision uses."""

    def update(self, data: Buffer, /) -> None: ...  # pragma: no cover - protocol

    def hexdigest(self) -> str: ...  # pragma: no cover - protocol


_FACTORIES: dict[str, Callable[[], Hasher]] = {
    "md5": lambda: hashlib.md5(usedforsecurity=False),
    "sha1": lambda: hashlib.sha1(usedforsecurity=False),
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
    "xxh3_128": xxhash.xxh3_128,
    "xxh64": xxhash.xxh64,
}


def new_hasher(alg: str) -> Hasher:
    """A fresh hasher for ``alg``; ``ValueError`` naming the supported ones otherwise."""
    try:
        return _FACTORIES[alg]()
    except KeyError:
        raise ValueError(f"unknown checksum algorithm {alg!r}; expected one of {', '.join(ALGORITHMS)}") from None


class MultiHasher:
    """Feeds the same bytes to several algorithms at once (one read, many digests)."""

    def __init__(self, algs: Iterable[str]) -> None:
        self._hashers = {alg: new_hasher(alg) for alg in dict.fromkeys(algs)}
        self.bytes = 0

    def update(self, data: Buffer) -> None:
        """Add ``data`` to every digest."""
        for h in self._hashers.values():
            h.update(data)
        self.bytes += memoryview(data).nbytes

    def hexdigests(self) -> dict[str, str]:
        """``{alg: hex}`` of everything fed so far."""
        return {alg: h.hexdigest() for alg, h in self._hashers.items()}


def hash_file(
    path: str | Path,
    algs: Iterable[str] = (FAST_ALG,),
    on_chunk: Callable[[int], None] | None = None,
    *,
    follow_symlinks: bool = True,
) -> dict[str, str]:
    """Stream ``path`` once through every algorithm in ``algs``; returns ``{alg: hex}``.

    ``on_chunk(nbytes)`` is called after each chunk (progress reporting). Only a regular file is
    read: a FIFO or a device raises :class:`provision.fsutil.NotRegularFileError` (an ``OSError``)
    instead of blocking or reading forever, and so does a symlink unless ``follow_symlinks``.
    """
    hasher = MultiHasher(algs)
    with open(open_regular(path, follow_symlinks=follow_symlinks), "rb", buffering=0) as fh:
        buf = bytearray(CHUNK_SIZE)
        view = memoryview(buf)
        while n := fh.readinto(buf):
            hasher.update(view[:n])
            if on_chunk is not None:
                on_chunk(n)
    return hasher.hexdigests()
