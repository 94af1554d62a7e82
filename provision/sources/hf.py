"""``hf://<org>/<repo>@<revision>/<path>`` and ``hf-dataset://…``: the Hugging Face Hub.

A file is downloaded with ``huggingface_hub`` (which knows the Hub's redirects, LFS and
Xet storage) into a temp folder beside the sink, then adopted by the sink (hard link or
copy, hashed once) so it lands in provision's cache and is verified like any other file.
The endpoint (``HF_ENDPOINT``) and token (``HF_TOKEN``) come from :class:`Settings` and
are passed explicitly; ``huggingface_hub``'s own environment and token cache are not used.

- the revision is a branch, tag or 40-hex commit (``%2F`` for a ``/`` in a branch name);
  a download is pinned to the commit the Hub resolved, so metadata and bytes agree;
- the Hub's LFS sha256 (``X-Linked-Etag``) is a published checksum: a manifest file with
  ``checksum = "unpublished"`` still fails when its bytes do not match it;
- a URL whose path holds a glob (``*.safetensors``, ``tokenizer*``, ``**``) lists the
  matching files of the resolved commit, each with its LFS sha256 when it has one;
- every ``huggingface_hub``/transport error becomes a one-line :class:`AttemptFailed`,
  with how to get access for gated repositories; a token never appears in an answer.
"""

from __future__ import annotations

import contextlib
import fnmatch
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from provision.config import Settings, redact_url
from provision.fsutil import temp_name
from provision.manifest.checksum import Checksum
from provision.sources.base import (
    QUICK_DELAY,
    QUICK_RETRIES,
    AccessFailure,
    AttemptFailed,
    ConnectionFailure,
    Credential,
    IntegrityFailure,
    OfflineFailure,
    Probe,
    SourceContext,
    StatusFailure,
    UnreachableFailure,
    backoff,
    origin,
    unreachable_kind,
)
from provision.sources.listing import Listed
from provision.sources.partial import Sink
from provision.version import __version__

if TYPE_CHECKING:
    from huggingface_hub import HfFileMetadata

__all__ = ["HubRef", "fetch_hf", "hub_sha256", "list_hf", "parse_hf_url"]

_SCHEMES = {"hf": "model", "hf-dataset": "dataset"}
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_GLOB_CHARS = frozenset("*?[")
_FORM = "hf://<org>/<repo>@<revision>/<path> (or hf-dataset://…)"
#: HTTP statuses worth another try (the Hub or a proxy having a bad moment).
_TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class HubRef:
    """A parsed Hub URL: ``repo_type`` is ``"model"`` or ``"dataset"``; ``path`` may be empty
    (or hold a glob) only for listing."""

    scheme: str
    repo_type: str
    repo_id: str
    revision: str
    path: str

    def url(self, revision: str | None = None, path: str | None = None) -> str:
        """This reference as a URL (optionally at another revision or path)."""
        rev = (revision or self.revision).replace("%", "%25").replace("/", "%2F")
        return f"{self.scheme}://{self.repo_id}@{rev}/{self.path if path is None else path}"

    @property
    def is_commit(self) -> bool:
        """Whether the revision is a full commit hash (immutable)."""
        return re.fullmatch(r"[0-9a-f]{40}", self.revision) is not None


def parse_hf_url(url: str, *, listing: bool = False) -> HubRef:
    """Parse ``hf://<org>/<repo>@<revision>/<path>`` strictly; :class:`AttemptFailed` naming the form otherwise."""

    def bad(why: str) -> AttemptFailed:
        return AttemptFailed(f"malformed Hub URL {url!r}: {why}; expected {_FORM}")

    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _SCHEMES:
        raise bad("unknown scheme")
    scheme = scheme.lower()
    repo_id, at, tail = rest.partition("@")
    if not at:
        raise bad("no '@<revision>' after the repository")
    names = repo_id.split("/")
    if len(names) != 2 or not all(_NAME_RE.fullmatch(n) for n in names):
        raise bad(f"repository {repo_id!r} is not '<org>/<repo>'")
    if any(n.endswith((".git", ".")) or ".." in n or "--" in n for n in names):
        raise bad(f"repository {repo_id!r} is not a valid Hub name")
    rev_raw, slash, path = tail.partition("/")
    revision = unquote(rev_raw)
    if not revision or any(c.isspace() for c in revision):
        raise bad("empty or blank revision")
    if not slash or (not path and not listing):
        raise bad("no '/<path>' after the revision")
    if path:
        segs = path.rstrip("/").split("/") if listing else path.split("/")
        if any(s in ("", ".", "..") for s in segs):
            raise bad(f"path {path!r} has an empty, '.' or '..' segment")
        if "\\" in path or any(ord(c) < 32 or c == "\x7f" for c in path):
            raise bad(f"path {path!r} has a backslash or a control character")
    if not listing and _GLOB_CHARS & set(path):
        raise bad(f"path {path!r} is a pattern; patterns belong to folder entries (name ending in '/')")
    return HubRef(scheme, _SCHEMES[scheme], repo_id, revision, path)


