"""extract_archive with many small members: the writer processes, their errors, and the recorded stat.

Small tar members are read and checked by the calling process; after the first
``PROCESS_AFTER`` of them they are written by writer processes in batches (see
:mod:`provision.extract.archive`). Every test runs both ways: ``processes`` starts them from
the first small file, ``inline`` never. These tests build real archives with more members
than one batch holds and check the disk: every byte, mode and mtime; the record's
``(mtime_ns, ino, ctime_ns)`` equal to ``os.stat`` after the rename (there is no second stat
pass); refusals, budget caps and writer errors leaving nothing behind; hard links waiting for
queued writes.
"""

from __future__ import annotations

import errno
import gzip
import io
import lzma
import os
import random
import signal
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from provision.extract import archive as engine
from provision.extract.archive import SMALL_MEMBER, ExtractError, extract_archive
from provision.manifest.model import ExtractSpec
from provision.store.trees import hash_tree

LABEL = "art/pool.tar"


@pytest.fixture(autouse=True, params=["processes", "inline"])
def writers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of writing small files: the tuning knobs, not the code, differ."""
    monkeypatch.setattr(engine, "PROCESS_AFTER", 0 if request.param == "processes" else 10**9)
    return str(request.param)


MTIME = 1_600_000_000


def small_tree(n: int = 300, seed: int = 7) -> dict[str, bytes]:
    """``n`` files of 0-3000 random bytes in a few folders, plus one member bigger than ``SMALL_MEMBER``."""
    rng = random.Random(seed)
    tree = {f"c{i % 7}/sub{i % 3}/f{i:04d}.bin": rng.randbytes(rng.randint(0, 3000)) for i in range(n)}
    tree["big/large.bin"] = rng.randbytes(SMALL_MEMBER + 12_345)
    tree["top.txt"] = b"top\n"
    return tree


def tar_of(tree: dict[str, bytes], extra: list[tarfile.TarInfo] | None = None, *, mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.GNU_FORMAT) as tf:  # type: ignore[call-overload]
        for i, (name, data) in enumerate(tree.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if i % 5 == 0 else 0o644
            info.mtime = MTIME + i
            tf.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tf.addfile(info)
    return buf.getvalue()


def zip_of(tree: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in tree.items():
            zf.writestr(name, data)
    return buf.getvalue()


def files_under(root: Path) -> dict[str, bytes]:
    out = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            p = Path(dirpath, name)
            out[p.relative_to(root).as_posix()] = p.read_bytes()
    return out


def leftovers(dest: Path) -> list[str]:
    """What an extraction left beside ``dest`` (its temp folders), and ``dest`` itself."""
    return sorted(p.name for p in dest.parent.iterdir() if p.name.startswith(dest.name))


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("fmt", ["tar", "tar.gz", "zip"])
def test_many_small_members_extract_exactly_and_the_record_matches_os_stat(tmp_path: Path, fmt: str) -> None:
    tree = small_tree()
    data = tar_of(tree) if fmt == "tar" else tar_of(tree, mode="w:gz") if fmt == "tar.gz" else zip_of(tree)
    archive = write(tmp_path, f"pool.{fmt}", data)
    dest = tmp_path / "out" / "tree"
    seen: list[int] = []
    record = extract_archive(archive, ExtractSpec(fmt, "tree"), dest, label=LABEL, advance=seen.append)
    assert files_under(dest) == tree
    assert sum(seen) == sum(len(v) for v in tree.values())  # progress counts every byte written
    assert record.digest == hash_tree(dest).digest
    assert set(record.files) == set(tree)
    for rel, f in record.files.items():
        st = os.stat(dest / rel)
        assert (f.size, f.mtime_ns, f.ino, f.ctime_ns) == (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns), rel
        if fmt != "zip":
            name_index = list(tree).index(rel)
            assert st.st_mtime == MTIME + name_index
            assert stat_mode(st) == (0o755 if name_index % 5 == 0 else 0o644)
    assert leftovers(dest) == ["tree"]


def stat_mode(st: os.stat_result) -> int:
    return st.st_mode & 0o7777


@pytest.mark.parametrize("fmt", ["gz", "xz"])
def test_single_file_record_matches_os_stat_after_the_rename(tmp_path: Path, fmt: str) -> None:
    payload = random.Random(3).randbytes(50_000)
    packed = gzip.compress(payload) if fmt == "gz" else lzma.compress(payload)
    archive = write(tmp_path, f"data.bin.{fmt}", packed)
    dest = tmp_path / "data.bin"
    record = extract_archive(archive, ExtractSpec(fmt, "data.bin"), dest, label=LABEL)
    st = os.stat(dest)
    (f,) = record.files.values()
    assert (f.size, f.mtime_ns, f.ino, f.ctime_ns) == (len(payload), st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


def test_hard_link_to_a_file_still_queued_is_written_after_it(tmp_path: Path) -> None:
    tree = small_tree(200)
    del tree["big/large.bin"], tree["top.txt"]
    last = list(tree)[-1]  # the last small file: still in an unsent batch
    hard = tarfile.TarInfo("links/again.bin")
    hard.type = tarfile.LNKTYPE
    hard.linkname = last
    archive = write(tmp_path, "pool.tar", tar_of(tree, [hard]))
    dest = tmp_path / "tree"
    record = extract_archive(archive, ExtractSpec("tar", "tree"), dest, label=LABEL)
    assert (dest / "links/again.bin").read_bytes() == tree[last]
    assert os.stat(dest / "links/again.bin").st_ino == os.stat(dest / last).st_ino
    for rel, f in record.files.items():  # the link moved the inode's ctime: both records carry the new one
        st = os.stat(dest / rel)
        assert (f.mtime_ns, f.ino, f.ctime_ns) == (st.st_mtime_ns, st.st_ino, st.st_ctime_ns), rel


def evil(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 0
    return info


@pytest.mark.parametrize("fmt", ["tar", "tar.gz"])
@pytest.mark.parametrize("bad", ["../evil.txt", "c0/sub0/f0000.bin", "/abs.txt"])
def test_a_refusal_after_hundreds_of_queued_writes_leaves_nothing(tmp_path: Path, fmt: str, bad: str) -> None:
    tree = small_tree(400)
    del tree["big/large.bin"]  # only small members queued before the bad one
    archive = write(tmp_path, "pool.tar", tar_of(tree, [evil(bad)], mode="w:gz" if fmt == "tar.gz" else "w"))
    dest = tmp_path / "tree"
    with pytest.raises(ExtractError, match="refused, nothing was extracted"):
        extract_archive(archive, ExtractSpec(fmt, "tree"), dest, label=LABEL)
    assert leftovers(dest) == []


def test_the_declared_size_cap_is_charged_before_small_files_are_written(tmp_path: Path) -> None:
    tree = {f"d/f{i:03d}": bytes([i % 251]) * 1000 for i in range(300)}
    archive = write(tmp_path, "pool.tar", tar_of(tree))
    dest = tmp_path / "tree"
    with pytest.raises(ExtractError, match="exceeds the cap of 150000 bytes"):
        extract_archive(archive, ExtractSpec("tar", "tree", extracted_size=150_000), dest, label=LABEL)
    assert leftovers(dest) == []


def test_a_writer_thread_error_is_raised_and_the_temp_folder_removed(tmp_path: Path) -> None:
    tree = small_tree(300)
    del tree["big/large.bin"]
    tree["n/" + "x" * 300] = b"a name longer than NAME_MAX: the writer's open fails"
    tree.update({f"after/f{i}": b"z" for i in range(200)})
    archive = write(tmp_path, "pool.tar", tar_of(tree))
    dest = tmp_path / "tree"
    with pytest.raises(OSError) as info:
        extract_archive(archive, ExtractSpec("tar", "tree"), dest, label=LABEL)
    assert info.value.errno == errno.ENAMETOOLONG
    assert leftovers(dest) == []


def test_a_truncated_small_member_is_a_corrupt_archive(tmp_path: Path) -> None:
    tree = {f"d/f{i:03d}": bytes([i]) * 4000 for i in range(100)}
    data = tar_of(tree)
    archive = write(tmp_path, "pool.tar", data[: 512 * 300 + 100])  # cut inside a member's data
    dest = tmp_path / "tree"
    with pytest.raises(ExtractError, match="corrupt or truncated tar archive"):
        extract_archive(archive, ExtractSpec("tar", "tree"), dest, label=LABEL)
    assert leftovers(dest) == []


def writer_children() -> list[str]:
    """The command lines of this process's running children that are writer processes."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() and "writer_process.py" in cmd:
            out.append(cmd)
    return out


