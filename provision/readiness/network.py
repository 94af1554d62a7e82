"""Whether NAME's sources can be reached from here, and whether the credentials its gated sources
need are set (never shown)."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from provision.config import Settings
from provision.manifest.folders import as_fetched
from provision.manifest.lockfile import LockFile
from provision.manifest.model import Artifact
from provision.readiness.machine import (
    Check,
    Status,
)
from provision.readiness.needs import file_in_cache
from provision.sources.base import AttemptFailed
from provision.sources.http import new_session
from provision.sources.r2 import r2_metadata_urls
from provision.sources.schemes import scheme_of
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
    """A short description of why a HEAD failed, and the fix (never the URL's credentials)."""
    text = re.sub(r"//[^/@\s]+@", "//", str(exc))
    if isinstance(exc, requests.exceptions.SSLError):
        short = re.search(r"certificate verify failed: ([^(\"')]+)", text)
        return (
            f"TLS verification failed ({short.group(1).strip() if short else 'SSL error'})",
            "if a proxy intercepts TLS, point REQUESTS_CA_BUNDLE at its CA certificate (verification stays on)",
        )
    if isinstance(exc, requests.exceptions.ProxyError):
        return "the proxy failed or refused the connection", "check HTTPS_PROXY / HTTP_PROXY and NO_PROXY"
    if isinstance(exc, requests.exceptions.Timeout):
        return f"no answer within {timeout:g} s", _NET_FIX
    for pattern, answer in (
        (
            r"NameResolution|Name or service not known|Temporary failure in name resolution|nodename nor servname",
            "cannot resolve the host name (no DNS or no network)",
        ),
        (r"Connection refused|Errno 111", "connection refused"),
        (r"Network is unreachable|No route to host", "network unreachable"),
        (r"Connection reset|RemoteDisconnected", "connection reset"),
    ):
        if re.search(pattern, text):
            return answer, _NET_FIX
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
    s3 = False
    for art in arts:
        for spec in art.files:
            key = f"{art.name}/{spec.name}"
            here = file_in_cache(store, art, spec)
            if not here:
                needed.add(key)
            urls = [f"{m}/{spec.checksum.alg}/{spec.checksum.hex}" for m in settings.mirrors if spec.checksum.known]
            for url in [*urls, *spec.urls]:
                scheme = scheme_of(url)
                if scheme == "manual":
                    status: Status = "ok" if here else "skip"
                    detail = "in the cache" if here else "licensed: bring the file with --from"
                    where = url.removeprefix("manual:")
                    checks.append(Check(f"manual {art.name}", status, f"{spec.name}: {detail} ({where})"))
                    continue
                if scheme == "s3":
                    s3 = True
                    continue
                if scheme in ("hf", "hf-dataset"):
                    url = settings.hf_endpoint.rstrip("/") + "/"
                elif scheme == "mlc-r2":
                    try:
                        url = r2_metadata_urls(url)[0]
                    except AttemptFailed:
                        continue
                elif scheme not in ("http", "https"):
                    continue  # file:// and plain paths need no network
                hosts.setdefault(_origin(url), _Host(url)).files.add(key)
    if s3:
        checks.append(Check("reach s3", "skip", "s3:// endpoints and credentials come from boto3's own configuration"))
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
                        "warn",
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


_R2_FIX = (
    "export CF_ACCESS_CLIENT_ID and CF_ACCESS_CLIENT_SECRET (an MLCommons service token), or "
    "PROVISION_R2_TOKEN=$(cloudflared access token --app={url}); request access from MLCommons first"
)


def _hf_page(url: str, endpoint: str) -> str:
    from provision.sources.hf import parse_hf_url

    try:
        ref = parse_hf_url(url, listing=True)
    except AttemptFailed:
        return endpoint
    return f"{endpoint}/{'datasets/' if ref.repo_type == 'dataset' else ''}{ref.repo_id}"


def _credential(art: Artifact, settings: Settings) -> Check | None:
    """The credential check of one artifact (None when it needs none)."""
    name = f"credentials {art.name}"
    endpoint = settings.hf_endpoint.rstrip("/")
    hf_hosts = {"huggingface.co", (urlsplit(endpoint).hostname or "").lower()}
    for url in (u for f in art.files for u in f.urls):
        scheme = scheme_of(url)
        host = (urlsplit(url).hostname or "").lower()
        if scheme == "s3":
            return Check(name, "skip", "s3: boto3's own credential chain (AWS_PROFILE, AWS_ACCESS_KEY_ID, roles)")
        if art.access == "gated" and (scheme in ("hf", "hf-dataset") or host in hf_hosts):
            present = bool(settings.hf_token or settings.headers_for(host or "huggingface.co").get("Authorization"))
            if present:
                return Check(name, "ok", "gated Hub repository: HF_TOKEN present (not shown)")
            page = _hf_page(url, endpoint) if scheme != "https" else url.split("/resolve/")[0]
            return Check(
                name,
                "fail",
                "gated Hub repository and HF_TOKEN is not set",
                f"accept the licence on {page}, then export HF_TOKEN=<a read token from {endpoint}/settings/tokens>",
            )
        if art.access == "members" and (scheme == "mlc-r2" or host.endswith("mlcommons-storage.org")):
            r2_host = host
            if scheme == "mlc-r2":
                with contextlib.suppress(AttemptFailed):
                    r2_host = urlsplit(r2_metadata_urls(url)[0]).hostname or host
            keys = {k.lower() for k in settings.headers_for(r2_host)}
            if {"cf-access-client-id", "cf-access-client-secret"} <= keys or "cf-access-token" in keys:
                return Check(name, "ok", f"MLCommons R2 ({r2_host}): Cloudflare Access credentials present (not shown)")
            return Check(
                name,
                "fail",
                f"MLCommons Members only ({r2_host}) and no R2 credentials are set",
                _R2_FIX.format(url=f"https://{r2_host}"),
            )
        if art.access in ("gated", "members") and scheme in ("http", "https"):
            if settings.headers_for(host):
                return Check(name, "ok", f"{art.access}: credentials for {host} present (not shown)")
            return Check(
                name,
                "fail",
                f"{art.access} and no token is configured for {host}",
                f'add [hosts."{host}"] with a token to the auth file (PROVISION_AUTH_FILE, default '
                "~/.config/provision/auth.toml)",
            )
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
