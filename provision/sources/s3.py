"""``s3://bucket/key``: objects in S3 and S3-compatible stores, through boto3.

- boto3 is optional (``pip install 'provision[s3]'``) and imported on first use; without
  it an ``s3://`` URL fails with that hint and the next URL of the file is tried.
- Configuration is boto3's own, read by boto3 itself (provision reads no ``AWS_*``
  variable): ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (and
  ``AWS_SESSION_TOKEN``), ``AWS_PROFILE`` with ``~/.aws/credentials`` and
  ``~/.aws/config`` (``AWS_SHARED_CREDENTIALS_FILE``, ``AWS_CONFIG_FILE``), instance and
  container roles, ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL`` or
  ``AWS_ENDPOINT_URL_S3`` for an S3-compatible store (MinIO, Ceph, R2, …; botocore 1.31+,
  i.e. boto3 1.28+), and ``AWS_CA_BUNDLE`` for a private CA. TLS verification stays on.
- When no credentials are found the requests go unsigned (anonymous), as public buckets
  such as OpenImages' expect. Off EC2, ``AWS_EC2_METADATA_DISABLED=true`` skips boto3's
  (about one second) instance-metadata probe for credentials.
- A transfer is one GET streamed into the sink. A connection that drops mid-body
  continues with ``Range`` + ``If-Match`` (the ETag), also in a later run (the partial's
  state keeps URL, ETag and size); an object that changed restarts from byte 0.
  Transient failures (connection errors, timeouts, 5xx, SlowDown) back off like HTTP
  (``PROVISION_RETRIES``, ``PROVISION_BACKOFF``); botocore's own retries are off so that
  these settings hold, and ``PROVISION_CONNECT_TIMEOUT`` / ``PROVISION_READ_TIMEOUT`` apply.
- ``s3://bucket/prefix/`` (a folder entry) lists every object under the prefix. S3 ETags
  are not content hashes (multipart uploads), so listed files are unpublished and pinned
  by sha256 on first use.
"""

from __future__ import annotations

import contextlib
import re
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import urllib3

from provision.config import Settings
from provision.manifest.checksum import Checksum
from provision.sources.base import (
    AccessFailure,
    AttemptFailed,
    ConnectionFailure,
    Credential,
    OfflineFailure,
    Probe,
    Restart,
    Retry,
    SourceContext,
    StatusFailure,
    backoff,
)
from provision.sources.listing import Listed
from provision.sources.partial import RangeSet, Sink
from provision.version import __version__

__all__ = ["fetch_s3", "list_s3"]

NEEDS_BOTO3 = "s3:// needs boto3: pip install 'provision[s3]'"

_CHUNK = 256 << 10
_MAX_RESTARTS = 3
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_CREDENTIAL_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired"}
)
_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "InternalError",
        "ServiceUnavailable",
        "RequestLimitExceeded",
    }
)

T = TypeVar("T")


@dataclass(frozen=True)
class _S3:
    """A boto3 client and whether it signs requests."""

    client: Any
    anonymous: bool


_CLIENTS: dict[int, _S3] = {}
_CLIENTS_LOCK = threading.Lock()


def _parse(url: str) -> tuple[str, str]:
    """``(bucket, key)`` of ``s3://bucket/key`` (the key taken verbatim, ``?`` and ``#`` included)."""
    scheme, sep, rest = url.partition("://")
    bucket, _, key = rest.partition("/")
    if scheme.lower() != "s3" or not sep or not bucket:
        raise AttemptFailed(f"not an s3://<bucket>/<key> URL: {url!r}")
    return bucket, key


