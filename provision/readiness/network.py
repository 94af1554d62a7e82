"""Whether NAME's sources can be reached from here, and whether the credentials its gated sources
need are set (never shown)."""

from __future__ import annotations

import errno
import http.client
import re
import socket
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
import urllib3

from provision.config import Settings
from provision.manifest.folders import as_fetched
from provision.manifest.lockfile import LockFile
from provision.manifest.model import Artifact
from provision.readiness.machine import (
    Check,
    Status,
)
from provision.readiness.needs import file_in_cache
from provision.sources.base import causes
from provision.sources.http import new_session
from provision.sources.mirrors import mirror_urls
from provision.sources.schemes import probe_url
from provision.store.cache import Store

__all__ = ["check_credentials", "check_network"]


@dataclass
class _Host:
    """One host to reach: the URL to HEAD and the files it can serve (by ``artifact/file``)."""

    url: str
    files: set[str] = field(default_factory=set)
    answer: str = ""
    reached: bool = False
    error: str = ""
    fix: str = ""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.rpartition('@')[2].lower()}"


_NET_FIX = "check DNS, routes and proxy settings (HTTPS_PROXY, NO_PROXY)"


def _reason(exc: requests.RequestException, timeout: float) -> tuple[str, str]:
    """A short description of why a HEAD failed, and the fix (never the URL's credentials), by the
    exception types under it."""
    if isinstance(exc, requests.exceptions.SSLError):
        text = re.sub(r"//[^/@\s]+@", "//", str(exc))
        short = re.search(r"certificate verify failed: ([^(\"')]+)", text)  # the detail shown, not the decision
        return (
            f"TLS verification failed ({short.group(1).strip() if short else 'SSL error'})",
            "if a proxy intercepts TLS, point REQUESTS_CA_BUNDLE at its CA certificate (verification stays on)",
        )
    if isinstance(exc, requests.exceptions.ProxyError):
        return "the proxy failed or refused the connection", "check HTTPS_PROXY / HTTP_PROXY and NO_PROXY"
    if isinstance(exc, requests.exceptions.Timeout):
        return f"no answer within {timeout:g} s", _NET_FIX
    for cause in causes(exc):
        if isinstance(cause, (socket.gaierror, urllib3.exceptions.NameResolutionError)):
            return "cannot resolve the host name (no DNS or no network)", _NET_FIX
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused", _NET_FIX
        if isinstance(cause, OSError) and cause.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "network unreachable", _NET_FIX
        if isinstance(cause, (ConnectionResetError, http.client.RemoteDisconnected)):
            return "connection reset", _NET_FIX
    return f"{type(exc).__name__}", _NET_FIX


def _head(host: _Host, timeout: float) -> None:
    session = new_session()
    start = time.monotonic()
    try:
        resp = session.head(host.url, timeout=(timeout, timeout), allow_redirects=False)
        resp.close()
        host.reached = True
        host.answer = f"HTTP {resp.status_code} in {(time.monotonic() - start) * 1000:.0f} ms"
        if resp.status_code >= 500:
            host.error = f"answers HTTP {resp.status_code}"
    except requests.RequestException as exc:
        host.error, host.fix = _reason(exc, timeout)
    finally:
        session.close()


def check_network(
    arts: Sequence[Artifact], settings: Settings, *, network: bool = True, timeout: float = 3.0
) -> list[Check]:
    """HEAD each source host of ``arts`` (and each mirror) once: one line per host; manual sources skip."""
    store = Store(settings.cache_dir)
    hosts: dict[str, _Host] = {}
    checks: list[Check] = []
    needed: set[str] = set()
    skipped: dict[str, str] = {}  # a scheme whose reachability provision does not check -> why
    for art in arts:
        for spec in art.files:
            key = f"{art.name}/{spec.name}"
            here = file_in_cache(store, art, spec)
            if not here:
                needed.add(key)
            urls = mirror_urls(spec.checksum, settings.mirrors)
            for url in [*urls, *spec.urls]:
                probe = probe_url(url, art.access, settings)
                if probe.manual is not None:
                    # A licensed file no download can bring: until it is here the machine is not ready.
                    checks.append(
                        Check(f"manual {art.name}", "ok", f"{spec.name}: in the cache ({probe.manual})")
                        if here
                        else Check(
                            f"manual {art.name}",
                            "fail",
                            f"{spec.name}: licensed, not in the cache: download it from {probe.manual}",
                            f"provision fetch {art.name} --from <the downloaded file or its folder>",
                        )
                    )
                if probe.skip is not None:
                    skipped.setdefault(*probe.skip)
                if probe.reach is not None:
                    hosts.setdefault(_origin(probe.reach), _Host(probe.reach)).files.add(key)
    checks += [Check(f"reach {name}", "skip", why) for name, why in skipped.items()]
    if not hosts:
        return checks
    if settings.offline or not network:
        why = "offline (PROVISION_OFFLINE=1)" if settings.offline else "not checked (--no-network)"
        for origin, host in hosts.items():
            todo = len(host.files & needed)
            name = f"reach {origin.split('://')[1]}"
            if todo and settings.offline:
                # Offline with files still to fetch: not ready until they are brought another way.
                checks.append(
                    Check(
                        name,
                        "fail",
                        f"{why}; {todo} file(s) not cached come from here",
                        "bring them with 'provision fetch NAME --from <file or folder>' or a PROVISION_MIRRORS mirror",
                    )
                )
            else:
                checks.append(Check(name, "skip", why))
        return checks
    with ThreadPoolExecutor(max_workers=min(16, len(hosts))) as pool:
        list(pool.map(lambda h: _head(h, timeout), hosts.values()))
    reachable = {f for h in hosts.values() if h.reached and not h.error for f in h.files}
    offline = not any(h.reached for h in hosts.values())
    for origin, host in hosts.items():
        name = f"reach {origin.split('://')[1]}"
        if host.reached and not host.error:
            how = "TLS verified" if origin.startswith("https") else "plain http: bytes checked against the checksum"
            checks.append(Check(name, "ok", f"{host.answer} ({origin}, {how})"))
            continue
        what = host.error + (f" ({host.answer})" if host.answer else "")
        stuck = sorted(f for f in host.files & needed if f not in reachable)
        fix = "" if offline else host.fix
        if not stuck:
            rest = "its files are cached" if not host.files & needed else "its files have other reachable sources"
            checks.append(Check(name, "warn", f"{what}; {rest}", fix))
        else:
            more = f" and {len(stuck) - 2} more" if len(stuck) > 2 else ""
            checks.append(Check(name, "fail", f"{what}; no reachable source for {', '.join(stuck[:2])}{more}", fix))
    if offline:
        # Offline only matters when something is still to fetch: a fully cached NAME is ready.
        waiting = any(host.files & needed for host in hosts.values())
        checks.append(
            Check(
                "network",
                "fail" if waiting else "warn",
                f"none of {len(hosts)} host(s) answered: this machine looks offline"
                + ("" if waiting else " (everything NAME needs is cached)"),
                f"{_NET_FIX}; on an air-gapped machine bring files with --from (or PROVISION_MIRRORS) and set "
                "PROVISION_OFFLINE=1 (the doctor then skips these checks)",
            )
        )
    return checks


