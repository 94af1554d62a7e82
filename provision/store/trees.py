"""Trees of files in the cache: their digest, and the records of extracted archives.

A tree record lists every file with size, xxh3_128 and stat. Each artifact with archives
has ``records/<name>.trees.json``: per archive file, the extraction key (archive checksum +
format + strip/members + target) and the completion record. An extraction without a record
— interrupted, or made by hand — is never taken as done."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import xxhash

from provision.fsutil import (
    CHUNK_SIZE,
    NotRegularFileError,
    atomic_write_text,
    file_kind,
    open_regular,
    read_json,
    stat_key,
)
from provision.manifest.model import Artifact, FileSpec
from provision.progress import NullProgress, Progress

if TYPE_CHECKING:  # the store's usage asks this module whether a tree is present: no import cycle
    from provision.store.cache import Store

__all__ = [
    "TreeFile",
    "TreeRecord",
    "diff_trees",
    "extraction_key",
    "hash_tree",
    "iter_paths",
    "load_trees",
    "stamp_ctimes",
    "tree_digest",
    "tree_ok",
    "tree_present",
    "verify_tree",
]


@dataclass
class TreeFile:
    """One extracted file: size, xxh3_128, and the stat that proves it unchanged (mtime, inode, ctime)."""

    size: int
    xxh3_128: str
    mtime_ns: int = 0
    ino: int = 0
    ctime_ns: int = 0

    def stat_matches(self, st: os.stat_result) -> bool:
        """True when ``st`` is the stat recorded: size, mtime, inode and ctime (as :class:`FileRecord`)."""
        return stat_key(st) == (self.size, self.mtime_ns, self.ino, self.ctime_ns)


@dataclass
class TreeRecord:
    """Every file (and symlink) an extraction produced; ``kind`` is ``dir`` or ``file``."""

    kind: str
    files: dict[str, TreeFile] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """The tree digest (see the module docstring)."""
        return tree_digest(self.files, self.links)

    @property
    def total_bytes(self) -> int:
        """Bytes of all files."""
        return sum(f.size for f in self.files.values())

    def to_json(self) -> dict[str, Any]:
        """JSON-ready, compact: ``files`` maps path -> [size, xxh3, mtime_ns, ino, ctime_ns]."""
        return {
            "kind": self.kind,
            "digest": self.digest,
            "files": {p: [f.size, f.xxh3_128, f.mtime_ns, f.ino, f.ctime_ns] for p, f in sorted(self.files.items())},
            "links": dict(sorted(self.links.items())),
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> TreeRecord:
        """Inverse of :meth:`to_json`; ``ValueError`` when ``doc`` is not of that shape."""
        record = cls.parse(doc)
        if record is None:
            raise ValueError("not a tree record (kind, files, links)")
        return record

    @classmethod
    def parse(cls, doc: Any) -> TreeRecord | None:
        """:meth:`from_json`, or None when ``doc`` is not of the shape it writes (``null``, a list,
        wrong types): a tree whose record is unreadable is taken as not extracted. A file entry of
        four numbers (written before ``ctime_ns`` was recorded) loads with ``ctime_ns = 0``: that file
        is re-hashed once by the next check and recorded again."""
        if not isinstance(doc, dict) or doc.get("kind") not in ("dir", "file"):
            return None
        files_doc, links_doc = doc.get("files"), doc.get("links", {})
        if not isinstance(files_doc, dict) or not isinstance(links_doc, dict):
            return None
        files = {}
        for path, v in files_doc.items():
            if not (isinstance(v, list) and len(v) in (4, 5) and isinstance(v[1], str)):
                return None
            numbers = [v[0], *v[2:]]
            if not all(type(n) is int for n in numbers):
                return None
            files[path] = TreeFile(v[0], v[1], *numbers[1:])
        if not all(isinstance(t, str) for t in links_doc.values()):
            return None
        return cls(doc["kind"], files, dict(links_doc))


def tree_digest(files: dict[str, TreeFile], links: dict[str, str] | None = None) -> str:
    """``xxh3_128:<hex>`` of a tree's paths, sizes and per-file digests (and symlinks)."""
    lines: list[tuple[bytes, bytes]] = []
    for path, f in files.items():
        lines.append((path.encode(), f"f\0{path}\0{f.size}\0{f.xxh3_128}\n".encode()))
    for path, target in (links or {}).items():
        lines.append((path.encode(), f"l\0{path}\0{target}\n".encode()))
    h = xxhash.xxh3_128()
    for _key, line in sorted(lines):
        h.update(line)
    return f"xxh3_128:{h.hexdigest()}"


