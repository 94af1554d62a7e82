"""``http://`` and ``https://``: resumable, segmented, retrying downloads.

- One ``requests.Session`` (injected), TLS verification always on, ``Accept-Encoding:
  identity`` so byte ranges mean bytes on disk. Redirects are followed here (at most 10),
  so per-host tokens are sent only to the origin (scheme, host, port) of the URL asked for
  and https never drops to http.
- Resume: a partial file keeps (URL, ETag/Last-Modified, size, ranges done) beside it.
  A restart asks ``Range`` with ``If-Range``; a 200 where 206 was asked restarts from 0
  (never appends); a changed validator or size discards the partial.
- Segments: a file of at least ``segment_threshold`` bytes from a server that answers
  ranges is split into pieces fetched over up to ``jobs`` connections and written with
  ``os.pwrite``; a stalled, dropped or too slow connection gives its remaining range back.
- Low speed: a connection under ``low_speed_limit`` bytes/s for ``low_speed_time`` seconds is
  dropped and retried from what it brought (curl ``--speed-limit``/``--speed-time``); such a
  drop counts as a failure in a row, so a server that drips is given up.
- Retries: connection errors, timeouts, 408, 429 and 5xx back off exponentially with
  jitter (``Retry-After`` honoured); a URL is given up after ``retries`` failures in a
  row without progress. Other 4xx are final for the URL.
- Cloudflare Access (private MLCommons R2 buckets): a redirect to its login page, or a
  401/403 that shows Access (or that refused R2 credentials we sent), is not followed
  but ends the URL with one message saying which credentials to set.
"""

from __future__ import annotations

import contextlib
import email.utils
import os
import re
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from provision.config import Settings, redact_url
from provision.sources.base import (
    QUICK_DELAY,
    QUICK_RETRIES,
    AttemptFailed,
    ConnectionFailure,
    Credential,
    OfflineFailure,
    Probe,
    Restart,
    Retry,
    SourceContext,
    SpeedGuard,
    StatusFailure,
    TooSlow,
    UnreachableFailure,
    WriteFailure,
    backoff,
    origin,
    unreachable_kind,
)
from provision.sources.cloudflare import (
    access_credential,
    cloudflare_access_failure,
    cloudflare_login_wanted,
    sends_access_credentials,
)
from provision.sources.hf import hub_credential, hub_hosts
from provision.sources.partial import RangeSet, Sink
from provision.version import __version__

__all__ = [
    "USER_AGENT",
    "HttpClient",
    "SegmentQueue",
    "fetch_http",
    "new_session",
    "probe_http",
    "short_error",
]

USER_AGENT = f"provision/{__version__} python-requests/{requests.__version__}"

_CHUNK = 1 << 20
_MAX_REDIRECTS = 10
_MAX_RESTARTS = 3
_PIECE_MIN = 1 << 20
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
#: Request headers that carry credentials: never sent past a redirect to another origin.
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_UNREACHABLE = {
    "resolve": "name resolution failed for",
    "refused": "connection refused at",
    "unreachable": "no route to",
}
#: Longest Retry-After we honour before treating the URL as failed for now.
RETRY_AFTER_MAX = 600.0


