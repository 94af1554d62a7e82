"""What every source shares: its context, the failure it reports, temp names, links.

A source moves bytes from one URL into a :class:`~provision.sources.partial.Sink`, the
temp file that hashes and checks them on the way.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from provision.config import Settings
from provision.manifest.model import FileSpec
from provision.progress import NullProgress, Progress

__all__ = ["AttemptFailed", "SourceContext", "looks_like_html"]

_HTML_PREFIXES = (b"<!doctype html", b"<html", b"<head", b"<body", b"<!--")
_HTML_NAMES = (".html", ".htm", ".xhtml")


class AttemptFailed(Exception):
    """One URL failed; the fetcher moves to the next. ``answer`` is what it said.

    ``integrity`` marks data that arrived but was wrong (size/checksum), as opposed to
    a source that could not deliver.
    """

    def __init__(self, answer: str, *, integrity: bool = False, offline: bool = False) -> None:
        super().__init__(answer)
        self.answer = answer
        self.integrity = integrity
        self.offline = offline


@dataclass
class SourceContext:
    """What a source may use: settings, the one HTTP session, extra local folders.

    ``http`` holds the shared HTTP client (connection budget) once created; ``cancel``
    is set when the user interrupts, and every transfer stops at its next chunk.
    """

    settings: Settings
    session: requests.Session | None = None
    from_paths: tuple[Path, ...] = ()
    progress: Progress = field(default_factory=NullProgress)
    http: Any = None
    cancel: threading.Event = field(default_factory=threading.Event)


def looks_like_html(head: bytes) -> bool:
    """True when ``head`` (the first bytes of a body) starts like an HTML document."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith(_HTML_PREFIXES)


def expects_html(spec: FileSpec) -> bool:
    """Whether the manifest file is itself an HTML page (then HTML is not an error)."""
    return spec.name.lower().endswith(_HTML_NAMES)


