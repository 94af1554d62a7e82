"""A real HTTP/1.1 server on 127.0.0.1 for tests and benchmarks, with fault modes.

Routes are added at run time: ``server.add("/f.bin", body, ...)``. Every route supports
``Range`` (one range, answered 206), ``If-Range``, ``ETag`` and ``Last-Modified``
unless told otherwise. Fault modes cover what hostile hosts do: errors before success,
``Retry-After``, HTML with status 200, truncated bodies, dropped connections, stalls,
per-connection rate limits, a byte every few seconds (drip), bodies that never end,
ignoring ``Range``, redirects.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)$")


@dataclass
class Route:
    """How one path answers."""

    body: bytes = b""
    status: int = 200
    content_type: str = "application/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: float | None = 1_700_000_000.0
    accept_ranges: bool = True
    ignore_range: bool = False  # answer 200 with the whole body to a Range request
    fail_first: int = 0  # answer fail_status this many times first
    fail_status: int = 500
    retry_after: str | None = None  # sent with the failures
    truncate_to: int | None = None  # send only this many body bytes but full Content-Length
    drop_after: int | None = None  # close the connection after this many body bytes (per request)
    drop_times: int = 1_000_000  # how many requests drop_after applies to
    stall_after: int | None = None  # stop sending (but keep the socket) after this many bytes
    stall_seconds: float = 30.0
    stall_times: int = 1
    rate: float | None = None  # bytes per second per connection
    redirect_to: str | None = None  # answer 302 to this location
    no_length: bool = False  # no Content-Length (chunked-like close-delimited body)
    endless: bool = False  # a close-delimited body that never ends (``body`` repeated until the client hangs up)
    drip_after: int | None = None  # after this many body bytes, send one byte every drip_every seconds ...
    drip_every: float = 5.0
    drip_for: float = 600.0  # ... for at most this long, then close the connection
    drip_times: int = 1  # how many requests drip
    hook: Callable[[BaseHTTPRequestHandler], None] | None = None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        srv = self.server.owner
        path = self.path.split("?", 1)[0]
        with srv.lock:
            route = srv.routes.get(path)
            srv.hits[path] = srv.hits.get(path, 0) + 1
            srv.requests.append((self.command, self.path, dict(self.headers.items())))
            nth = srv.hits[path]
        if route is None:
            self._plain(404, b"not found")
            return
        if route.hook is not None:
            route.hook(self)
        if route.redirect_to is not None:
            self.send_response(302)
            self.send_header("Location", route.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if nth <= route.fail_first:
            extra = {"Retry-After": route.retry_after} if route.retry_after else {}
            self._plain(route.fail_status, b"temporary failure", extra)
            return
        if route.status != 200:
            self._plain(route.status, b"error", route.headers)
            return
        body = route.body
        start, end = 0, len(body)
        status = 200
        rng = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        ranged = route.accept_ranges and not route.ignore_range and not route.endless
        if rng and ranged and self._if_range_ok(route, if_range):
            m = _RANGE_RE.match(rng.strip())
            if m and (m.group(1) or m.group(2)):
                if m.group(1):
                    start = int(m.group(1))
                    end = min(len(body), int(m.group(2)) + 1) if m.group(2) else len(body)
                else:
                    start = max(0, len(body) - int(m.group(2)))
                if start >= len(body):
                    self._plain(416, b"range not satisfiable", {"Content-Range": f"bytes */{len(body)}"})
                    return
                status = 206
        chunk = body[start:end]
        self.send_response(status)
        self.send_header("Content-Type", route.content_type)
        if route.endless:
            self.send_header("Connection", "close")
            self.end_headers()
            if not head:
                self._send_endless(chunk or b"\0")
            self.close_connection = True
            return
        if not route.no_length:
            self.send_header("Content-Length", str(len(chunk)))
        else:
            self.send_header("Connection", "close")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(body)}")
        if route.accept_ranges:
            self.send_header("Accept-Ranges", "bytes")
        if route.etag:
            self.send_header("ETag", route.etag)
        if route.last_modified is not None:
            self.send_header("Last-Modified", email.utils.formatdate(route.last_modified, usegmt=True))
        for k, v in route.headers.items():
            self.send_header(k, v)
        self.end_headers()
        if head:
            return
        self._send_body(route, chunk, nth)
        if route.no_length:
            self.close_connection = True

    def _if_range_ok(self, route: Route, if_range: str | None) -> bool:
        if not if_range:
            return True
        if if_range.startswith(('"', "W/")):
            return route.etag is not None and if_range == route.etag
        if route.last_modified is None:
            return False
        return if_range == email.utils.formatdate(route.last_modified, usegmt=True)

    def _send_endless(self, block: bytes) -> None:
        block = block * max(1, (64 * 1024) // len(block))
        try:
            while True:
                self.wfile.write(block)
        except OSError:  # the client hung up
            return

    def _drip(self, route: Route, rest: bytes) -> None:
        """One byte of ``rest`` every ``drip_every`` seconds, for at most ``drip_for``; then hang up."""
        end = time.monotonic() + route.drip_for
        try:
            for i in range(len(rest)):
                if time.monotonic() >= end:
                    break
                self.wfile.write(rest[i : i + 1])
                self.wfile.flush()
                time.sleep(route.drip_every)
        except OSError:
            return
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send_body(self, route: Route, chunk: bytes, nth: int) -> None:
        if route.drip_after is not None and nth <= route.drip_times + route.fail_first:
            try:
                self.wfile.write(chunk[: route.drip_after])
            except OSError:
                return
            self._drip(route, chunk[route.drip_after :])
            return
        limit = len(chunk)
        if route.truncate_to is not None:
            limit = min(limit, route.truncate_to)
        drop = (
            route.drop_after if (route.drop_after is not None and nth <= route.drop_times + route.fail_first) else None
        )
        stall = (
            route.stall_after
            if (route.stall_after is not None and nth <= route.stall_times + route.fail_first)
            else None
        )
        sent = 0
        step = 64 * 1024
        began = time.monotonic()
        try:
            while sent < limit:
                if drop is not None and sent >= drop:
                    break
                if stall is not None and sent >= stall:
                    time.sleep(route.stall_seconds)
                    break
                n = min(step, limit - sent)
                if drop is not None:
                    n = min(n, drop - sent)
                if stall is not None:
                    n = min(n, max(1, stall - sent))
                if route.rate:
                    n = min(n, max(1024, int(route.rate / 20)))
                self.wfile.write(chunk[sent : sent + n])
                sent += n
                if route.rate:
                    due = began + sent / route.rate
                    delay = due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
        except (BrokenPipeError, ConnectionResetError):
            return
        if sent < len(chunk):
            self.close_connection = True
            try:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _plain(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: TestServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up mid-body are expected here (resume and fault tests): stay
        silent, instead of socketserver's traceback on whatever ``sys.stderr`` is at the time."""


class TestServer:
    """Start with ``TestServer()``; ``url(path)``; ``add(path, body, **route)``; ``close()``."""

    __test__ = False  # not a pytest class

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def add(self, path: str, body: bytes = b"", **kwargs: Any) -> str:
        """Serve ``body`` at ``path`` with the given :class:`Route` options; returns the URL."""
        with self.lock:
            self.routes[path] = Route(body=body, **kwargs)
            self.hits.pop(path, None)
        return self.url(path)

    def reset_counts(self) -> None:
        """Forget hit counts and recorded requests."""
        with self.lock:
            self.hits.clear()
            self.requests.clear()

    def close(self) -> None:
        """Stop serving."""
        self._httpd.shutdown()
        self._httpd.server_close()


def md5(data: bytes) -> str:
    """``md5:<hex>`` of ``data``."""
    return "md5:" + hashlib.md5(data).hexdigest()


def sha256(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()
