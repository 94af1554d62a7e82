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
