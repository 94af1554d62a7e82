"""What every source shares: its context, the failure it reports, temp names, links.

A source moves bytes from one URL into a :class:`~provision.sources.partial.Sink`, the
temp file that hashes and checks them on the way.
"""

from __future__ import annotations

import errno
import os
import random
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from provision.config import Settings
from provision.manifest.model import FileSpec
from provision.progress import NullProgress, Progress

__all__ = [
    "AccessFailure",
    "AttemptFailed",
    "ConnectionFailure",
    "Credential",
    "IntegrityFailure",
    "OfflineFailure",
    "Probe",
    "Restart",
    "Retry",
    "SourceContext",
    "StatusFailure",
    "WriteFailure",
    "backoff",
    "expects_html",
    "looks_like_html",
]

_HTML_PREFIXES = (b"<!doctype html", b"<html", b"<head", b"<body", b"<!--")
_HTML_NAMES = (".html", ".htm", ".xhtml")


class AttemptFailed(Exception):
    """One source could not deliver one file (or list one folder); the fetcher moves to the next.

    ``str(exc)`` is what the source answered, in one line. The subclass says what kind of
    failure it was, and that is what the fetcher decides by (never the message text)::

        AttemptFailed            the source could not deliver (no such file, HTML page, bad URL, ...)
        ├── IntegrityFailure     bytes arrived but are not the file: wrong size or checksum
        ├── OfflineFailure       not tried: PROVISION_OFFLINE=1 forbids the network
        ├── StatusFailure        the server's answer ends this URL (``status``: HTTP 404, 500 after retries, ...)
        ├── ConnectionFailure    no answer: refused, timed out, dropped, TLS, until the retries ran out
        └── AccessFailure        credentials needed, missing or refused (Cloudflare Access, a gated repo, S3 403)
    """

    @property
    def answer(self) -> str:
        """What the source answered (the message)."""
        return str(self)

    def retold(self, message: str) -> AttemptFailed:
        """The same failure (same kind and fields) with another message, e.g. with the URL in front."""
        other = type(self).__new__(type(self))
        other.__dict__.update(self.__dict__)  # the kind's own fields (``status``)
        other.args = (message,)
        return other


class IntegrityFailure(AttemptFailed):
    """Bytes arrived but are not the file the manifest describes (size or checksum)."""


class OfflineFailure(AttemptFailed):
    """Not tried: ``PROVISION_OFFLINE=1`` forbids network access."""

    def __init__(self, message: str = "not tried: PROVISION_OFFLINE=1") -> None:
        super().__init__(message)


class StatusFailure(AttemptFailed):
    """The server answered, and its answer ends this URL: ``status`` is the HTTP (or S3) status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class ConnectionFailure(AttemptFailed):
    """The server could not be reached or kept dropping (after the retries), or TLS failed."""


class AccessFailure(AttemptFailed):
    """The source needs credentials it did not get, or refused the ones sent."""


class WriteFailure(Exception):
    """The download's own temp file could not be written: disk full (ENOSPC), quota (EDQUOT), a read-only
    filesystem (EROFS), a size limit (EFBIG), an I/O error (EIO)...

    Not an :class:`AttemptFailed`: no other source can help, so the file stops here, and not an
    ``OSError``, so no transport handler takes it for a dropped connection. ``path`` is the file,
    ``errno`` the error number. Raised by :class:`~provision.sources.partial.Sink`.
    """

    def __init__(self, path: Path, exc: OSError) -> None:
        self.path = Path(path)
        self.errno = exc.errno
        name = errno.errorcode.get(exc.errno or 0, "")
        reason = exc.strerror or (os.strerror(exc.errno) if exc.errno else str(exc)) or type(exc).__name__
        super().__init__(f"cannot write {self.path}: {reason}" + (f" ({name})" if name else ""))

    @property
    def disk_full(self) -> bool:
        """The filesystem (or the user's quota) is full."""
        return self.errno in (errno.ENOSPC, errno.EDQUOT)


class Retry(Exception):
    """A transient failure inside a source: wait ``delay`` (None = the backoff) and try again.

    ``status`` is the status that said so (HTTP 429, 503, S3 SlowDown...), None for a connection
    problem; :meth:`give_up` is the failure it becomes when the retries run out. Never leaves a source.
    """

    def __init__(self, answer: str, delay: float | None = None, status: int | None = None) -> None:
        super().__init__(answer)
        self.answer = answer
        self.delay = delay
        self.status = status

    def give_up(self, message: str) -> AttemptFailed:
        """The final failure after too many of these: a :class:`StatusFailure` or :class:`ConnectionFailure`."""
        if self.status is not None:
            return StatusFailure(message, self.status)
        return ConnectionFailure(message)


class Restart(Exception):
    """The partial data cannot be continued (the file changed, a range was ignored): start at byte 0.

    Never leaves a source."""

    @property
    def answer(self) -> str:
        """Why (the message)."""
        return str(self)


def backoff(settings: Settings, failures: int) -> float:
    """Seconds to wait before retry number ``failures``: doubling from ``settings.backoff``, capped, with jitter."""
    base = float(settings.backoff) * (2 ** max(0, failures - 1))
    return float(min(float(settings.backoff_max), base) * random.uniform(0.5, 1.0))


@dataclass(frozen=True)
class Credential:
    """Whether the credentials a gated source needs are set here (``present``; None: provision does not
    check them), said in one line (never their values), with the fix when they are missing."""

    present: bool | None
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Probe:
    """What ``provision doctor`` needs to know about one source URL, without using it.

    ``reach``: a URL whose origin answering a HEAD means the source can be reached (None: nothing to
    reach, e.g. a local path); ``skip``: ``(name, why)`` when reachability is not checked by provision;
    ``manual``: the registration page of a licensed file a person brings; ``credential``: what the
    artifact's access gate needs from this source (None: nothing).
    """

    reach: str | None = None
    skip: tuple[str, str] | None = None
    manual: str | None = None
    credential: Credential | None = None


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