def new_session() -> requests.Session:
    """A ``requests.Session`` with provision's User-Agent; verification stays on."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass
class _Meta:
    url: str
    etag: str | None
    last_modified: str | None
    size: int | None
    ranges: bool

    def validator(self) -> str | None:
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "etag": self.etag, "last_modified": self.last_modified, "ranges": self.ranges}


class HttpClient:
    """Requests with retries, manual redirects, per-host headers and a connection budget."""

    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.session = ctx.session or new_session()
        self.slots = threading.BoundedSemaphore(max(1, self.settings.jobs))

    def sleep_for(self, failures: int, delay: float | None) -> float:
        """Seconds to wait before retry number ``failures`` (``delay`` = Retry-After)."""
        if delay is not None:
            return min(delay, RETRY_AFTER_MAX)
        return backoff(self.settings, failures)

    def open(self, url: str, headers: dict[str, str], *, fresh: bool = True) -> requests.Response:
        """GET ``url`` (streaming), following redirects; :class:`Retry`/:class:`AttemptFailed`.

        ``fresh``: nothing came from this URL yet in this run. Then a host that cannot be reached at all
        (name resolution, refused, no route) gets one quick retry and ends the URL with an
        :class:`UnreachableFailure`, remembered for the run (``ctx.dead``); later, the same is a
        :class:`Retry` on the usual schedule (a network that blinked mid-download).
        """
        timeout = (self.settings.connect_timeout, self.settings.read_timeout)
        # Tokens belong to the origin of the URL asked for: a hop to another scheme, host or port
        # carries none of them (requests' should_strip_auth, curl CVE-2022-27776).
        home = origin(url)
        tokens = self.settings.headers_for(home[1])
        bare = {k: v for k, v in headers.items() if k.lower() not in _CREDENTIAL_HEADERS}
        current = url
        for _ in range(_MAX_REDIRECTS + 1):
            own = origin(current) == home
            hdrs = {"Accept-Encoding": "identity", **(headers if own else bare), **(tokens if own else {})}
            try:
                resp = self._get(current, hdrs, timeout, fresh)
            except requests.exceptions.SSLError as exc:
                raise ConnectionFailure(
                    f"TLS verification failed ({exc.__class__.__name__}); set REQUESTS_CA_BUNDLE "
                    "to your CA bundle if a proxy re-signs TLS"
                ) from exc
            except requests.exceptions.Timeout as exc:
                raise Retry(f"timed out connecting ({exc.__class__.__name__})") from exc
            except requests.exceptions.ConnectionError as exc:
                raise Retry(f"connection failed ({short_error(exc)})") from exc
            except requests.exceptions.RequestException as exc:
                raise ConnectionFailure(f"request failed ({short_error(exc)})") from exc
            denied = resp.status_code in (401, 403)
            gated = cloudflare_login_wanted(resp.headers) or (denied and sends_access_credentials(hdrs))
            if (resp.is_redirect or denied) and gated:
                resp.close()
                raise cloudflare_access_failure(current, hdrs)
            if resp.is_redirect:
                location = resp.headers.get("Location", "")
                resp.close()
                nxt = urljoin(current, location)
                if urlsplit(current).scheme == "https" and urlsplit(nxt).scheme != "https":
                    raise AttemptFailed(f"refused redirect from https to {urlsplit(nxt).scheme} ({redact_url(nxt)})")
                current = nxt
                continue
            if resp.status_code in _RETRY_STATUS:
                delay = _retry_after(resp.headers.get("Retry-After"))
                answer = f"HTTP {resp.status_code} {resp.reason or ''}".strip()
                resp.close()
                if delay is not None and delay > RETRY_AFTER_MAX:
                    raise StatusFailure(f"{answer} with Retry-After {delay:.0f}s (too long)", resp.status_code)
                raise Retry(answer, delay, resp.status_code)
            if resp.status_code not in (200, 206):
                answer = f"HTTP {resp.status_code} {resp.reason or ''}".strip()
                resp.close()
                raise StatusFailure(answer, resp.status_code)
            return resp
        raise AttemptFailed(f"more than {_MAX_REDIRECTS} redirects")

    def _get(self, url: str, hdrs: dict[str, str], timeout: tuple[float, float], fresh: bool) -> requests.Response:
        """One request; a host found unreachable (now, or earlier in this run) fails fast when ``fresh``."""
        dead = self.ctx.dead.get(url)
        if fresh and dead is not None:
            raise UnreachableFailure(
                f"{dead.phrase} earlier in this run; not tried again", dead.how, dead.host, remembered=True
            )
        tries = 0
        while True:
            try:
                return self.session.get(url, headers=hdrs, stream=True, timeout=timeout, allow_redirects=False)
            except requests.exceptions.ConnectionError as exc:
                how = unreachable_kind(exc)
                if not fresh or how is None or isinstance(exc, requests.exceptions.SSLError):
                    raise
                tries += 1
                if tries > QUICK_RETRIES:
                    _scheme, host, port = origin(url)
                    where = host if how == "resolve" else f"{host}:{port}"
                    failure = UnreachableFailure(
                        f"{_UNREACHABLE[how]} {where} ({short_error(exc)}; {tries} tries)", how, where
                    )
                    self.ctx.dead.add(url, failure)
                    raise failure from None
                if self.ctx.cancel.wait(min(QUICK_DELAY, backoff(self.settings, tries))):
                    raise KeyboardInterrupt from None


def short_error(exc: BaseException) -> str:
    """The innermost message of ``exc``: requests/urllib3 wrap errors as ``(message, cause)`` tuples."""
    while True:
        if exc.args and isinstance(exc.args[0], BaseException):
            exc = exc.args[0]  # requests.ConnectionError(MaxRetryError(...))
        elif isinstance(reason := getattr(exc, "reason", None), BaseException):
            exc = reason  # urllib3's MaxRetryError(pool, url, reason=NewConnectionError(...))
        else:
            break
    if exc.args and isinstance(exc.args[0], str) and len(exc.args) > 1:
        text = exc.args[0]  # e.g. ('Connection broken: IncompleteRead(...)', IncompleteRead(...))
    else:
        text = str(exc) or exc.__class__.__name__
    # "HTTPConnection(host='h', port=1): Failed to establish a new connection: [Errno 111] ..." -> the cause
    head, sep, rest = text.partition("): ")
    if sep and head.startswith(("HTTPConnection(", "HTTPSConnection(", "<urllib3")):
        text = rest
    return redact_url(text.splitlines()[0] if text else exc.__class__.__name__)[:200]


def _meta(url: str, resp: requests.Response) -> _Meta:
    total: int | None = None
    if resp.status_code == 206:
        m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
        if m and m.group(3) != "*":
            total = int(m.group(3))
    else:
        length = resp.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
    return _Meta(
        url=url,
        etag=resp.headers.get("ETag"),
        last_modified=resp.headers.get("Last-Modified"),
        size=total,
        ranges=resp.status_code == 206 or resp.headers.get("Accept-Ranges", "").lower() == "bytes",
    )


def _check_html(resp: requests.Response, sink: Sink) -> None:
    from provision.sources.base import expects_html

    ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if ctype in ("text/html", "application/xhtml+xml") and not expects_html(sink.spec):
        resp.close()
        raise AttemptFailed(f"HTTP {resp.status_code} but Content-Type {ctype} (an HTML page, not the file)")


def _range_start(resp: requests.Response) -> int:
    m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
    if not m:
        raise Retry("206 without a valid Content-Range")
    return int(m.group(1))


def _stream(resp: requests.Response, write: Any, guard: SpeedGuard) -> None:
    """Copy the body into ``write`` as bytes arrive; transport failures become :class:`Retry`, a
    connection under the low-speed limit (``guard``) :class:`TooSlow`.

    ``read1`` hands over whatever has arrived, so a connection that drops mid-body loses
    nothing that was already received.
    """
    raw = resp.raw
    try:
        while True:
            chunk = raw.read1(_CHUNK)
            if not chunk:
                break
            write(chunk)
            guard.arrived(len(chunk))
    except (urllib3.exceptions.HTTPError, requests.exceptions.RequestException, OSError) as exc:
        if isinstance(exc, AttemptFailed):
            raise
        raise Retry(f"connection lost mid-body ({short_error(exc)})") from exc
    finally:
        resp.close()


def yield_to_hasher() -> None:
    """Lower the calling thread's CPU priority (nice +10), where the OS allows it per thread.

    A segmented download's published digest is computed in order by one thread (md5 and
    sha256 cannot be split), so that thread is the critical path whenever the CPUs are busy:
    the file is done when its last byte is hashed, not when it arrives. Receiving threads
    that yield to it let the hash run at full speed beside them; when the hasher waits for
    bytes, they have the CPUs to themselves. Linux applies nice to a thread; elsewhere this
    does nothing.
    """
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError, AttributeError):
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + 10))


def fetch_http(url: str, sink: Sink, ctx: SourceContext) -> None:
    """Download ``url`` into ``sink`` (resuming what ``sink`` holds for this URL)."""
    if ctx.settings.offline:
        raise OfflineFailure()
    client = ctx.http if isinstance(ctx.http, HttpClient) else HttpClient(ctx)
    if ctx.http is None:
        ctx.http = client
    _Download(client, url, sink).run()


class _Download:
    def __init__(self, client: HttpClient, url: str, sink: Sink) -> None:
        self.client = client
        self.url = url
        self.sink = sink
        self.failures = 0
        self.last_answer = ""
        self._written_before = 0
        self.delivered = False  # bytes came from this URL in this run

    # -- driver --------------------------------------------------------------------------
    def run(self) -> None:
        state = self.sink.saved_state()
        if state is not None and state.get("url") != self.url:
            state = None
        if state is None:
            self.sink.reset()
        restarts = 0
        while True:
            try:
                self._attempt(state)
                return
            except Restart as exc:
                restarts += 1
                if restarts > _MAX_RESTARTS:
                    cause = f"{self.last_answer}; then " if self.last_answer else ""
                    raise AttemptFailed(f"{cause}{exc} (restarted {restarts - 1} times)") from None
                text = f"{self.sink.key}: {exc}; restarting from byte 0"
                self.client.ctx.progress.retry(self.sink.key, self.url, text)
                self.sink.reset()
                state = None
            except Retry as exc:
                self._failed(exc)
                state = None  # continue from what the sink holds in memory

    def _failed(self, exc: Retry) -> None:
        # A connection dropped for being too slow brought bytes, but is no progress: a drip is given up.
        self.delivered = self.delivered or self.sink.written > self._written_before
        progressed = self.sink.written > self._written_before and not isinstance(exc, TooSlow)
        self.failures = 1 if progressed else self.failures + 1
        self.last_answer = exc.answer
        self.sink.save_state(force=True)
        if self.failures > self.client.settings.retries:
            raise exc.give_up(f"{exc.answer} (gave up after {self.failures} tries)")
        wait = self.client.sleep_for(self.failures, exc.delay)
        self.client.ctx.progress.retry(
            self.sink.key, self.url, f"{self.sink.key}: {exc.answer}; retry {self.failures} in {wait:.1f}s"
        )
        time.sleep(wait)

    # -- one attempt ---------------------------------------------------------------------------
    def _attempt(self, state: dict[str, Any] | None) -> None:
        """One request. ``state`` is a resume state from disk (first attempt only)."""
        sink = self.sink
        self._written_before = sink.written
        if state is not None:
            done = RangeSet(state.get("done", []))
            if done.total() > done.prefix():
                self._segmented_resume(state, done)
                return
            offset, old = done.prefix(), state
        elif sink.mode == "seg" and sink.written:
            self._segmented_resume({**sink.meta, "size": sink.size}, sink.done)
            return
        elif sink.mode == "seq" and sink.written:
            offset, old = sink.done.prefix(), {**sink.meta, "size": sink.size}
        else:
            offset, old = 0, {}
        validator = old.get("etag") if not str(old.get("etag") or "W/").startswith("W/") else None
        validator = validator or old.get("last_modified")
        headers = {"Range": f"bytes={offset}-"}
        if offset and validator:
            headers["If-Range"] = validator
        with self.client.slots:
            resp = self.client.open(self.url, headers, fresh=not self.delivered)
            _check_html(resp, sink)
            meta = _meta(self.url, resp)
            if resp.status_code == 200 and offset:
                resp.close()
                raise Restart("the server ignored the Range request (HTTP 200)")
            if resp.status_code == 206 and _range_start(resp) != offset:
                resp.close()
                raise Restart(f"the server answered another range ({resp.headers.get('Content-Range')})")
            if offset and self._changed(old, meta):
                resp.close()
                raise Restart("the file changed on the server (ETag/Last-Modified/size)")
            big = meta.size is not None and meta.size >= self.client.settings.segment_threshold
            if offset == 0 and resp.status_code == 206 and big and self.client.settings.jobs > 1:
                resp.close()
            else:
                if offset and state is not None:
                    sink.resume(offset, meta.size, meta.as_dict())
                elif not offset:
                    sink.begin(meta.size, meta.as_dict())
                _stream(resp, self._guarded(sink.write), SpeedGuard(self.client.settings))
                self._check_complete(meta.size)
                return
        assert meta.size is not None
        self._segmented(meta, RangeSet())

    def _guarded(self, write: Any) -> Any:
        cancel = self.client.ctx.cancel

        def put(chunk: bytes) -> None:
            if cancel.is_set():
                raise KeyboardInterrupt
            write(chunk)

        return put

    @staticmethod
    def _changed(old: dict[str, Any], new: _Meta) -> bool:
        if old.get("etag") and new.etag and old["etag"] != new.etag:
            return True
        if old.get("last_modified") and new.last_modified and old["last_modified"] != new.last_modified:
            return True
        return bool(old.get("size") and new.size and old["size"] != new.size)

    def _check_complete(self, size: int | None) -> None:
        want = self.sink.spec.size if self.sink.spec.size is not None else size
        if want is not None and self.sink.written < want:
            page = self.sink.html_refusal(f"{self.sink.written} bytes where {want} were expected")
            if page is not None:
                raise page  # a whole page, not a cut-off file: no retry brings the rest
            raise Retry(f"body ended early at {self.sink.written} of {want} bytes")

    # -- segments ------------------------------------------------------------------------------
    def _segmented_resume(self, state: dict[str, Any], done: RangeSet) -> None:
        size = state.get("size")
        if not isinstance(size, int):
            raise Restart("the saved state has no size")
        meta = _Meta(self.url, state.get("etag"), state.get("last_modified"), size, True)
        self._segmented(meta, done)

    def _segmented(self, meta: _Meta, done: RangeSet) -> None:
        """Fetch what ``done`` lacks of the file in ranges, over up to ``jobs`` connections at once."""
        sink = self.sink
        size = meta.size
        if size is None:
            raise Restart("a segmented download needs the file's size")
        sink.begin_segmented(size, meta.as_dict(), done)
        jobs = self.client.settings.jobs
        piece = max(_PIECE_MIN, -(-size // (jobs * 4)))
        queue = SegmentQueue(sink.done.missing(size), piece, self.client.settings.retries)
        threads = [
            threading.Thread(
                target=self._segment_worker, args=(queue, meta, size), name=f"seg{i}:{sink.key}", daemon=True
            )
            for i in range(max(1, min(jobs, len(queue))))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if queue.fatal is not None:
            if not isinstance(queue.fatal, WriteFailure):  # a disk that failed a write takes no state
                sink.save_state(force=True)
            raise queue.fatal
        if sink.done.total() < size:
            raise Retry(f"segments incomplete ({sink.done.total()} of {size} bytes)")

    def _segment_worker(self, queue: SegmentQueue, meta: _Meta, size: int) -> None:
        """Take ranges from ``queue`` until it is empty or failed; back off between transient failures."""
        yield_to_hasher()
        while (piece := queue.take()) is not None:
            span = _Span(*piece)
            try:
                self._fetch_range(span, meta, size)
                if span.pos < span.end:
                    raise Retry(f"range ended early at {span.pos} of {span.end}")
                queue.progressed()
            except Retry as exc:
                self.last_answer = exc.answer
                moved = span.pos > span.start and not isinstance(exc, TooSlow)
                failures = queue.retry(span.rest, progressed=moved, exc=exc)
                if failures is None:
                    return
                wait = self.client.sleep_for(failures, exc.delay)
                text = f"{self.sink.key}: {exc.answer}; retry in {wait:.1f}s"
                self.client.ctx.progress.retry(self.sink.key, self.url, text)
                time.sleep(wait)
            except BaseException as exc:
                queue.fail(span.rest, exc)
                return

    def _fetch_range(self, span: _Span, meta: _Meta, size: int) -> None:
        """GET ``span`` into the sink at its offset, moving ``span.pos`` as bytes land (kept on failure)."""
        headers = {"Range": f"bytes={span.start}-{span.end - 1}"}
        validator = meta.validator()
        if validator:
            headers["If-Range"] = validator
        cancel = self.client.ctx.cancel

        def put(chunk: bytes) -> None:
            if cancel.is_set():
                raise KeyboardInterrupt
            chunk = chunk[: span.end - span.pos]
            self.sink.write_at(span.pos, chunk)
            span.pos += len(chunk)
            self.sink.save_state()

        with self.client.slots:
            resp = self.client.open(self.url, headers, fresh=False)  # the probe reached the host
            if resp.status_code != 206:
                resp.close()
                raise Restart("the server ignored a Range request (HTTP 200)")
            if _range_start(resp) != span.start:
                resp.close()
                raise Restart("the server answered a different range")
            if self._changed(meta.as_dict() | {"size": size}, _meta(self.url, resp)):
                resp.close()
                raise Restart("the file changed on the server (ETag/Last-Modified/size)")
            _stream(resp, put, SpeedGuard(self.client.settings))


@dataclass
class _Span:
    """One range of a segmented download, ``[start, end)``, and how far it got (``pos``)."""

    start: int
    end: int
    pos: int = -1

    def __post_init__(self) -> None:
        if self.pos < 0:
            self.pos = self.start

    @property
    def rest(self) -> tuple[int, int]:
        """What is still to fetch of it."""
        return self.pos, self.end


class SegmentQueue:
    """The byte ranges of a segmented download still to fetch, shared by its worker threads.

    Each worker takes a range (:meth:`take`) and either finishes it (:meth:`progressed`), gives back what it
    did not finish after a transient failure (:meth:`retry`, which counts failures in a row without
    progress and gives up past ``retries``), or stops everything (:meth:`fail`): the first fatal error
    is the download's, and every worker stops at its next :meth:`take`.
    """

    def __init__(self, gaps: list[tuple[int, int]], piece: int, retries: int) -> None:
        self._ranges: deque[tuple[int, int]] = deque(
            (s, min(b, s + piece)) for a, b in gaps for s in range(a, b, piece)
        )
        self._lock = threading.Lock()
        self._retries = retries
        self._failures = 0
        self.fatal: BaseException | None = None

    def __len__(self) -> int:
        return len(self._ranges)

    def take(self) -> tuple[int, int] | None:
        """The next range to fetch; None when none is left or the download failed."""
        with self._lock:
            if self.fatal is not None or not self._ranges:
                return None
            return self._ranges.popleft()

    def progressed(self) -> None:
        """A range was completed: the count of failures in a row starts again."""
        with self._lock:
            self._failures = 0

    def retry(self, rest: tuple[int, int], *, progressed: bool, exc: Retry) -> int | None:
        """Give back ``rest`` (the unfinished part) after ``exc``; the failures in a row so far, or None
        when that is more than the retries allow (the download then fails with ``exc``'s final form)."""
        with self._lock:
            if rest[0] < rest[1]:
                self._ranges.appendleft(rest)
            self._failures = 0 if progressed else self._failures + 1
            if self._failures > self._retries:
                if self.fatal is None:
                    self.fatal = exc.give_up(f"{exc.answer} (gave up after {self._failures} tries)")
                return None
            return self._failures

    def fail(self, rest: tuple[int, int], exc: BaseException) -> None:
        """Stop the download with ``exc`` (the first such error wins), keeping ``rest`` as not done."""
        with self._lock:
            if rest[0] < rest[1]:
                self._ranges.appendleft(rest)
            if self.fatal is None:
                self.fatal = exc


def probe_http(url: str, access: str, settings: Settings) -> Probe:
    """Doctor's view of an http(s) URL: its host to reach, and the credentials a gated artifact needs there."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    credential = None
    if access == "gated" and host in hub_hosts(settings):
        page = url.split("/resolve/")[0] if parts.scheme == "https" else settings.hf_endpoint.rstrip("/")
        credential = hub_credential(page, host, settings)
    elif access == "members" and host.endswith("mlcommons-storage.org"):
        credential = access_credential(host, settings)
    elif access in ("gated", "members"):
        credential = (
            Credential(True, f"{access}: credentials for {host} present (not shown)")
            if settings.headers_for(host)
            else Credential(
                False,
                f"{access} and no token is configured for {host}",
                f'add [hosts."{host}"] with a token to the auth file (PROVISION_AUTH_FILE, default '
                "~/.config/provision/auth.toml)",
            )
        )
    return Probe(reach=url, credential=credential)
