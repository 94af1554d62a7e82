"""Fetching artifacts into the cache: plan, space check, lock, download, verify, commit.

Each file is written to a temp name unique to this process, hashed while it streams,
checked for size and checksum, and only then moved to its blob path and linked into
the artifact's folder. Sources are tried in order: ``--from`` folders first, then the
manifest's URLs; a wrong file from one source moves on to the next.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path

import requests

from .config import Settings
from .errors import (
    EXIT_FAILURE,
    EXIT_INTEGRITY,
    EXIT_SOURCE,
    DiskSpaceError,
    IntegrityError,
    OfflineError,
    ProvisionError,
    SourceError,
)
from .folders import expand
from .hashing import FAST_ALG, Checksum, hash_file
from .lockfile import LockFile
from .manifest import Artifact, Catalog, FileSpec
from .progress import NullProgress, Progress
from .sources import AttemptFailed, Sink, SourceContext, fetch_url, new_session, scheme_of
from .sources.base import temp_name
from .sources.http import HttpClient
from .sources.manual import candidates, manual_instructions
from .sources.partial import state_path
from .store import DROPPED, FileRecord, Store, is_reclaimable
from .unpack import ExtractError, drop_archive, extract_file, tree_ok
from .verify import check_file

__all__ = ["FetchReport", "FileResult", "check_disk_space", "fetch", "human_bytes"]

#: Records are checkpointed at most this often while many files download.
_CHECKPOINT_SECONDS = 10.0
#: Free space kept back on the cache filesystem beyond what the downloads need.
DISK_RESERVE = 64 << 20


@dataclass
class FileResult:
    """What happened to one file."""

    artifact: str
    name: str
    state: str  # cached | fetched | linked | repaired | failed
    path: str
    bytes: int = 0
    source: str = ""
    error: str = ""
    exit_code: int = 0
    attempts: list[tuple[str, str]] = field(default_factory=list)
    extracted: str = ""  # the folder (or file) an archive was extracted to

    @property
    def ok(self) -> bool:
        """True unless the file failed."""
        return self.state != "failed"


@dataclass
class FetchReport:
    """Every file of every artifact asked for, in manifest order."""

    files: list[FileResult] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> folder

    @property
    def ok(self) -> bool:
        """True when every file is in the cache and verified."""
        return all(f.ok for f in self.files)

    @property
    def failures(self) -> list[FileResult]:
        """The files that could not be fetched."""
        return [f for f in self.files if not f.ok]

    @property
    def exit_code(self) -> int:
        """0, or the exit code of the first failure."""
        bad = self.failures
        return bad[0].exit_code if bad else 0

    def raise_for_errors(self) -> None:
        """Raise the first failure as its :class:`ProvisionError`."""
        bad = self.failures
        if not bad:
            return
        first = bad[0]
        more = f" (and {len(bad) - 1} more failed)" if len(bad) > 1 else ""
        msg = first.error + more
        if first.exit_code == EXIT_INTEGRITY:
            raise IntegrityError(msg, path=first.path)
        if first.exit_code == EXIT_SOURCE:
            raise SourceError(msg, attempts=first.attempts)
        raise ProvisionError(msg)


def human_bytes(n: float) -> str:
    """``1.5 GiB`` style."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def _extract_all(
    store: Store,
    unpack: list[tuple[Artifact, FileSpec]],
    results: dict[tuple[str, str], FileResult],
    records: dict[str, dict[str, FileRecord]],
    progress: Progress,
) -> None:
    """Extract every archive whose tree is not recorded yet (after its download verified)."""
    for art, spec in unpack:
        result = results[(art.name, spec.name)]
        assert spec.extract is not None
        if not result.ok:
            continue
        try:
            extract_file(store, art, spec, progress)
        except ExtractError as exc:
            result.state, result.error, result.exit_code = "failed", str(exc), EXIT_INTEGRITY
            continue
        result.extracted = str(store.artifact_dir(art.name) / spec.extract.to)
        if not spec.extract.keep_archive:
            drop_archive(store, art, spec)
            entry = records[art.name].get(spec.name)
            if entry is not None:
                entry.link = DROPPED


def check_disk_space(
    store: Store, todo: Iterable[tuple[Artifact, FileSpec]], unpack: Iterable[tuple[Artifact, FileSpec]] = ()
) -> None:
    """Refuse when the files still to download (and to extract) do not fit on the cache's filesystem."""
    needed = 0
    unknown = 0
    names: dict[str, None] = {}
    for art, spec in unpack:
        assert spec.extract is not None
        names[art.name] = None
        if spec.extract.extracted_size is None:
            unknown += 1
        else:
            needed += spec.extract.extracted_size
    for art, spec in todo:
        if spec.checksum.known and store.blob_path(spec.checksum).exists():
            continue
        names[art.name] = None
        if spec.size is None:
            unknown += 1
        else:
            needed += spec.size
    if not names:
        return
    free = shutil.disk_usage(store.root).free
    if needed + DISK_RESERVE > free:
        extra = f" plus {unknown} file(s) of unknown size" if unknown else ""
        raise DiskSpaceError(
            f"not enough disk space in {store.root}: {', '.join(names)} need "
            f"{human_bytes(needed)}{extra}, only {human_bytes(free)} free; free space "
            "('provision gc'), or point --cache-dir / PROVISION_CACHE at a bigger disk"
        )


