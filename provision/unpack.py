"""Extracted trees in the cache: their records, the extract step of fetch, and verify.

Each artifact with archives has ``records/<name>.trees.json``: per archive file, the
extraction key (archive checksum + format + strip/members + target) and the completion
record (every extracted file with size, xxh3_128 and stat). An extraction without a
record — interrupted, or made by hand — is never taken as done.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from .extract import ExtractError, TreeFile, TreeRecord, diff_trees, extract_archive
from .hashing import CHUNK_SIZE
from .manifest import Artifact, FileSpec
from .progress import NullProgress, Progress
from .store import Store, _atomic_write_text

__all__ = ["ExtractError", "drop_archive", "extract_file", "extraction_key", "load_trees", "tree_ok", "verify_tree"]


def extraction_key(spec: FileSpec) -> str:
    """What an extraction depends on; a change means extracting again."""
    ex = spec.extract
    assert ex is not None
    return json.dumps([str(spec.checksum), ex.format, ex.strip_components, list(ex.members), ex.to])


def _trees_path(store: Store, name: str) -> Path:
    return store.root / "records" / f"{name}.trees.json"


def load_trees(store: Store, name: str) -> dict[str, dict[str, Any]]:
    """``{archive file name: {"key", "to", "kind", "digest", "files", "links"}}``."""
    try:
        doc = json.loads(_trees_path(store, name).read_text(encoding="utf-8"))
        return dict(doc.get("trees", {}))
    except (OSError, ValueError):
        return {}


def _save_trees(store: Store, name: str, trees: dict[str, dict[str, Any]]) -> None:
    _atomic_write_text(_trees_path(store, name), json.dumps({"schema": 1, "trees": trees}, separators=(",", ":")))


def _record_for(store: Store, art: Artifact, spec: FileSpec) -> TreeRecord | None:
    entry = load_trees(store, art.name).get(spec.name)
    if not entry or entry.get("key") != extraction_key(spec):
        return None
    try:
        return TreeRecord.from_json(entry)
    except (KeyError, TypeError, ValueError, IndexError):
        return None


def _check(
    store: Store, art: Artifact, spec: FileSpec, record: TreeRecord, *, full: bool, progress: Progress
) -> tuple[list[str], int, TreeRecord]:
    """Compare the tree on disk with ``record``: (first problems, bytes read, refreshed record)."""
    assert spec.extract is not None
    root = store.artifact_dir(art.name) / spec.extract.to
    problems: list[str] = []
    nbytes = 0
    fresh = TreeRecord(record.kind, dict(record.files), dict(record.links))
    if record.kind == "file":
        paths = {spec.extract.to.rsplit("/", 1)[-1]: root}
    else:
        paths = {rel: root / rel for rel in record.files}
        if root.is_dir():
            on_disk = {
                (Path(d) / n).relative_to(root).as_posix()
                for d, subs, names in os.walk(root)
                for n in [*names, *(s for s in subs if os.path.islink(os.path.join(d, s)))]
            }
            for extra in sorted(on_disk - set(record.files) - set(record.links))[:5]:
                problems.append(f"extra {extra}")
        for rel, target in record.links.items():
            try:
                if os.readlink(root / rel) != target:
                    problems.append(f"changed {rel}")
            except OSError:
                problems.append(f"missing {rel}")
    for rel, path in paths.items():
        want = record.files[rel]
        try:
            st = path.stat()
        except OSError:
            problems.append(f"missing {rel}")
            continue
        if not full and (st.st_size, st.st_mtime_ns, st.st_ino) == (want.size, want.mtime_ns, want.ino):
            continue
        import xxhash

        h = xxhash.xxh3_128()
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK_SIZE):
                h.update(chunk)
                nbytes += len(chunk)
                progress.advance(f"{art.name}/{spec.extract.to}", len(chunk))
        if (st.st_size, h.hexdigest()) != (want.size, want.xxh3_128):
            problems.append(f"changed {rel}")
        else:
            fresh.files[rel] = TreeFile(want.size, want.xxh3_128, st.st_mtime_ns, st.st_ino)
    return problems, nbytes, fresh


def tree_ok(store: Store, art: Artifact, spec: FileSpec) -> bool:
    """True when ``spec``'s extraction is recorded and unchanged (stat fast path)."""
    record = _record_for(store, art, spec)
    if record is None:
        return False
    problems, _, _ = _check(store, art, spec, record, full=False, progress=NullProgress())
    return not problems


def verify_tree(
    store: Store, art: Artifact, spec: FileSpec, *, full: bool, progress: Progress
) -> tuple[str, int, list[str]]:
    """``(state, bytes read, first differences)`` with state ``ok``, ``missing`` or ``corrupt``."""
    record = _record_for(store, art, spec)
    if record is None:
        return "missing", 0, ["no completion record (never extracted, or interrupted)"]
    problems, nbytes, fresh = _check(store, art, spec, record, full=full, progress=progress)
    if not problems and fresh.files != record.files:
        trees = load_trees(store, art.name)
        trees[spec.name] = {**trees[spec.name], **fresh.to_json()}
        _save_trees(store, art.name, trees)
    return ("ok" if not problems else "corrupt"), nbytes, problems


def extract_file(store: Store, art: Artifact, spec: FileSpec, progress: Progress) -> TreeRecord:
    """Extract ``spec`` (already verified in the cache) and record the result."""
    assert spec.extract is not None
    archive = store.artifact_dir(art.name) / spec.name
    dest = store.artifact_dir(art.name) / spec.extract.to
    key = f"{art.name}/{spec.extract.to}"
    label = f"{art.name}/{spec.name}"
    old = _record_for(store, art, spec)
    progress.start(key, f"extract {spec.name}", spec.extract.extracted_size)
    try:
        record = extract_archive(archive, spec.extract, dest, label=label, advance=lambda n: progress.advance(key, n))
    except BaseException:
        progress.finish(key, False)
        raise
    progress.finish(key, True)
    if old is not None and spec.extract.tree is None:
        diffs = diff_trees(old, record)
        if diffs:
            progress.note(f"{label}: re-extracted tree differs from the last one: {', '.join(diffs)}")
    trees = load_trees(store, art.name)
    trees[spec.name] = {"key": extraction_key(spec), "to": spec.extract.to, **record.to_json()}
    _save_trees(store, art.name, trees)
    return record


def drop_archive(store: Store, art: Artifact, spec: FileSpec) -> None:
    """``keep_archive = false``: remove the archive's view and its blob.

    Another artifact's hard link or reflink to the same content is a name of its own and
    stays intact.
    """
    for path in (store.artifact_dir(art.name) / spec.name, store.blob_path(spec.checksum)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