def _credential(art: Artifact, settings: Settings) -> Check | None:
    """The credential check of one artifact: what the first of its sources that has a gate says (None: no gate)."""
    for url in (u for f in art.files for u in f.urls):
        credential = probe_url(url, art.access, settings).credential
        if credential is not None:
            status: Status = "skip" if credential.present is None else ("ok" if credential.present else "fail")
            return Check(f"credentials {art.name}", status, credential.detail, credential.fix)
    return None


def check_credentials(arts: Sequence[Artifact], settings: Settings) -> list[Check]:
    """For each gated / members-only / s3 artifact: are its credentials set? Never shows them."""
    store = Store(settings.cache_dir)
    checks: list[Check] = []
    for art in arts:
        check = _credential(art, settings)
        if check is None:
            continue
        if check.status == "fail" and store.usage(as_fetched(art, LockFile(settings.lock_path)))["state"] == "present":
            check = Check(check.name, "ok", "in the cache; no credentials needed now")
        checks.append(check)
    return checks or [Check("credentials", "ok", "no token needed (public sources, or files brought with --from)")]


def check_mirrors(settings: Settings, *, network: bool = True, timeout: float = 3.0) -> list[Check]:
    """Does each ``PROVISION_MIRRORS`` base answer? One line each (none when no mirror is set).

    ``http(s)``: a HEAD of the base URL; any HTTP answer below 500 means the server is there (a
    static server may answer 403 or 404 for the folder itself). ``file://`` / a path: the folder
    exists and is readable, with its ``<alg>/`` subfolders. ``s3://``: skipped (boto3's own
    configuration decides endpoint and credentials). A mirror is only ever tried before the
    origins, so one that does not answer is a warning, never a failure.
    """
    from provision.config import redact_url
    from provision.sources.file import url_to_path

    checks = []
    for base in settings.mirrors:
        scheme = urlsplit(base).scheme.lower()
        name = f"mirror {redact_url(base)}"  # a mirror URL's credentials are never shown
        if scheme in ("http", "https"):
            if settings.offline or not network:
                checks.append(
                    Check(name, "skip", "offline (PROVISION_OFFLINE=1)" if settings.offline else "not checked")
                )
                continue
            host = _Host(base.rstrip("/") + "/")
            _head(host, timeout)
            if host.reached and not host.error:
                checks.append(Check(name, "ok", f"{host.answer}: it answers (every byte from it is verified)"))
            else:
                what = host.error + (f" ({host.answer})" if host.answer else "")
                checks.append(Check(name, "warn", f"{what}; fetches fall back to the origins", host.fix))
        elif scheme in ("", "file"):
            folder = url_to_path(base)
            if folder.is_dir():
                algs = sorted(p.name for p in folder.iterdir() if p.is_dir())
                detail = f"folder with {', '.join(algs) or 'no'} checksum folders"
                checks.append(Check(name, "ok" if algs else "warn", detail, "" if algs else "export into it first"))
            else:
                fix = "mount it, or fill it with 'provision mirror export NAME... DIR'"
                checks.append(Check(name, "warn", f"no folder {folder}", fix))
        else:
            why = "boto3's own configuration decides" if scheme == "s3" else "provision fetches nothing over it"
            checks.append(Check(name, "skip", f"{scheme}:// mirrors are not probed ({why})"))
    return checks
