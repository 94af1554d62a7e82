"""The content-addressed cache: blobs, per-artifact folders, records, locks, gc.

Layout under the cache root::

    CACHEDIR.TAG
    blobs/<alg>/<hh>/<hex>        content, keyed by the manifest's checksum (read-only)
    artifacts/<name>/<file>       the human-readable folder (reflinks/hard links to blobs)
    records/<name>.json           per file: checksum, xxh3_128, size, mtime_ns, inode
    locks/<name>.lock             per-artifact inter-process lock (+ .owner note)

Nothing appears at a final path before it is complete and verified: files are written
to a temp name unique to the process beside their target and moved with ``os.replace``.
Correctness never depends on the lock (shared filesystems may grant it to everyone);
the lock only saves duplicate work.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import filelock

from .errors import LockTimeoutError, ProvisionError
from .hashing import Checksum
from .manifest import Artifact, Catalog
from .sources.base import link_or_copy, temp_name

__all__ = ["DROPPED", "FileRecord", "GcReport", "Store", "is_reclaimable", "is_stale_temp"]

CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by provision.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)

RECORD_SCHEMA = 1
#: ``FileRecord.link`` of an archive removed after a verified extraction (keep_archive = false).
DROPPED = "dropped"
_PART = ".part-"
#: A temp file from another host is stale after this many seconds without change.
STALE_AFTER = 24 * 3600


@dataclass
class FileRecord:
    """What the cache knows about one file of an artifact."""

    checksum: str
    xxh3_128: str
    size: int
    mtime_ns: int
    ino: int
    link: str = ""
    source: str = ""

    def stat_matches(self, st: os.stat_result) -> bool:
        """True when ``st`` is the stat recorded (the file cannot have changed)."""
        return (st.st_size, st.st_mtime_ns, st.st_ino) == (self.size, self.mtime_ns, self.ino)

    def with_stat(self, st: os.stat_result) -> FileRecord:
        """A copy carrying ``st``'s size, mtime and inode."""
        return FileRecord(
            self.checksum,
            self.xxh3_128,
            st.st_size,
            st.st_mtime_ns,
            st.st_ino,
            self.link,
            self.source,
        )


@dataclass
class GcReport:
    """What ``gc`` removed (or would remove, with ``dry_run``)."""

    removed: list[tuple[str, int, str]] = field(default_factory=list)  # (path, bytes, why)
    dry_run: bool = False

    @property
    def bytes(self) -> int:
        """Total bytes freed."""
        return sum(b for _, b, _ in self.removed)


def is_stale_temp(path: Path, now: float | None = None) -> bool:
    """A ``*.part-<host>-<pid>-<rand>`` file whose writer is gone (or, elsewhere, old)."""
    name = path.name
    if _PART not in name:
        return False
    tail = name.rsplit(_PART, 1)[1].split("-")
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return False
    if len(tail) >= 3 and tail[0] == socket.gethostname().replace("-", "_"):
        try:
            os.kill(int(tail[1]), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, ValueError):
            pass
        else:
            return False
    return ((now or time.time()) - mtime) > STALE_AFTER


def is_reclaimable(path: Path) -> bool:
    """A partial download this process may continue: its writer is gone, or is this process."""
    tail = path.name.rsplit(_PART, 1)[-1].split("-")
    if len(tail) >= 3 and tail[0] == socket.gethostname().replace("-", "_") and tail[1] == str(os.getpid()):
        return True
    return is_stale_temp(path)


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


