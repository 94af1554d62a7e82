"""Sources: one module per URL scheme, one interface ``fetch_<scheme>(url, sink, ctx)``."""

from __future__ import annotations

from collections.abc import Callable

from .base import AttemptFailed, SourceContext
from .file import fetch_file
from .http import fetch_http, new_session
from .partial import Sink

__all__ = ["AttemptFailed", "Sink", "SourceContext", "fetch_url", "new_session", "scheme_of"]

Fetcher = Callable[[str, Sink, SourceContext], None]

_FETCHERS: dict[str, Fetcher] = {
    "http": fetch_http,
    "https": fetch_http,
    "file": fetch_file,
    "path": fetch_file,
}


def scheme_of(url: str) -> str:
    """``http``, ``https``, ``file``, ``manual`` or ``path`` (a plain local path)."""
    if url.startswith("manual:"):
        return "manual"
    scheme, sep, _ = url.partition("://")
    return scheme.lower() if sep else "path"


def fetch_url(url: str, sink: Sink, ctx: SourceContext) -> None:
    """Move ``url``'s bytes into ``sink`` with the source for its scheme."""
    scheme = scheme_of(url)
    fetcher = _FETCHERS.get(scheme)
    if fetcher is None:
        raise AttemptFailed(f"no source handles {scheme!r} URLs")
    fetcher(url, sink, ctx)