# -- errors ---------------------------------------------------------------------------------


def _token(ctx: SourceContext) -> str | bool:
    """The token to send: ``HF_TOKEN`` from the settings, else explicitly none (never a cached login)."""
    return ctx.settings.hf_token or False


def _repo_page(ref: HubRef, endpoint: str) -> str:
    return f"{endpoint}/{'datasets/' if ref.repo_type == 'dataset' else ''}{ref.repo_id}"


def _access_help(ref: HubRef, ctx: SourceContext, status: int | None, gated: bool) -> str:
    endpoint = ctx.settings.hf_endpoint.rstrip("/")
    what = "is gated" if gated else "refused access"
    code = f" (HTTP {status})" if status else ""
    if ctx.settings.hf_token:
        sent = "the Hub refused the token in HF_TOKEN"
        fix = (
            f"accept the licence on {_repo_page(ref, endpoint)} while logged in as the token's owner "
            f"(approval may take a while), or create a read token at {endpoint}/settings/tokens and export HF_TOKEN"
        )
    else:
        sent = "no token was sent (HF_TOKEN is not set)"
        fix = (
            f"accept the licence on {_repo_page(ref, endpoint)} while logged in, create a read token at "
            f"{endpoint}/settings/tokens and export HF_TOKEN=<token>"
        )
    return f"{ref.repo_type} repository {ref.repo_id} {what}{code}: {sent}; {fix}"


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _scrub(text: str, ctx: SourceContext) -> str:
    token = ctx.settings.hf_token
    return redact_url(text.replace(token, "<HF_TOKEN>") if token else text)


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _failure(exc: Exception, ref: HubRef, ctx: SourceContext) -> AttemptFailed:
    """One line for what ``huggingface_hub`` (or the transport under it) raised."""
    import httpx2
    from huggingface_hub import errors

    endpoint = ctx.settings.hf_endpoint.rstrip("/")
    where = f"{ref.repo_id}@{ref.revision}"
    # A connection failure reported as "not in the local cache": the cause says what happened.
    if isinstance(exc, errors.LocalEntryNotFoundError) and isinstance(exc.__cause__, Exception):
        exc = exc.__cause__
    status = _status(exc)
    kind: type[AttemptFailed] = AttemptFailed
    if isinstance(exc, errors.GatedRepoError) or (isinstance(exc, errors.HfHubHTTPError) and status in (401, 403)):
        kind = AccessFailure
    elif isinstance(exc, (httpx2.TimeoutException, httpx2.HTTPError)) and not isinstance(exc, errors.HfHubHTTPError):
        kind = ConnectionFailure
    if isinstance(exc, errors.GatedRepoError):
        answer = _access_help(ref, ctx, status, gated=True)
    elif isinstance(exc, errors.RepositoryNotFoundError):
        hint = "" if ctx.settings.hf_token else "; if it is private, export HF_TOKEN with a token that can read it"
        answer = f"{ref.repo_type} repository {ref.repo_id} not found on {endpoint} (HTTP {status}){hint}"
    elif isinstance(exc, errors.RevisionNotFoundError):
        answer = f"revision {ref.revision!r} not found in {ref.repo_type} repository {ref.repo_id} (HTTP {status})"
    elif isinstance(exc, errors.RemoteEntryNotFoundError):
        answer = f"{ref.path!r} not found in {ref.repo_type} repository {where} (HTTP {status})"
    elif isinstance(exc, errors.DisabledRepoError):
        answer = f"{ref.repo_type} repository {ref.repo_id} is disabled on {endpoint} (HTTP {status})"
    elif isinstance(exc, errors.HfHubHTTPError) and status in (401, 403):
        answer = _access_help(ref, ctx, status, gated=False)
    elif isinstance(exc, errors.HfHubHTTPError):
        msg = exc.server_message or ""
        answer = f"the Hub answered HTTP {status} for {where}" + (f": {_one_line(msg)}" if msg else "")
    elif isinstance(exc, errors.OfflineModeIsEnabled):
        answer = "huggingface_hub is in offline mode (HF_HUB_OFFLINE is set); unset it, or use PROVISION_OFFLINE=1"
    elif isinstance(exc, errors.FileMetadataError):
        answer = (
            f"{endpoint} did not answer like a Hugging Face Hub (no X-Repo-Commit/ETag); "
            f"check HF_ENDPOINT and any proxy ({_one_line(str(exc), 120)})"
        )
    elif isinstance(exc, httpx2.TimeoutException):
        answer = f"the Hub at {endpoint} timed out ({type(exc).__name__})"
    elif isinstance(exc, httpx2.HTTPError):
        answer = f"cannot reach the Hub at {endpoint}: {type(exc).__name__}: {_one_line(str(exc), 120)}"
    elif isinstance(exc, ValueError):
        answer = f"the Hub refused {where}: {_one_line(str(exc))}"
    elif isinstance(exc, OSError):
        answer = f"download from the Hub failed: {_one_line(exc.strerror or str(exc))}"
    else:
        answer = f"download from the Hub failed: {type(exc).__name__}: {_one_line(str(exc))}"
    answer = _scrub(answer, ctx)
    if kind is AttemptFailed and isinstance(exc, errors.HfHubHTTPError) and status is not None:
        return StatusFailure(answer, status)
    return kind(answer)