def test_writer_processes_start_only_after_the_first_small_files(tmp_path: Path, writers: str) -> None:
    """An archive of fewer small files than ``PROCESS_AFTER`` never starts a process; they end with it."""
    src = write(tmp_path, "pool.tar", tar_of(small_tree(600)))
    seen: list[int] = []

    def advance(n: int) -> None:
        seen.append(len(writer_children()))

    extract_archive(src, ExtractSpec("tar", "out"), tmp_path / "out", label=LABEL, advance=advance)
    assert (max(seen) == engine.WRITERS) == (writers == "processes"), seen
    assert max(seen) in (0, engine.WRITERS)
    assert writer_children() == []  # none outlives the extraction
    assert files_under(tmp_path / "out") == small_tree(600)


def test_files_keep_their_modes_under_a_strict_umask(tmp_path: Path) -> None:
    """Files are created with their final mode; where the umask took bits, fchmod restores them."""
    tree = {f"d/f{i:03d}": b"x" * i for i in range(200)}
    src = write(tmp_path, "pool.tar", tar_of(tree))
    old = os.umask(0o077)
    try:
        extract_archive(src, ExtractSpec("tar", "out"), tmp_path / "out", label=LABEL)
    finally:
        os.umask(old)
    for i, name in enumerate(tree):
        assert stat_mode(os.stat(tmp_path / "out" / name)) == (0o755 if i % 5 == 0 else 0o644), name


