"""The content-addressed cache: blobs, per-artifact folders, records, locks, gc.

Layout under the cache root::

    CACHEDIR.TAG
    blobs/<alg>/<hh>/<hex>        content, keyed by the manifest's checksum (read-only)
    artifacts/<name>/<file>       the human-readable folder (reflinks/hard links to blobs)
    records/<name>.json           per file: checksum, xxh3_128, size, mtime_ns, inode, ctime_ns
    records/<name>.trees.json     per archive: its extraction record (store/trees.py)
    locks/<name>.lock             per-artifact inter-process lock (+ .owner note)

Nothing appears at a final path before it is complete and verified: files are written
to a temp name unique to the process beside their target and moved with ``os.replace``.
Correctness never depends on the lock (shared filesystems may grant it to everyone);
the lock only saves duplicate work. No write follows a link planted in the cache: records and
notes go through a new temp file and a rename, a link at a lock file is removed, and an
artifact's folders are made through real folders only.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provision.errors import LockTimeoutError, ProvisionError
from provision.fsutil import (
    NotRegularFileError,
    atomic_write_text,
    file_kind,
    link_or_copy,
    parse_temp_name,
    read_json,
    temp_name,
)
from provision.manifest.checksum import Checksum
from provision.manifest.model import Artifact
from provision.store.records import DROPPED, RECORD_SCHEMA, FileRecord
from provision.store.trees import tree_present

if TYPE_CHECKING:
    import filelock

__all__ = ["CACHEDIR_TAG", "NOT_WRITABLE", "WRITABLE_FIX", "Store", "regular_view", "walk_files"]

#: The errors of a write the file system refuses (read-only mount, permissions, an immutable file).
NOT_WRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})

#: What to do about a cache that is not writable.
WRITABLE_FIX = (
    "make it writable (remount read-write, chmod/chown, chattr -i) or point --cache-dir or "
    "PROVISION_CACHE at a writable cache"
)

CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by provision.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)


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
            if not os.path.lexists(tag):  # anything there (a link too) is left alone, never written through
                atomic_write_text(tag, CACHEDIR_TAG)
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
    def _record_doc(self, name: str) -> dict[str, Any] | None:
        """The record document of ``name`` when it has the shape :meth:`save_record` writes, else None
        (missing, unreadable, not JSON, ``null``, ``{"files": []}``...: taken as no record at all)."""
        doc = read_json(self.record_path(name))
        if not isinstance(doc, dict) or not isinstance(doc.get("files"), dict):
            return None
        return doc

    def load_record(self, name: str) -> dict[str, FileRecord]:
        """``{file name: FileRecord}`` for artifact ``name`` (empty when none or unreadable); an entry
        of the wrong shape is left out, so that its file is verified again."""
        doc = self._record_doc(name)
        if doc is None:
            return {}
        out = {}
        for key, value in doc["files"].items():
            entry = FileRecord.from_json(value)
            if entry is not None:
                out[key] = entry
        return out

    def record_complete(self, name: str) -> bool:
        """Whether the record of ``name`` says every file was fetched and verified."""
        doc = self._record_doc(name)
        return doc is not None and doc.get("complete") is True

    def save_record(self, artifact: Artifact, files: dict[str, FileRecord]) -> None:
        """Atomically write the record of ``artifact`` (only files it still defines)."""
        keep = {f.name: files[f.name] for f in artifact.files if f.name in files}
        doc = {
            "schema": RECORD_SCHEMA,
            "artifact": artifact.name,
            "kind": artifact.kind,
            "complete": len(keep) == len(artifact.files),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "files": {k: v.to_json() for k, v in sorted(keep.items())},
        }
        atomic_write_text(self.record_path(artifact.name), json.dumps(doc, indent=1) + "\n")

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
        self.make_folder(view.parent)
        tmp = temp_name(view)
        try:
            how = link_or_copy(blob, tmp, allow_hardlink=True, allow_symlink=True)
            os.replace(tmp, view)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return how

    def make_folder(self, folder: Path) -> None:
        """Create ``folder`` (inside ``artifacts/``) through real folders only: a symlink (or a FIFO...)
        planted where a folder of an artifact belongs is removed, never followed out of the cache."""
        top = self.root / "artifacts"
        try:
            parts = folder.relative_to(top).parts
        except ValueError:
            folder.mkdir(parents=True, exist_ok=True)
            return
        top.mkdir(parents=True, exist_ok=True)
        current = top
        for part in parts:
            current = current / part
            try:
                mode = os.lstat(current).st_mode
            except FileNotFoundError:
                mode = 0
            if stat.S_ISDIR(mode):
                continue
            if stat.S_ISREG(mode):
                raise NotADirectoryError(errno.ENOTDIR, "a file where the cache needs a folder", str(current))
            if mode:
                self.clear_irregular(current)
            with contextlib.suppress(FileExistsError):  # another process made it meanwhile
                os.mkdir(current)

    def clear_irregular(self, path: Path) -> bool:
        """Remove whatever is at ``path`` unless it is a regular file (a FIFO, a device, a folder, a
        symlink: the link itself, never what it points at); True when something was removed."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return False
        if stat.S_ISREG(st.st_mode):
            return False
        try:
            if stat.S_ISDIR(st.st_mode):
                aside = temp_name(path)
                os.rename(path, aside)
                shutil.rmtree(aside)
            else:
                os.unlink(path)
        except OSError as exc:
            raise ProvisionError(
                f"cannot remove {path} ({exc.strerror or exc}), a {file_kind(st.st_mode)} where the cache "
                "keeps a regular file; remove it by hand and fetch again"
            ) from exc
        return True

    def unwritable(self, artifacts: list[Artifact]) -> tuple[Path, str] | None:
        """The first folder a fetch of ``artifacts`` would write in but cannot, and why (None when all
        can be written). Each folder is probed by creating and removing a temp file in it, which tells
        a read-only mount, permissions, ACLs and ``chattr +i`` apart from a writable folder, as root too."""
        folders = [self.root / sub for sub in ("blobs", "records", "locks", "artifacts")]
        for art in artifacts:
            base = self.artifact_dir(art.name)
            folders += [base, *((base / f.name).parent for f in art.files)]
            folders += [(base / f.extract.to).parent for f in art.archives if f.extract is not None]
        for folder in dict.fromkeys(folders):
            while not folder.is_dir() and folder != self.root and self.root in folder.parents:
                folder = folder.parent  # made by the fetch: its nearest existing folder must be writable
            probe = temp_name(folder / ".write-probe")
            try:
                os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
                os.unlink(probe)
            except OSError as exc:
                if exc.errno in NOT_WRITABLE:
                    return folder, exc.strerror or str(exc)
        return None

    # -- locks -----------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(
        self, name: str, timeout: float, on_wait: Callable[[str], None] | None = None, *, required: bool = True
    ) -> Iterator[bool]:
        """Hold artifact ``name``'s inter-process lock; tell ``on_wait`` who holds it. Yields True.

        A symlink (or anything but a regular file) at the lock file is removed, never followed, and
        the ``.owner`` note is written through a temp file and a rename. ``required=False`` (verify,
        which only reads) goes on without the lock where the cache is not writable, and yields False.
        """
        path = self.root / "locks" / f"{name}.lock"
        lock = self._acquire(path, name, timeout, on_wait, required)
        if lock is None:
            yield False
            return
        owner = path.with_suffix(".owner")
        try:
            with contextlib.suppress(OSError):
                note = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
                atomic_write_text(owner, json.dumps(note), durable=False)
            yield True
        finally:
            with contextlib.suppress(OSError):
                owner.unlink()
            lock.release()

    def _acquire(
        self, path: Path, name: str, timeout: float, on_wait: Callable[[str], None] | None, required: bool
    ) -> filelock.BaseFileLock | None:
        import filelock  # here, not at the top: ~30 ms that commands which take no lock never pay

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.clear_irregular(path)
            lock = filelock.FileLock(str(path), mode=0o664)
            try:
                lock.acquire(timeout=0)
            except filelock.Timeout:
                holder = self._lock_owner(path.with_suffix(".owner"))
                if on_wait is not None:
                    on_wait(f"waiting for {holder} (lock on {name}, timeout {timeout:.0f}s)")
                try:
                    lock.acquire(timeout=timeout)
                except filelock.Timeout:
                    raise LockTimeoutError(
                        f"gave up after {timeout:.0f}s waiting for {holder} to release the lock on "
                        f"{name} ({path}); wait for it, raise PROVISION_LOCK_TIMEOUT, or stop that process"
                    ) from None
        except LockTimeoutError:  # a TimeoutError, hence an OSError: not a file-system refusal
            raise
        except OSError as exc:
            if not required and exc.errno in NOT_WRITABLE:
                return None
            raise ProvisionError(f"cannot take the lock {path} ({exc.strerror or exc}); {WRITABLE_FIX}") from exc
        except ProvisionError:  # clear_irregular could not remove a link planted at the lock file
            if not required and not os.access(path.parent, os.W_OK):
                return None
            raise
        return lock

    @staticmethod
    def _lock_owner(owner: Path) -> str:
        info = read_json(owner)
        if isinstance(info, dict) and type(info.get("pid")) is int and isinstance(info.get("host"), str):
            return f"pid {info['pid']} on {info['host']}"
        return "another process"

    def usage(self, artifact: Artifact) -> dict[str, Any]:
        """Disk use and completeness of ``artifact`` in this cache (stats only; reads no data).

        ``present`` only when every file is there as a regular file (or a symlink to its blob) with a
        valid record entry, the record is complete, and every archive's extraction is complete and
        recorded (:func:`provision.store.trees.tree_present`): an archive refused, an extraction that
        failed or was killed half-way leaves the artifact ``partial``. ``provision path``, ``status``,
        ``list`` and ``show`` all read this one state.
        """
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
                _, st = regular_view(base / spec.name, self.blob_path(spec.checksum) if spec.checksum.known else None)
            except OSError:
                continue
            present += 1
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                nbytes += st.st_size
        total = len(artifact.files)
        archives = artifact.archives
        trees = sum(1 for spec in archives if spec.checksum.known and tree_present(self, artifact, spec))
        if present == 0 and trees == 0:
            state = "absent"
        elif present < total or trees < len(archives):
            state = "partial"
        elif not (all(spec.name in records for spec in artifact.files) and self.record_complete(artifact.name)):
            state = "unverified"
        else:
            state = "present"
        return {
            "name": artifact.name,
            "kind": artifact.kind,
            "state": state,
            "files": present,
            "files_total": total,
            "trees": trees,
            "trees_total": len(archives),
            "bytes": nbytes,
            "path": str(base),
        }

    def partial_bytes(self) -> int:
        """Bytes held by in-flight or abandoned temp files."""
        return sum(p.lstat().st_size for p in walk_files(self.root / "blobs") if parse_temp_name(p.name) is not None)


