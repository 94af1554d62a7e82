"""The manifest's checksum notation: ``alg:hex`` (pooch's), with the algorithms it admits.

``xxh3_128`` is also the fast digest the cache records beside the published one."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ALGORITHMS", "Checksum"]


#: Supported algorithm -> hex digest length.
ALGORITHMS: dict[str, int] = {
    "md5": 32,
    "sha1": 40,
    "sha256": 64,
    "sha512": 128,
    "xxh3_128": 32,
    "xxh64": 16,
}


HEX_DIGITS = frozenset("0123456789abcdef")


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
        if len(hexpart) != want or not set(hexpart) <= HEX_DIGITS:
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
