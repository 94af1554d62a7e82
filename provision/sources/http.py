"""``http://`` and ``https://``: one streaming GET through the shared ``requests.Session``.

TLS verification is always on (``REQUESTS_CA_BUNDLE`` and proxy variables are honoured
by requests itself); there is no option to turn it off.
"""

from __future__ import annotations

import requests

from .. import __version__
from .base import AttemptFailed, Sink, SourceContext, expects_html

__all__ = ["USER_AGENT", "fetch_http", "new_session"]

USER_AGENT = f"provision/{__version__} (+https://github.com/mlcommons/inference; python-requests)"

_STREAM_CHUNK = 1 << 20


def new_session() -> requests.Session:
    """A ``requests.Session`` with provision's User-Agent; verification stays on."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


def fetch_http(url: str, sink: Sink, ctx: SourceContext) -> None:
    """Stream ``url`` into ``sink``; :class:`AttemptFailed` with what the server said."""
    if ctx.settings.offline:
        raise AttemptFailed("not tried: PROVISION_OFFLINE=1", offline=True)
    session = ctx.session
    if session is None:
        session = ctx.session = new_session()
    timeout = (ctx.settings.connect_timeout, ctx.settings.read_timeout)
    try:
        with session.get(url, stream=True, timeout=timeout, allow_redirects=True) as resp:
            if resp.status_code != 200:
                reason = resp.reason or ""
                raise AttemptFailed(f"HTTP {resp.status_code} {reason}".strip())
            ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if ctype in ("text/html", "application/xhtml+xml") and not expects_html(sink.spec):
                raise AttemptFailed(f"HTTP 200 but Content-Type {ctype} (an HTML page, not the file)")
            length = resp.headers.get("Content-Length")
            encoding = resp.headers.get("Content-Encoding", "identity").lower()
            total = int(length) if length and length.isdigit() and encoding == "identity" else None
            sink.begin(total)
            # iter_content (not raw.stream) so that a broken transfer surfaces as a requests exception
            for chunk in resp.iter_content(_STREAM_CHUNK):
                if chunk:
                    sink.write(chunk)
    except requests.exceptions.SSLError as exc:
        raise AttemptFailed(
            f"TLS verification failed ({exc.__class__.__name__}); "
            "set REQUESTS_CA_BUNDLE to your CA bundle if you use a TLS proxy"
        ) from exc
    except requests.exceptions.Timeout as exc:
        raise AttemptFailed(f"timed out ({exc.__class__.__name__})") from exc
    except requests.exceptions.ConnectionError as exc:
        raise AttemptFailed(f"connection failed ({_short(exc)})") from exc
    except requests.exceptions.RequestException as exc:
        raise AttemptFailed(f"request failed ({_short(exc)})") from exc
    except (OSError, ValueError) as exc:
        if isinstance(exc, AttemptFailed):
            raise
        raise AttemptFailed(f"transfer failed ({_short(exc)})") from exc


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return text[:200]