def _new_client(settings: Settings) -> _S3:
    try:
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config
    except ImportError:
        raise AttemptFailed(NEEDS_BOTO3) from None
    try:
        session = boto3.session.Session()
        anonymous = session.get_credentials() is None
        extra: dict[str, Any] = {"signature_version": UNSIGNED} if anonymous else {}
        config = Config(
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            retries={"mode": "standard", "total_max_attempts": 1},
            max_pool_connections=max(10, settings.jobs),
            user_agent_extra=f"provision/{__version__}",
            **extra,
        )
        client = session.client("s3", config=config)
    except Exception as exc:  # botocore: a broken profile, partial credentials, a bad endpoint
        raise AttemptFailed(f"S3 client setup failed ({exc.__class__.__name__}: {_short(exc)})") from None
    return _S3(client, anonymous)


def _client(ctx: SourceContext) -> _S3:
    """One client per context (one fetch run): credentials are looked up once."""
    with _CLIENTS_LOCK:
        found = _CLIENTS.get(id(ctx))
        if found is None:
            found = _new_client(ctx.settings)
            _CLIENTS[id(ctx)] = found
            weakref.finalize(ctx, _CLIENTS.pop, id(ctx), None)
        return found


def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else exc.__class__.__name__)[:200]


def _classify(exc: Exception, s3: _S3, bucket: str, key: str) -> AttemptFailed | Retry | Restart:
    """What a boto3/botocore/transport exception means for this URL, in one line."""
    from botocore import exceptions as bx

    where = f"s3://{bucket}/{key}"
    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {}) or {}
        code = str(error.get("Code") or "")
        message = str(error.get("Message") or "").strip()
        status = int((exc.response.get("ResponseMetadata", {}) or {}).get("HTTPStatusCode") or 0)
        if code and status and code != str(status):
            label = f"S3 {code} (HTTP {status})"
        else:
            label = f"S3 HTTP {status}" if status else f"S3 {code or 'error'}"
        if code == "NoSuchBucket":
            return StatusFailure(f"{label}: bucket {bucket!r} does not exist ({where})", status or 404)
        if code in ("NoSuchKey", "404") or (status == 404 and not code.startswith("NoSuch")):
            return StatusFailure(f"{label}: no object {key!r} in bucket {bucket!r} ({where})", status or 404)
        if code in _CREDENTIAL_CODES:
            return AccessFailure(
                f"{label}: the AWS credentials were refused for {where}; check AWS_PROFILE or "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
            )
        if code in ("AccessDenied", "AllAccessDisabled", "403") or status == 403:
            hint = (
                "no AWS credentials were found, so the request was anonymous; set AWS_PROFILE or "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
                if s3.anonymous
                else "the AWS credentials in use may not read it"
            )
            return AccessFailure(
                f"{label}: access denied to {where} ({hint}; S3 also says this for a missing object "
                "when listing is not allowed)"
            )
        if code in ("PreconditionFailed", "InvalidRange") or status in (412, 416):
            return Restart(f"{label}: the object changed or the range was refused")
        if code in _TRANSIENT_CODES or status >= 500 or status in (408, 429):
            return Retry(label, status=status or None)
        failure = f"{label}: {message or _short(exc)} ({where})"
        return StatusFailure(failure, status) if status else AttemptFailed(failure)
    if isinstance(exc, bx.SSLError):
        return ConnectionFailure(
            f"TLS verification failed ({_short(exc)}); set AWS_CA_BUNDLE to your CA bundle if a proxy re-signs TLS"
        )
    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError, bx.CredentialRetrievalError)):
        return AccessFailure(f"S3 credentials: {_short(exc)} (check AWS_PROFILE or AWS_ACCESS_KEY_ID)")
    if isinstance(exc, getattr(bx, "FlexibleChecksumError", ())):  # botocore >= 1.36
        return Restart(f"the object's checksum did not match in transit ({_short(exc)})")
    if isinstance(exc, (bx.ConnectionError, bx.HTTPClientError, bx.IncompleteReadError)):
        return Retry(f"connection failed ({exc.__class__.__name__}: {_short(exc)})")
    if isinstance(exc, bx.BotoCoreError):
        return AttemptFailed(f"S3 request failed ({exc.__class__.__name__}: {_short(exc)})")
    if isinstance(exc, (OSError, urllib3.exceptions.HTTPError)):
        return Retry(f"connection failed ({exc.__class__.__name__}: {_short(exc)})")
    return AttemptFailed(f"S3 request failed ({exc.__class__.__name__}: {_short(exc)})")


