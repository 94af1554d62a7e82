"""``alg:hex`` digests and streaming hashers.

Checksums are written ``alg:hex`` (pooch's notation) with ``alg`` one of
:data:`ALGORITHMS`. ``xxh3_128`` is the fast digest the cache records beside the
published one, so that re-checks are cheap.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import xxhash

__all__ = [
    "ALGORITHMS",
    "CHUNK_SIZE",
    "FAST_ALG",
    "Checksum",
    "Hasher",
    "MultiHasher",
    "hash_file",
    "new_hasher",
]

#: Read size for streaming hashes and copies.
CHUNK_SIZE = 1 << 20

#: The fast digest recorded for every cached file.
FAST_ALG = "xxh3_128"


class Hasher(Protocol):
    """The part of hashlib's interface provision uses."""

    def update(self, data: bytes, /) -> None: ...  # pragma: no cover - protocol

    def hexdigest(self) -> str: ...  # pragma: no cover - protocol


_FACTORIES: dict[str, Callable[[], Hasher]] = {
    "md5": lambda: hashlib.md5(usedforsecurity=False),
    "sha1": lambda: hashlib.sha1(usedforsecurity=False),
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
    "xxh3_128": xxhash.xxh3_128,
    "xxh64": xxhash.xxh64,
}

#: Supported algorithm -> hex digest length.
ALGORITHMS: dict[str, int] = {
    "md5": 32,
    "sha1": 40,
    "sha256": 64,
    "sha512": 128,
    "xxh3_128": 32,
    "xxh64": 16,
}

_HEX = frozenset("0123456789abcdef")


def new_hasher(alg: str) -> Hasher:
    """A fresh hasher for ``alg``; ``ValueError`` naming the supported ones otherwise."""
    try:
        return _FACTORIES[alg]()
    except KeyError:
        raise ValueError(f"unknown checksum algorithm {alg!r}; expected one of {', '.join(ALGORITHMS)}") from None


@dataclass(frozen=True, order=True)
class Checksum:
    """A parsed ``alg:hex`` checksum (hex always lower-case)."""

    alg: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Checksum:
        """Parse ``alg:hex``; ``ValueError`` with a one-line reason when malformed."""
        if not isinstance(text, str) or ":" not in text:
            raise ValueError(f"checksum {text!r} is not of the form 'alg:hex' (e.g. 'md5:3e85...')")
        alg, _, hexpart = text.partition(":")
        alg = alg.strip().lower()
        hexpart = hexpart.strip().lower()
        if alg not in ALGORITHMS:
            raise ValueError(f"unknown checksum algorithm {alg!r}; expected one of {', '.join(ALGORITHMS)}")
        want = ALGORITHMS[alg]
        if len(hexpart) != want or not set(hexpart) <= _HEX:
            raise ValueError(f"{alg} digest must be {want} hex digits, got {len(hexpart)} characters {hexpart!r}")
        return cls(alg, hexpart)

    @classmethod
    def unpublished(cls) -> Checksum:
        """Placeholder for a file with no published checksum (trust on first use, sha256)."""
        return cls("sha256", "")

    @property
    def known(self) -> bool:
        """False for :meth:`unpublished` placeholders."""
        return bool(self.hex)

    def __str__(self) -> str:
        return f"{self.alg}:{self.hex}" if self.hex else "unpublished"


class MultiHasher:
    """Feeds the same bytes to several algorithms at once (one read, many digests)."""

    def __init__(self, algs: Iterable[str]) -> None:
        self._hashers = {alg: new_hasher(alg) for alg in dict.fromkeys(algs)}
        self.bytes = 0

    def update(self, data: bytes) -> None:
        """Add ``data`` to every digest."""
        for h in self._hashers.values():
            h.update(data)
        self.bytes += len(data)

    def hexdigests(self) -> dict[str, str]:
        """``{alg: hex}`` of everything fed so far."""
        return {alg: h.hexdigest() for alg, h in self._hashers.items()}


def hash_file(
    path: str | Path, algs: Iterable[str] = (FAST_ALG,), on_chunk: Callable[[int], None] | None = None
) -> dict[str, str]:
    """Stream ``path`` once through every algorithm in ``algs``; returns ``{alg: hex}``.

    ``on_chunk(nbytes)`` is called after each chunk (progress reporting).
    """
    hasher = MultiHasher(algs)
    with open(path, "rb", buffering=0) as fh:
        buf = bytearray(CHUNK_SIZE)
        view = memoryview(buf)
        while n := fh.readinto(buf):
            hasher.update(view[:n])  # type: ignore[arg-type]
            if on_chunk is not None:
                on_chunk(n)
    return hasher.hexdigests()
