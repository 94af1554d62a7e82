"""Extracted trees in the cache: their records, the extract step of fetch, and verify.

Each artifact with archives has ``records/<name>.trees.json``: per archive file, the
extraction key (archive checksum + format + strip/members + target) and the completion
record (every extracted file with size, xxh3_128 and stat, in columns: see
:class:`provision.store.trees.StoredTree`). An extraction without a record — interrupted, or
made by hand — is never taken as done.
"""

from __future__ import annotations

import contextlib

from provision.extract.archive import extract_archive
from provision.manifest.model import Artifact, FileSpec
from provision.progress import Progress
from provision.store.cache import Store
from provision.store.trees import (
    TreeRecord,
    diff_trees,
    load_trees,
    save_trees,
    tree_entry,
    tree_record,
)

__all__ = ["drop_archive", "extract_file"]


def extract_file(store: Store, art: Artifact, spec: FileSpec, progress: Progress) -> TreeRecord:
    """Extract ``spec`` (already verified in the cache) and record the result."""
    assert spec.extract is not None
    archive = store.artifact_dir(art.name) / spec.name
    dest = store.artifact_dir(art.name) / spec.extract.to
    key = f"{art.name}/{spec.extract.to}"
    label = f"{art.name}/{spec.name}"
    old = tree_record(store, art, spec)
    store.make_folder(dest.parent)  # through real folders only: a planted link is removed, not followed
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
    trees[spec.name] = tree_entry(spec, record)
    save_trees(store, art.name, trees)
    return record


def drop_archive(store: Store, art: Artifact, spec: FileSpec) -> None:
    """``keep_archive = false``: remove the archive's view and its blob.

    Another artifact's hard link or reflink to the same content is a name of its own and
    stays intact.
    """
    for path in (store.artifact_dir(art.name) / spec.name, store.blob_path(spec.checksum)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