def _transient(exc: Exception) -> bool:
    import httpx2
    from huggingface_hub import errors

    if isinstance(exc, errors.LocalEntryNotFoundError) and isinstance(exc.__cause__, Exception):
        exc = exc.__cause__
    if isinstance(exc, errors.HfHubHTTPError):
        return _status(exc) in _TRANSIENT
    return isinstance(exc, httpx2.TransportError) and not isinstance(exc, httpx2.ProxyError)


def _call(ref: HubRef, ctx: SourceContext, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run one ``huggingface_hub`` call; retry transient failures; map every error to :class:`AttemptFailed`."""
    settings = ctx.settings
    endpoint = settings.hf_endpoint
    fresh = what in ("metadata", "revision")  # the first call to the Hub for this file or folder
    dead = ctx.dead.get(endpoint)
    if fresh and dead is not None:
        raise UnreachableFailure(
            f"{dead.phrase} earlier in this run; not tried again", dead.how, dead.host, remembered=True
        )
    tries = 0
    while True:
        if ctx.cancel.is_set():
            raise KeyboardInterrupt
        try:
            return fn(*args, **kwargs)
        except AttemptFailed:
            raise
        except Exception as exc:
            failed = _failure(exc, ref, ctx)
            tries += 1
            how = unreachable_kind(exc) if fresh else None
            if how is not None and tries > QUICK_RETRIES:
                _scheme, host, port = origin(endpoint)
                where = host if how == "resolve" else f"{host}:{port}"
                unreachable = UnreachableFailure(f"{failed.answer} ({tries} tries)", how, where)
                ctx.dead.add(endpoint, unreachable)
                raise unreachable from None
            if how is not None:
                time.sleep(min(QUICK_DELAY, backoff(settings, tries)))
                continue
            if not _transient(exc) or tries > settings.retries:
                if tries > 1:
                    failed = failed.retold(f"{failed.answer} (gave up after {tries} tries)")
                raise failed from None
            wait = backoff(settings, tries)
            ctx.progress.retry(ref.url(), ref.url(), f"{ref.url()}: {what}: {failed.answer}; retry in {wait:.1f}s")
            time.sleep(wait)


def _offline(ctx: SourceContext) -> None:
    if ctx.settings.offline:
        raise OfflineFailure()


# -- metadata -------------------------------------------------------------------------------


def _metadata(ref: HubRef, ctx: SourceContext) -> HfFileMetadata:
    """``HEAD …/resolve/<rev>/<path>``: commit, ETag (the sha256 of LFS files), size."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    endpoint = ctx.settings.hf_endpoint.rstrip("/")
    url = hf_hub_url(ref.repo_id, ref.path, repo_type=ref.repo_type, revision=ref.revision, endpoint=endpoint)
    meta: HfFileMetadata = _call(
        ref,
        ctx,
        "metadata",
        get_hf_file_metadata,
        url,
        token=_token(ctx),
        timeout=ctx.settings.read_timeout,
        library_name="provision",
        library_version=__version__,
        endpoint=endpoint,
    )
    if not meta.commit_hash or not meta.etag:
        raise AttemptFailed(
            f"{endpoint} did not answer like a Hugging Face Hub (no X-Repo-Commit/ETag for {ref.path!r}); "
            "check HF_ENDPOINT and any proxy"
        )
    return meta


def _lfs_sha256(meta: HfFileMetadata) -> str | None:
    etag = (meta.etag or "").lower()
    return etag if _SHA256_RE.fullmatch(etag) else None


def hub_sha256(url: str, ctx: SourceContext) -> str | None:
    """The sha256 the Hub publishes for an LFS file (``X-Linked-Etag``); ``None`` for a git file."""
    ref = parse_hf_url(url)
    _offline(ctx)
    return _lfs_sha256(_metadata(ref, ctx))


# -- fetching -------------------------------------------------------------------------------


def _bar_class(ctx: SourceContext, key: str) -> type:
    """A ``tqdm`` stand-in for ``huggingface_hub``: feeds provision's progress, stops on cancel."""
    progress, cancel = ctx.progress, ctx.cancel

    class _Bar:
        def __init__(self, *args: Any, total: int | None = None, initial: int = 0, **kwargs: Any) -> None:
            self.total = total
            self.n = initial
            self.format_dict: dict[str, Any] = {}

        def __enter__(self) -> _Bar:
            return self

        def __exit__(self, *exc: object) -> None:
            self.close()

        def update(self, n: int | float | None = 1) -> None:
            step = int(n or 0)
            self.n += step
            progress.advance(key, step)
            if cancel.is_set():
                raise KeyboardInterrupt

        def update_transfer(self, n: int | float | None = 1) -> None:
            """Network bytes (counted by :meth:`update` already, as bytes written)."""

        def refresh(self, *args: Any, **kwargs: Any) -> None:
            pass

        def set_postfix_str(self, *args: Any, **kwargs: Any) -> None:
            pass

        def set_transfer_postfix_str(self, *args: Any, **kwargs: Any) -> None:
            pass

        def set_description(self, *args: Any, **kwargs: Any) -> None:
            pass

        def close(self) -> None:
            pass

    return _Bar


def fetch_hf(url: str, sink: Sink, ctx: SourceContext) -> None:
    """Download one Hub file into ``sink`` (through ``huggingface_hub``, then adopted)."""
    from huggingface_hub import hf_hub_download

    ref = parse_hf_url(url)
    _offline(ctx)
    meta = _metadata(ref, ctx)
    spec = sink.spec
    if spec.size is not None and meta.size is not None and meta.size != spec.size:
        raise IntegrityFailure(
            f"size mismatch: manifest says {spec.size} bytes, the Hub announces {meta.size} for {ref.url()}"
        )
    published = _lfs_sha256(meta)
    settings = ctx.settings
    folder = temp_name(sink.dest.parent / ".hf")
    ctx.progress.start(sink.key, spec.name, meta.size)
    try:
        folder.mkdir(parents=True)
        local = _call(
            ref,
            ctx,
            "download",
            hf_hub_download,
            ref.repo_id,
            ref.path,
            repo_type=ref.repo_type,
            revision=meta.commit_hash,  # the commit the metadata came from
            endpoint=settings.hf_endpoint.rstrip("/"),
            token=_token(ctx),
            local_dir=folder / "files",
            cache_dir=folder / "hub-cache",  # never reuse (unverified) files of the user's HF cache
            etag_timeout=settings.read_timeout,
            library_name="provision",
            library_version=__version__,
            tqdm_class=_bar_class(ctx, sink.key),
        )
        sink.adopt(Path(local))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    size = sink.written
    ctx.progress.start(sink.key, spec.name, size, done=size)
    if published and not spec.checksum.known:
        got = sink.hasher.hexdigests().get("sha256")
        if got is not None and got != published:
            raise IntegrityFailure(
                f"checksum mismatch: the Hub publishes sha256:{published} for {ref.url()}, got sha256:{got}"
            )


# -- listing --------------------------------------------------------------------------------


def _split_pattern(path: str) -> tuple[str, str]:
    """``(fixed prefix folder, pattern)``: ``onnx/*.onnx`` -> ``("onnx", "onnx/*.onnx")``.

    A path with no glob stands for a folder (everything under it); an empty path for the repo.
    """
    path = path.rstrip("/")
    if not path:
        return "", "**"
    segs = path.split("/")
    fixed: list[str] = []
    for seg in segs:
        if _GLOB_CHARS & set(seg):
            break
        fixed.append(seg)
    if len(fixed) == len(segs):  # no glob: the folder itself
        return path, f"{path}/**"
    return "/".join(fixed), path


def _match(pattern: list[str], parts: list[str]) -> bool:
    """Glob match by path segment: ``*``/``?``/``[…]`` within a segment, ``**`` for any segments."""
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match(rest, parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], head) and _match(rest, parts[1:])