class Store:
    """A cache root on disk. Cheap to construct; creates folders on first write."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- layout --------------------------------------------------------------------
    def ensure(self) -> None:
        """Create the root, its ``CACHEDIR.TAG`` and the top-level folders."""
        try:
            for sub in ("blobs", "artifacts", "records", "locks"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            tag = self.root / "CACHEDIR.TAG"
            if not tag.exists():
                _atomic_write_text(tag, CACHEDIR_TAG)
        except OSError as exc:
            raise ProvisionError(
                f"cannot create the cache at {self.root}: {exc.strerror or exc}; "
                "pick a writable folder with --cache-dir or PROVISION_CACHE"
            ) from exc

    def blob_path(self, checksum: Checksum) -> Path:
        """Where the content with ``checksum`` lives."""
        return self.root / "blobs" / checksum.alg / checksum.hex[:2] / checksum.hex

    def artifact_dir(self, name: str) -> Path:
        """The stable, human-readable folder of artifact ``name``."""
        return self.root / "artifacts" / name

    def record_path(self, name: str) -> Path:
        """The JSON record of artifact ``name``."""
        return self.root / "records" / f"{name}.json"

    # -- records -------------------------------------------------------------------
    def load_record(self, name: str) -> dict[str, FileRecord]:
        """``{file name: FileRecord}`` for artifact ``name`` (empty when none or unreadable)."""
        try:
            data = json.loads(self.record_path(name).read_text(encoding="utf-8"))
            files = data["files"]
            return {k: FileRecord(**v) for k, v in files.items()}
        except (OSError, ValueError, KeyError, TypeError):
            return {}

    def record_complete(self, name: str) -> bool:
        """Whether the record of ``name`` says every file was fetched and verified."""
        try:
            data = json.loads(self.record_path(name).read_text(encoding="utf-8"))
            return bool(data.get("complete"))
        except (OSError, ValueError):
            return False

    def save_record(self, artifact: Artifact, files: dict[str, FileRecord]) -> None:
        """Atomically write the record of ``artifact`` (only files it still defines)."""
        keep = {f.name: files[f.name] for f in artifact.files if f.name in files}
        doc = {
            "schema": RECORD_SCHEMA,
            "artifact": artifact.name,
            "kind": artifact.kind,
            "complete": len(keep) == len(artifact.files),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "files": {k: vars(v) for k, v in sorted(keep.items())},
        }
        _atomic_write_text(self.record_path(artifact.name), json.dumps(doc, indent=1) + "\n")

    # -- committing ------------------------------------------------------------------
    def staging_path(self, artifact: str, name: str) -> Path:
        """Where a file with no published checksum waits for its digest (trust on first use)."""
        return self.root / "blobs" / "sha256" / "_tofu" / f"{artifact}--{name.replace('/', '--')}"

    def commit_blob(self, tmp: Path, final: Path, *, read_only: bool = True) -> Path:
        """Move a verified temp file to its blob path (atomic; same content if it raced)."""
        if read_only:
            os.chmod(tmp, 0o444)
        os.replace(tmp, final)
        return final

    def link_view(self, blob: Path, view: Path) -> str:
        """Point ``view`` at ``blob`` (reflink, hard link, else symlink); atomic replace."""
        view.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_name(view)
        try:
            how = link_or_copy(blob, tmp, allow_hardlink=True, allow_symlink=True)
            os.replace(tmp, view)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return how

    # -- locks -----------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, name: str, timeout: float, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """Hold artifact ``name``'s inter-process lock; tell ``on_wait`` who holds it."""
        path = self.root / "locks" / f"{name}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        owner = path.with_suffix(".owner")
        lock = filelock.FileLock(str(path), mode=0o664)
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            holder = self._lock_owner(owner)
            if on_wait is not None:
                on_wait(f"waiting for {holder} (lock on {name}, timeout {timeout:.0f}s)")
            try:
                lock.acquire(timeout=timeout)
            except filelock.Timeout:
                raise LockTimeoutError(
                    f"gave up after {timeout:.0f}s waiting for {holder} to release the lock on "
                    f"{name} ({path}); wait for it, raise PROVISION_LOCK_TIMEOUT, or stop that process"
                ) from None
        try:
            with contextlib.suppress(OSError):
                owner.write_text(
                    json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}),
                    encoding="utf-8",
                )
            yield
        finally:
            with contextlib.suppress(OSError):
                owner.unlink()
            lock.release()

    @staticmethod
    def _lock_owner(owner: Path) -> str:
        try:
            info = json.loads(owner.read_text(encoding="utf-8"))
            return f"pid {info['pid']} on {info['host']}"
        except (OSError, ValueError, KeyError):
            return "another process"

    # -- housekeeping ----------------------------------------------------------------
    def referenced_blobs(self, catalog: Catalog, pinned: Iterable[Checksum] = ()) -> set[Path]:
        """Blob paths some manifest file (or a pin of the lock file) points at."""
        sums = [f.checksum for a in catalog.artifacts.values() for f in a.files if f.checksum.known]
        return {self.blob_path(c) for c in [*sums, *pinned]}

    def gc(self, catalog: Catalog, *, dry_run: bool = False, pinned: Iterable[Checksum] = ()) -> GcReport:
        """Remove unreferenced blobs, stale temp files, and folders of unknown artifacts."""
        report = GcReport(dry_run=dry_run)
        keep = self.referenced_blobs(catalog, pinned)

        def drop(path: Path, why: str) -> None:
            try:
                size = path.lstat().st_size
            except FileNotFoundError:
                return
            report.removed.append((str(path), size, why))
            if not dry_run:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

        for path in self._walk_files(self.root / "blobs"):
            if _PART in path.name:
                if is_stale_temp(path):
                    drop(path, "stale partial download")
            elif path not in keep:
                drop(path, "no manifest references it")
        for sub in ("artifacts",):
            base = self.root / sub
            if not base.is_dir():
                continue
            for child in sorted(base.iterdir()):
                if child.name not in catalog.artifacts:
                    for path in self._walk_files(child):
                        drop(path, f"artifact {child.name!r} is in no manifest")
                    if not dry_run:
                        self._prune_dirs(child)
                else:
                    for path in self._stale_parts(child):
                        if path.is_dir() and not path.is_symlink():
                            for inner in self._walk_files(path):
                                drop(inner, "interrupted extraction")
                            if not dry_run:
                                shutil.rmtree(path, ignore_errors=True)
                        else:
                            drop(path, "stale partial link or extraction")
        records = self.root / "records"
        if records.is_dir():
            for rec in sorted(records.glob("*.json")):
                # <name>.json (fetch record) and <name>.trees.json (extraction record, unpack.py)
                owner = rec.name.removesuffix(".trees.json") if rec.name.endswith(".trees.json") else rec.stem
                if owner not in catalog.artifacts:
                    drop(rec, f"record of artifact {owner!r}, which is in no manifest")
        self._gc_preprocessed(catalog, drop, dry_run)
        if not dry_run:
            self._prune_dirs(self.root / "blobs", keep_top=True)
        return report

    def _gc_preprocessed(self, catalog: Catalog, drop: Callable[[Path, str], None], dry_run: bool) -> None:
        """Preprocessing leftovers that can never be used again: outputs of benchmarks no manifest
        defines, outputs rejected by ``expected_tree`` (kept for inspection until gc), validation
        results of runs that no longer exist, and temp folders of interrupted runs. Outputs of a
        defined benchmark are kept, whatever their key: another model, subset or machine may use them."""
        top = self.root / "preprocessed"
        if not top.is_dir():
            return
        for bench in sorted(p for p in top.iterdir() if p.is_dir()):
            doomed: list[tuple[Path, str]] = []
            if bench.name not in catalog.benchmarks:
                doomed.append((bench, f"preprocessed outputs of benchmark {bench.name!r}, which is in no manifest"))
            else:
                for child in sorted(bench.iterdir()):
                    run = bench / child.name.removesuffix(".validation")
                    if child.name.endswith(".rejected"):
                        doomed.append((child, "outputs rejected by expected_tree"))
                    elif child.name.endswith(".validation") and not run.is_dir():
                        doomed.append((child, "validation results of a preprocessing run that no longer exists"))
                    elif _PART in child.name and is_stale_temp(child):
                        doomed.append((child, "interrupted preprocessing run"))
            for folder, why in doomed:
                for path in self._walk_files(folder) if folder.is_dir() else [folder]:
                    drop(path, why)
                if not dry_run:
                    self._prune_dirs(folder)

    @staticmethod
    def _stale_parts(top: Path) -> list[Path]:
        """Temp files and folders (``*.part-*``) under ``top`` whose writer is gone."""
        out: list[Path] = []
        for dirpath, dirs, files in os.walk(top):
            for name in [*dirs, *files]:
                if _PART in name and is_stale_temp(Path(dirpath) / name):
                    out.append(Path(dirpath) / name)
            dirs[:] = [d for d in dirs if _PART not in d]
        return sorted(out)

    @staticmethod
    def _walk_files(top: Path) -> Iterable[Path]:
        if not top.is_dir():
            return []
        out: list[Path] = []
        for dirpath, _dirs, files in os.walk(top):
            out.extend(Path(dirpath) / f for f in files)
        return sorted(out)

    @staticmethod
    def _prune_dirs(top: Path, keep_top: bool = False) -> None:
        if not top.is_dir():
            return
        # Deepest first, so that a folder emptied by removing its children goes too.
        for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda walked: walked[0].count(os.sep), reverse=True):
            p = Path(dirpath)
            if keep_top and p == top:
                continue
            with contextlib.suppress(OSError):
                p.rmdir()

    def usage(self, artifact: Artifact) -> dict[str, Any]:
        """Disk use and completeness of ``artifact`` in this cache."""
        present = 0
        nbytes = 0
        seen: set[tuple[int, int]] = set()
        base = self.artifact_dir(artifact.name)
        records = self.load_record(artifact.name)
        for spec in artifact.files:
            if spec.is_folder:  # listing never pinned: nothing of it is here yet
                continue
            entry = records.get(spec.name)
            if entry is not None and entry.link == DROPPED:
                present += 1
                continue
            try:
                st = (base / spec.name).stat()
            except OSError:
                continue
            present += 1
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                nbytes += st.st_size
        total = len(artifact.files)
        state = "absent" if present == 0 else ("partial" if present < total else "present")
        if state == "present" and not self.record_complete(artifact.name):
            state = "unverified"
        return {
            "name": artifact.name,
            "kind": artifact.kind,
            "state": state,
            "files": present,
            "files_total": total,
            "bytes": nbytes,
            "path": str(base),
        }

    def partial_bytes(self) -> int:
        """Bytes held by in-flight or abandoned temp files."""
        return sum(p.lstat().st_size for p in self._walk_files(self.root / "blobs") if _PART in p.name)
