"""What every source shares: its context, the failure it reports, temp names, links.

A source moves bytes from one URL into a :class:`~provision.sources.partial.Sink`, the
temp file that hashes and checks them on the way.
"""

from __future__ import annotations

import errno
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

from provision.config import Settings
from provision.manifest.model import FileSpec
from provision.progress import NullProgress, Progress

__all__ = [
    "QUICK_DELAY",
    "QUICK_RETRIES",
    "AccessFailure",
    "AttemptFailed",
    "ConnectionFailure",
    "Credential",
    "DeadHosts",
    "IntegrityFailure",
    "LocalMismatch",
    "OfflineFailure",
    "Probe",
    "Restart",
    "Retry",
    "SourceContext",
    "SpeedGuard",
    "StatusFailure",
    "TooSlow",
    "UnreachableFailure",
    "WriteFailure",
    "backoff",
    "causes",
    "expects_html",
    "looks_like_html",
    "origin",
    "unreachable_kind",
]

_DEFAULT_PORTS = {"http": 80, "https": 443}
#: A host that cannot be reached at all (no name, refused, no route) is retried this many times ...
QUICK_RETRIES = 1
#: ... after at most this many seconds, instead of the backoff schedule (see UnreachableFailure).
QUICK_DELAY = 0.5
_HTML_PREFIXES = (b"<!doctype html", b"<html", b"<head", b"<body", b"<!--")
_HTML_NAMES = (".html", ".htm", ".xhtml")


