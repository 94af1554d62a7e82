"""One file into the cache: from a ``--from`` folder or the first URL that delivers the right bytes.

Each file is written to a temp name unique to this process, hashed while it streams,
checked for size and checksum, and only then moved to its blob path and linked into the
artifact's folder. Sources are tried in order: ``--from`` folders first, then the mirrors and
the manifest's URLs; a wrong file from one source moves on to the next."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import threading
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from provision.config import redact_url
from provision.errors import DiskSpaceError, ProvisionError
from provision.fetching.report import FileResult, file_failure, shown_attempt
from provision.fsutil import is_reclaimable, temp_name
from provision.manifest.checksum import Checksum
from provision.manifest.lockfile import LockFile
from provision.manifest.model import Artifact, FileSpec
from provision.sources.base import (
    AttemptFailed,
    IntegrityFailure,
    LocalMismatch,
    OfflineFailure,
    SourceContext,
    UnreachableFailure,
    WriteFailure,
)
from provision.sources.manual import candidates, manual_instructions
from provision.sources.mirrors import mirror_urls
from provision.sources.partial import Sink, state_path
from provision.sources.schemes import fetch_url, scheme_of
from provision.store.cache import Store
from provision.store.hashing import FAST_ALG, hash_file
from provision.store.records import FileRecord

__all__ = ["FileFetcher", "announce_manual"]


def _verify_sink(sink: Sink) -> dict[str, str]:
    """The digests of what ``sink`` holds, when its size and checksum are the manifest's; else the failure
    (a page that began like HTML is reported as such: the published checksum, not the sniff, decided)."""
    spec = sink.spec
    if spec.size is not None and sink.written != spec.size:
        why = f"size mismatch: expected {spec.size} bytes, got {sink.written}"
        raise sink.html_refusal(why) or IntegrityFailure(why)
    digests = sink.hasher.hexdigests()
    got = digests[spec.checksum.alg]
    if spec.checksum.known and got != spec.checksum.hex:
        why = f"checksum mismatch: expected {spec.checksum}, got {spec.checksum.alg}:{got}"
        raise sink.html_refusal(why) or IntegrityFailure(why)
    return digests


def announce_manual(todo: Iterable[tuple[Artifact, FileSpec]], ctx: SourceContext) -> None:
    """Before any download, a note for each licensed file (a ``manual:`` source) that no ``--from`` path
    holds: what a person must download, where, its name, size and checksum, and the command to run."""
    for art, spec in todo:
        page = next((u for u in spec.urls if scheme_of(u) == "manual"), None)
        if page is None:
            continue
        if ctx.from_paths and next(candidates(spec, ctx.from_paths), None) is not None:
            continue  # a candidate is there; its checksum is checked when its turn comes
        others = [u for u in spec.urls if scheme_of(u) != "manual"]
        then = " (its other sources are tried first)" if others else ""
        ctx.progress.note(f"to bring by hand{then}: {manual_instructions(spec, page, art.name)}")


def _write_error(where: str, exc: WriteFailure) -> ProvisionError:
    """The file's error when its temp file could not be written (the temp and its state are gone by then)."""
    if exc.disk_full:
        return DiskSpaceError(
            f"{where}: {exc}; the download stopped and its partial was removed; free space ('provision gc') "
            "or point --cache-dir / PROVISION_CACHE at a bigger disk"
        )
    fix = {
        errno.EROFS: "the cache filesystem is read-only: point --cache-dir / PROVISION_CACHE at a writable one",
        errno.EFBIG: "a file-size limit (ulimit -f) or the filesystem's largest file is in the way",
    }.get(exc.errno or 0, "check the disk (dmesg) or point --cache-dir / PROVISION_CACHE at another one")
    return ProvisionError(f"{where}: {exc}; the download stopped and its partial was removed; {fix}")