def _verify_sink(sink: Sink) -> dict[str, str]:
    spec = sink.spec
    if spec.size is not None and sink.written != spec.size:
        raise AttemptFailed(f"size mismatch: expected {spec.size} bytes, got {sink.written}", integrity=True)
    digests = sink.hasher.hexdigests()
    got = digests[spec.checksum.alg]
    if spec.checksum.known and got != spec.checksum.hex:
        raise AttemptFailed(
            f"checksum mismatch: expected {spec.checksum}, got {spec.checksum.alg}:{got}",
            integrity=True,
        )
    return digests


class _Fetcher:
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
        except _Failed as failed:
            result.state = "failed"
            result.error, result.exit_code = failed.message, failed.exit_code
            return result, None
        except OSError as exc:
            result.state = "failed"
            result.error = f"{art.name}/{spec.name}: {exc.strerror or exc} ({exc.filename or blob})"
            result.exit_code = EXIT_FAILURE
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
        mirrors = [
            f"{m}/{spec.checksum.alg}/{spec.checksum.hex}" for m in self.ctx.settings.mirrors if spec.checksum.known
        ]
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
        sink = Sink(spec, tmp, key, progress)
        attempts = result.attempts
        keep = False  # whether a failed run leaves its partial data for a later resume
        try:
            for cand in candidates(spec, self.ctx.from_paths):
                try:
                    how = sink.adopt(cand)
                    digests = _verify_sink(sink)
                except AttemptFailed as exc:
                    sink.reset()
                    attempts.append((str(cand), exc.answer))
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
                    keep = not exc.integrity and sink.written > 0 and bool(sink.meta.get("ranges"))
                    if keep:
                        sink.suspend()
                    else:
                        sink.reset()
                    attempts.append((url, exc.answer))
                    if not exc.offline:
                        progress.note(f"{key}: {url} failed: {exc.answer}")
                    continue
                self.store.commit_blob(tmp, blob)
                with contextlib.suppress(FileNotFoundError):
                    state_path(tmp).unlink()
                progress.finish(key, True)
                return digests, url
            progress.finish(key, False)
            raise _Failed.build(art, spec, attempts, manual_url, self.ctx.from_paths)
        except BaseException as exc:
            keep = keep or (isinstance(exc, KeyboardInterrupt) and sink.written > 0)
            raise
        finally:
            if keep and tmp.exists():
                sink.suspend()
            else:
                sink.reset()


class _Failed(Exception):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    @classmethod
    def build(
        cls,
        art: Artifact,
        spec: FileSpec,
        attempts: list[tuple[str, str]],
        manual_url: str,
        from_paths: tuple[Path, ...],
    ) -> _Failed:
        where = f"{art.name}/{spec.name}"
        tried = "; ".join(f"{u} -> {a}" for u, a in attempts)
        if manual_url and not attempts:
            if from_paths:
                size = f"{spec.size} bytes" if spec.size is not None else "any size"
                return cls(
                    f"{where}: not found under {', '.join(map(str, from_paths))} "
                    f"(looked for {spec.name!r} or a file of {size} with {spec.checksum}); "
                    f"{manual_instructions(spec, manual_url, art.name)}",
                    EXIT_SOURCE,
                )
            return cls(manual_instructions(spec, manual_url, art.name), EXIT_SOURCE)
        if attempts and all("PROVISION_OFFLINE" in a for _, a in attempts):
            return cls(
                f"{where}: needed but PROVISION_OFFLINE=1 forbids the network (would try "
                f"{', '.join(u for u, _ in attempts)}); fetch it where there is a network "
                "and share the cache, or pass --from PATH",
                OfflineError.exit_code,
            )
        hint = ""
        if manual_url:
            hint = f"; or download it by hand: {manual_instructions(spec, manual_url, art.name)}"
        if any("mismatch" in a for _, a in attempts):
            return cls(
                f"{where}: no source delivered the expected data ({tried}); the file may have "
                f"been corrupted or replaced upstream, or the manifest checksum is outdated{hint}",
                EXIT_INTEGRITY,
            )
        return cls(
            f"{where}: every source failed ({tried}); check the network or add a mirror{hint}",
            EXIT_SOURCE,
        )


def _present(store: Store, art: Artifact, spec: FileSpec, entry: FileRecord | None) -> tuple[str, FileRecord | None]:
    check, record, _ = check_file(store, art, spec, entry)
    return check.state, record


