"""The cache never writes, truncates or deletes through a link planted in it, and works read-only.

Symlinks planted at every path the cache writes (the lock file and its owner note, records, tree
records, CACHEDIR.TAG, the lock file's guard, blobs and partials, artifact files and folders) point
at files outside the cache; fetch, verify and gc must leave those files as they were.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

from conftest import ManifestWriter, dataset_toml
from httpserver import TestServer

from provision import api
from provision.config import Settings
from provision.manifest.checksum import Checksum
from provision.store.cache import Store

HOST = socket.gethostname().replace("-", "_")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _tar(members: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def test_links_planted_in_the_cache_are_never_followed(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    victims = {}
    for name in ("tag", "lock", "owner", "record", "trees", "guard", "blob", "partial", "view", "gone", "deep"):
        victims[name] = outside / f"{name}.txt"
        victims[name].write_bytes(f"precious {name}\n".encode())
    victim_dir = outside / "folder"
    victim_dir.mkdir()
    (victim_dir / "keep.bin").write_bytes(b"keep")
    before = {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()}

    plain, nested, tofu = os.urandom(3000), os.urandom(2000), os.urandom(1000)
    tar = _tar({"a.txt": b"alpha"})
    urls = {n: server.add(f"/safety/{n}", b) for n, b in [("plain.bin", plain), ("x.bin", nested), ("pack.tar", tar)]}
    text = dataset_toml(
        "safe",
        [
            ("plain.bin", [urls["plain.bin"]], plain, None),
            ("sub/x.bin", [urls["x.bin"]], nested, None),
            ("pack.tar", [urls["pack.tar"]], tar, None),
        ],
    )
    text = text.replace('name = "pack.tar"', 'name = "pack.tar"\nextract = "tar"\nextract_to = "tree/pack"')
    text += (
        '[[dataset.files]]\nname = "tofu.bin"\nurls = ["' + server.add("/safety/tofu.bin", tofu) + '"]\n'
        'checksum = "unpublished"\ntrust = "pinned on first use in this test"\n'
    )
    write_manifest(text)

    cache = settings.cache_dir
    store = Store(cache)
    for sub in ("blobs", "artifacts", "records", "locks"):
        (cache / sub).mkdir(parents=True)
    plain_blob = store.blob_path(Checksum("md5", hashlib.md5(plain).hexdigest()))
    plain_blob.parent.mkdir(parents=True)
    plants = {
        cache / "CACHEDIR.TAG": victims["tag"],
        cache / "locks" / "safe.lock": victims["lock"],
        cache / "locks" / "safe.owner": victims["owner"],
        cache / "records" / "safe.json": victims["record"],
        cache / "records" / "safe.trees.json": victims["trees"],
        Path(str(settings.lock_path) + ".lck"): victims["guard"],
        plain_blob: victims["blob"],
        plain_blob.with_name(f"{plain_blob.name}.part-{HOST}-{_dead_pid()}-abcdef12"): victims["partial"],
        cache / "artifacts" / "safe" / "plain.bin": victims["view"],
        cache / "artifacts" / "safe" / "sub": victim_dir,
        cache / "artifacts" / "safe" / "tree": victim_dir,
        cache / "artifacts" / "gone-artifact": victim_dir,  # an artifact no manifest defines
        cache / "records" / "gone-artifact.json": victims["gone"],
    }
    for link, target in plants.items():
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, link)

    report = api.fetch(["safe"], settings)
    assert report.ok, [f.error for f in report.failures]
    assert api.fetch(["safe"], settings).ok
    assert api.verify(["safe"], settings, full=True).ok
    assert api.verify([], settings).ok
    api.gc(settings)

    assert {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()} == before
    base = store.artifact_dir("safe")
    assert (base / "plain.bin").read_bytes() == plain and not (base / "plain.bin").is_symlink()
    assert (base / "sub" / "x.bin").read_bytes() == nested and not (base / "sub").is_symlink()
    assert (base / "tree" / "pack" / "a.txt").read_bytes() == b"alpha" and not (base / "tree").is_symlink()
    for link in [cache / "records" / "safe.json", cache / "records" / "safe.trees.json", plain_blob]:
        assert link.is_file() and not link.is_symlink(), link
    assert not os.path.lexists(cache / "artifacts" / "gone-artifact")
    assert not os.path.lexists(cache / "records" / "gone-artifact.json")
    assert os.path.islink(cache / "CACHEDIR.TAG")  # never written through (nor replaced)


# -- issue 13: a read-only cache: verify works, fetch names the path it cannot write ----------


def _read_only_runner(tmp_path: Path) -> str:
    """How this test can make folders really read-only: 'mount' (root: a read-only bind mount in a
    private mount namespace, since root ignores permission bits), 'chmod' (not root), or ''."""
    if os.geteuid() != 0:
        return "chmod"
    probe = tmp_path / "ro-probe"
    probe.mkdir()
    cmd = f"mount --bind {probe} {probe} && mount -o remount,bind,ro {probe} {probe} && ! touch {probe}/x 2>/dev/null"
    try:
        ok = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", cmd], timeout=30).returncode
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return "mount" if ok == 0 else ""


def _run_read_only(how: str, folders: list[Path], *args: str) -> subprocess.CompletedProcess[str]:
    """``provision ARGS`` as a real process while ``folders`` are read-only (for that process only)."""
    cmd = [sys.executable, "-m", "provision.cli", *args]
    if how == "mount":
        binds = " && ".join(f'mount --bind "{f}" "{f}" && mount -o remount,bind,ro "{f}" "{f}"' for f in folders)
        wrapped = ["unshare", "--mount", "--propagation", "private", "sh", "-c", f'{binds} && exec "$@"', "sh", *cmd]
        return subprocess.run(wrapped, capture_output=True, text=True, timeout=120)
    modes = {}
    for folder in folders:
        for p in [folder, *folder.rglob("*")]:
            if p.is_dir() and not p.is_symlink():
                modes[p] = p.stat().st_mode
                p.chmod(modes[p] & ~0o222)
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


def _errors(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("provision: error:")]


def test_read_only_cache_verify_works_and_fetch_names_the_path(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings, tmp_path: Path
) -> None:
    import pytest

    how = _read_only_runner(tmp_path)
    if not how:
        pytest.skip("cannot make a folder read-only here: running as root without mount namespaces")
    a, b = os.urandom(2000), os.urandom(3000)
    ua, ub = server.add("/ro/a.bin", a), server.add("/ro/b.bin", b)
    write_manifest(dataset_toml("ro", [("a.bin", [ua], a, None), ("b.bin", [ub], b, None)]))
    assert api.fetch(["ro"], settings).ok
    cache = settings.cache_dir
    store = Store(cache)
    view = store.artifact_dir("ro") / "a.bin"
    st = view.stat()
    os.utime(view, ns=(st.st_atime_ns, st.st_mtime_ns + 3_000_000_000))  # verify must re-hash, cannot record
    (cache / "locks" / "ro.lock").unlink()  # nor can it create the lock file
    record = store.record_path("ro").read_bytes()

    for args in (["verify", "ro"], ["verify"], ["verify", "--full", "ro"], ["status"], ["path", "ro"]):
        proc = _run_read_only(how, [cache], *args)
        assert proc.returncode == 0 and not _errors(proc), (args, proc.stderr)
    proc = _run_read_only(how, [cache], "fetch", "ro")  # everything cached: nothing to write, fine
    assert proc.returncode == 0 and not _errors(proc), proc.stderr
    assert store.record_path("ro").read_bytes() == record  # nothing was written

    view.unlink()
    proc = _run_read_only(how, [cache], "verify", "ro")
    assert proc.returncode == 3 and "ro/a.bin: missing" in proc.stderr, proc.stderr
    proc = _run_read_only(how, [cache], "fetch", "ro")
    errors = _errors(proc)
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr
    assert f"cannot write to {cache}/" in errors[0] and "ro/a.bin" in errors[0] and "writable" in errors[0], errors
    assert "unexpected" not in errors[0]

    folder = store.artifact_dir("ro")  # only the artifact's folder read-only: that folder is named
    proc = _run_read_only(how, [folder], "fetch", "ro")
    errors = _errors(proc)
    assert proc.returncode == 1 and len(errors) == 1 and f"cannot write to {folder} (" in errors[0], proc.stderr
    assert not view.exists()
    assert api.fetch(["ro"], settings).ok and view.read_bytes() == a  # writable again
