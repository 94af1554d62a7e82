"""Fetching artifacts into the cache: plan, space check, lock, download, verify, commit.

Each file is written to a temp name unique to this process, hashed while it streams,
checked for size and checksum, and only then moved to its blob path and linked into
the artifact's folder. Sources are tried in order: ``--from`` folders first, then the
manifest's URLs; a wrong file from one source moves on to the next.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import requests

from provision.config import Settings
from provision.errors import (
    SourceError,
)
from provision.extract.archive import ExtractError
from provision.extract.unpack import drop_archive, extract_file
from provision.fetching.folders import list_folders
from provision.fetching.report import FetchReport, FileResult
from provision.fetching.space import check_disk_space
from provision.fetching.transfer import FileFetcher
from provision.manifest.lockfile import LockFile
from provision.manifest.model import Artifact, Catalog, FileSpec
from provision.progress import NullProgress, Progress
from provision.sources.base import AttemptFailed, SourceContext
from provision.sources.http import HttpClient, new_session
from provision.store.cache import Store
from provision.store.records import DROPPED, FileRecord
from provision.store.trees import tree_ok
from provision.store.verify import check_file

__all__ = ["fetch"]

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
        result.extracted = str(store.artifact_dir(art.name) / spec.extract.to)
        if not spec.extract.keep_archive:
            drop_archive(store, art, spec)
            entry = records[art.name].get(spec.name)
            if entry is not None:
                entry.link = DROPPED


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
    fetcher = FileFetcher(store, ctx, lock)
    artifacts: list[Artifact] = []
    unlisted: list[FileResult] = []  # folder entries whose source could not list them
    for art in catalog.resolve(names, subset):
        try:
            artifacts.append(list_folders(art, lock, ctx))
        except SourceError as exc:
            folder = next(f for f in art.files if f.is_folder and lock.listing(art.name, f.name) is None)
            path = str(store.artifact_dir(art.name) / folder.name)
            unlisted.append(
                FileResult(
                    art.name,
                    folder.name,
                    "failed",
                    path,
                    attempts=[(u, a) for u, a in exc.attempts if isinstance(a, AttemptFailed)],
                    failure=exc,
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