def fetch(
    catalog: Catalog,
    names: Iterable[str],
    settings: Settings,
    *,
    session: requests.Session | None = None,
    from_paths: Iterable[Path] = (),
    progress: Progress | None = None,
    subset: str | None = None,
) -> FetchReport:
    """Make every artifact ``names`` stands for present and verified in the cache.

    Returns a report of every file; call :meth:`FetchReport.raise_for_errors` to turn a
    failure into its exception. Raises before downloading when the disk is too small.
    """
    progress = progress or NullProgress()
    lock = LockFile(settings.lock_path)
    store = Store(settings.cache_dir)
    store.ensure()
    ctx = SourceContext(settings, session or new_session(), tuple(Path(p) for p in from_paths), progress)
    ctx.http = HttpClient(ctx)
    fetcher = _Fetcher(store, ctx, lock)
    artifacts: list[Artifact] = []
    unlisted: list[FileResult] = []  # folder entries whose source could not list them
    for art in catalog.resolve(names, subset):
        try:
            artifacts.append(lock.apply(expand(art, lock, ctx)))
        except SourceError as exc:
            folder = next(f for f in art.files if f.is_folder and lock.listing(art.name, f.name) is None)
            path = str(store.artifact_dir(art.name) / folder.name)
            unlisted.append(
                FileResult(
                    art.name,
                    folder.name,
                    "failed",
                    path,
                    error=str(exc),
                    exit_code=exc.exit_code,
                    attempts=exc.attempts,
                )
            )
    report = FetchReport(artifacts={a.name: str(store.artifact_dir(a.name)) for a in artifacts})
    results: dict[tuple[str, str], FileResult] = {}
    with contextlib.ExitStack() as stack:
        for art in sorted(artifacts, key=lambda a: a.name):
            stack.enter_context(store.lock(art.name, settings.lock_timeout, progress.note))
        records = {a.name: store.load_record(a.name) for a in artifacts}
        todo: list[tuple[Artifact, FileSpec, bool]] = []
        for art in artifacts:
            for spec in art.files:
                old = records[art.name].get(spec.name)
                if spec.extract is not None and not spec.extract.keep_archive and tree_ok(store, art, spec):
                    records[art.name][spec.name] = old or FileRecord(
                        str(spec.checksum), "", spec.size or 0, 0, 0, link=DROPPED
                    )
                    results[(art.name, spec.name)] = FileResult(
                        art.name, spec.name, "cached", str(store.artifact_dir(art.name) / spec.name)
                    )
                    continue
                state, entry = _present(store, art, spec, old)
                if state == "ok" and entry is not None:
                    records[art.name][spec.name] = entry
                    path = str(store.artifact_dir(art.name) / spec.name)
                    results[(art.name, spec.name)] = FileResult(
                        art.name, spec.name, "cached", path, entry.size, entry.source
                    )
                else:
                    records[art.name].pop(spec.name, None)
                    todo.append((art, spec, state == "corrupt"))
        unpack = [(a, f) for a in artifacts for f in a.archives if not (f.checksum.known and tree_ok(store, a, f))]
        check_disk_space(store, [(a, s) for a, s, _ in todo], unpack)
        by_name = {a.name: a for a in artifacts}
        dirty: set[str] = set()
        last_save = time.monotonic()
        pool = ThreadPoolExecutor(max_workers=max(1, settings.jobs))
        try:
            futures = {pool.submit(fetcher.run, art, spec, repair): (art, spec) for art, spec, repair in todo}
            for fut in as_completed(futures):
                art, spec = futures[fut]
                result, record = fut.result()
                results[(art.name, spec.name)] = result
                if record is not None:
                    records[art.name][spec.name] = record
                    dirty.add(art.name)
                if dirty and time.monotonic() - last_save > _CHECKPOINT_SECONDS:
                    for name in dirty:
                        store.save_record(by_name[name], records[name])
                    dirty.clear()
                    last_save = time.monotonic()
        except BaseException:
            ctx.cancel.set()  # every transfer stops at its next chunk and keeps its partial
            pool.shutdown(wait=True, cancel_futures=True)
            for name in dirty:
                store.save_record(by_name[name], records[name])
            raise
        pool.shutdown(wait=True)
        artifacts = [lock.apply(a) for a in artifacts]  # files pinned on first use in this run
        unpack = [(a, f) for a in artifacts for f in a.archives if f.checksum.known and not tree_ok(store, a, f)]
        for art in artifacts:
            store.save_record(art, records[art.name])
        _extract_all(store, unpack, results, records, progress)
        for art in artifacts:
            store.save_record(art, records[art.name])
            for spec in art.archives:
                result = results[(art.name, spec.name)]
                if result.ok and spec.extract is not None:
                    result.extracted = str(store.artifact_dir(art.name) / spec.extract.to)
    for art in artifacts:
        report.files.extend(results[(art.name, spec.name)] for spec in art.files)
    report.files.extend(unlisted)
    return report
