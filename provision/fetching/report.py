"""What a fetch did, file by file: the report the CLI renders and ``raise_for_errors`` raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provision.errors import (
    EXIT_INTEGRITY,
    EXIT_SOURCE,
    IntegrityError,
    ProvisionError,
    SourceError,
)

__all__ = ["FetchReport", "FileResult"]


@dataclass
class FileResult:
    """What happened to one file."""

    artifact: str
    name: str
    state: str  # cached | fetched | linked | repaired | failed
    path: str
    bytes: int = 0
    source: str = ""
    error: str = ""
    exit_code: int = 0
    attempts: list[tuple[str, str]] = field(default_factory=list)
    extracted: str = ""  # the folder (or file) an archive was extracted to

    @property
    def ok(self) -> bool:
        """True unless the file failed."""
        return self.state != "failed"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: the fields of ``provision fetch --json``, each attempt as ``{"url", "answer"}``."""
        keys = ("artifact", "name", "state", "path", "bytes", "source", "error")
        doc: dict[str, Any] = {k: getattr(self, k) for k in keys}
        doc["attempts"] = [{"url": u, "answer": str(a)} for u, a in self.attempts]
        return doc


@dataclass
class FetchReport:
    """Every file of every artifact asked for, in manifest order."""

    files: list[FileResult] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> folder

    @property
    def ok(self) -> bool:
        """True when every file is in the cache and verified."""
        return all(f.ok for f in self.files)

    @property
    def failures(self) -> list[FileResult]:
        """The files that could not be fetched."""
        return [f for f in self.files if not f.ok]

    @property
    def exit_code(self) -> int:
        """0, or the exit code of the first failure."""
        bad = self.failures
        return bad[0].exit_code if bad else 0

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: what ``provision fetch --json`` prints."""
        return {
            "ok": self.ok,
            "exit_code": self.exit_code,
            "artifacts": self.artifacts,
            "files": [f.to_json() for f in self.files],
        }

    def raise_for_errors(self) -> None:
        """Raise the first failure as its :class:`ProvisionError`."""
        bad = self.failures
        if not bad:
            return
        first = bad[0]
        more = f" (and {len(bad) - 1} more failed)" if len(bad) > 1 else ""
        msg = first.error + more
        if first.exit_code == EXIT_INTEGRITY:
            raise IntegrityError(msg, path=first.path)
        if first.exit_code == EXIT_SOURCE:
            raise SourceError(msg, attempts=first.attempts)
        raise ProvisionError(msg)
