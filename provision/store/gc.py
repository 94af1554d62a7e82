"""``provision gc``: remove what no manifest can use any more, and what interrupted runs left.

Blobs no manifest references (pins of the lock file count as references), temp files whose
process is gone (or, from another host, untouched for a day; only the exact names
:func:`provision.fsutil.temp_name` makes), folders and records of artifacts no manifest defines,
records that vouch for nothing (a first fetch that failed writes one) and the empty folder of such
an artifact, and preprocessing leftovers: outputs of benchmarks no manifest defines,
outputs rejected by ``expected_tree``, validation results of runs that are gone, interrupted
runs. Preprocessed runs of a defined benchmark are kept whatever their key: another model,
subset or machine sharing the cache may use them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from provision.errors import LockTimeoutError
from provision.fsutil import is_stale_temp, parse_temp_name
from provision.manifest.checksum import Checksum
from provision.manifest.model import Artifact, Catalog
from provision.store.cache import Store, walk_files
from provision.store.records import DROPPED
from provision.store.trees import load_trees

__all__ = ["GcReport", "gc", "referenced_blobs", "sweep_artifact"]

Drop = Callable[[Path, str], None]


@dataclass
class GcReport:
    """What ``gc`` removed (or would remove, with ``dry_run``)."""

    removed: list[tuple[str, int, str]] = field(default_factory=list)  # (path, bytes, why)
    dry_run: bool = False

    @property
    def bytes(self) -> int:
        """Total bytes freed."""
        return sum(b for _, b, _ in self.removed)


def referenced_blobs(store: Store, catalog: Catalog, pinned: Iterable[Checksum] = ()) -> set[Path]:
    """Blob paths some manifest file (or a pin of the lock file) points at."""
    sums = [f.checksum for a in catalog.artifacts.values() for f in a.files if f.checksum.known]
    return {store.blob_path(c) for c in [*sums, *pinned]}


def gc(store: Store, catalog: Catalog, *, dry_run: bool = False, pinned: Iterable[Checksum] = ()) -> GcReport:
    """Remove unreferenced blobs, stale temp files, folders of unknown artifacts and dead preprocessing runs."""
    report = GcReport(dry_run=dry_run)

    def drop(path: Path, why: str) -> None:
        try:
            size = path.lstat().st_size
        except FileNotFoundError:
            return
        report.removed.append((str(path), size, why))
        if not dry_run:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    _blobs(store, referenced_blobs(store, catalog, pinned), drop)
    _artifacts(store, catalog, drop, dry_run)
    _records(store, catalog, drop)
    _preprocessed(store, catalog, drop, dry_run)
    if not dry_run:
        _prune_dirs(store.root / "blobs", keep_top=True)
    return report


def _blobs(store: Store, keep: set[Path], drop: Drop) -> None:
    for path in walk_files(store.root / "blobs"):
        if parse_temp_name(path.name) is not None:
            if is_stale_temp(path):
                drop(path, "stale partial download")
        elif path not in keep:
            drop(path, "no manifest references it")


def _artifacts(store: Store, catalog: Catalog, drop: Drop, dry_run: bool) -> None:
    base = store.root / "artifacts"
    if not base.is_dir():
        return
    for child in sorted(base.iterdir()):
        if child.name not in catalog.artifacts:
            if child.is_symlink() or not child.is_dir():  # a link is removed, never followed
                drop(child, f"artifact {child.name!r} is in no manifest")
                continue
            for path in walk_files(child):
                drop(path, f"artifact {child.name!r} is in no manifest")
            if not dry_run:
                _prune_dirs(child)
            continue
        if child.is_symlink():
            continue
        if not dry_run and not any(child.iterdir()):
            with _unless_busy(store, child.name) as free, contextlib.suppress(OSError):
                if free:
                    child.rmdir()  # a first fetch that failed left the folder empty
            continue
        for path in _stale_parts(child):
            if path.is_dir() and not path.is_symlink():
                for inner in walk_files(path):
                    drop(inner, "interrupted extraction")
                if not dry_run:
                    shutil.rmtree(path, ignore_errors=True)
            else:
                drop(path, "stale partial link or extraction")


def _records(store: Store, catalog: Catalog, drop: Drop) -> None:
    records = store.root / "records"
    if not records.is_dir():
        return
    for rec in sorted(records.glob("*.json")):
        # <name>.json (fetch record) and <name>.trees.json (extraction record, store/trees.py)
        is_trees = rec.name.endswith(".trees.json")
        owner = rec.name.removesuffix(".trees.json") if is_trees else rec.stem
        if owner not in catalog.artifacts:
            drop(rec, f"record of artifact {owner!r}, which is in no manifest")
        elif _vouches_for_nothing(store, owner, is_trees):
            with _unless_busy(store, owner) as free:
                if free and _vouches_for_nothing(store, owner, is_trees):
                    drop(rec, "record of a fetch that completed nothing")


def _vouches_for_nothing(store: Store, name: str, is_trees: bool) -> bool:
    """A record with no entry for anything there: a first fetch that failed writes one, and a record
    unreadable or of the wrong shape vouches for nothing either (then ``verify`` finds the artifact
    absent, not bad)."""
    if is_trees:
        return not load_trees(store, name)
    base = store.artifact_dir(name)
    return not any(e.link == DROPPED or os.path.lexists(base / f) for f, e in store.load_record(name).items())


@contextlib.contextmanager
def _unless_busy(store: Store, name: str) -> Iterator[bool]:
    """Hold artifact ``name``'s lock if it is free at once (True); False while a fetch holds it."""
    try:
        with store.lock(name, 0):
            yield True
    except LockTimeoutError:
        yield False


