"""Trees of files in the cache: their digest, and the records of extracted archives.

A tree record lists every file with size, xxh3_128 and stat. Each artifact with archives has
``records/<name>.trees.json``: per archive file, the extraction key (archive checksum + format +
strip/members + target) and the completion record. An extraction without a record —
interrupted, or made by hand — is never taken as done.

Schema 2 of that file stores each record in columns (:class:`StoredTree`: ``files`` the sorted
paths, then one list per field), which loads as a few lists instead of one object per file; an
entry of schema 1 (``files`` mapping each path to ``[size, xxh3, mtime_ns, ino, ctime_ns]``) is
read all the same and written again in columns by the next ``verify`` that finds it unchanged."""

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
    "NO_RECORD",
    "TREES_SCHEMA",
    "StoredTree",
    "TreeFile",
    "TreeRecord",
    "check_tree",
    "diff_trees",
    "extraction_key",
    "hash_tree",
    "iter_paths",
    "load_trees",
    "save_trees",
    "stored_tree",
    "tree_digest",
    "tree_entry",
    "tree_ok",
    "tree_present",
    "tree_record",
    "trees_path",
    "verify_tree",
]

#: The ``schema`` that :func:`save_trees` writes (2: records in columns; 1: ``files`` a mapping).
TREES_SCHEMA = 2

#: The one problem of a tree with no usable completion record.
NO_RECORD = "no completion record (never extracted, or interrupted)"

