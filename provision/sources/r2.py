"""``mlc-r2://<host>/metadata/<name>.uri``: MLCommons R2 buckets, listed as a folder.

MLCommons publishes each dataset/model of its R2 buckets as two metadata files, read
here the way its own downloader (``mlc-r2-downloader.sh``) reads them:

- ``https://<host>/metadata/<name>.uri``: one line, the absolute https URL of the
  directory that holds the files (no trailing slash);
- ``https://<host>/metadata/<name>.md5``: ``rclone md5sum`` of that directory, one
  ``<32 hex>  <relative path>`` per line (a leading ``./`` allowed). A line whose hash is
  blank (34 spaces, then the path: R2 keeps no md5 for multipart uploads) lists a file
  with no published checksum: it is pinned by sha256 on first use.

:func:`list_r2` returns one :class:`Listed` per line, ``<base>/<path>`` fetched by the
HTTP engine (resume, segments, retries). The host is reached over ``https://`` — plain
``http://`` only when it is a loopback address (``127.0.0.1``, ``::1``, ``localhost``),
for local tests and mirrors; likewise the ``.uri`` may name an ``http://`` folder only on
a loopback host. Both metadata files go through :class:`HttpClient`, so the R2
credentials (``CF_ACCESS_CLIENT_ID`` + ``CF_ACCESS_CLIENT_SECRET``, or
``PROVISION_R2_TOKEN``; see :mod:`provision.config`) and the retry rules apply, and a
Cloudflare Access refusal is reported once, with what to set.
"""

from __future__ import annotations

import ipaddress
import re
import time
from urllib.parse import quote, urlsplit

import requests
import urllib3

from provision.config import Settings
from provision.manifest.checksum import Checksum
from provision.sources.base import (
    AccessFailure,
    AttemptFailed,
    OfflineFailure,
    Probe,
    Retry,
    SourceContext,
    StatusFailure,
    looks_like_html,
)
from provision.sources.cloudflare import access_credential, cloudflare_access_failure
from provision.sources.http import HttpClient
from provision.sources.listing import Listed

__all__ = ["list_r2", "parse_md5_list", "r2_metadata_urls"]

#: Largest ``.uri`` / ``.md5`` body read (a listing of ~100k files fits in the latter).
_URI_MAX = 64 << 10
_MD5_MAX = 32 << 20
#: ``<md5 or 32 spaces>`` + separator (``"  "`` text or ``" *"`` binary, as md5sum writes) + path.
_LINE = re.compile(r"([0-9a-fA-F]{32}| {32}) [ *](.+)")
_FORM = "mlc-r2://<host>/metadata/<name>.uri"


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def r2_metadata_urls(url: str) -> tuple[str, str]:
    """The ``.uri`` and ``.md5`` URLs an ``mlc-r2://`` URL stands for (https; http on loopback)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise AttemptFailed(f"{url!r} is not a valid mlc-r2 URL ({exc}); expected {_FORM}") from None
    host = parts.hostname or ""
    if parts.scheme.lower() != "mlc-r2" or not host or parts.username or parts.password:
        raise AttemptFailed(f"{url!r} is not an mlc-r2 URL; expected {_FORM}")
    if parts.query or parts.fragment:
        raise AttemptFailed(f"{url!r}: an mlc-r2 URL takes no query or fragment; expected {_FORM}")
    path = parts.path
    name = path.rsplit("/", 1)[-1]
    if not name.endswith(".uri") or name == ".uri":
        raise AttemptFailed(f"{url!r} does not name a .uri metadata file; expected {_FORM}")
    scheme = "http" if _is_loopback(host) else "https"
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    uri = f"{scheme}://{netloc}{path}"
    return uri, uri[: -len(".uri")] + ".md5"


def _read_body(resp: requests.Response, limit: int, url: str) -> bytes:
    data = bytearray()
    try:
        while chunk := resp.raw.read(65536):
            data += chunk
            if len(data) > limit:
                raise AttemptFailed(f"{url}: larger than {limit} bytes; not an R2 metadata file")
    except (urllib3.exceptions.HTTPError, requests.exceptions.RequestException, OSError) as exc:
        raise Retry(f"connection lost mid-body ({exc.__class__.__name__})") from exc
    finally:
        resp.close()
    return bytes(data)


def _get(client: HttpClient, url: str, limit: int) -> bytes:
    """GET a small metadata file with the engine's retry rules; AttemptFailed when it cannot."""
    failures = 0
    while True:
        if client.ctx.cancel.is_set():
            raise KeyboardInterrupt
        try:
            with client.slots:
                resp = client.open(url, {})
                return _read_body(resp, limit, url)
        except Retry as exc:
            failures += 1
            if failures > client.settings.retries:
                raise exc.give_up(f"{url}: {exc.answer} (gave up after {failures} tries)") from None
            time.sleep(client.sleep_for(failures, exc.delay))
        except StatusFailure as exc:
            if exc.status in (401, 403):
                raise cloudflare_access_failure(
                    url, client.settings.headers_for(urlsplit(url).hostname or "")
                ) from None
            if exc.status == 404:
                raise exc.retold(f"{url}: {exc} (no such R2 metadata file; check the name)") from None
            raise exc.retold(f"{url}: {exc}") from None
        except AccessFailure:
            raise  # names the host and what to set already
        except AttemptFailed as exc:
            raise exc.retold(f"{url}: {exc}") from None


