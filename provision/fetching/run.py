"""Fetching artifacts into the cache: plan, space check, lock, download, verify, commit.

Each file is written to a temp name unique to this process, hashed while it streams,
checked for size and checksum, and only then moved to its blob path and linked into
the artifact's folder. Sources are tried in order: ``--from`` folders first, then the
manifest's URLs; a wrong file from one source moves on to the next.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import requests

from provision.config import Settings
from provision.errors import ProvisionError, SourceError
from provision.extract.archive import ExtractError
from provision.extract.unpack import drop_archive, extract_file
from provision.fetching.folders import list_folders
from provision.fetching.report import FetchReport, FileResult
from provision.fetching.space import check_disk_space, check_planned_space
from provision.fetching.transfer import FileFetcher, announce_manual
from provision.manifest.lockfile import LockFile
from provision.manifest.model import Artifact, Catalog, FileSpec
from provision.progress import NullProgress, Progress
from provision.sources.base import AttemptFailed, SourceContext
from provision.sources.http import HttpClient, new_session
from provision.store.cache import WRITABLE_FIX, Store
from provision.store.gc import sweep_artifact
from provision.store.records import DROPPED, FileRecord
from provision.store.trees import tree_ok
from provision.store.verify import check_file

__all__ = ["fetch", "not_writable"]

#: Records are checkpointed at most this often while many files download.
_CHECKPOINT_SECONDS = 10.0


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
            result.fail(exc)
            continue
        except OSError as exc:  # disk full, a file too big, a folder not writable: nothing was placed
            where = exc.filename or store.artifact_dir(art.name) / spec.extract.to
            result.fail(
                ProvisionError(
                    f"{art.name}/{spec.name}: extraction failed: {exc.strerror or exc} ({where}); "
                    f"free space or fix that folder, then run 'provision fetch {art.name}' again"
                )
            )
            continue
        result.extracted = str(store.artifact_dir(art.name) / spec.extract.to)
        if not spec.extract.keep_archive:
            drop_archive(store, art, spec)
            entry = records[art.name].get(spec.name)
            if entry is not None:
                entry.link = DROPPED


def _present(store: Store, art: Artifact, spec: FileSpec, entry: FileRecord | None) -> tuple[str, FileRecord | None]:
    check, record, _ = check_file(store, art, spec, entry)
    return check.state, record


#: A file to fetch, and whether a corrupt copy of it is to be replaced (``repaired``).
Todo = tuple[Artifact, FileSpec, bool]


class _Fetch:
    """One ``fetch`` call: the cache, the sources, and what happened to each file so far."""

    def __init__(self, settings: Settings, ctx: SourceContext) -> None:
        self.settings = settings
        self.ctx = ctx
        self.progress = ctx.progress
        self.lock = LockFile(settings.lock_path)
        self.store = Store(settings.cache_dir)
        self.results: dict[tuple[str, str], FileResult] = {}
        self.records: dict[str, dict[str, FileRecord]] = {}
        #: Whether each archive's extracted tree is complete and recorded, checked once while nothing
        #: is written (a tree check stats every extracted file); forgotten when a transfer begins.
        self._trees: dict[tuple[str, str, str], bool] = {}

    def tree_ok(self, art: Artifact, spec: FileSpec) -> bool:
        """:func:`provision.store.trees.tree_ok`, asked once per archive until a transfer writes to the cache."""
        key = (art.name, spec.name, str(spec.checksum))
        ok = self._trees.get(key)
        if ok is None:
            ok = self._trees[key] = tree_ok(self.store, art, spec)
        return ok

    def resolve(
        self, catalog: Catalog, names: Iterable[str], subset: str | None
    ) -> tuple[list[Artifact], list[FileResult]]:
        """The artifacts ``names`` stand for, as fetched (folder entries listed and pinned), and a failed
        result for each folder entry whose source could not list it."""
        artifacts: list[Artifact] = []
        unlisted: list[FileResult] = []
        for art in catalog.resolve(names, subset):
            try:
                artifacts.append(list_folders(art, self.lock, self.ctx))
            except SourceError as exc:
                folder = next(f for f in art.files if f.is_folder and self.lock.listing(art.name, f.name) is None)
                attempts = [(u, a) for u, a in exc.attempts if isinstance(a, AttemptFailed)]
                path = str(self.store.artifact_dir(art.name) / folder.name)
                unlisted.append(FileResult(art.name, folder.name, "failed", path, attempts=attempts, failure=exc))
        return artifacts, unlisted

    def inventory(self, artifacts: list[Artifact]) -> list[Todo]:
        """What is cached and verified already (a result each), and what is still to fetch."""
        store = self.store
        todo: list[Todo] = []
        for art in artifacts:
            records = self.records[art.name] = store.load_record(art.name)
            for spec in art.files:
                path = str(store.artifact_dir(art.name) / spec.name)
                old = records.get(spec.name)
                if spec.extract is not None and not spec.extract.keep_archive and self.tree_ok(art, spec):
                    # The archive was dropped after a verified extraction: its tree stands for it.
                    records[spec.name] = old or FileRecord(str(spec.checksum), "", spec.size or 0, 0, 0, link=DROPPED)
                    self.results[(art.name, spec.name)] = FileResult(art.name, spec.name, "cached", path)
                    continue
                state, entry = _present(store, art, spec, old)
                if state == "ok" and entry is not None:
                    records[spec.name] = entry
                    self.results[(art.name, spec.name)] = FileResult(
                        art.name, spec.name, "cached", path, entry.size, entry.source
                    )
                else:
                    records.pop(spec.name, None)
                    # Not a regular file (a FIFO, a link elsewhere): removed, never read; then fetched.
                    cleared = store.clear_irregular(store.artifact_dir(art.name) / spec.name)
                    if spec.checksum.known:
                        cleared = store.clear_irregular(store.blob_path(spec.checksum)) or cleared
                    if cleared:
                        self._trees.clear()  # something was removed: no tree check made before it stands
                    todo.append((art, spec, state in ("corrupt", "changed")))
        return todo

    def transfer(self, artifacts: list[Artifact], todo: list[Todo]) -> None:
        """Fetch every file of ``todo`` on ``settings.jobs`` threads; records are checkpointed as files
        land, and on an interruption every transfer stops and keeps its partial for a resume."""
        if todo:
            self._trees.clear()  # files land in the artifact's folder: its trees are checked again
        fetcher = FileFetcher(self.store, self.ctx, self.lock)
        by_name = {a.name: a for a in artifacts}
        dirty: set[str] = set()
        last_save = time.monotonic()

        def save_dirty() -> None:
            for name in dirty:
                self.store.save_record(by_name[name], self.records[name])
            dirty.clear()

        pool = ThreadPoolExecutor(max_workers=max(1, self.settings.jobs))
        try:
            futures = {pool.submit(fetcher.run, art, spec, repair): (art, spec) for art, spec, repair in todo}
            for fut in as_completed(futures):
                art, spec = futures[fut]
                result, record = fut.result()
                self.results[(art.name, spec.name)] = result
                if record is not None:
                    with contextlib.suppress(OSError):  # the ctime the fast path of verify compares too
                        record = record.with_ctime(os.stat(self.store.artifact_dir(art.name) / spec.name))
                    self.records[art.name][spec.name] = record
                    dirty.add(art.name)
                if dirty and time.monotonic() - last_save > _CHECKPOINT_SECONDS:
                    save_dirty()
                    last_save = time.monotonic()
        except BaseException:
            self.ctx.cancel.set()  # every transfer stops at its next chunk and keeps its partial
            pool.shutdown(wait=True, cancel_futures=True)
            save_dirty()
            raise
        pool.shutdown(wait=True)

    def extract(self, artifacts: list[Artifact]) -> list[Artifact]:
        """Record what was fetched, extract the archives not extracted yet, record again; returns the
        artifacts with this run's first-use pins applied."""
        store = self.store
        artifacts = [self.lock.apply(a) for a in artifacts]  # files pinned on first use in this run
        unpack = [(a, f) for a in artifacts for f in a.archives if f.checksum.known and not self.tree_ok(a, f)]
        for art in artifacts:
            store.save_record(art, self.records[art.name])
        _extract_all(store, unpack, self.results, self.records, self.progress)
        for art in artifacts:
            store.save_record(art, self.records[art.name])
            for spec in art.archives:
                result = self.results[(art.name, spec.name)]
                if result.ok and spec.extract is not None:
                    result.extracted = str(store.artifact_dir(art.name) / spec.extract.to)
        return artifacts