def _hash_stream(fh: IO[bytes]) -> tuple[int, str]:
    h = xxhash.xxh3_128()
    size = 0
    while chunk := fh.read(CHUNK_SIZE):
        h.update(chunk)
        size += len(chunk)
    return size, h.hexdigest()


def hash_tree(root: Path, on_file: Callable[[int], None] | None = None) -> TreeRecord:
    """Walk ``root`` (never following symlinks) and build its :class:`TreeRecord`."""
    if root.is_file():
        with open(open_regular(root, follow_symlinks=True), "rb") as fh:
            size, digest = _hash_stream(fh)
        st = root.stat()
        return TreeRecord("file", {root.name: TreeFile(size, digest, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)})
    record = TreeRecord("dir")
    for dirpath, dirs, names in os.walk(root):
        # os.walk lists a symlink to a folder among the folders (without following it)
        for name in [*names, *(d for d in dirs if os.path.islink(os.path.join(dirpath, d)))]:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            st = full.lstat()
            if stat.S_ISLNK(st.st_mode):
                record.links[rel] = os.readlink(full)
            elif stat.S_ISREG(st.st_mode):
                with open(open_regular(full), "rb") as fh:
                    size, digest = _hash_stream(fh)
                record.files[rel] = TreeFile(size, digest, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
                if on_file is not None:
                    on_file(size)
    return record


def stamp_ctimes(root: Path, record: TreeRecord) -> None:
    """Record the ctime of each file of ``record`` under ``root`` whose size, mtime and inode are the
    recorded ones (after extraction: the stat that the fast path of ``verify`` compares)."""
    base = os.fspath(root)
    for rel, f in record.files.items():
        try:
            st = os.lstat(os.path.join(base, rel) if record.kind == "dir" else base)
        except OSError:
            continue
        if (st.st_size, st.st_mtime_ns, st.st_ino) == (f.size, f.mtime_ns, f.ino):
            f.ctime_ns = st.st_ctime_ns


def diff_trees(expected: TreeRecord, actual: TreeRecord, limit: int = 5) -> list[str]:
    """The first differing paths: ``missing X``, ``extra X``, ``changed X``."""
    out: list[str] = []
    for path in sorted(set(expected.files) | set(expected.links) | set(actual.files) | set(actual.links)):
        e = expected.files.get(path) or expected.links.get(path)
        a = actual.files.get(path) or actual.links.get(path)
        if e is None:
            out.append(f"extra {path}")
        elif a is None:
            out.append(f"missing {path}")
        elif (isinstance(e, TreeFile) and isinstance(a, TreeFile) and (e.size, e.xxh3_128) != (a.size, a.xxh3_128)) or (
            isinstance(e, str) and e != a
        ):
            out.append(f"changed {path}")
        if len(out) >= limit:
            break
    return out


def iter_paths(record: TreeRecord) -> Iterable[str]:
    """Every path in ``record``."""
    return [*record.files, *record.links]


def extraction_key(spec: FileSpec) -> str:
    """What an extraction depends on; a change means extracting again."""
    ex = spec.extract
    assert ex is not None
    return json.dumps([str(spec.checksum), ex.format, ex.strip_components, list(ex.members), ex.to])


def trees_path(store: Store, name: str) -> Path:
    return store.root / "records" / f"{name}.trees.json"


def load_trees(store: Store, name: str) -> dict[str, dict[str, Any]]:
    """``{archive file name: {"key", "to", "kind", "digest", "files", "links"}}``; a document or entry of
    the wrong shape counts as missing (the archive is extracted again)."""
    doc = read_json(trees_path(store, name))
    trees = doc.get("trees") if isinstance(doc, dict) else None
    if not isinstance(trees, dict):
        return {}
    return {k: v for k, v in trees.items() if isinstance(v, dict)}


def save_trees(store: Store, name: str, trees: dict[str, dict[str, Any]]) -> None:
    atomic_write_text(trees_path(store, name), json.dumps({"schema": 1, "trees": trees}, separators=(",", ":")))


def tree_record(store: Store, art: Artifact, spec: FileSpec) -> TreeRecord | None:
    entry = load_trees(store, art.name).get(spec.name)
    if not entry or entry.get("key") != extraction_key(spec):
        return None
    return TreeRecord.parse(entry)


def check_tree(
    store: Store, art: Artifact, spec: FileSpec, record: TreeRecord, *, full: bool, progress: Progress
) -> tuple[list[str], int, TreeRecord]:
    """Compare the tree on disk with ``record``: (first problems, bytes read, refreshed record).

    Only regular files are read, and no symlink is followed: a FIFO, a device or a link where a file
    was extracted is ``changed``, and so is a link or a file where the extracted folder was.
    """
    assert spec.extract is not None
    root = store.artifact_dir(art.name) / spec.extract.to
    problems: list[str] = []
    nbytes = 0
    fresh = TreeRecord(record.kind, dict(record.files), dict(record.links))
    if record.kind == "file":
        paths = {spec.extract.to.rsplit("/", 1)[-1]: root}
    else:
        paths = {rel: root / rel for rel in record.files}
        try:
            mode = os.lstat(root).st_mode
        except OSError:
            mode = stat.S_IFDIR  # missing: every file below is reported missing
        if not stat.S_ISDIR(mode):
            return [f"changed {spec.extract.to}/ (a {file_kind(mode)}, not the extracted folder)"], 0, fresh
        linked: set[str] = set()  # folders replaced by symlinks: nothing below them is read
        if root.is_dir():
            on_disk: set[str] = set()
            for d, subs, names in os.walk(root):
                for n in [*names, *subs]:
                    rel = (Path(d) / n).relative_to(root).as_posix()
                    if n in names or os.path.islink(os.path.join(d, n)):
                        on_disk.add(rel)
                        if n in subs and rel not in record.links:
                            linked.add(rel)
            for extra in sorted(on_disk - set(record.files) - set(record.links))[:5]:
                problems.append(f"extra {extra}")
        paths = {rel: p for rel, p in paths.items() if not any(rel.startswith(f"{d}/") for d in linked)}
        for rel, target in record.links.items():
            try:
                if os.readlink(root / rel) != target:
                    problems.append(f"changed {rel}")
            except OSError:
                problems.append(f"missing {rel}")
    for rel, path in paths.items():
        want = record.files[rel]
        try:
            st = os.lstat(path)
        except OSError:
            problems.append(f"missing {rel}")
            continue
        if not stat.S_ISREG(st.st_mode):
            problems.append(f"changed {rel} (a {file_kind(st.st_mode)}, not a regular file)")
            continue
        if not full and want.stat_matches(st):
            continue
        h = xxhash.xxh3_128()
        try:
            with open(open_regular(path), "rb") as fh:
                while chunk := fh.read(CHUNK_SIZE):
                    h.update(chunk)
                    nbytes += len(chunk)
                    progress.advance(f"{art.name}/{spec.extract.to}", len(chunk))
        except NotRegularFileError:  # replaced between the stat and the open
            problems.append(f"changed {rel} (not a regular file)")
            continue
        except OSError:
            problems.append(f"missing {rel}")
            continue
        if (st.st_size, h.hexdigest()) != (want.size, want.xxh3_128):
            problems.append(f"changed {rel}")
        else:
            fresh.files[rel] = TreeFile(want.size, want.xxh3_128, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
    return problems, nbytes, fresh


def tree_ok(store: Store, art: Artifact, spec: FileSpec) -> bool:
    """True when ``spec``'s extraction is recorded and unchanged (stat fast path; a file whose stat
    changed is re-hashed, and the record refreshed when it is unchanged, as by ``verify``)."""
    state, _, _ = verify_tree(store, art, spec, full=False, progress=NullProgress())
    return state == "ok"


def tree_present(store: Store, art: Artifact, spec: FileSpec) -> bool:
    """True when ``spec``'s extraction is complete and recorded: its completion record matches the
    manifest, and every file it lists is a regular file (every link a link) on disk. Reads no data
    (``status``, ``list`` and ``path`` ask this; ``verify`` checks the bytes)."""
    record = tree_record(store, art, spec)
    if record is None or spec.extract is None:
        return False
    root = store.artifact_dir(art.name) / spec.extract.to
    if record.kind == "file":
        paths = [root]
    else:
        if not os.path.isdir(root) or os.path.islink(root):
            return False
        paths = [root / rel for rel in record.files]
        if not all(os.path.islink(root / rel) for rel in record.links):
            return False
    try:
        return all(stat.S_ISREG(os.lstat(p).st_mode) for p in paths)
    except OSError:
        return False


def verify_tree(
    store: Store, art: Artifact, spec: FileSpec, *, full: bool, progress: Progress
) -> tuple[str, int, list[str]]:
    """``(state, bytes read, first differences)`` with state ``ok``, ``missing`` or ``corrupt``."""
    record = tree_record(store, art, spec)
    if record is None:
        return "missing", 0, ["no completion record (never extracted, or interrupted)"]
    problems, nbytes, fresh = check_tree(store, art, spec, record, full=full, progress=progress)
    if not problems and fresh.files != record.files:
        trees = load_trees(store, art.name)
        trees[spec.name] = {**trees[spec.name], **fresh.to_json()}
        with contextlib.suppress(OSError):  # a refresh only: a read-only cache is checked all the same
            save_trees(store, art.name, trees)
    return ("ok" if not problems else "corrupt"), nbytes, problems
