"""Archives in the cache: fetch extracts and records, verify checks trees, keep_archive, pins, lint.

Archives are real files built here and named by plain paths in the manifest (a local file
is a valid URL), so no server is needed. Nothing of provision is mocked.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import tarfile
import threading
from pathlib import Path

import pytest
from conftest import ManifestWriter, dataset_toml
from httpserver import md5
from typer.testing import CliRunner

from provision import api
from provision.cli.app import app
from provision.config import Settings
from provision.errors import EXIT_INTEGRITY, DiskSpaceError, IntegrityError
from provision.manifest.checksum import Checksum
from provision.store.cache import Store
from provision.store.trees import hash_tree
from provision.store.verify import VerifyReport

runner = CliRunner()

TREE = {"a.txt": b"alpha\n", "sub/b.bin": bytes(range(256)) * 40, "sub/c/deep.txt": b"deep"}


def tar_gz(path: Path, tree: dict[str, bytes] = TREE, links: dict[str, str] | None = None) -> Path:
    """Write ``tree`` (and symlinks) as a .tar.gz at ``path``."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        for name, data in tree.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_600_000_000
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A fixed gzip header time: the same tree always gives the same bytes (tests rebuild it).
    path.write_bytes(gzip.compress(raw.getvalue(), mtime=0))
    return path


def archive_manifest(
    write_manifest: ManifestWriter, name: str, archive: Path, file_keys: str = 'extract = "tar.gz"', extra: str = ""
) -> None:
    """A one-file dataset ``name`` whose file is ``archive`` with ``file_keys`` on its entry."""
    body = archive.read_bytes()
    text = dataset_toml(name, [(archive.name, [str(archive)], body, None)], extra=extra)
    write_manifest(text + file_keys + "\n", name=name)


def art_dir(settings: Settings, name: str) -> Path:
    return Store(settings.cache_dir).artifact_dir(name)


def trees_json(settings: Settings, name: str) -> Path:
    return Path(settings.cache_dir) / "records" / f"{name}.trees.json"