def regular_view(view: Path, blob: Path | None) -> tuple[Path, os.stat_result]:
    """The regular file that is ``view``, and its stat (never following a link but the one allowed).

    ``view`` itself when it is a regular file; the blob when ``view`` is a symlink to ``blob`` (what
    :meth:`Store.link_view` makes where hard links are impossible). ``FileNotFoundError`` when nothing
    is there (or the link's blob is gone); :class:`NotRegularFileError` for anything else: a FIFO,
    a device, a folder, a symlink elsewhere (``/dev/zero``, a file outside the cache).
    """
    st = os.lstat(view)
    if stat.S_ISREG(st.st_mode):
        return view, st
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(view)
        if blob is not None and os.path.realpath(view) == os.path.realpath(blob):
            real = Path(os.path.realpath(blob))
            bst = os.lstat(real)
            if stat.S_ISREG(bst.st_mode):
                return real, bst
            what = f"a symlink to its blob, which is a {file_kind(bst.st_mode)}"
            raise NotRegularFileError(errno.EINVAL, what, str(view))
        raise NotRegularFileError(errno.EINVAL, f"a symlink to {target}, not to its blob", str(view))
    raise NotRegularFileError(errno.EINVAL, f"a {file_kind(st.st_mode)}", str(view))


def walk_files(top: Path) -> list[Path]:
    """Every file under ``top`` (not following links), sorted; empty when ``top`` is not a folder."""
    if not top.is_dir():
        return []
    out: list[Path] = []
    for dirpath, _dirs, files in os.walk(top):
        out.extend(Path(dirpath) / f for f in files)
    return sorted(out)
