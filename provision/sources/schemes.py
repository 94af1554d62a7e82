"""Sources: one module per URL scheme, one interface.

- ``fetch_<scheme>(url, sink, ctx)`` moves one file's bytes into a :class:`Sink`
  (raising :class:`AttemptFailed` with what the source answered);
- ``list_<scheme>(url, ctx) -> list[Listed]`` expands a folder entry (a manifest file
  whose name ends in ``/``) into files, each with a URL one of the fetchers takes.
"""

from __future__ import annotations

from collections.abc import Callable

from provision.sources.base import AttemptFailed, SourceContext
from provision.sources.file import fetch_file
from provision.sources.hf import fetch_hf, list_hf
from provision.sources.http import fetch_http
from provision.sources.listing import Listed
from provision.sources.partial import Sink
from provision.sources.r2 import list_r2
from provision.sources.s3 import fetch_s3, list_s3

__all__ = ["fetch_url", "list_url", "scheme_of"]

Fetcher = Callable[[str, Sink, SourceContext], None]

_FETCHERS: dict[str, Fetcher] = {
    "http": fetch_http,
    "https": fetch_http,
    "file": fetch_file,
    "path": fetch_file,
    "hf": fetch_hf,
    "hf-dataset": fetch_hf,
    "s3": fetch_s3,
}

Lister = Callable[[str, SourceContext], list[Listed]]

_LISTERS: dict[str, Lister] = {
    "mlc-r2": list_r2,
    "hf": list_hf,
    "hf-dataset": list_hf,
    "s3": list_s3,
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


def list_url(url: str, ctx: SourceContext) -> list[Listed]:
    """The files a folder URL stands for, with the lister for its scheme."""
    scheme = scheme_of(url)
    lister = _LISTERS.get(scheme)
    if lister is None:
        raise AttemptFailed(f"{scheme!r} URLs cannot list a folder (use mlc-r2://, hf://…/<glob>, s3://…/)")
    return lister(url, ctx)