def _text(data: bytes, url: str, what: str) -> str:
    if looks_like_html(data[:1024]):
        raise AttemptFailed(f"{url}: an HTML page (a login or error page?), not {what}")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise AttemptFailed(f"{url}: not UTF-8 text, so not {what}") from None


def _shown(text: str, width: int = 80) -> str:
    return repr(text if len(text) <= width else text[:width] + "…")


def parse_base(text: str, url: str) -> str:
    """The folder URL a ``.uri`` body names (trailing slashes dropped); AttemptFailed otherwise."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        got = "nothing" if not lines else f"{len(lines)} lines"
        raise AttemptFailed(f"{url}: expected one line holding the folder URL, got {got}")
    base = lines[0].rstrip("/")
    try:
        parts = urlsplit(base)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        parts, port_ok = None, False
    ok = (
        parts is not None
        and port_ok
        and parts.scheme in ("https", "http")
        and bool(parts.hostname)
        and not (parts.query or parts.fragment or parts.username or parts.password)
        and not any(c.isspace() or ord(c) < 32 for c in base)
    )
    if not ok or parts is None:
        raise AttemptFailed(f"{url}: does not hold an absolute https folder URL (got {_shown(lines[0])})")
    if parts.scheme == "http" and not _is_loopback(parts.hostname or ""):
        raise AttemptFailed(f"{url}: names a plain-http folder ({_shown(base)}); only https is accepted")
    return base


def _clean_path(raw: str) -> str | None:
    """The relative path of an md5 line (``./`` dropped), or None when unsafe."""
    path = raw
    while path.startswith("./"):
        path = path[2:]
    parts = path.split("/")
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or any(p in ("", ".", "..") for p in parts)
        or any(ord(c) < 32 or c == "\x7f" for c in path)
    ):
        return None
    return path


def parse_md5_list(text: str, url: str) -> list[tuple[str, Checksum]]:
    """``[(relative path, checksum)]`` from an ``rclone md5sum`` listing, in file order.

    A blank hash gives :meth:`Checksum.unpublished`. Malformed lines, unsafe paths
    (absolute, ``..``), duplicates and a path that is also a folder raise
    :class:`AttemptFailed` naming the line.
    """
    out: list[tuple[str, Checksum]] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        m = _LINE.fullmatch(line)
        if m is None:
            raise AttemptFailed(
                f"{url} line {number}: expected '<32 hex md5>  <path>' (or 34 spaces then the path), got {_shown(line)}"
            )
        digest, raw = m.group(1).strip().lower(), m.group(2)
        path = _clean_path(raw)
        if path is None:
            raise AttemptFailed(
                f"{url} line {number}: unsafe path {_shown(raw)} (must be relative, without '..', '.' or empty parts)"
            )
        if path in seen:
            raise AttemptFailed(f"{url} line {number}: {path!r} is listed twice (also line {seen[path]})")
        seen[path] = number
        out.append((path, Checksum("md5", digest) if digest else Checksum.unpublished()))
    for path, number in seen.items():
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in seen:
                raise AttemptFailed(
                    f"{url} line {number}: {path!r} lies inside {parent!r}, which line {seen[parent]} lists as a file"
                )
    return out


def list_r2(url: str, ctx: SourceContext) -> list[Listed]:
    """Resolve the ``.uri`` and ``.md5`` metadata into the files to download."""
    uri_url, md5_url = r2_metadata_urls(url)
    if ctx.settings.offline:
        raise OfflineFailure()
    client = ctx.http if isinstance(ctx.http, HttpClient) else HttpClient(ctx)
    if ctx.http is None:
        ctx.http = client
    base = parse_base(_text(_get(client, uri_url, _URI_MAX), uri_url, "a .uri file"), uri_url)
    entries = parse_md5_list(_text(_get(client, md5_url, _MD5_MAX), md5_url, "an md5 list"), md5_url)
    if not entries:
        raise AttemptFailed(f"the R2 listing {md5_url} names no files; refusing to fetch an empty folder")
    return [Listed(path=path, url=f"{base}/{quote(path)}", checksum=checksum, size=None) for path, checksum in entries]


def probe_r2(url: str, access: str, settings: Settings) -> Probe:
    """Doctor's view of an ``mlc-r2://`` URL: the metadata host to reach, and the Access credentials of a
    members-only bucket."""
    try:
        metadata: str | None = r2_metadata_urls(url)[0]
    except AttemptFailed:
        metadata = None  # malformed: lint and fetch say so
    host = urlsplit(metadata or url).hostname or ""
    return Probe(reach=metadata, credential=access_credential(host, settings) if access == "members" else None)