class FileFetcher:
    """Fetches single files for :func:`fetch`; thread-safe (one thread at a time per blob)."""

    def __init__(self, store: Store, ctx: SourceContext, lock: LockFile) -> None:
        self.store = store
        self.ctx = ctx
        self.lock = lock
        self._guard = threading.Lock()
        self._blob_locks: dict[Path, threading.Lock] = {}
        self._listings: dict[Path, list[str]] = {}

    def run(self, art: Artifact, spec: FileSpec, repair: bool) -> tuple[FileResult, FileRecord | None]:
        known = spec.checksum.known
        blob = self.store.blob_path(spec.checksum) if known else self.store.staging_path(art.name, spec.name)
        with self._guard:
            blob_lock = self._blob_locks.setdefault(blob, threading.Lock())
        # Files sharing a checksum share one blob: the second waits, then links the first's.
        with blob_lock:
            return self._run(art, spec, repair, blob)

    def _run(self, art: Artifact, spec: FileSpec, repair: bool, blob: Path) -> tuple[FileResult, FileRecord | None]:
        view = self.store.artifact_dir(art.name) / spec.name
        result = FileResult(art.name, spec.name, "fetched", str(view))
        if repair:
            self._drop_corrupt(view, blob)
            result.state = "repaired"
        try:
            digests, source = self._existing_blob(blob, spec) or self._acquire(art, spec, blob, result)
            if not spec.checksum.known:
                blob, spec = self._trust_on_first_use(art, spec, blob, digests, source)
        except _Undelivered as undelivered:
            result.fail(undelivered.failure)
            return result, None
        except WriteFailure as exc:
            result.fail(_write_error(f"{art.name}/{spec.name}", exc))
            return result, None
        except OSError as exc:
            result.fail(ProvisionError(f"{art.name}/{spec.name}: {exc.strerror or exc} ({exc.filename or blob})"))
            return result, None
        if source == "cache" and result.state == "fetched":
            result.state = "linked"
        how = self.store.link_view(blob, view)
        st = view.stat()
        result.bytes = st.st_size
        result.source = source
        record = FileRecord(
            str(spec.checksum),
            digests[FAST_ALG],
            st.st_size,
            st.st_mtime_ns,
            st.st_ino,
            link=how,
            source=source,
        )
        return result, record

    def _trust_on_first_use(
        self, art: Artifact, spec: FileSpec, staged: Path, digests: dict[str, str], source: str
    ) -> tuple[Path, FileSpec]:
        """Move a file with no published checksum to its sha256 blob and pin the digest."""
        final = Checksum("sha256", digests["sha256"])
        blob = self.store.blob_path(final)
        blob.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, blob)
        size = blob.stat().st_size
        self.lock.pin(art.name, spec.name, final, size, source)
        self.ctx.progress.note(
            f"{art.name}/{spec.name}: no published checksum; pinned {final} ({size} bytes) in "
            f"{self.lock.path} (trust on first use: {spec.trust or 'no note'})"
        )
        return blob, replace(spec, checksum=final)

    @staticmethod
    def _drop_corrupt(view: Path, blob: Path) -> None:
        with contextlib.suppress(OSError):
            if blob.exists() and view.exists() and view.samefile(blob):
                blob.unlink()
        with contextlib.suppress(FileNotFoundError):
            view.unlink()

    @staticmethod
    def _existing_blob(blob: Path, spec: FileSpec) -> tuple[dict[str, str], str] | None:
        """A blob already in the cache (another artifact shares it) is re-checked once."""
        if not spec.checksum.known or not blob.is_file():
            return None
        digests = hash_file(blob, [spec.checksum.alg, FAST_ALG])
        size_ok = spec.size is None or blob.stat().st_size == spec.size
        if size_ok and digests[spec.checksum.alg] == spec.checksum.hex:
            return digests, "cache"
        with contextlib.suppress(FileNotFoundError):
            blob.unlink()
        return None

    def _claim(self, blob: Path) -> tuple[Path, str | None]:
        """Our temp path for ``blob``: a partial left by a dead run (renamed to us), else new.

        The rename is atomic, so of two processes only one continues a given partial.
        Returns the path and the URL the partial came from.
        """
        mine = temp_name(blob)
        for cand in self._partials(blob):
            if cand.name.endswith(".json") or ".json.tmp" in cand.name or not is_reclaimable(cand):
                continue
            try:
                os.rename(cand, mine)
            except FileNotFoundError:
                continue
            with contextlib.suppress(FileNotFoundError):
                os.rename(state_path(cand), state_path(mine))
            try:
                url = json.loads(state_path(mine).read_text(encoding="utf-8")).get("url")
            except (OSError, ValueError):
                url = None
            return mine, url if isinstance(url, str) else None
        return mine, None

    def _partials(self, blob: Path) -> list[Path]:
        """Partial downloads of ``blob`` present when this run started (one listing per folder)."""
        with self._guard:
            names = self._listings.get(blob.parent)
            if names is None:
                try:
                    names = sorted(e.name for e in os.scandir(blob.parent) if ".part-" in e.name)
                except FileNotFoundError:
                    names = []
                self._listings[blob.parent] = names
        prefix = blob.name + ".part-"
        return [blob.parent / n for n in names if n.startswith(prefix)]

    def _urls(self, spec: FileSpec, first: str | None) -> list[str]:
        mirrors = mirror_urls(spec.checksum, self.ctx.settings.mirrors)
        urls = [*mirrors, *spec.urls]
        if first in urls:
            urls.remove(first)
            urls.insert(0, first)
        return urls

    def _acquire(self, art: Artifact, spec: FileSpec, blob: Path, result: FileResult) -> tuple[dict[str, str], str]:
        key = f"{art.name}/{spec.name}"
        progress = self.ctx.progress
        blob.parent.mkdir(parents=True, exist_ok=True)
        tmp, resume_url = self._claim(blob)
        sink = Sink(spec, tmp, key, progress, reserve=self.ctx.settings.disk_reserve)
        attempts = result.attempts
        keep = False  # whether a failed run leaves its partial data for a later resume
        try:
            for cand in candidates(spec, self.ctx.from_paths):
                try:
                    how = sink.adopt(cand)
                    digests = _verify_sink(sink)
                except AttemptFailed as exc:
                    sink.reset()
                    # The local file is blamed, not the upstream (expected vs got in the message).
                    wrong = LocalMismatch(exc.answer) if isinstance(exc, IntegrityFailure) else exc
                    attempts.append((str(cand), wrong))
                    continue
                self.store.commit_blob(tmp, blob, read_only=how not in ("hardlink",))
                progress.finish(key, True)
                return digests, str(cand)
            manual_url = ""
            for url in self._urls(spec, resume_url):
                if scheme_of(url) == "manual":
                    manual_url = url
                    continue
                try:
                    fetch_url(url, sink, self.ctx)
                    sink.close()
                    digests = _verify_sink(sink)
                except AttemptFailed as exc:
                    resumable = sink.written > 0 and bool(sink.meta.get("ranges")) and not sink.html_head
                    keep = resumable and not isinstance(exc, IntegrityFailure)
                    if keep:
                        sink.suspend()
                    else:
                        sink.reset()
                    shown, answered = shown_attempt(url, exc)
                    attempts.append((shown, answered))
                    quiet = isinstance(exc, OfflineFailure) or (isinstance(exc, UnreachableFailure) and exc.remembered)
                    if not quiet:
                        progress.retry(key, shown, f"{key}: {shown} failed: {answered.answer}")
                    continue
                self.store.commit_blob(tmp, blob)
                with contextlib.suppress(FileNotFoundError):
                    state_path(tmp).unlink()
                progress.finish(key, True)
                return digests, redact_url(url)
            progress.finish(key, False)
            failure = file_failure(
                art, spec, attempts, manual_url=manual_url, from_paths=self.ctx.from_paths, path=result.path
            )
            if manual_url:
                result.manual = manual_instructions(spec, manual_url, art.name)
            raise _Undelivered(failure)
        except BaseException as exc:
            keep = keep or (isinstance(exc, KeyboardInterrupt) and sink.written > 0)
            raise
        finally:
            if keep and tmp.exists():
                sink.suspend()
            else:
                sink.reset()


class _Undelivered(Exception):
    """No source delivered the file: ``failure`` says why (raised by ``_acquire`` for ``_run`` only)."""

    def __init__(self, failure: ProvisionError) -> None:
        super().__init__(str(failure))
        self.failure = failure