def _call(s3: _S3, bucket: str, key: str, op: Callable[[], T]) -> T:
    """Run one boto3 call; every exception it raises comes out classified."""
    try:
        return op()
    except Exception as exc:
        raise _classify(exc, s3, bucket, key) from None


def _pause(ctx: SourceContext, seconds: float) -> None:
    if ctx.cancel.wait(seconds):
        raise KeyboardInterrupt


def fetch_s3(url: str, sink: Sink, ctx: SourceContext) -> None:
    """Download the object ``s3://bucket/key`` into ``sink`` (resuming what ``sink`` holds for it)."""
    if ctx.settings.offline:
        raise OfflineFailure()
    bucket, key = _parse(url)
    if not key or key.endswith("/"):
        raise AttemptFailed(f'{url} names a folder, not an object (a folder entry is name = "<dir>/")')
    _Download(_client(ctx), ctx, url, bucket, key, sink).run()


class _Download:
    def __init__(self, s3: _S3, ctx: SourceContext, url: str, bucket: str, key: str, sink: Sink) -> None:
        self.s3 = s3
        self.ctx = ctx
        self.url = url
        self.bucket = bucket
        self.key = key
        self.sink = sink

    def run(self) -> None:
        sink = self.sink
        resume = self._saved()
        if resume is None:
            sink.reset()
        failures = restarts = 0
        while True:
            before = sink.written
            try:
                self._attempt(resume)
                return
            except Restart as exc:
                restarts += 1
                if restarts > _MAX_RESTARTS:
                    raise AttemptFailed(f"{exc.answer} (restarted {restarts - 1} times)") from None
                self.ctx.progress.retry(sink.key, self.url, f"{sink.key}: {exc.answer}; restarting from byte 0")
                sink.reset()
            except Retry as exc:
                failures = 1 if sink.written > before else failures + 1
                sink.save_state(force=True)
                if failures > self.ctx.settings.retries:
                    raise exc.give_up(f"{exc.answer} (gave up after {failures} tries)") from None
                wait = backoff(self.ctx.settings, failures)
                text = f"{sink.key}: {exc.answer}; retry {failures} in {wait:.1f}s"
                self.ctx.progress.retry(sink.key, self.url, text)
                _pause(self.ctx, wait)
            resume = None  # from now on the sink in memory says where we are

    def _saved(self) -> tuple[int, dict[str, Any]] | None:
        """``(offset, state)`` of a partial left by an earlier run of this URL, if continuable."""
        state = self.sink.saved_state()
        if state is None or state.get("url") != self.url or not state.get("etag"):
            return None
        done = RangeSet(state.get("done", []))
        if done.prefix() == 0 or done.total() != done.prefix():
            return None
        return done.prefix(), state

    def _attempt(self, resume: tuple[int, dict[str, Any]] | None) -> None:
        sink = self.sink
        if resume is not None:
            offset, etag = resume[0], resume[1].get("etag")
        elif sink.mode == "seq" and sink.written:
            offset, etag = sink.done.prefix(), sink.meta.get("etag")
        else:
            offset, etag = 0, None
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key}
        if offset:
            args["Range"] = f"bytes={offset}-"
            if etag:
                args["IfMatch"] = etag
        resp = _call(self.s3, self.bucket, self.key, lambda: self.s3.client.get_object(**args))
        body = resp["Body"]
        try:
            total = self._total(resp, offset)
            new_etag = resp.get("ETag")
            if offset and etag and new_etag and new_etag != etag:
                raise Restart("the object changed (ETag)")
            meta = {"url": self.url, "etag": new_etag, "ranges": True}
            if offset and resume is not None:
                sink.resume(offset, total, meta)
            elif not offset:
                sink.begin(total, meta)
            cancel = self.ctx.cancel
            while True:
                if cancel.is_set():
                    raise KeyboardInterrupt
                chunk = _call(self.s3, self.bucket, self.key, lambda: body.read(_CHUNK))
                if not chunk:
                    break
                if cancel.is_set():
                    raise KeyboardInterrupt
                sink.write(chunk)
        finally:
            with contextlib.suppress(Exception):  # closing a broken stream must not hide why it broke
                body.close()
        want = sink.spec.size if sink.spec.size is not None else total
        if want is not None and sink.written < want:
            raise Retry(f"body ended early at {sink.written} of {want} bytes")

    @staticmethod
    def _total(resp: dict[str, Any], offset: int) -> int | None:
        """The object's full size, from ``Content-Range`` (a range) or ``Content-Length``."""
        m = _CONTENT_RANGE.match(str(resp.get("ContentRange") or ""))
        if offset:
            if not m or int(m.group(1)) != offset:
                raise Restart("the store did not answer the Range request")
            return int(m.group(3)) if m.group(3) != "*" else None
        length = resp.get("ContentLength")
        return int(length) if isinstance(length, int) else None


