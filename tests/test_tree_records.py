"""Extraction records in columns (``trees.json`` schema 2): the stored form, the old form, verify.

Archives are real tar files built here, fetched from plain paths; the trees are real folders.
Nothing of provision is mocked.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
from conftest import ManifestWriter, dataset_toml

from provision import api
from provision.config import Settings
from provision.store.cache import Store
from provision.store.trees import TREES_SCHEMA, StoredTree, TreeFile, TreeRecord, hash_tree

TREE = {"a.txt": b"alpha\n", "sub/b.bin": bytes(range(256)) * 8, "sub/c/deep.txt": b"deep", "z.txt": b"zed"}


def fetched(tmp_path: Path, write_manifest: ManifestWriter, settings: Settings, name: str = "cols") -> Path:
    """Fetch a one-tar dataset ``name`` holding :data:`TREE` (and a link); its extracted folder."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        for member, data in TREE.items():
            info = tarfile.TarInfo(member)
            info.size, info.mtime = len(data), 1_600_000_000
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("sub/ln")
        link.type, link.linkname = tarfile.SYMTYPE, "b.bin"
        tf.addfile(link)
    archive = tmp_path / "src" / f"{name}.tar"
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.write_bytes(raw.getvalue())
    text = dataset_toml(name, [(archive.name, [str(archive)], archive.read_bytes(), None)])
    write_manifest(text + 'extract = "tar"\n', name=name)
    api.fetch([name], settings).raise_for_errors()
    return Store(settings.cache_dir).artifact_dir(name) / name


def trees_doc(settings: Settings, name: str = "cols") -> dict[str, Any]:
    doc = json.loads((Path(settings.cache_dir) / "records" / f"{name}.trees.json").read_text())
    assert isinstance(doc, dict)
    return doc


def write_trees(settings: Settings, doc: dict[str, Any], name: str = "cols") -> None:
    (Path(settings.cache_dir) / "records" / f"{name}.trees.json").write_text(json.dumps(doc))


def tree_problems(report: Any) -> str:
    return "; ".join(f.got for f in report.files if f.name.endswith("/"))


def test_fetch_records_the_tree_in_columns(tmp_path: Path, write_manifest: ManifestWriter, settings: Settings) -> None:
    root = fetched(tmp_path, write_manifest, settings)
    doc = trees_doc(settings)
    assert doc["schema"] == TREES_SCHEMA == 2
    entry = doc["trees"]["cols.tar"]
    assert entry["files"] == sorted(TREE)  # the paths, sorted; one list per field beside them
    assert [len(entry[c]) for c in ("size", "xxh3_128", "mtime_ns", "ino", "ctime_ns")] == [len(TREE)] * 5
    assert entry["links"] == {"sub/ln": "b.bin"}
    for rel, size, ino, ctime in zip(entry["files"], entry["size"], entry["ino"], entry["ctime_ns"], strict=True):
        st = os.lstat(root / rel)
        assert (st.st_size, st.st_ino, st.st_ctime_ns) == (size, ino, ctime)  # what the fast path compares
    assert entry["digest"] == hash_tree(root).digest
    report = api.verify(["cols"], settings)
    assert report.ok and report.bytes_hashed == 0


def test_stored_tree_round_trip_and_both_forms_load() -> None:
    record = TreeRecord(
        "dir", {"b/x": TreeFile(3, "ab" * 16, 5, 6, 7), "a": TreeFile(1, "cd" * 16, 8, 9, 10)}, {"l": "a"}
    )
    stored = StoredTree.of(record)
    assert stored.paths == ["a", "b/x"]
    doc = json.loads(json.dumps(stored.to_json()))
    assert StoredTree.parse(doc) == stored and not stored.legacy
    assert TreeRecord.from_json(doc) == record  # columns, as trees.json holds them
    assert TreeRecord.from_json(record.to_json()) == record  # the mapping, as other records embed it
    old = StoredTree.parse(record.to_json())
    assert old is not None and old.legacy and old.record() == record
    four = {"kind": "dir", "files": {"a": [1, "cd" * 16, 8, 9]}}  # before ctime_ns was recorded
    assert TreeRecord.from_json(four).files["a"] == TreeFile(1, "cd" * 16, 8, 9, 0)


COLUMNS_OK: dict[str, Any] = {
    "kind": "dir",
    "files": ["a", "b"],
    "size": [1, 2],
    "xxh3_128": ["x", "y"],
    "mtime_ns": [1, 2],
    "ino": [1, 2],
    "ctime_ns": [1, 2],
}


@pytest.mark.parametrize(
    "change",
    [
        {"size": [1]},  # unequal lengths
        {"ino": [1, True]},  # a bool is not an int
        {"mtime_ns": [1, 2.0]},
        {"xxh3_128": ["x", 5]},
        {"files": ["a", "a"]},  # a path listed twice
        {"files": ["a", 3]},
        {"ctime_ns": None},
        {"links": {"l": 5}},
        {"kind": "blob"},
    ],
    ids=range(9),
)
def test_columns_of_the_wrong_shape_are_no_record(change: dict[str, Any]) -> None:
    assert StoredTree.parse(COLUMNS_OK) is not None
    assert StoredTree.parse({**COLUMNS_OK, **change}) is None