def not_writable(
    blocked: tuple[Path, str], todo: list[Todo], unpack: list[tuple[Artifact, FileSpec]]
) -> ProvisionError:
    """The one-line error of a fetch that must write where the cache cannot be written."""
    path, why = blocked
    first = f"{todo[0][0].name}/{todo[0][1].name}" if todo else f"{unpack[0][0].name}/{unpack[0][1].name}"
    what = f"{len(todo)} file(s) to fetch" if todo else f"{len(unpack)} archive(s) to extract"
    return ProvisionError(
        f"cannot write to {path} ({why}): {what}, first {first}; {WRITABLE_FIX} (verify works on a read-only cache)"
    )


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

    planned-space check (the sources' rounded sizes, before any request) -> resolve (folder
    listings) -> lock -> inventory (what is cached) -> disk-space check -> transfer -> extract ->
    report. Returns a report of every file; call
    :meth:`FetchReport.raise_for_errors` to turn a failure into its exception. Raises before
    downloading when the disk is too small.
    """
    local = tuple(Path(p) for p in from_paths)
    ctx = SourceContext(settings, session or new_session(), local, progress or NullProgress())
    ctx.http = HttpClient(ctx)
    run = _Fetch(settings, ctx)
    run.store.ensure()
    if not settings.offline:
        check_planned_space(run.store, catalog.resolve(names, subset), run.lock, settings.disk_reserve)
    artifacts, unlisted = run.resolve(catalog, names, subset)
    report = FetchReport(artifacts={a.name: str(run.store.artifact_dir(a.name)) for a in artifacts})
    blocked = run.store.unwritable(artifacts)  # a read-only cache: fine while there is nothing to write
    with contextlib.ExitStack() as stack:
        for art in sorted(artifacts, key=lambda a: a.name):
            stack.enter_context(
                run.store.lock(art.name, settings.lock_timeout, ctx.progress.note, required=blocked is None)
            )
            if blocked is None:
                sweep_artifact(run.store, art)  # what killed runs left in its folder (a half-extracted tree)
        todo = run.inventory(artifacts)
        unpack = [(a, f) for a in artifacts for f in a.archives if not (f.checksum.known and run.tree_ok(a, f))]
        if blocked is not None:
            if todo or unpack:
                raise not_writable(blocked, todo, unpack)
            artifacts = [run.lock.apply(a) for a in artifacts]  # everything is cached and verified
        else:
            check_disk_space(run.store, [(a, s) for a, s, _ in todo], unpack, settings.disk_reserve)
            announce_manual([(a, s) for a, s, _ in todo], ctx)
            run.transfer(artifacts, todo)
            artifacts = run.extract(artifacts)
    for art in artifacts:
        report.files.extend(run.results[(art.name, spec.name)] for spec in art.files)
    report.files.extend(unlisted)
    return report
