"""Checking cached artifacts: the stat fast path, the xxh3 re-check and ``--full``.

Only regular files are read (a symlink is followed only when it points at the file's own blob):
a FIFO, a device or a link elsewhere at a file's path is ``changed``, never opened. A file whose
(size, mtime_ns, inode, ctime_ns) equals its record is taken as unchanged and not read. A file
whose stat changed is re-hashed with xxh3_128 (fast) and compared with the recorded digest.
``full=True`` re-hashes every file with the published algorithm too and compares it with the
manifest.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from provision.config import Settings
from provision.errors import IntegrityError
from provision.fsutil import NotRegularFileError
from provision.manifest.checksum import Checksum
from provision.manifest.folders import as_fetched
from provision.manifest.lockfile import LockFile
from provision.manifest.model import Artifact, Catalog, FileSpec
from provision.progress import NullProgress, Progress
from provision.store.cache import Store, regular_view
from provision.store.hashing import FAST_ALG, hash_file
from provision.store.records import DROPPED, FileRecord
from provision.store.trees import load_trees, stored_tree, verify_tree

__all__ = ["FileCheck", "VerifyReport", "check_file", "verify"]


@dataclass
class FileCheck:
    """The state of one cached file."""

    artifact: str
    name: str
    state: str  # ok | absent (never fetched; verify with no names) | missing | corrupt | changed (not a regular file)
    path: str
    hashed: bool = False
    expected: str = ""
    got: str = ""

    @property
    def ok(self) -> bool:
        """True when the file is present and matches, or was never fetched (``absent``, no names given)."""
        return self.state in ("ok", "absent")

    def message(self) -> str:
        """One line for a failed check."""
        if self.name.endswith("/"):
            return (
                f"{self.artifact}/{self.name}: extracted tree {self.state} at {self.path} ({self.got}); "
                f"run 'provision fetch {self.artifact}' to extract it again"
            )
        if self.state == "missing":
            return f"{self.artifact}/{self.name}: missing at {self.path}; run 'provision fetch {self.artifact}'"
        if self.state == "changed":
            return (
                f"{self.artifact}/{self.name}: not a regular file at {self.path} ({self.got}); "
                f"run 'provision fetch {self.artifact}' to replace it"
            )
        return (
            f"{self.artifact}/{self.name}: checksum mismatch at {self.path}: expected {self.expected}, "
            f"got {self.got}; run 'provision fetch {self.artifact}' to repair it"
        )


@dataclass
class VerifyReport:
    """Every file checked, and how much had to be read."""

    files: list[FileCheck] = field(default_factory=list)
    files_hashed: int = 0
    bytes_hashed: int = 0

    @property
    def ok(self) -> bool:
        """True when every file is present and matches (or was never fetched)."""
        return all(f.ok for f in self.files)

    @property
    def absent(self) -> list[FileCheck]:
        """The files (and trees) never fetched (or never extracted): reported, not failures."""
        return [f for f in self.files if f.state == "absent"]

    @property
    def failures(self) -> list[FileCheck]:
        """The files that are missing or corrupt."""
        return [f for f in self.files if not f.ok]

    def raise_for_errors(self) -> None:
        """:class:`IntegrityError` naming the first bad file (and how many more)."""
        bad = self.failures
        if bad:
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise IntegrityError(bad[0].message() + more, path=bad[0].path)


def check_file(
    store: Store,
    artifact: Artifact,
    spec: FileSpec,
    entry: FileRecord | None,
    *,
    full: bool = False,
    progress: Progress | None = None,
) -> tuple[FileCheck, FileRecord | None, int]:
    """Check one file; returns (result, record to keep, bytes read).

    Only a regular file (or a symlink to its own blob) is ever read; anything else at the file's
    path is ``changed``, which ``fetch`` replaces.
    """
    view = store.artifact_dir(artifact.name) / spec.name
    check = FileCheck(artifact.name, spec.name, "ok", str(view))
    if spec.is_folder:  # a folder entry whose listing was never pinned: not fetched
        check.state = "missing"
        return check, None, 0
    if not os.path.lexists(view):
        check.state = "missing"
        return check, None, 0
    if not spec.checksum.known:
        if entry is None:  # never pinned (lock file lost?) and never recorded: nothing to compare with
            check.state, check.expected, check.got = "corrupt", "a pinned checksum", "none (fetch it again)"
            return check, None, 0
        spec = replace(spec, checksum=Checksum.parse(entry.checksum))
    try:
        path, st = regular_view(view, store.blob_path(spec.checksum))
    except NotRegularFileError as exc:
        check.state, check.expected, check.got = "changed", "a regular file", exc.strerror or str(exc)
        return check, None, 0
    except OSError as exc:
        check.state, check.got = "missing", exc.strerror or str(exc)
        return check, None, 0
    published = str(spec.checksum)
    if entry is not None and entry.checksum != published:
        entry = None  # the manifest changed: the record says nothing about the new checksum
    if entry is not None and not full and entry.stat_matches(st):
        return check, entry, 0
    check.hashed = True
    algs = [FAST_ALG] if (entry is not None and not full) else [spec.checksum.alg, FAST_ALG]
    key = f"{artifact.name}/{spec.name}"
    if progress is not None:
        progress.start(key, spec.name, st.st_size)
    try:
        digests = hash_file(
            path, algs, (lambda n: progress.advance(key, n)) if progress else None, follow_symlinks=False
        )
    except NotRegularFileError as exc:  # replaced between the stat and the open
        check.state, check.expected, check.got = "changed", "a regular file", exc.strerror or str(exc)
        return check, None, 0
    except OSError as exc:
        check.state = "missing"
        check.got = str(exc)
        return check, None, 0
    nbytes = st.st_size
    if spec.size is not None and st.st_size != spec.size:
        check.state = "corrupt"
        check.expected, check.got = f"{spec.size} bytes", f"{st.st_size} bytes"
        return check, None, nbytes
    if spec.checksum.alg in digests and digests[spec.checksum.alg] != spec.checksum.hex:
        check.state = "corrupt"
        check.expected, check.got = published, f"{spec.checksum.alg}:{digests[spec.checksum.alg]}"
        return check, None, nbytes
    if entry is not None and digests[FAST_ALG] != entry.xxh3_128:
        check.state = "corrupt"
        check.expected = f"{FAST_ALG}:{entry.xxh3_128} (recorded when fetched)"
        check.got = f"{FAST_ALG}:{digests[FAST_ALG]}"
        return check, None, nbytes
    if entry is None:
        entry = FileRecord(published, digests[FAST_ALG], st.st_size, st.st_mtime_ns, st.st_ino)
    return check, entry.with_stat(st), nbytes


def cached_artifacts(store: Store, catalog: Catalog) -> list[Artifact]:
    """Artifacts that have a folder or a record in ``store``."""
    out = []
    for art in catalog.artifacts.values():
        if store.record_path(art.name).exists() or store.artifact_dir(art.name).exists():
            out.append(art)
    return sorted(out, key=lambda a: a.name)


def verify(
    catalog: Catalog,
    names: Iterable[str],
    settings: Settings,
    *,
    full: bool = False,
    progress: Progress | None = None,
) -> VerifyReport:
    """Check the named artifacts (all cached ones when ``names`` is empty).

    With no names, what was fetched is checked: a file with no record and nothing at its path, a
    folder entry never listed, or an archive never extracted (no completion record) is ``absent`` —
    reported, not a failure (a first fetch that failed leaves such files). A named artifact must be
    there in full: the same file is ``missing``, an error naming ``provision fetch``.
    """
    progress = progress or NullProgress()
    store = Store(settings.cache_dir)
    names = list(names)
    explicit = bool(names)
    lock = LockFile(settings.lock_path)
    chosen = catalog.resolve(names) if names else cached_artifacts(store, catalog)
    artifacts = [as_fetched(a, lock) for a in chosen]
    report = VerifyReport()
    for art in artifacts:
        if not Path(store.root).exists():
            break
        # verify only reads: on a read-only cache it goes on without the lock and without refreshing records
        with store.lock(art.name, settings.lock_timeout, progress.note, required=False):
            records = store.load_record(art.name)
            changed = False
            for spec in art.files:
                key = f"{art.name}/{spec.name}"
                entry = records.get(spec.name)
                if entry is not None and entry.link == DROPPED:
                    continue  # the archive was removed after extraction; its tree is checked below
                view = store.artifact_dir(art.name) / spec.name
                if not explicit and entry is None and (spec.is_folder or not os.path.lexists(view)):
                    report.files.append(FileCheck(art.name, spec.name, "absent", str(view)))
                    continue
                result, fresh, nbytes = check_file(store, art, spec, entry, full=full, progress=progress)
                if result.hashed:
                    progress.finish(key, result.ok)
                report.files.append(result)
                if result.hashed:
                    report.files_hashed += 1
                    report.bytes_hashed += nbytes
                if fresh is not None and fresh != entry:
                    records[spec.name] = fresh
                    changed = True
                elif fresh is None and entry is not None and result.state != "missing":
                    del records[spec.name]  # the record no longer vouches for what is there (a lost file keeps it)
                    changed = True
            if changed:
                with contextlib.suppress(OSError):  # a refresh only: a read-only cache is checked all the same
                    store.save_record(art, records)
            trees = load_trees(store, art.name) if art.archives else {}  # read once for all its archives
            for spec in art.archives:
                assert spec.extract is not None
                tree_path = store.artifact_dir(art.name) / spec.extract.to
                if not explicit and stored_tree(trees, spec) is None:
                    report.files.append(FileCheck(art.name, spec.extract.to + "/", "absent", str(tree_path)))
                    continue
                state, nbytes, problems = verify_tree(store, art, spec, full=full, progress=progress, trees=trees)
                check = FileCheck(art.name, spec.extract.to + "/", state, str(tree_path), hashed=nbytes > 0)
                check.got = ", ".join(problems)
                report.files.append(check)
                if nbytes:
                    report.files_hashed += 1
                    report.bytes_hashed += nbytes
    if names and not Path(store.root).exists():
        for art in artifacts:
            for spec in art.files:
                report.files.append(
                    FileCheck(
                        art.name,
                        spec.name,
                        "missing",
                        str(store.artifact_dir(art.name) / spec.name),
                    )
                )
    return report