def test_a_schema_1_record_still_verifies_and_is_written_again_in_columns(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    """A cache written before schema 2 (``files`` a mapping) verifies without re-hashing; the next
    verify writes the record again in columns, the same tree."""
    root = fetched(tmp_path, write_manifest, settings)
    doc = trees_doc(settings)
    entry = doc["trees"]["cols.tar"]
    record = TreeRecord.from_json(entry)
    old_entry = {
        k: v for k, v in entry.items() if k not in ("files", "size", "xxh3_128", "mtime_ns", "ino", "ctime_ns")
    }
    write_trees(settings, {"schema": 1, "trees": {"cols.tar": {**old_entry, **record.to_json()}}})
    assert isinstance(trees_doc(settings)["trees"]["cols.tar"]["files"], dict)

    report = api.verify(["cols"], settings)
    assert report.ok and report.bytes_hashed == 0
    again = trees_doc(settings)
    assert again["schema"] == 2 and again["trees"]["cols.tar"] == entry  # columns again, nothing else changed

    (root / "sub" / "b.bin").write_bytes(b"X" * len(TREE["sub/b.bin"]))  # and it still catches a change
    write_trees(settings, {"schema": 1, "trees": {"cols.tar": {**old_entry, **record.to_json()}}})
    report = api.verify(["cols"], settings)
    assert not report.ok and "changed sub/b.bin" in tree_problems(report)
    assert isinstance(trees_doc(settings)["trees"]["cols.tar"]["files"], dict)  # not rewritten when corrupt


def test_a_touched_file_is_rehashed_once_and_its_stat_recorded(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    root = fetched(tmp_path, write_manifest, settings)
    os.utime(root / "sub" / "c" / "deep.txt", (1, 1))  # same bytes, another stat
    report = api.verify(["cols"], settings)
    assert report.ok and report.bytes_hashed == len(TREE["sub/c/deep.txt"])
    entry = trees_doc(settings)["trees"]["cols.tar"]
    i = entry["files"].index("sub/c/deep.txt")
    assert entry["mtime_ns"][i] == 1_000_000_000
    report = api.verify(["cols"], settings)
    assert report.ok and report.bytes_hashed == 0  # the refreshed record is trusted


def test_differences_are_reported_in_record_order(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    """Extras first, then links, then files in path order: missing, changed (in place, same size and
    mtime), not a regular file; a folder replaced by a link is not read through."""
    root = fetched(tmp_path, write_manifest, settings)
    (root / "a.txt").unlink()
    deep = root / "sub" / "c" / "deep.txt"
    st = deep.stat()
    deep.write_bytes(b"DEEP")
    os.utime(deep, ns=(st.st_atime_ns, st.st_mtime_ns))
    (root / "z.txt").unlink()
    os.mkfifo(root / "z.txt")
    (root / "sub" / "ln").unlink()
    os.symlink("elsewhere", root / "sub" / "ln")
    (root / "new.txt").write_bytes(b"extra")
    report = api.verify(["cols"], settings)
    assert not report.ok
    assert tree_problems(report) == (
        "extra new.txt, changed sub/ln, missing a.txt, changed sub/c/deep.txt, "
        "changed z.txt (a FIFO, not a regular file)"
    )


def test_a_folder_replaced_by_a_link_is_not_followed(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    root = fetched(tmp_path, write_manifest, settings)
    moved = tmp_path / "moved"
    (root / "sub").rename(moved)  # the same files (same inodes and stats), now behind a link
    os.symlink(moved, root / "sub")
    report = api.verify(["cols"], settings)
    assert not report.ok and report.bytes_hashed == 0
    assert tree_problems(report) == "extra sub"  # and nothing below it stat'ed as missing or changed


def test_a_file_kind_tree_verifies(tmp_path: Path, write_manifest: ManifestWriter, settings: Settings) -> None:
    import gzip

    payload = b"label\n" * 1000
    archive = tmp_path / "src" / "labels.txt.gz"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(gzip.compress(payload, mtime=0))
    text = dataset_toml("one", [(archive.name, [str(archive)], archive.read_bytes(), None)])
    write_manifest(text + 'extract = "gz"\n', name="one")
    api.fetch(["one"], settings).raise_for_errors()
    entry = trees_doc(settings, "one")["trees"]["labels.txt.gz"]
    assert entry["kind"] == "file" and entry["files"] == ["labels.txt"]
    assert api.verify(["one"], settings).bytes_hashed == 0
    out = Store(settings.cache_dir).artifact_dir("one") / "labels.txt"
    out.write_bytes(b"LABEL" + payload[5:])
    report = api.verify(["one"], settings)
    assert not report.ok and "changed labels.txt" in tree_problems(report)