def files_of(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


class RecordingProgress:
    """A Progress that remembers every event."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[str, str]] = []
        self.notes: list[str] = []

    def start(self, key: str, label: str, total: int | None, done: int = 0) -> None:
        with self.lock:
            self.events.append(("start", key))

    def advance(self, key: str, nbytes: int) -> None:
        with self.lock:
            self.events.append(("advance", key))

    def finish(self, key: str, ok: bool) -> None:
        with self.lock:
            self.events.append(("finish" if ok else "failed", key))

    def note(self, text: str) -> None:
        with self.lock:
            self.notes.append(text)

    def retry(self, key: str, url: str, text: str) -> None:
        self.note(text)


def tree_failure(report: VerifyReport) -> str:
    """The one failed tree check's message."""
    bad = [c for c in report.failures if c.name.endswith("/")]
    assert len(bad) == 1, [c.message() for c in report.failures]
    return bad[0].message()


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """Where the 'upstream' archives live (outside the cache)."""
    return tmp_path / "upstream"


# -- fetch extracts, records, and does it once ------------------------------------------------


def test_fetch_extracts_and_records_the_tree(src: Path, write_manifest: ManifestWriter, settings: Settings) -> None:
    archive = tar_gz(src / "imgs.tar.gz")
    archive_manifest(write_manifest, "imgs", archive, 'extract = "tar.gz"\nextract_to = "images"')
    report = api.fetch(["imgs"], settings)
    assert report.ok, report.failures
    target = art_dir(settings, "imgs") / "images"
    assert [(f.state, f.extracted) for f in report.files] == [("fetched", str(target))]
    assert files_of(target) == TREE
    assert (art_dir(settings, "imgs") / "imgs.tar.gz").read_bytes() == archive.read_bytes()  # kept
    doc = json.loads(trees_json(settings, "imgs").read_text())
    entry = doc["trees"]["imgs.tar.gz"]
    assert entry["to"] == "images" and entry["kind"] == "dir"
    assert entry["digest"] == hash_tree(target).digest
    assert sorted(entry["files"]) == sorted(TREE)
    assert [p for p in art_dir(settings, "imgs").iterdir() if ".part-" in p.name] == []

    deep = target / "sub" / "c" / "deep.txt"
    st = deep.stat()
    record_text = trees_json(settings, "imgs").read_text()
    archive.unlink()  # a second fetch must not need the source at all
    progress = RecordingProgress()
    again = api.fetch(["imgs"], settings, progress=progress)
    assert again.ok, again.failures
    assert [f.state for f in again.files] == ["cached"]
    assert again.files[0].extracted == str(target)
    assert [e for e in progress.events if e[0] == "advance"] == []  # nothing read, nothing extracted
    assert (deep.stat().st_ino, deep.stat().st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    assert trees_json(settings, "imgs").read_text() == record_text


def test_default_extract_to_strips_the_suffix(src: Path, write_manifest: ManifestWriter, settings: Settings) -> None:
    archive = tar_gz(src / "val-2012.tar.gz")
    archive_manifest(write_manifest, "val", archive)
    api.fetch(["val"], settings).raise_for_errors()
    assert files_of(art_dir(settings, "val") / "val-2012") == TREE


def test_single_stream_gz_extracts_to_a_file(src: Path, write_manifest: ManifestWriter, settings: Settings) -> None:
    payload = b"label\n" * 10_000
    archive = src / "labels.txt.gz"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(gzip.compress(payload))
    archive_manifest(write_manifest, "labels", archive, 'extract = "auto"')
    api.fetch(["labels"], settings).raise_for_errors()
    out = art_dir(settings, "labels") / "labels.txt"
    assert out.read_bytes() == payload
    report = api.verify(["labels"], settings)
    assert report.ok and report.bytes_hashed == 0
    out.write_bytes(b"LABEL" + payload[5:])
    os.utime(out, (1, 1))
    report = api.verify(["labels"], settings)
    assert "changed labels.txt" in tree_failure(report)
    api.fetch(["labels"], settings).raise_for_errors()
    assert out.read_bytes() == payload


# -- an extraction without a record is never taken as done --------------------------------------


def test_deleted_record_means_not_extracted(src: Path, write_manifest: ManifestWriter, settings: Settings) -> None:
    archive_manifest(write_manifest, "rec", tar_gz(src / "rec.tar.gz"))
    api.fetch(["rec"], settings).raise_for_errors()
    target = art_dir(settings, "rec") / "rec"
    inode = (target / "a.txt").stat().st_ino
    trees_json(settings, "rec").unlink()

    report = api.verify(["rec"], settings)
    assert not report.ok
    msg = tree_failure(report)
    assert "extracted tree missing" in msg and "no completion record" in msg, msg
    with pytest.raises(IntegrityError) as info:
        report.raise_for_errors()
    assert info.value.exit_code == EXIT_INTEGRITY

    again = api.fetch(["rec"], settings)
    assert again.ok, again.failures
    assert (target / "a.txt").stat().st_ino != inode  # extracted again
    assert trees_json(settings, "rec").exists()
    assert api.verify(["rec"], settings).ok


def test_hand_made_folder_is_not_taken_as_extracted(
    src: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    archive_manifest(write_manifest, "hand", tar_gz(src / "hand.tar.gz"))
    target = art_dir(settings, "hand") / "hand"
    for rel, data in TREE.items():  # the right content, as an interrupted run might leave it
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / rel).write_bytes(data)
    (target / "half-written.tmp").write_bytes(b"x")

    report = api.verify(["hand"], settings)
    assert "no completion record" in tree_failure(report)
    with pytest.raises(IntegrityError):
        report.raise_for_errors()

    api.fetch(["hand"], settings).raise_for_errors()
    assert files_of(target) == TREE  # the stray file went with the hand-made folder
    assert api.verify(["hand"], settings).ok


def test_changed_extraction_settings_extract_again(
    src: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    archive = tar_gz(src / "sel.tar.gz")
    archive_manifest(write_manifest, "sel", archive)
    api.fetch(["sel"], settings).raise_for_errors()
    assert files_of(art_dir(settings, "sel") / "sel") == TREE
    archive_manifest(write_manifest, "sel", archive, 'extract = "tar.gz"\nmembers = ["*.bin"]\nstrip_components = 1')
    assert not api.verify(["sel"], settings).ok  # the record is for other settings
    report = api.fetch(["sel"], settings)
    assert report.ok, report.failures
    assert files_of(art_dir(settings, "sel") / "sel") == {"b.bin": TREE["sub/b.bin"]}  # globs match after stripping
    assert api.verify(["sel"], settings).ok


# -- verify -------------------------------------------------------------------------------------


def test_verify_fast_path_and_full(src: Path, write_manifest: ManifestWriter, settings: Settings) -> None:
    archive = tar_gz(src / "v.tar.gz")
    archive_manifest(write_manifest, "v", archive)
    api.fetch(["v"], settings).raise_for_errors()
    report = api.verify(["v"], settings)
    assert report.ok
    assert [c.name for c in report.files] == ["v.tar.gz", "v/"]
    assert (report.files_hashed, report.bytes_hashed) == (0, 0)

    full = api.verify(["v"], settings, full=True)
    assert full.ok
    assert full.bytes_hashed == archive.stat().st_size + sum(map(len, TREE.values()))
    assert full.files_hashed == 2

    touched = art_dir(settings, "v") / "v" / "sub" / "b.bin"
    os.utime(touched, (5, 5))  # same bytes, new stat: re-hashed once, then recorded
    report = api.verify(["v"], settings)
    assert report.ok and report.bytes_hashed == len(TREE["sub/b.bin"])
    report = api.verify(["v"], settings)
    assert report.ok and report.bytes_hashed == 0


@pytest.mark.parametrize(
    "damage", ["changed", "changed-mtime-kept", "extra", "missing", "extra-link", "changed-link"]
)
def test_verify_names_the_damage_and_fetch_repairs(
    src: Path, write_manifest: ManifestWriter, settings: Settings, damage: str
) -> None:
    archive_manifest(write_manifest, "dmg", tar_gz(src / "dmg.tar.gz", links={"ln": "sub"}))
    api.fetch(["dmg"], settings).raise_for_errors()
    target = art_dir(settings, "dmg") / "dmg"
    if damage == "changed":
        path = target / "sub" / "b.bin"
        st = path.stat()
        path.write_bytes(b"X" + TREE["sub/b.bin"][1:])  # same size, one byte differs
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
        want = "changed sub/b.bin"
    elif damage == "changed-mtime-kept":  # an edit in place with size and mtime kept moves ctime
        path = target / "sub" / "b.bin"
        st = path.stat()
        path.write_bytes(b"X" + TREE["sub/b.bin"][1:])
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        want = "changed sub/b.bin"
    elif damage == "extra":
        (target / "sub" / "c" / "new.txt").write_bytes(b"new")
        want = "extra sub/c/new.txt"
    elif damage == "missing":
        (target / "a.txt").unlink()
        want = "missing a.txt"
    elif damage == "extra-link":
        os.symlink("sub", target / "another-dir-link")
        want = "extra another-dir-link"
    else:
        (target / "ln").unlink()
        os.symlink("sub/c", target / "ln")
        want = "changed ln"
    report = api.verify(["dmg"], settings)
    msg = tree_failure(report)
    assert "extracted tree corrupt" in msg and want in msg, msg
    assert [c.name for c in report.failures] == ["dmg/"]  # the archive itself is fine
    with pytest.raises(IntegrityError) as info:
        report.raise_for_errors()
    assert info.value.exit_code == EXIT_INTEGRITY

    fixed = api.fetch(["dmg"], settings)
    assert fixed.ok, fixed.failures
    assert files_of(target) == TREE
    assert os.readlink(target / "ln") == "sub"
    assert api.verify(["dmg"], settings).ok
    assert api.verify(["dmg"], settings, full=True).ok


def test_cli_verify_exits_3_on_a_damaged_tree(src: Path, write_manifest: ManifestWriter, settings: Settings) -> None:
    archive_manifest(write_manifest, "clitree", tar_gz(src / "clitree.tar.gz"))
    assert runner.invoke(app, ["fetch", "clitree"]).exit_code == 0
    assert runner.invoke(app, ["verify", "clitree"]).exit_code == 0
    (art_dir(settings, "clitree") / "clitree" / "a.txt").unlink()
    result = runner.invoke(app, ["verify", "clitree"])
    assert result.exit_code == EXIT_INTEGRITY
    assert "missing a.txt" in result.stderr


# -- keep_archive = false -------------------------------------------------------------------------


def test_keep_archive_false(src: Path, write_manifest: ManifestWriter, settings: Settings) -> None:
    archive = tar_gz(src / "drop.tar.gz")
    body = archive.read_bytes()
    archive_manifest(write_manifest, "drop", archive, 'extract = "tar.gz"\nkeep_archive = false')
    report = api.fetch(["drop"], settings)
    assert report.ok, report.failures
    folder = art_dir(settings, "drop")
    blob = Store(settings.cache_dir).blob_path(Checksum.parse(md5(body)))
    assert not (folder / "drop.tar.gz").exists()
    assert not blob.exists()
    assert files_of(folder / "drop") == TREE
    assert api.path("drop", settings) == [("drop", folder)]

    checked = api.verify(["drop"], settings)
    assert checked.ok, [c.message() for c in checked.failures]
    assert [c.name for c in checked.files] == ["drop/"]  # only the tree: the archive is gone on purpose
    assert api.verify(["drop"], settings, full=True).ok

    archive.unlink()  # no source: a later fetch must not download
    again = api.fetch(["drop"], settings)
    assert again.ok, again.failures
    assert [f.state for f in again.files] == ["cached"]

    (folder / "drop" / "a.txt").write_bytes(b"tampered")
    assert not api.verify(["drop"], settings).ok
    tar_gz(archive)  # the source is back (same bytes: tar.gz built the same way)
    assert archive.read_bytes() == body
    repaired = api.fetch(["drop"], settings)
    assert repaired.ok, repaired.failures
    assert [f.state for f in repaired.files] == ["fetched"]  # downloaded again, extracted again
    assert files_of(folder / "drop") == TREE
    assert not (folder / "drop.tar.gz").exists() and not blob.exists()
    assert api.verify(["drop"], settings).ok


# -- tree and expect_files pins ---------------------------------------------------------------------


def _tree_pin(tmp_path: Path) -> tuple[str, int]:
    by_hand = tmp_path / "by-hand"
    for rel, data in TREE.items():
        (by_hand / rel).parent.mkdir(parents=True, exist_ok=True)
        (by_hand / rel).write_bytes(data)
    result = runner.invoke(app, ["hash", "--tree", str(by_hand)])
    assert result.exit_code == 0, result.output
    m = re.match(r"(xxh3_128:[0-9a-f]{32})  (.+)  \((\d+) files, (\d+) bytes\)$", result.stdout.strip())
    assert m is not None, result.stdout
    assert m.group(2) == str(by_hand)
    assert int(m.group(4)) == sum(map(len, TREE.values()))
    return m.group(1), int(m.group(3))


def test_artifact_level_pins_pass_when_right(
    tmp_path: Path, src: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    digest, count = _tree_pin(tmp_path)
    assert count == len(TREE)
    archive = tar_gz(src / "pinned.tar.gz")
    archive_manifest(write_manifest, "pinned", archive, extra=f'tree = "{digest}"\nexpect_files = {count}')
    report = api.fetch(["pinned"], settings)
    assert report.ok, report.failures
    assert hash_tree(art_dir(settings, "pinned") / "pinned").digest == digest
    doc = json.loads(trees_json(settings, "pinned").read_text())
    assert doc["trees"]["pinned.tar.gz"]["digest"] == digest


@pytest.mark.parametrize("wrong", ["tree", "expect_files", "file-level-tree"])
def test_wrong_pins_fail_with_exit_3(
    tmp_path: Path, src: Path, write_manifest: ManifestWriter, settings: Settings, wrong: str
) -> None:
    digest, count = _tree_pin(tmp_path)
    bad = "xxh3_128:" + "f" * 32
    archive = tar_gz(src / "badpin.tar.gz")
    if wrong == "tree":
        archive_manifest(write_manifest, "badpin", archive, extra=f'tree = "{bad}"\nexpect_files = {count}')
        want = f"tree digest mismatch: expected {bad}, got {digest}"
    elif wrong == "expect_files":
        archive_manifest(write_manifest, "badpin", archive, extra=f'tree = "{digest}"\nexpect_files = {count + 1}')
        want = f"expected {count + 1} files, extracted {count}"
    else:
        archive_manifest(write_manifest, "badpin", archive, f'extract = "tar.gz"\ntree = "{bad}"')
        want = f"expected {bad}, got {digest}"
    report = api.fetch(["badpin"], settings)
    assert not report.ok
    assert report.exit_code == EXIT_INTEGRITY
    assert want in report.failures[0].error, report.failures[0].error
    with pytest.raises(IntegrityError) as info:
        report.raise_for_errors()
    assert info.value.exit_code == EXIT_INTEGRITY
    folder = art_dir(settings, "badpin")
    assert sorted(p.name for p in folder.iterdir()) == ["badpin.tar.gz"]  # no tree, no temp folder
    assert not trees_json(settings, "badpin").exists()  # nothing recorded
    assert "no completion record" in tree_failure(api.verify(["badpin"], settings))
    result = runner.invoke(app, ["fetch", "badpin"])
    assert result.exit_code == EXIT_INTEGRITY
    assert not (folder / "badpin").exists()


# -- disk space ---------------------------------------------------------------------------------------


def test_disk_space_check_counts_extracted_size(src: Path, write_manifest: ManifestWriter, settings: Settings) -> None:
    archive = tar_gz(src / "huge.tar.gz")
    archive_manifest(write_manifest, "huge", archive, 'extract = "tar.gz"\nextracted_size = 1000000000000000')
    with pytest.raises(DiskSpaceError, match="not enough disk space"):
        api.fetch(["huge"], settings)
    assert not (art_dir(settings, "huge") / "huge").exists()
    assert not (art_dir(settings, "huge") / "huge.tar.gz").exists()  # refused before downloading
    archive_manifest(write_manifest, "huge", archive, 'extract = "tar.gz"\nextracted_size = 20000')
    api.fetch(["huge"], settings).raise_for_errors()


def test_disk_space_check_counts_extraction_of_a_cached_archive(
    src: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    archive = tar_gz(src / "later.tar.gz")
    body = archive.read_bytes()
    write_manifest(dataset_toml("later", [("later.tar.gz", [str(archive)], body, None)]), name="later")
    api.fetch(["later"], settings).raise_for_errors()  # the archive is cached, not extracted
    archive_manifest(write_manifest, "later", archive, 'extract = "tar.gz"\nextracted_size = 1000000000000000')
    with pytest.raises(DiskSpaceError):
        api.fetch(["later"], settings)
    assert not (art_dir(settings, "later") / "later").exists()


# -- lint -------------------------------------------------------------------------------------------------

_MD5 = md5(b"")
_XXH = "xxh3_128:" + "0" * 32


def _file(name: str, keys: str = "") -> str:
    return f'[[dataset.files]]\nname = "{name}"\nurls = ["https://example.org/{name}"]\nchecksum = "{_MD5}"\n{keys}\n'


def _ds(body: str, extra: str = "") -> str:
    return f'schema = 1\n[[dataset]]\nname = "lintme"\n{extra}\n{body}'


LINT_CASES: dict[str, tuple[str, str]] = {
    "extract-keys-without-extract": (_ds(_file("a.tar", "strip_components = 1")), "strip_components: only meaningful"),
    "tree-without-extract": (_ds(_file("a.bin", f'tree = "{_XXH}"')), "tree: only meaningful"),
    "unknown-format": (_ds(_file("a.rar", 'extract = "rar"')), "extract: unknown format 'rar'"),
    "no-suffix": (_ds(_file("a.bin", 'extract = "tar"')), "has no archive suffix"),
    "unsafe-extract-to": (_ds(_file("a.tar", 'extract = "tar"\nextract_to = "../x"')), "extract_to: '../x' must be"),
    "extract-to-is-a-file": (
        _ds(_file("notes.txt") + _file("a.tar", 'extract = "tar"\nextract_to = "notes.txt"')),
        "extract_to 'notes.txt' of 'a.tar' collides with a file name",
    ),
    "file-inside-extract-to": (
        _ds(_file("d/readme.txt") + _file("d.tar", 'extract = "tar"')),
        "extract_to 'd' of 'd.tar' collides with a file name ('d/readme.txt')",
    ),
    "archive-inside-its-own-target": (
        _ds(_file("x/a.tar", 'extract = "tar"\nextract_to = "x"')),
        "extract_to 'x' of 'x/a.tar' collides",
    ),
    "nested-extract-to": (
        _ds(
            _file("a.tar", 'extract = "tar"\nextract_to = "x"') + _file("b.tar", 'extract = "tar"\nextract_to = "x/y"')
        ),
        "extract_to 'x/y' of 'b.tar' collides with a file name ('x')",
    ),
    "same-extract-to": (
        _ds(_file("a.tar", 'extract = "tar"\nextract_to = "x"') + _file("b.zip", 'extract = "zip"\nextract_to = "x"')),
        "extract_to 'x' of 'b.zip' collides",
    ),
    "artifact-tree-two-archives": (
        _ds(_file("a.tar", 'extract = "tar"') + _file("b.zip", 'extract = "zip"'), f'tree = "{_XXH}"'),
        "tree/expect_files: the artifact has 2 extracted files",
    ),
    "artifact-count-no-archive": (_ds(_file("a.bin"), "expect_files = 3"), "the artifact has 0 extracted files"),
    "non-xxh3-tree": (
        _ds(_file("a.tar", f'extract = "tar"\ntree = "{_MD5}"')),
        "tree: expected 'xxh3_128:<32 hex>'",
    ),
    "non-xxh3-artifact-tree": (_ds(_file("a.tar", 'extract = "tar"'), f'tree = "sha256:{"0" * 64}"'), "tree: expected"),
    "bad-extracted-size": (_ds(_file("a.tar", 'extract = "tar"\nextracted_size = -1')), "extracted_size: expected"),
    "bad-keep-archive": (_ds(_file("a.tar", 'extract = "tar"\nkeep_archive = "no"')), "keep_archive: expected true"),
}


@pytest.mark.parametrize("case", sorted(LINT_CASES))
def test_lint_extract_problems(write_manifest: ManifestWriter, manifests: Path, case: str) -> None:
    text, want = LINT_CASES[case]
    write_manifest(text)
    problems = api.lint([manifests])
    assert any(want in p for p in problems), problems


def test_lint_accepts_good_extract_entries(write_manifest: ManifestWriter, manifests: Path) -> None:
    body = (
        _file("a.tar.gz", 'extract = "tar.gz"\nextract_to = "imgs/a"\nstrip_components = 1\nmembers = ["*.jpg"]')
        + _file("b.zip", f'extract = "auto"\nextracted_size = 100\nkeep_archive = false\ntree = "{_XXH}"')
        + _file("imgs/readme.txt")
        + _file("labels.txt.gz", 'extract = "gz"\nexpect_files = 1')
    )
    write_manifest(_ds(body))
    assert api.lint([manifests]) == []
    art = api.load().artifacts["lintme"]
    specs = {f.name: f.extract for f in art.files}
    assert specs["a.tar.gz"] is not None and specs["a.tar.gz"].to == "imgs/a"
    assert specs["b.zip"] is not None and specs["b.zip"].to == "b" and not specs["b.zip"].keep_archive
    assert specs["labels.txt.gz"] is not None and specs["labels.txt.gz"].to == "labels.txt"
    assert specs["imgs/readme.txt"] is None


@pytest.mark.parametrize("what", ["fifo", "dev-zero", "folder-link"])
def test_tree_file_replaced_by_a_non_regular_file_is_changed_and_fetch_repairs(
    src: Path, write_manifest: ManifestWriter, settings: Settings, tmp_path: Path, what: str
) -> None:
    """verify and fetch never read a FIFO or follow a link in an extracted tree (a hang otherwise:
    run as real processes with a timeout)."""
    import subprocess
    import sys

    archive_manifest(write_manifest, "oddtree", tar_gz(src / "oddtree.tar.gz"))
    api.fetch(["oddtree"], settings).raise_for_errors()
    target = art_dir(settings, "oddtree") / "oddtree"
    outside = tmp_path / "outside"
    (outside / "c").mkdir(parents=True)
    (outside / "b.bin").write_bytes(TREE["sub/b.bin"])
    os.mkfifo(outside / "c" / "deep.txt")
    if what == "fifo":
        (target / "sub" / "b.bin").unlink()
        os.mkfifo(target / "sub" / "b.bin")
        want = "changed sub/b.bin (a FIFO"
    elif what == "dev-zero":
        (target / "a.txt").unlink()
        os.symlink("/dev/zero", target / "a.txt")
        want = "changed a.txt (a symlink"
    else:  # the folder sub replaced by a link to a folder outside the cache (holding a FIFO)
        for p in sorted(target.joinpath("sub").rglob("*"), reverse=True):
            p.rmdir() if p.is_dir() else p.unlink()
        (target / "sub").rmdir()
        os.symlink(outside, target / "sub")
        want = "extra sub"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "provision.cli", *args], capture_output=True, text=True, timeout=60
        )

    proc = cli("verify", "oddtree")
    assert proc.returncode == EXIT_INTEGRITY, proc.stderr
    assert "extracted tree corrupt" in proc.stderr and want in proc.stderr, proc.stderr
    proc = cli("fetch", "oddtree")
    assert proc.returncode == 0, proc.stderr
    assert files_of(target) == TREE
    assert (outside / "b.bin").read_bytes() == TREE["sub/b.bin"] and (outside / "c" / "deep.txt").exists()
    assert api.verify(["oddtree"], settings, full=True).ok


# -- issue 13: present only when every tree is extracted and recorded; killed runs cleaned ----


def _states(settings: Settings, name: str) -> dict[str, object]:
    """What path, status, list and show say about artifact ``name``."""
    path = runner.invoke(app, ["path", name])
    status = {r["name"]: r["state"] for r in api.status(settings)["artifacts"]}
    listed = {r["name"]: r["state"] for r in api.list_entries(settings)}
    shown = api.describe(name, settings)["cache"]["state"]
    return {"path": path.exit_code, "status": status.get(name), "list": listed[name], "show": shown}


@pytest.mark.parametrize("how", ["refused", "corrupt"])
def test_failed_extraction_is_not_present(
    src: Path, write_manifest: ManifestWriter, settings: Settings, how: str
) -> None:
    """An archive whose extraction was refused (a ../ member) or failed (a corrupt payload with the
    published checksum) is downloaded and verified, but not present: path exits 3, all agree."""
    if how == "refused":
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tf:
            info = tarfile.TarInfo("../evil.txt")
            info.size = 4
            tf.addfile(info, io.BytesIO(b"evil"))
        archive = src / "bad.tar"
        archive.parent.mkdir(parents=True, exist_ok=True)
        archive.write_bytes(raw.getvalue())
        archive_manifest(write_manifest, "bad", archive, 'extract = "tar"')
    else:
        archive = tar_gz(src / "bad.tar.gz")
        archive.write_bytes(archive.read_bytes()[:-40])  # truncated; the manifest pins these very bytes
        archive_manifest(write_manifest, "bad", archive)
    report = api.fetch(["bad"], settings)
    assert not report.ok and report.exit_code == EXIT_INTEGRITY
    assert (art_dir(settings, "bad") / archive.name).is_file()  # the archive itself is fine
    want = {"path": EXIT_INTEGRITY, "status": "partial", "list": "partial", "show": "partial"}
    assert _states(settings, "bad") == want
    result = runner.invoke(app, ["path", "bad"])
    assert "0/1 archives extracted" in result.stderr and "provision fetch bad" in result.stderr


def test_killed_extraction_is_not_present_and_the_next_fetch_removes_its_temp_folder(
    src: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    """A fetch killed (SIGKILL) half-way through an extraction of 3,000 files: path exits 3, and the
    next fetch extracts again and removes the dead run's temp folder (not only gc)."""
    import signal
    import subprocess
    import sys

    tree = {f"d{i % 10}/f{i:04d}.txt": f"{i}\n".encode() for i in range(3000)}
    first = sum(len(data) for data in list(tree.values())[:2000])  # progress comes in batches: count bytes
    archive_manifest(write_manifest, "killed", tar_gz(src / "killed.tar.gz", tree))
    script = (
        "import os, signal\n"
        "from provision import api\n"
        "from provision.config import Settings\n"
        "class P:\n"
        "    n = 0\n"
        "    def start(self, *a, **k): pass\n"
        "    def finish(self, *a): pass\n"
        "    def note(self, *a): pass\n"
        "    def retry(self, *a): pass\n"
        "    def advance(self, key, n):\n"
        "        if key == 'killed/killed':\n"
        "            P.n += n\n"
        f"            if P.n >= {first}: os.kill(os.getpid(), signal.SIGKILL)\n"
        "api.fetch(['killed'], Settings.from_env(), progress=P())\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    folder = art_dir(settings, "killed")
    temps = [p for p in folder.iterdir() if p.name.startswith("killed.part-")]
    assert len(temps) == 1 and temps[0].is_dir() and sum(1 for _ in temps[0].rglob("*.txt")) >= 1999
    assert not (folder / "killed").exists()
    assert _states(settings, "killed") == {
        "path": EXIT_INTEGRITY,
        "status": "partial",
        "list": "partial",
        "show": "partial",
    }
    checked = api.verify([], settings)  # never extracted: absent, not bad
    assert checked.ok and [(c.name, c.state) for c in checked.files] == [("killed.tar.gz", "ok"), ("killed/", "absent")]
    assert runner.invoke(app, ["verify", "killed"]).exit_code == EXIT_INTEGRITY  # named: it must be there
    report = api.fetch(["killed"], settings)
    assert report.ok, report.failures
    assert sorted(p.name for p in folder.iterdir()) == ["killed", "killed.tar.gz"]
    assert files_of(folder / "killed") == tree
    assert _states(settings, "killed") == {"path": 0, "status": "present", "list": "present", "show": "present"}


def test_extraction_that_runs_out_of_room_is_one_line_and_not_present(
    src: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    """An extraction whose writes fail (here: RLIMIT_FSIZE, EFBIG, as a full disk gives ENOSPC) fails
    the fetch with one line naming the artifact; nothing is placed, and path exits 3."""
    import subprocess
    import sys

    archive_manifest(write_manifest, "full", tar_gz(src / "full.tar.gz", {"zeros.bin": bytes(4 << 20)}))
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))\n"
        "from provision.cli.app import main\n"
        "sys.argv = ['provision', 'fetch', 'full']\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("provision: error:")]
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr
    assert "full/full.tar.gz: extraction failed" in errors[0] and "unexpected" not in errors[0], errors
    folder = art_dir(settings, "full")
    assert sorted(p.name for p in folder.iterdir()) == ["full.tar.gz"]
    assert runner.invoke(app, ["path", "full"]).exit_code == EXIT_INTEGRITY
    assert api.fetch(["full"], settings).ok  # with room again
    assert runner.invoke(app, ["path", "full"]).exit_code == 0
