"""Cloudflare Access, the gate in front of MLCommons' members-only R2 buckets.

What a refusal looks like (a redirect to the Access login, ``cf_authorization``, ...), the one
message that says which credentials to set, and whether they are set here (for ``doctor``).
The credentials are ``CF_ACCESS_CLIENT_ID`` + ``CF_ACCESS_CLIENT_SECRET`` (a service token) or
``PROVISION_R2_TOKEN`` (from ``cloudflared``); :mod:`provision.config` sends them to
``*.mlcommons-storage.org`` and the ``PROVISION_R2_HOSTS`` only. Their values are never shown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from provision.config import Settings, redact_url
from provision.sources.base import AccessFailure, AttemptFailed, Credential

__all__ = ["access_credential", "cloudflare_access_failure", "cloudflare_login_wanted", "sends_access_credentials"]

#: Where Cloudflare Access sends a request that needs a login.
_CF_LOGIN = re.compile(r"/cdn-cgi/access/login|^[a-z][a-z0-9+.-]*://[^/?#]*\.cloudflareaccess\.com(?:[:/?#]|$)", re.I)


def cloudflare_login_wanted(headers: Mapping[str, str]) -> bool:
    """Whether a response with ``headers`` says Cloudflare Access wants a login (the rules of MLCommons' downloader)."""
    h = headers
    return bool(
        _CF_LOGIN.search(h.get("Location", ""))
        or "cf_authorization" in h.get("WWW-Authenticate", "").lower()
        or "cf-access-required" in h
        or "cf_appsession" in h.get("Set-Cookie", "").lower()
    )


def cloudflare_access_failure(url: str, sent: dict[str, str]) -> AttemptFailed:
    """The one message for a Cloudflare Access refusal of ``url``; ``sent`` = the request's headers.

    Names the variables to set and, when credentials were sent, that they were refused;
    never their values.
    """
    parts = urlsplit(url)
    shown = redact_url(f"{parts.scheme}://{parts.netloc}{parts.path}")
    names = {k.lower() for k in sent}
    refused = ""
    if "cf-access-client-id" in names:
        refused = (
            " The service token (CF_ACCESS_CLIENT_ID/CF_ACCESS_CLIENT_SECRET) was sent and refused: check it "
            "is current and that the bucket's Access policy admits it."
        )
    if "cf-access-token" in names:
        refused += (
            " The PROVISION_R2_TOKEN was sent and refused (expired? log in again with cloudflared, "
            "then take a new token)."
        )
    host = (parts.hostname or "").lower()
    hosts = (
        ""
        if refused or host.endswith(".mlcommons-storage.org")
        else f"; list {host} in PROVISION_R2_HOSTS so it gets them"
    )
    return AccessFailure(
        f"{host or shown} needs a Cloudflare Access login: this MLCommons R2 bucket is for MLCommons members "
        "(request access from MLCommons and accept the licence). Set CF_ACCESS_CLIENT_ID + "
        f"CF_ACCESS_CLIENT_SECRET (a service token), or PROVISION_R2_TOKEN (run 'cloudflared access login {shown}' "
        f"then 'cloudflared access token --app={shown}'){hosts}.{refused}"
    )


def sends_access_credentials(headers: Mapping[str, str]) -> bool:
    """Whether ``headers`` carry Cloudflare Access credentials (a service token or a cloudflared token)."""
    return any(k.lower() in ("cf-access-client-id", "cf-access-token") for k in headers)


_FIX = (
    "export CF_ACCESS_CLIENT_ID and CF_ACCESS_CLIENT_SECRET (an MLCommons service token), or "
    "PROVISION_R2_TOKEN=$(cloudflared access token --app={url}); request access from MLCommons first"
)


def access_credential(host: str, settings: Settings) -> Credential:
    """Whether the Cloudflare Access credentials for R2 host ``host`` are set (never their values)."""
    keys = {k.lower() for k in settings.headers_for(host)}
    if {"cf-access-client-id", "cf-access-client-secret"} <= keys or "cf-access-token" in keys:
        return Credential(True, f"MLCommons R2 ({host}): Cloudflare Access credentials present (not shown)")
    return Credential(
        False, f"MLCommons Members only ({host}) and no R2 credentials are set", _FIX.format(url=f"https://{host}")
    )