def test_a_writer_process_that_dies_is_an_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writers: str
) -> None:
    if writers == "inline":
        pytest.skip("no writer process runs inline")
    dying = tmp_path / "dying.py"
    dying.write_text("import sys\nsys.exit(7)\n")
    monkeypatch.setattr(engine, "_WRITER_SCRIPT", str(dying))
    src = write(tmp_path, "pool.tar", tar_of(small_tree(300)))
    dest = tmp_path / "tree"
    with pytest.raises(ExtractError, match=r"writer process .* ended without a reply \(exit status 7\)"):
        extract_archive(src, ExtractSpec("tar", "tree"), dest, label=LABEL)
    assert leftovers(dest) == []


@pytest.mark.parametrize("fmt", ["tar", "tar.gz"])
def test_one_page_pipes_do_not_stall_the_writer_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writers: str, fmt: str
) -> None:
    """pipe(7): past pipe-user-pages-soft a user's new pipes hold one page, less than four replies;
    the exchange must still go on (it hung before requests were written without blocking)."""
    if writers == "inline":
        pytest.skip("no writer process runs inline")
    monkeypatch.setattr(engine, "WRITER_PIPE_BYTES", 4096)
    tree = {f"f/{i:05d}": b"%08d" % i * 64 for i in range(3000)}
    archive = write(tmp_path, "pool.tar", tar_of(tree, mode="w:gz" if fmt == "tar.gz" else "w"))
    dest = tmp_path / "tree"
    done: list[BaseException | None] = []

    def run() -> None:
        try:
            extract_archive(archive, ExtractSpec(fmt, "tree"), dest, label=LABEL)
            done.append(None)
        except BaseException as exc:  # re-raised below
            done.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(60)
    if worker.is_alive():
        for pid in writer_children():  # let the stuck extraction end with the test
            os.kill(int(pid), signal.SIGKILL)
        pytest.fail("the extraction stalled with one-page pipes")
    assert done == [None]
    assert files_under(dest) == tree


def raw_member(name: str, data: bytes, *, size: bytes | None = None, pax: dict[str, str] | None = None) -> bytes:
    """One member's blocks as ``tarfile`` writes them, its size field replaced by ``size`` (and the
    checksum made again): values tarfile reads but no tar writes."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), MTIME
    fmt = tarfile.PAX_FORMAT if pax else tarfile.GNU_FORMAT
    if pax:
        info.pax_headers = pax
    blob = bytearray(info.tobuf(fmt, "utf-8", "surrogateescape"))
    head = len(blob) - 512
    if size is not None:
        blob[head + 124 : head + 136] = size
        blob[head + 148 : head + 156] = b" " * 8
        blob[head + 148 : head + 156] = b"%06o\0 " % sum(blob[head : head + 512])
    return bytes(blob) + data + b"\0" * (-len(data) % 512)


@pytest.mark.parametrize(
    "bad",
    [
        raw_member("neg.bin", b"", size=b"\xff" * 11 + b"\xfb"),  # base-256 -5
        raw_member("late.bin", b"hello", pax={"mtime": "1e300"}),
        raw_member("later.bin", b"hello", pax={"mtime": str(2**70)}),
    ],
    ids=["negative-size", "mtime-1e300", "mtime-2**70"],
)
def test_a_member_size_or_mtime_no_file_can_have_is_a_corrupt_archive_on_both_paths(tmp_path: Path, bad: bytes) -> None:
    """tarfile reads a negative base-256 size and any pax mtime; the writer processes used to fail on
    them as an OSError or a dead process ("run again"), the calling process as a corrupt archive."""
    tree = {f"d/f{i:04d}": b"x" for i in range(50)}
    good = b"".join(raw_member(name, data) for name, data in tree.items())
    archive = write(tmp_path, "pool.tar", good + bad + b"\0" * 1024)
    dest = tmp_path / "tree"
    with pytest.raises(ExtractError, match=r"corrupt archive \(member '.*' has size -?\d+ and mtime"):
        extract_archive(archive, ExtractSpec("tar", "tree"), dest, label=LABEL)
    assert leftovers(dest) == []