class AttemptFailed(Exception):
    """One source could not deliver one file (or list one folder); the fetcher moves to the next.

    ``str(exc)`` is what the source answered, in one line. The subclass says what kind of
    failure it was, and that is what the fetcher decides by (never the message text)::

        AttemptFailed            the source could not deliver (no such file, HTML page, bad URL, ...)
        ├── IntegrityFailure     bytes arrived but are not the file: wrong size or checksum
        │   └── LocalMismatch    ... from a local file given with --from
        ├── OfflineFailure       not tried: PROVISION_OFFLINE=1 forbids the network
        ├── StatusFailure        the server's answer ends this URL (``status``: HTTP 404, 500 after retries, ...)
        ├── ConnectionFailure    no answer: refused, timed out, dropped, TLS, until the retries ran out
        │   └── UnreachableFailure  not one byte: the name does not resolve, the port refuses, no route
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


class LocalMismatch(IntegrityFailure):
    """A local file (``--from``) that was taken for the file but is not it: its size or checksum differs."""


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


class UnreachableFailure(ConnectionFailure):
    """The host could not be reached at all, before any byte: its name does not resolve (``how`` =
    ``"resolve"``), the port refuses connections (``"refused"``) or there is no route (``"unreachable"``).

    ``host`` is ``name`` or ``name:port``. Such a failure gets one quick retry, not the backoff
    schedule, and the host is not tried again in the same run (:class:`DeadHosts`).
    """

    def __init__(self, message: str, how: str, host: str, *, remembered: bool = False) -> None:
        super().__init__(message)
        self.how = how
        self.host = host
        self.remembered = remembered  # not tried: found unreachable earlier in this run

    @property
    def phrase(self) -> str:
        """What happened, in a few words: ``name resolution failed for files.example``."""
        return {
            "resolve": f"name resolution failed for {self.host}",
            "refused": f"refused at {self.host}",
        }.get(self.how, f"no route to {self.host}")


class AccessFailure(AttemptFailed):
    """The source needs credentials it did not get, or refused the ones sent."""


class WriteFailure(Exception):
    """The download's own temp file could not be written: disk full (ENOSPC), quota (EDQUOT), a read-only
    filesystem (EROFS), a size limit (EFBIG), an I/O error (EIO)...

    Not an :class:`AttemptFailed`: no other source can help, so the file stops here, and not an
    ``OSError``, so no transport handler takes it for a dropped connection. ``path`` is the file,
    ``errno`` the error number (None when the sink stopped a body of undeclared size before free space
    fell under the disk reserve: ``reason`` says so). Raised by :class:`~provision.sources.partial.Sink`.
    """

    def __init__(self, path: Path, exc: OSError | None = None, *, reason: str = "") -> None:
        self.path = Path(path)
        self.errno = exc.errno if exc is not None else None
        if exc is not None:
            name = errno.errorcode.get(exc.errno or 0, "")
            why = exc.strerror or (os.strerror(exc.errno) if exc.errno else str(exc)) or type(exc).__name__
            reason = f"cannot write {self.path}: {why}" + (f" ({name})" if name else "")
        self._reserve = exc is None
        super().__init__(reason)

    @property
    def disk_full(self) -> bool:
        """The filesystem (or the user's quota) is full, or would have fallen under the disk reserve."""
        return self._reserve or self.errno in (errno.ENOSPC, errno.EDQUOT)


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


class TooSlow(Retry):
    """A connection slower than the low-speed limit for the low-speed time (curl's ``--speed-limit`` /
    ``--speed-time``, aria2's ``--lowest-speed-limit``): dropped and retried from the bytes it brought,
    and counted as a failure in a row although bytes arrived, so a server that drips is given up."""


class SpeedGuard:
    """Watches one connection's bytes: :meth:`arrived` raises :class:`TooSlow` once a whole
    ``low_speed_time`` window averaged under ``low_speed_limit`` bytes/s (0: no limit)."""

    def __init__(self, settings: Settings) -> None:
        self.limit = settings.low_speed_limit
        self.window = settings.low_speed_time
        self._start = time.monotonic()
        self._bytes = 0

    def arrived(self, nbytes: int) -> None:
        """Count ``nbytes`` that just arrived; :class:`TooSlow` when the window that ended was too slow."""
        if self.limit <= 0:
            return
        self._bytes += nbytes
        now = time.monotonic()
        elapsed = now - self._start
        if elapsed < self.window:
            return
        rate = self._bytes / elapsed
        if rate < self.limit:
            raise TooSlow(
                f"too slow: {rate:.0f} B/s over {elapsed:.0f} s, under the low-speed limit of {self.limit} B/s "
                f"for {self.window:g} s (PROVISION_LOW_SPEED_LIMIT / PROVISION_LOW_SPEED_TIME)"
            )
        self._start, self._bytes = now, 0


class Restart(Exception):
    """The partial data cannot be continued (the file changed, a range was ignored): start at byte 0.

    Never leaves a source."""

    @property
    def answer(self) -> str:
        """Why (the message)."""
        return str(self)


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything under it: requests wraps urllib3's errors (``args[0]``, ``.reason``), which
    wrap the socket's (``__cause__``/``__context__``); httpx chains them the same way."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        inner = [e.__cause__, e.__context__, getattr(e, "reason", None), *e.args]
        todo.extend(x for x in inner if isinstance(x, BaseException))


def unreachable_kind(exc: BaseException) -> str | None:
    """``"resolve"``, ``"refused"`` or ``"unreachable"`` when ``exc`` (a transport error) failed before any
    byte because of name resolution, a refused connection or no route; None for anything else. Decided
    by the exception types under it, never their text."""
    for cause in causes(exc):
        if isinstance(cause, (socket.gaierror, urllib3.exceptions.NameResolutionError)):
            return "resolve"
        if isinstance(cause, ConnectionRefusedError):
            return "refused"
        if isinstance(cause, OSError) and cause.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "unreachable"
    return None


def origin(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of ``url``, lower-case, the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


class DeadHosts:
    """The origins found unreachable in this run (:class:`UnreachableFailure`): the next file does not try
    them again. Thread-safe; one per :class:`SourceContext`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dead: dict[tuple[str, str, int | None], UnreachableFailure] = {}

    def get(self, url: str) -> UnreachableFailure | None:
        """How ``url``'s origin failed earlier in this run, if it did."""
        with self._lock:
            return self._dead.get(origin(url))

    def add(self, url: str, failure: UnreachableFailure) -> None:
        """Remember that ``url``'s origin could not be reached."""
        with self._lock:
            self._dead.setdefault(origin(url), failure)


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
    is set when the user interrupts, and every transfer stops at its next chunk; ``dead`` holds
    the hosts found unreachable in this run.
    """

    settings: Settings
    session: requests.Session | None = None
    from_paths: tuple[Path, ...] = ()
    progress: Progress = field(default_factory=NullProgress)
    http: Any = None
    cancel: threading.Event = field(default_factory=threading.Event)
    dead: DeadHosts = field(default_factory=DeadHosts)


def looks_like_html(head: bytes) -> bool:
    """True when ``head`` (the first bytes of a body) starts like an HTML document."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith(_HTML_PREFIXES)


def expects_html(spec: FileSpec) -> bool:
    """Whether the manifest file is itself an HTML page (then HTML is not an error)."""
    return spec.name.lower().endswith(_HTML_NAMES)


