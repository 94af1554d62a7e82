"""The demo's upstream host: a small threaded HTTP/1.1 file server on 127.0.0.1.

It behaves like a good static host (Content-Length, ETag, Last-Modified, HEAD, one-range
``Range`` requests with ``If-Range``) with two bad habits made to order for ``provision demo``:
it sends slowly (a per-connection rate) and it can cut the first download of a file part-way,
so that the fetch has to resume. Every request is logged for the demo to show.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import re
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["RATE", "DemoServer", "ServedRequest"]

#: Bytes per second per connection (the demo's tar takes about a second).
RATE = 1 << 20
_PIECE = 16 << 10
_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)$")


@dataclass
class ServedRequest:
    """One request the demo server answered."""

    method: str
    path: str
    range: str | None
    if_range: str | None
    status: int
    start: int = 0
    length: int = 0  # body bytes the headers promised
    sent: int = 0
    dropped: bool = False

    def describe(self) -> str:
        """``GET /f Range: bytes=N- (If-Range) -> 206, 123 bytes`` style."""
        asked = (f" Range: {self.range}" if self.range else "") + (" (If-Range)" if self.if_range else "")
        if self.method == "HEAD":
            what = "headers only"
        elif self.dropped:
            what = f"connection dropped after {self.sent:,} of {self.length:,} bytes (the planned fault)"
        else:
            what = f"{self.sent:,} bytes"
        return f"{self.method} {self.path}{asked} -> {self.status}, {what}"


def _byte_range(header: str | None, size: int) -> tuple[int, int, int]:
    """``(status, start, end)`` for a ``Range`` header: 206 for one satisfiable range, 416 for
    one that starts past the end, else 200 and the whole body (no header, several ranges or a
    malformed one are ignored, as RFC 9110 allows)."""
    m = _RANGE_RE.match((header or "").strip())
    if not m or not (m.group(1) or m.group(2)):
        return 200, 0, size
    first, last = m.group(1), m.group(2)
    if first:
        start = int(first)
        if last and int(last) < start:
            return 200, 0, size
        end = min(size, int(last) + 1) if last else size
    else:
        start, end = max(0, size - int(last)), size
        if int(last) == 0:
            return 416, 0, size
    if start >= size:
        return 416, 0, size
    return 206, start, end


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # the owner keeps its own log
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        rng, if_range = self.headers.get("Range"), self.headers.get("If-Range")
        entry = ServedRequest(self.command, path, rng, if_range, 404)
        body = owner.files.get(path)
        etag, modified = owner.validators.get(path, ("", ""))
        size = len(body) if body is not None else 0
        start, end = 0, size
        if body is not None:
            honoured = rng if not if_range or if_range in (etag, modified) else None
            entry.status, start, end = _byte_range(honoured, size)
        ok = entry.status in (200, 206)
        chunk = body[start:end] if body is not None and ok else b""
        entry.start, entry.length = start, len(chunk)
        limit = len(chunk)
        with owner.lock:
            if ok and not head and path in owner.faults:
                limit = min(limit, int(size * owner.faults.pop(path)))
                entry.dropped = limit < len(chunk)
            owner.log.append(entry)
        self.send_response(entry.status)
        if ok:
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(chunk)))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", modified)
            if entry.status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        else:
            chunk = b"not found\n" if entry.status == 404 else b"range not satisfiable\n"
            limit = len(chunk)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(limit))
            if entry.status == 416:
                self.send_header("Content-Range", f"bytes */{size}")
        self.end_headers()
        if not head:
            entry.sent = self._send(chunk, limit, owner.rate if ok else None)
        if entry.dropped:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    def _send(self, chunk: bytes, limit: int, rate: float | None) -> int:
        sent, began = 0, time.monotonic()
        try:
            while sent < limit:
                n = min(_PIECE, limit - sent)
                delay = began + (sent + n) / rate - time.monotonic() if rate else 0.0
                if delay > 0:  # a piece leaves when the rate allows all of it
                    time.sleep(delay)
                self.wfile.write(chunk[sent : sent + n])
                sent += n
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        return sent


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: DemoServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up mid-body are expected here (resume and fault tests): stay
        silent, instead of socketserver's traceback on whatever ``sys.stderr`` is at the time."""


class DemoServer:
    """A small threaded HTTP/1.1 file server on 127.0.0.1 (an ephemeral port).

    Serves ``files`` (name -> bytes) at ``/<name>`` for GET and HEAD with Content-Length,
    ETag, Last-Modified and ``Accept-Ranges: bytes``; one ``Range`` (``bytes=a-b``, ``a-``,
    ``-n``) is answered 206 with Content-Range (416 past the end), honouring ``If-Range``.
    Bodies are sent at ``rate`` bytes/s per connection. ``faults`` maps a name to a fraction:
    the first GET of that name closes the connection after that fraction of the file.
    Every request is kept in :attr:`log`.
    """

    def __init__(
        self, files: Mapping[str, bytes], *, rate: float | None = RATE, faults: Mapping[str, float] | None = None
    ) -> None:
        self.files = {f"/{name}": body for name, body in files.items()}
        stamp = email.utils.formatdate(1_700_000_000, usegmt=True)
        self.validators = {p: (f'"{hashlib.md5(b).hexdigest()[:20]}"', stamp) for p, b in self.files.items()}
        self.rate = rate
        self.faults = {f"/{name}": frac for name, frac in (faults or {}).items()}
        self.log: list[ServedRequest] = []
        self.lock = threading.Lock()
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="provision-demo-server", daemon=True)
        self._thread.start()

    def url(self, name: str) -> str:
        """``http://127.0.0.1:<port>/<name>``."""
        return f"http://127.0.0.1:{self.port}/{name}"

    def requests_for(self, name: str) -> list[ServedRequest]:
        """The logged requests for ``name``, in arrival order."""
        with self.lock:
            return [r for r in self.log if r.path == f"/{name}"]

    def close(self) -> None:
        """Stop serving and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> DemoServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