def _safe_relative(path: str) -> bool:
    parts = path.split("/")
    return bool(path) and "\\" not in path and all(p not in ("", ".", "..") for p in parts)


def list_s3(url: str, ctx: SourceContext) -> list[Listed]:
    """The objects under an ``s3://bucket/prefix/`` folder entry (directory markers skipped)."""
    if ctx.settings.offline:
        raise OfflineFailure()
    bucket, prefix = _parse(url)
    if prefix and not prefix.endswith("/"):
        raise AttemptFailed(f"{url}: an S3 folder URL ends in '/' (s3://<bucket>/<prefix>/)")
    s3 = _client(ctx)
    out: list[Listed] = []
    token: str | None = None
    while True:
        args: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if token:
            args["ContinuationToken"] = token
        page = _list_page(s3, ctx, bucket, prefix, args)
        for obj in page.get("Contents", []) or []:
            key = str(obj["Key"])
            if key.endswith("/"):
                continue
            rel = key[len(prefix) :]
            if not _safe_relative(rel):
                raise AttemptFailed(f"refusing key {key!r} under {url}: not a plain relative path")
            size = obj.get("Size")
            out.append(
                Listed(rel, f"s3://{bucket}/{key}", Checksum.unpublished(), size if isinstance(size, int) else None)
            )
        if not page.get("IsTruncated"):
            break
        token = page.get("NextContinuationToken")
        if not token:
            raise AttemptFailed(f"S3 listing of {url} was truncated without a continuation token")
    if not out:
        raise AttemptFailed(f"no objects under {url}")
    return out


def _list_page(s3: _S3, ctx: SourceContext, bucket: str, prefix: str, args: dict[str, Any]) -> dict[str, Any]:
    failures = 0
    while True:
        try:
            page: dict[str, Any] = _call(s3, bucket, prefix, lambda: s3.client.list_objects_v2(**args))
            return page
        except Restart as exc:
            raise AttemptFailed(exc.answer) from None
        except Retry as exc:
            failures += 1
            if failures > ctx.settings.retries:
                raise exc.give_up(f"{exc.answer} (gave up after {failures} tries)") from None
            wait = backoff(ctx.settings, failures)
            where = f"s3://{bucket}/{prefix}"
            ctx.progress.retry(where, where, f"listing {where}: {exc.answer}; retry {failures} in {wait:.1f}s")
            _pause(ctx, wait)


def probe_s3(url: str, access: str, settings: Settings) -> Probe:
    """Doctor's view of an ``s3://`` URL: endpoints and credentials are boto3's own configuration."""
    return Probe(
        skip=("s3", "s3:// endpoints and credentials come from boto3's own configuration"),
        credential=Credential(None, "s3: boto3's own credential chain (AWS_PROFILE, AWS_ACCESS_KEY_ID, roles)"),
    )