def _preprocessed(store: Store, catalog: Catalog, drop: Drop, dry_run: bool) -> None:
    """Preprocessing leftovers that can never be used again: outputs of benchmarks no manifest
    defines, outputs rejected by ``expected_tree`` (kept for inspection until gc), validation
    results of runs that no longer exist, and temp folders of interrupted runs. Outputs of a
    defined benchmark are kept, whatever their key: another model, subset or machine may use them."""
    top = store.root / "preprocessed"
    if not top.is_dir():
        return
    for bench in sorted(p for p in top.iterdir() if p.is_dir() or p.is_symlink()):
        doomed: list[tuple[Path, str]] = []
        if bench.name not in catalog.benchmarks:
            doomed.append((bench, f"preprocessed outputs of benchmark {bench.name!r}, which is in no manifest"))
        elif bench.is_symlink():
            continue  # never followed
        else:
            for child in sorted(bench.iterdir()):
                run = bench / child.name.removesuffix(".validation").removesuffix(".harness")
                if child.name.endswith(".rejected"):
                    doomed.append((child, "outputs rejected by expected_tree"))
                elif child.name.endswith(".validation") and not run.is_dir():
                    doomed.append((child, "validation results of a preprocessing run that no longer exists"))
                elif child.name.endswith(".harness") and not run.is_dir():
                    doomed.append((child, "reference-harness files of a preprocessing run that no longer exists"))
                elif is_stale_temp(child):
                    doomed.append((child, "interrupted preprocessing run"))
        for folder, why in doomed:
            for path in walk_files(folder) if folder.is_dir() and not folder.is_symlink() else [folder]:
                drop(path, why)
            if not dry_run:
                _prune_dirs(folder)


def sweep_artifact(store: Store, art: Artifact) -> list[Path]:
    """Remove the stale temp files and folders that interrupted runs left beside ``art``'s files and
    extracted trees (a killed extraction's ``<to>.part-<host>-<pid>-<hex>/``, a link or an old tree
    set aside); returns what was removed. ``fetch`` calls this for each artifact it fetches, under
    its lock; nothing is followed through a symlink, and nothing a live process writes is touched."""
    base = store.artifact_dir(art.name)
    real_base = os.path.realpath(base)
    folders = {(base / f.name).parent for f in art.files}
    folders |= {(base / f.extract.to).parent for f in art.archives if f.extract is not None}
    removed: list[Path] = []
    for folder in sorted(folders):
        rel = os.path.relpath(folder, base)
        if os.path.realpath(folder) != os.path.normpath(os.path.join(real_base, rel)):
            continue  # reached through a symlink: not ours to clean
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            path = folder / name
            if not is_stale_temp(path):
                continue
            with contextlib.suppress(OSError):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
                removed.append(path)
    return removed


def _stale_parts(top: Path) -> list[Path]:
    """Temp files and folders (exact temp names, :func:`parse_temp_name`) under ``top`` whose writer is gone."""
    out: list[Path] = []
    for dirpath, dirs, files in os.walk(top):
        for name in [*dirs, *files]:
            if is_stale_temp(Path(dirpath) / name):
                out.append(Path(dirpath) / name)
        dirs[:] = [d for d in dirs if parse_temp_name(d) is None]
    return sorted(out)


def _prune_dirs(top: Path, keep_top: bool = False) -> None:
    if top.is_symlink() or not top.is_dir():
        return
    # Deepest first, so that a folder emptied by removing its children goes too.
    for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda walked: walked[0].count(os.sep), reverse=True):
        p = Path(dirpath)
        if keep_top and p == top:
            continue
        with contextlib.suppress(OSError):
            p.rmdir()