def _resolve_commit(ref: HubRef, ctx: SourceContext) -> str:
    """The commit a branch or tag names now (a commit names itself, after the Hub confirms it)."""
    from huggingface_hub import HfApi

    api = HfApi(
        endpoint=ctx.settings.hf_endpoint.rstrip("/"),
        token=_token(ctx),
        library_name="provision",
        library_version=__version__,
    )
    info = _call(
        ref,
        ctx,
        "revision",
        api.repo_info,
        ref.repo_id,
        revision=ref.revision,
        repo_type=ref.repo_type,
        timeout=ctx.settings.read_timeout,
        token=_token(ctx),
    )
    sha = getattr(info, "sha", None)
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{40}", sha):
        raise AttemptFailed(f"the Hub did not tell which commit {ref.repo_id}@{ref.revision} is")
    return sha


def list_hf(url: str, ctx: SourceContext) -> list[Listed]:
    """The files a Hub URL with a glob (``hf://org/repo@rev/*.safetensors``) stands for.

    Paths are relative to the glob's fixed prefix folder; every URL names the resolved
    commit, so the listing (and what it downloads) is reproducible.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    ref = parse_hf_url(url, listing=True)
    _offline(ctx)
    prefix, pattern = _split_pattern(ref.path)
    commit = _resolve_commit(ref, ctx)
    api = HfApi(
        endpoint=ctx.settings.hf_endpoint.rstrip("/"),
        token=_token(ctx),
        library_name="provision",
        library_version=__version__,
    )
    at_commit = HubRef(ref.scheme, ref.repo_type, ref.repo_id, commit, prefix)
    entries = _call(
        at_commit,
        ctx,
        "listing",
        lambda: list(
            api.list_repo_tree(
                ref.repo_id,
                prefix or None,
                recursive=True,
                revision=commit,
                repo_type=ref.repo_type,
                token=_token(ctx),
            )
        ),
    )
    want = pattern.split("/")
    out: list[Listed] = []
    for entry in entries:
        if not isinstance(entry, RepoFile) or not _match(want, entry.path.split("/")):
            continue
        rel = entry.path[len(prefix) + 1 :] if prefix else entry.path
        checksum = Checksum.unpublished()
        if entry.lfs is not None:
            sha = str(entry.lfs.sha256).lower()
            with contextlib.suppress(ValueError):
                checksum = Checksum.parse(f"sha256:{sha}")
        size = entry.size if isinstance(entry.size, int) else None
        out.append(Listed(path=rel, url=at_commit.url(path=entry.path), checksum=checksum, size=size))
    if not out:
        raise AttemptFailed(f"no file of {ref.repo_type} repository {ref.repo_id}@{ref.revision} matches {pattern!r}")
    return sorted(out, key=lambda item: item.path)


# -- doctor ---------------------------------------------------------------------------------


def hub_hosts(settings: Settings) -> set[str]:
    """The hosts that are the Hub: huggingface.co and the configured ``HF_ENDPOINT``'s."""
    return {"huggingface.co", (urlsplit(settings.hf_endpoint).hostname or "").lower()}


def hub_credential(page: str, host: str, settings: Settings) -> Credential:
    """Whether a token for a gated Hub repository (licence page ``page``) is set; never shows it."""
    if settings.hf_token or settings.headers_for(host or "huggingface.co").get("Authorization"):
        return Credential(True, "gated Hub repository: HF_TOKEN present (not shown)")
    endpoint = settings.hf_endpoint.rstrip("/")
    return Credential(
        False,
        "gated Hub repository and HF_TOKEN is not set",
        f"accept the licence on {page}, then export HF_TOKEN=<a read token from {endpoint}/settings/tokens>",
    )


def probe_hf(url: str, access: str, settings: Settings) -> Probe:
    """Doctor's view of an ``hf://`` URL: the Hub endpoint to reach, and a gated repository's token."""
    endpoint = settings.hf_endpoint.rstrip("/")
    if access != "gated":
        return Probe(reach=endpoint + "/")
    try:
        ref = parse_hf_url(url, listing=True)
        page = f"{endpoint}/{'datasets/' if ref.repo_type == 'dataset' else ''}{ref.repo_id}"
    except AttemptFailed:
        page = endpoint
    return Probe(reach=endpoint + "/", credential=hub_credential(page, urlsplit(endpoint).hostname or "", settings))
