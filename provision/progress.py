"""Progress reporting seam: the library reports, the CLI renders (tqdm), tests count."""

from __future__ import annotations

from typing import Protocol

__all__ = ["NullProgress", "Progress"]


class Progress(Protocol):
    """Receives progress events; implementations must be thread-safe."""

    def start(self, key: str, label: str, total: int | None, done: int = 0) -> None:
        """A file transfer or check starts (``done`` bytes already present, e.g. resumed)."""

    def advance(self, key: str, nbytes: int) -> None:
        """``nbytes`` more bytes of ``key`` were processed."""

    def finish(self, key: str, ok: bool) -> None:
        """``key`` ended, successfully or not."""

    def note(self, text: str) -> None:
        """A one-line human message (waiting for a lock, a file pinned on first use)."""

    def retry(self, key: str, url: str, text: str) -> None:
        """``url`` failed for ``key`` for now (a retry follows, or the next source): ``text`` says how.

        Renderers may show only the first of each URL: a flaky host must not flood the terminal."""


class NullProgress:
    """Discards every event."""

    def start(self, key: str, label: str, total: int | None, done: int = 0) -> None:
        """Ignore."""

    def advance(self, key: str, nbytes: int) -> None:
        """Ignore."""

    def finish(self, key: str, ok: bool) -> None:
        """Ignore."""

    def note(self, text: str) -> None:
        """Ignore."""

    def retry(self, key: str, url: str, text: str) -> None:
        """Ignore."""
