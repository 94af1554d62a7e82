"""The table of URL schemes: every other module asks it instead of knowing the schemes (pooch's
``choose_downloader``).

- ``fetch_<scheme>(url, sink, ctx)`` moves one file's bytes into a :class:`Sink`
  (raising :class:`AttemptFailed` with what the source answered);
- ``list_<scheme>(url, ctx) -> list[Listed]`` expands a folder entry (a manifest file
  whose name ends in ``/``) into files, each with a URL one of the fetchers takes;
- ``probe_<scheme>(url, access, settings) -> Probe`` tells ``provision doctor`` what to check for
  the URL (the host to reach, the credentials its access gate needs) without using it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from provision.config import Settings
from provision.sources.base import AttemptFailed, Probe, SourceContext
from provision.sources.file import fetch_file
from provision.sources.hf import fetch_hf, list_hf, probe_hf
from provision.sources.http import fetch_http, probe_http
from provision.sources.listing import Listed
from provision.sources.manual import probe_manual
from provision.sources.partial import Sink
from provision.sources.r2 import list_r2, probe_r2
from provision.sources.s3 import fetch_s3, list_s3, probe_s3

__all__ = ["SCHEMES", "Scheme", "fetch_url", "list_url", "probe_url", "scheme_of"]

Fetcher = Callable[[str, Sink, SourceContext], None]
Lister = Callable[[str, SourceContext], list[Listed]]
Prober = Callable[[str, str, Settings], Probe]


def probe_local(url: str, access: str, settings: Settings) -> Probe:
    """A local path or ``file://`` URL: nothing to reach, no credentials."""
    return Probe()


@dataclass(frozen=True)
class Scheme:
    """What provision can do with URLs of one scheme: fetch a file, list a folder, describe it for doctor."""

    fetch: Fetcher | None
    list: Lister | None
    probe: Prober


_HTTP = Scheme(fetch_http, None, probe_http)
_LOCAL = Scheme(fetch_file, None, probe_local)
_HUB = Scheme(fetch_hf, list_hf, probe_hf)

#: Every URL scheme a manifest may use (and ``path``: a plain local path) -> its source.
SCHEMES: Mapping[str, Scheme] = MappingProxyType(
    {
        "http": _HTTP,
        "https": _HTTP,
        "file": _LOCAL,
        "path": _LOCAL,
        "manual": Scheme(None, None, probe_manual),
        "hf": _HUB,
        "hf-dataset": _HUB,
        "mlc-r2": Scheme(None, list_r2, probe_r2),
        "s3": Scheme(fetch_s3, list_s3, probe_s3),
    }
)


def scheme_of(url: str) -> str:
    """``http``, ``https``, ``file``, ``manual`` or ``path`` (a plain local path)."""
    if url.startswith("manual:"):
        return "manual"
    scheme, sep, _ = url.partition("://")
    return scheme.lower() if sep else "path"


def fetch_url(url: str, sink: Sink, ctx: SourceContext) -> None:
    """Move ``url``'s bytes into ``sink`` with the source for its scheme."""
    scheme = scheme_of(url)
    source = SCHEMES.get(scheme)
    if source is None or source.fetch is None:
        raise AttemptFailed(f"no source handles {scheme!r} URLs")
    source.fetch(url, sink, ctx)


def list_url(url: str, ctx: SourceContext) -> list[Listed]:
    """The files a folder URL stands for, with the lister for its scheme."""
    scheme = scheme_of(url)
    source = SCHEMES.get(scheme)
    if source is None or source.list is None:
        raise AttemptFailed(f"{scheme!r} URLs cannot list a folder (use mlc-r2://, hf://…/<glob>, s3://…/)")
    return source.list(url, ctx)


def probe_url(url: str, access: str, settings: Settings) -> Probe:
    """What doctor should check for ``url`` of an artifact with ``access`` (nothing for an unknown scheme)."""
    source = SCHEMES.get(scheme_of(url))
    return source.probe(url, access, settings) if source is not None else Probe()