#: The columns of a stored record beside ``files`` (its paths), one value per file, in this order.
COLUMNS = ("size", "xxh3_128", "mtime_ns", "ino", "ctime_ns")


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
        """JSON-ready, compact: ``files`` maps path -> [size, xxh3, mtime_ns, ino, ctime_ns] (the form
        other records embed; ``trees.json`` holds :meth:`StoredTree.to_json`)."""
        return {
            "kind": self.kind,
            "digest": self.digest,
            "files": {p: [f.size, f.xxh3_128, f.mtime_ns, f.ino, f.ctime_ns] for p, f in sorted(self.files.items())},
            "links": dict(sorted(self.links.items())),
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> TreeRecord:
        """Inverse of :meth:`to_json` (and of :meth:`StoredTree.to_json`); ``ValueError`` when ``doc``
        is of neither shape."""
        record = cls.parse(doc)
        if record is None:
            raise ValueError("not a tree record (kind, files, links)")
        return record

    @classmethod
    def parse(cls, doc: Any) -> TreeRecord | None:
        """:meth:`from_json`, or None when ``doc`` is not of a shape it reads (``null``, a list,
        wrong types): a tree whose record is unreadable is taken as not extracted. A file entry of
        four numbers (written before ``ctime_ns`` was recorded) loads with ``ctime_ns = 0``: that file
        is re-hashed once by the next check and recorded again."""
        stored = StoredTree.parse(doc)
        return None if stored is None else stored.record()


def _all_of(kind: type, values: list[Any]) -> bool:
    """True when every value is exactly of ``kind`` (a bool is not an int, a float is not an int)."""
    return set(map(type, values)) <= {kind}


@dataclass
class StoredTree:
    """A tree record as ``trees.json`` holds it (schema 2): the sorted paths and one list per field,
    so that 50,000 files load as six lists and are compared without an object per file.

    ``legacy`` is True when it was read from the schema 1 form (``files`` a mapping).
    """

    kind: str
    paths: list[str]
    sizes: list[int]
    digests: list[str]
    mtimes: list[int]
    inos: list[int]
    ctimes: list[int]
    links: dict[str, str] = field(default_factory=dict)
    legacy: bool = False

    @classmethod
    def of(cls, record: TreeRecord) -> StoredTree:
        """``record`` in columns, its paths sorted."""
        items = sorted(record.files.items())
        return cls(
            record.kind,
            [p for p, _ in items],
            [f.size for _, f in items],
            [f.xxh3_128 for _, f in items],
            [f.mtime_ns for _, f in items],
            [f.ino for _, f in items],
            [f.ctime_ns for _, f in items],
            dict(record.links),
        )

    @classmethod
    def parse(cls, doc: Any) -> StoredTree | None:
        """The record in ``doc`` (either form), or None when ``doc`` is of neither shape: columns of
        unequal lengths or wrong types, a path listed twice, a file entry of the wrong shape."""
        if not isinstance(doc, dict) or doc.get("kind") not in ("dir", "file"):
            return None
        files, links = doc.get("files"), doc.get("links", {})
        if not isinstance(links, dict) or not all(isinstance(t, str) for t in links.values()):
            return None
        if isinstance(files, dict):
            return cls._parse_mapping(doc["kind"], files, links)
        if not isinstance(files, list):
            return None
        columns = [doc.get(name) for name in COLUMNS]
        if not all(isinstance(c, list) and len(c) == len(files) for c in columns):
            return None
        sizes, digests, mtimes, inos, ctimes = columns
        assert sizes is not None and digests is not None and mtimes is not None  # for mypy: lists
        assert inos is not None and ctimes is not None
        if not (_all_of(str, files) and _all_of(str, digests)):
            return None
        if not all(_all_of(int, c) for c in (sizes, mtimes, inos, ctimes)) or len(set(files)) != len(files):
            return None
        return cls(doc["kind"], files, sizes, digests, mtimes, inos, ctimes, dict(links))

    @classmethod
    def _parse_mapping(cls, kind: str, files: dict[str, Any], links: dict[str, str]) -> StoredTree | None:
        """Schema 1: ``{path: [size, xxh3, mtime_ns, ino(, ctime_ns)]}``; four numbers load with ``ctime_ns = 0``."""
        out = cls(kind, [], [], [], [], [], [], dict(links), legacy=True)
        for path, v in sorted(files.items()):
            if not (isinstance(v, list) and len(v) in (4, 5) and isinstance(v[1], str)):
                return None
            numbers = [v[0], *v[2:], 0][:4]
            if not all(type(n) is int for n in [v[0], *v[2:]]):
                return None
            out.paths.append(path)
            out.sizes.append(numbers[0])
            out.digests.append(v[1])
            out.mtimes.append(numbers[1])
            out.inos.append(numbers[2])
            out.ctimes.append(numbers[3])
        return out

    def matches(self, i: int, st: os.stat_result) -> bool:
        """True when ``st`` is the stat recorded for file ``i``: a regular file of the recorded size,
        mtime, inode and ctime (as :meth:`TreeFile.stat_matches`)."""
        key = (self.sizes[i], self.mtimes[i], self.inos[i], self.ctimes[i])
        return stat.S_ISREG(st.st_mode) and stat_key(st) == key

    def record(self) -> TreeRecord:
        """As a :class:`TreeRecord` (one :class:`TreeFile` per file)."""
        files = {
            p: TreeFile(*row)
            for p, *row in zip(self.paths, self.sizes, self.digests, self.mtimes, self.inos, self.ctimes, strict=True)
        }
        return TreeRecord(self.kind, files, dict(self.links))

    def to_json(self) -> dict[str, Any]:
        """JSON-ready, in columns: ``kind``, ``files`` (the paths), one list per :data:`COLUMNS`, ``links``."""
        return {
            "kind": self.kind,
            "files": self.paths,
            **dict(zip(COLUMNS, (self.sizes, self.digests, self.mtimes, self.inos, self.ctimes), strict=True)),
            "links": dict(sorted(self.links.items())),
        }


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


def _hash_stream(fh: IO[bytes], on_chunk: Callable[[int], None] | None = None) -> tuple[int, str]:
    """(bytes read, xxh3_128) of what ``fh`` holds; ``on_chunk(n)`` after each chunk."""
    h = xxhash.xxh3_128()
    size = 0
    while chunk := fh.read(CHUNK_SIZE):
        h.update(chunk)
        size += len(chunk)
        if on_chunk is not None:
            on_chunk(len(chunk))
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
    """``records/<name>.trees.json``: the extraction records of artifact ``name``."""
    return store.root / "records" / f"{name}.trees.json"


def load_trees(store: Store, name: str) -> dict[str, dict[str, Any]]:
    """``{archive file name: {"key", "to", "kind", "digest", "files", ...}}`` (either form, see
    :class:`StoredTree`); a document or entry of the wrong shape counts as missing (the archive is
    extracted again)."""
    doc = read_json(trees_path(store, name))
    trees = doc.get("trees") if isinstance(doc, dict) else None
    if not isinstance(trees, dict):
        return {}
    return {k: v for k, v in trees.items() if isinstance(v, dict)}


def save_trees(store: Store, name: str, trees: dict[str, dict[str, Any]]) -> None:
    """Write ``trees`` (as :func:`load_trees` returns them) to ``records/<name>.trees.json``, atomically."""
    text = json.dumps({"schema": TREES_SCHEMA, "trees": trees}, separators=(",", ":"))
    atomic_write_text(trees_path(store, name), text)


def tree_entry(spec: FileSpec, record: TreeRecord) -> dict[str, Any]:
    """The entry of ``trees.json`` for ``spec``'s extraction: key, target, digest and ``record`` in columns."""
    assert spec.extract is not None
    return {
        "key": extraction_key(spec),
        "to": spec.extract.to,
        "digest": record.digest,
        **StoredTree.of(record).to_json(),
    }


def stored_tree(trees: dict[str, dict[str, Any]], spec: FileSpec) -> StoredTree | None:
    """``spec``'s record among ``trees`` (:func:`load_trees`), or None when there is none, it was made
    for another extraction (the manifest changed) or it is of the wrong shape."""
    entry = trees.get(spec.name)
    if not entry or entry.get("key") != extraction_key(spec):
        return None
    return StoredTree.parse(entry)


def tree_record(store: Store, art: Artifact, spec: FileSpec) -> TreeRecord | None:
    """``spec``'s completion record as a :class:`TreeRecord` (None as :func:`stored_tree`)."""
    stored = stored_tree(load_trees(store, art.name), spec)
    return None if stored is None else stored.record()


def _listing(root: str) -> list[str]:
    """The relative path of everything below ``root`` that is not a folder (symlinks to folders
    included, never followed); an unreadable folder lists nothing, as with ``os.walk``."""
    found: list[str] = []
    stack = [(root, "")]
    while stack:
        top, prefix = stack.pop()
        try:
            with os.scandir(top) as entries:
                for entry in entries:
                    try:
                        is_dir = entry.is_dir(follow_symlinks=False)
                    except OSError:
                        is_dir = False
                    if is_dir:
                        stack.append((entry.path, f"{prefix}{entry.name}/"))
                    else:
                        found.append(prefix + entry.name)
        except OSError:
            continue
    return found


def check_tree(
    store: Store, art: Artifact, spec: FileSpec, record: StoredTree, *, full: bool, progress: Progress
) -> tuple[list[str], int, StoredTree | None]:
    """Compare the tree on disk with ``record``: (first problems, bytes read, refreshed record or None
    when no recorded stat changed).

    Only regular files are read, and no symlink is followed: a FIFO, a device or a link where a file
    was extracted is ``changed``, and so is a link or a file where the extracted folder was. A file
    whose stat is the recorded one is not read (unless ``full``); any other is re-hashed with xxh3.
    """
    assert spec.extract is not None
    root = os.fspath(store.artifact_dir(art.name) / spec.extract.to)
    problems: list[str] = []
    skipped: set[int] = set()  # files below a folder replaced by a symlink: never read through it
    if record.kind == "dir":
        try:
            mode = os.lstat(root).st_mode
        except OSError:
            mode = stat.S_IFDIR  # missing: every file below is reported missing
        if not stat.S_ISDIR(mode):
            return [f"changed {spec.extract.to}/ (a {file_kind(mode)}, not the extracted folder)"], 0, None
        skipped = _extras(root, record, problems)
        for rel, target in record.links.items():
            try:
                if os.readlink(os.path.join(root, rel)) != target:
                    problems.append(f"changed {rel}")
            except OSError:
                problems.append(f"missing {rel}")
    fresh: StoredTree | None = None
    nbytes = 0
    for i, st in _unmatched(root, record, skipped, full=full):
        rel = record.paths[i]
        if st is None:
            problems.append(f"missing {rel}")
            continue
        if not stat.S_ISREG(st.st_mode):
            problems.append(f"changed {rel} (a {file_kind(st.st_mode)}, not a regular file)")
            continue
        path = os.path.join(root, rel) if record.kind == "dir" else root
        got = _rehash(path, rel, f"{art.name}/{spec.extract.to}", progress, problems)
        if got is None:
            continue
        nbytes += got[0]
        if (st.st_size, got[1]) != (record.sizes[i], record.digests[i]):
            problems.append(f"changed {rel}")
        elif (st.st_mtime_ns, st.st_ino, st.st_ctime_ns) != (record.mtimes[i], record.inos[i], record.ctimes[i]):
            fresh = fresh or StoredTree(
                record.kind,
                record.paths,
                record.sizes,
                record.digests,
                list(record.mtimes),
                list(record.inos),
                list(record.ctimes),
                record.links,
            )
            fresh.mtimes[i], fresh.inos[i], fresh.ctimes[i] = st.st_mtime_ns, st.st_ino, st.st_ctime_ns
    return problems, nbytes, fresh


#: A folder opened only to look names up in it (``O_PATH`` where there is one: no read permission needed).
_FOLDER_FLAGS = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_folder(path: str, dir_fd: int | None = None) -> int:
    """A descriptor of the folder ``path`` (relative to ``dir_fd``; a final symlink is not followed), or
    -1 when it cannot be opened so (its files are then looked up by their whole path, as before)."""
    try:
        return os.open(path, _FOLDER_FLAGS, dir_fd=dir_fd)
    except OSError:
        return -1


def _unmatched(
    root: str, record: StoredTree, skipped: set[int], *, full: bool
) -> list[tuple[int, os.stat_result | None]]:
    """In record order, each file (by index) whose ``lstat`` is not the recorded one (size, mtime,
    inode, ctime and a regular file), with that stat (None: not there); every file when ``full``.

    The hot loop of ``verify``: each file is stat'ed relative to its folder's descriptor (opened
    once per run of files in the same folder: a shorter path lookup than from ``/``, measured ~10%
    faster on 50,000 files), by its whole path where that folder cannot be opened."""
    out: list[tuple[int, os.stat_result | None]] = []
    lstat, isreg = os.lstat, stat.S_ISREG
    rows = enumerate(zip(record.paths, record.sizes, record.mtimes, record.inos, record.ctimes, strict=True))
    if record.kind == "file":  # ``root`` is the one file
        try:
            single: os.stat_result | None = lstat(root)
        except OSError:
            single = None
        return [(i, single) for i, _ in rows if full or single is None or not record.matches(i, single)]
    root_fd = _open_folder(root)
    folder, folder_fd = "", root_fd
    try:
        for i, (rel, size, mtime, ino, ctime) in rows:
            if skipped and i in skipped:
                continue
            parent, _, name = rel.rpartition("/")
            if parent != folder:
                if folder_fd not in (root_fd, -1):
                    os.close(folder_fd)
                folder, folder_fd = parent, (_open_folder(parent, root_fd) if parent and root_fd >= 0 else root_fd)
            try:
                st = lstat(name, dir_fd=folder_fd) if folder_fd >= 0 else lstat(f"{root}/{rel}")
            except OSError:
                out.append((i, None))
                continue
            if (
                full
                or st.st_mtime_ns != mtime
                or st.st_ctime_ns != ctime
                or st.st_ino != ino
                or st.st_size != size
                or not isreg(st.st_mode)
            ):
                out.append((i, st))
    finally:
        for fd in {folder_fd, root_fd} - {-1}:
            os.close(fd)
    return out


def _extras(root: str, record: StoredTree, problems: list[str]) -> set[int]:
    """Report (into ``problems``) the first paths on disk that ``record`` does not list; return the
    indexes of recorded files below an unrecorded symlink to a folder (not to be read through it)."""
    if not os.path.isdir(root):
        return set()
    recorded = set(record.paths)
    extras = sorted(p for p in _listing(root) if p not in recorded and p not in record.links)
    problems.extend(f"extra {extra}" for extra in extras[:5])
    linked = [p for p in extras if os.path.islink(os.path.join(root, p)) and os.path.isdir(os.path.join(root, p))]
    if not linked:
        return set()
    return {i for i, rel in enumerate(record.paths) if any(rel.startswith(f"{d}/") for d in linked)}


def _rehash(path: str, rel: str, key: str, progress: Progress, problems: list[str]) -> tuple[int, str] | None:
    """(bytes read, xxh3_128) of the regular file ``path``; None (and the problem noted) when it is
    gone or was replaced by something else since its stat."""
    try:
        with open(open_regular(path), "rb") as fh:
            return _hash_stream(fh, lambda n: progress.advance(key, n))
    except NotRegularFileError:  # replaced between the stat and the open
        problems.append(f"changed {rel} (not a regular file)")
        return None
    except OSError:
        problems.append(f"missing {rel}")
        return None


def tree_ok(store: Store, art: Artifact, spec: FileSpec) -> bool:
    """True when ``spec``'s extraction is recorded and unchanged (stat fast path; a file whose stat
    changed is re-hashed, and the record refreshed when it is unchanged, as by ``verify``)."""
    state, _, _ = verify_tree(store, art, spec, full=False, progress=NullProgress())
    return state == "ok"


def tree_present(store: Store, art: Artifact, spec: FileSpec) -> bool:
    """True when ``spec``'s extraction is complete and recorded: its completion record matches the
    manifest, and every file it lists is a regular file (every link a link) on disk. Reads no data
    (``status``, ``list`` and ``path`` ask this; ``verify`` checks the bytes)."""
    record = stored_tree(load_trees(store, art.name), spec)
    if record is None or spec.extract is None:
        return False
    root = os.fspath(store.artifact_dir(art.name) / spec.extract.to)
    if record.kind == "file":
        paths = [root]
    else:
        if not os.path.isdir(root) or os.path.islink(root):
            return False
        if not all(os.path.islink(os.path.join(root, rel)) for rel in record.links):
            return False
        base = root + "/"
        paths = [base + rel for rel in record.paths]
    lstat, isreg = os.lstat, stat.S_ISREG
    try:
        return all(isreg(lstat(p).st_mode) for p in paths)
    except OSError:
        return False


def verify_tree(
    store: Store,
    art: Artifact,
    spec: FileSpec,
    *,
    full: bool,
    progress: Progress,
    trees: dict[str, dict[str, Any]] | None = None,
) -> tuple[str, int, list[str]]:
    """``(state, bytes read, first differences)`` with state ``ok``, ``missing`` or ``corrupt``.

    ``trees``: the artifact's records as :func:`load_trees` returned them (read here when None);
    a refreshed record (a file re-hashed unchanged, or a schema 1 entry) is written back, into
    ``trees`` too. A read-only cache is checked all the same, without the refresh.
    """
    if trees is None:
        trees = load_trees(store, art.name)
    record = stored_tree(trees, spec)
    if record is None:
        return "missing", 0, [NO_RECORD]
    problems, nbytes, fresh = check_tree(store, art, spec, record, full=full, progress=progress)
    if not problems and (fresh is not None or record.legacy):
        trees[spec.name] = {**trees[spec.name], **(fresh or record).to_json()}
        with contextlib.suppress(OSError):  # a refresh only: a read-only cache is checked all the same
            save_trees(store, art.name, trees)
    return ("ok" if not problems else "corrupt"), nbytes, problems
