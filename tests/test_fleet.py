"""Fleets: mirror export (served over real HTTP) and push (moto's S3 server), bundles created,
listed, split and imported offline on a fresh cache, a damaged bundle refused with nothing visible."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
from conftest import ManifestWriter, dataset_toml
from httpserver import TestServer, md5
from typer.testing import CliRunner

from provision import api
from provision.cli.app import app
from provision.config import Settings
from provision.errors import EXIT_INTEGRITY, IntegrityError, UsageError
from provision.manifest.checksum import Checksum
from provision.store.cache import Store

runner = CliRunner()
BIG = bytes(range(256)) * 5000  # 1.28 MB: spans parts of a --split 1M bundle
SMALL = b"labels: 0 1 2\n"
PINNED = b"no published checksum; pinned on first use\n"


def _lab(server: TestServer, write_manifest: ManifestWriter, tag: str) -> dict[str, bytes]:
    """A dataset of three files served by the test server: md5-published, sha256-published via a
    tar to extract, and one 'unpublished' (pinned in the lock file on first fetch)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("inner/a.txt")
        info.size = len(SMALL)
        tf.addfile(info, io.BytesIO(SMALL))
    archive = buf.getvalue()
    bodies = {"big.bin": BIG, "labels.txt": SMALL, "pinned.txt": PINNED, "inner.tar": archive}
    rows = []
    for name, body in bodies.items():
        url = server.add(f"/{tag}/{name}", body)
        rows.append((name, [url], body, "unpublished" if name == "pinned.txt" else None))
    text = dataset_toml("lab-data", rows) + 'extract = "tar"\n'
    text = text.replace(
        'checksum = "unpublished"', 'checksum = "unpublished"\ntrust = "a test fixture, served by the test"'
    )
    text += '[[benchmark]]\nname = "lab"\ndataset = "lab-data"\n'
    write_manifest(text, name="lab")
    return bodies


@pytest.fixture
def fetched(server: TestServer, write_manifest: ManifestWriter, settings: Settings, request: Any) -> dict[str, bytes]:
    bodies = _lab(server, write_manifest, request.node.name)
    report = api.fetch(["lab"], settings)
    assert report.ok, report.failures
    return bodies


def _fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> Settings:
    """Another machine: an empty cache (and lock file) of its own, the same manifests."""
    monkeypatch.setenv("PROVISION_CACHE", str(tmp_path / name))
    return Settings.from_env()


# -- mirrors ----------------------------------------------------------------------------------------


def test_export_lays_out_blobs_by_checksum_and_a_fleet_fetches_from_it(
    fetched: dict[str, bytes],
    settings: Settings,
    tmp_path: Path,
    server: TestServer,
    write_manifest: ManifestWriter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mirror = tmp_path / "mirror"
    report = api.mirror_export(["lab"], mirror, settings)
    assert (mirror / "md5" / md5(BIG).split(":")[1]).read_bytes() == BIG
    pin = json.loads(settings.lock_path.read_text())["files"]["lab-data/pinned.txt"]["checksum"]
    alg, hexdigest = pin.split(":")
    assert (mirror / alg / hexdigest).read_bytes() == PINNED  # the pinned digest is its address
    assert len(report.blobs) == 4 and set(report.blobs.values()) <= {"reflink", "hardlink", "copy"}
    blob = Store(settings.cache_dir).blob_path(Checksum.parse(md5(BIG)))
    if report.blobs[f"md5/{md5(BIG).split(':')[1]}"] == "hardlink":
        assert os.stat(blob).st_ino == os.stat(mirror / "md5" / md5(BIG).split(":")[1]).st_ino
    assert set(api.mirror_export(["lab"], mirror, settings).blobs.values()) == {"kept"}

    # serve the folder over HTTP; a new machine whose origin URLs are dead fetches everything from it
    for path in mirror.rglob("*"):
        if path.is_file():
            server.add(f"/mirror/{path.relative_to(mirror)}", path.read_bytes())
    text = (tmp_path / "manifests" / "lab.toml").read_text()
    write_manifest(text.replace("/test_export", "/gone/test_export"), name="lab")
    other = _fresh(tmp_path, monkeypatch, "other")
    other_lock = other.lock_path
    other_lock.parent.mkdir(parents=True)
    other_lock.write_text(settings.lock_path.read_text())  # the fleet shares the lock file
    monkeypatch.setenv("PROVISION_MIRRORS", server.url("/mirror"))
    got = api.fetch(["lab"], Settings.from_env())
    assert got.ok, got.failures
    assert (Store(other.cache_dir).artifact_dir("lab-data") / "big.bin").read_bytes() == BIG


def test_a_wrong_byte_on_the_mirror_is_never_accepted(
    fetched: dict[str, bytes], settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = tmp_path / "mirror"
    api.mirror_export(["lab"], mirror, settings)
    target = mirror / "md5" / md5(SMALL).split(":")[1]
    os.unlink(target)
    target.write_bytes(b"labels: 0 1 3\n")
    text = (tmp_path / "manifests" / "lab.toml").read_text()
    (tmp_path / "manifests" / "lab.toml").write_text(text.replace("127.0.0.1", "127.0.0.1:1"))
    _fresh(tmp_path, monkeypatch, "other")
    monkeypatch.setenv("PROVISION_MIRRORS", mirror.as_uri())
    report = api.fetch(["lab-data"], Settings.from_env())
    assert not report.ok
    assert not (Store(Settings.from_env().cache_dir).artifact_dir("lab-data") / "labels.txt").exists()


def test_export_refuses_what_is_not_fetched(
    settings: Settings, server: TestServer, write_manifest: ManifestWriter, tmp_path: Path
) -> None:
    _lab(server, write_manifest, "unfetched")
    with pytest.raises(Exception, match="fetch"):
        api.mirror_export(["lab"], tmp_path / "m", settings)
    result = runner.invoke(app, ["mirror", "export", str(tmp_path / "m")])
    assert result.exit_code == 2 and "--all" in result.output


def test_push_uploads_the_layout_and_skips_what_is_there(
    fetched: dict[str, bytes], settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("moto.server")
    import boto3
    from moto.server import ThreadedMotoServer
    from test_s3 import _aws_env

    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    try:
        host, port = srv.get_host_and_port()
        _aws_env(monkeypatch, f"http://{host}:{port}")
        client = boto3.client("s3")
        client.create_bucket(Bucket="lab-mirror")
        report = api.mirror_push(["lab"], "s3://lab-mirror/provision", settings)
        assert set(report.blobs.values()) == {"uploaded"} and len(report.blobs) == 4
        key = f"provision/md5/{md5(BIG).split(':')[1]}"
        assert client.get_object(Bucket="lab-mirror", Key=key)["Body"].read() == BIG
        assert set(api.mirror_push(["lab"], "s3://lab-mirror/provision", settings).blobs.values()) == {"kept"}
        # a machine using the bucket as its mirror (dead origins) fetches every file from it
        text = (tmp_path / "manifests" / "lab.toml").read_text()
        (tmp_path / "manifests" / "lab.toml").write_text(text.replace("127.0.0.1", "127.0.0.1:1"))
        other = _fresh(tmp_path, monkeypatch, "other")
        other.lock_path.parent.mkdir(parents=True)
        other.lock_path.write_text(settings.lock_path.read_text())
        monkeypatch.setenv("PROVISION_MIRRORS", "s3://lab-mirror/provision")
        got = api.fetch(["lab"], Settings.from_env())
        assert got.ok, got.failures
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        with pytest.raises(UsageError, match="no AWS credentials"):
            api.mirror_push(["lab"], "s3://lab-mirror/provision", settings)
    finally:
        srv.stop()


# -- bundles ----------------------------------------------------------------------------------------


def test_a_bundle_imports_offline_on_a_fresh_cache(
    fetched: dict[str, bytes], settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "lab.tar"
    index = api.bundle_create(["lab"], out, settings)
    assert index.parts == [out] and len(index.blobs) == 4 and index.doc["artifacts"] == ["lab-data"]
    assert "lab-data/pinned.txt" in index.doc["pins"]
    listed = api.bundle_ls(out)
    assert listed.doc == index.doc
    result = runner.invoke(app, ["bundle", "ls", str(out)])
    assert result.exit_code == 0 and "big.bin" in result.output

    # another machine: no network at all, an empty cache and no lock file
    _fresh(tmp_path, monkeypatch, "airgapped")
    monkeypatch.setenv("PROVISION_OFFLINE", "1")
    monkeypatch.setenv("PROVISION_MANIFESTS", str(tmp_path / "nowhere"))
    result = runner.invoke(app, ["bundle", "import", str(out), "--json"])
    assert result.exit_code == 0, result.output
    other = Settings.from_env()
    # the bundle's manifests are kept in the cache: this machine's own did not define "lab"
    monkeypatch.setenv("PROVISION_MANIFESTS", json.loads(result.output)["manifests"])
    folders = dict(api.path("lab", Settings.from_env()))
    assert (folders["lab-data"] / "big.bin").read_bytes() == BIG
    assert (folders["lab-data"] / "inner" / "inner" / "a.txt").read_bytes() == SMALL  # the archive was extracted
    assert json.loads(other.lock_path.read_text())["files"]["lab-data/pinned.txt"]["checksum"].startswith("sha256:")
    assert api.verify(["lab"], Settings.from_env(), full=True).ok


def test_a_split_bundle_is_joined_and_a_flipped_byte_imports_nothing(
    fetched: dict[str, bytes], settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "lab.tar"
    result = runner.invoke(app, ["bundle", "create", "lab", "-o", str(out), "--split", "1M", "--json"])
    assert result.exit_code == 0, result.output
    parts = [Path(p) for p in json.loads(result.output)["parts"]]
    assert [p.name for p in parts] == ["lab.tar.000", "lab.tar.001"] and not out.exists()
    assert parts[0].stat().st_size == 1 << 20

    # flip one byte of BIG's content inside the second part
    data = bytearray(parts[1].read_bytes())
    spot = bytes(data).find(BIG[-4096:-4000])
    assert spot >= 0
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for part in parts:
        (damaged / part.name).write_bytes(part.read_bytes())
    data[spot] ^= 0x01
    (damaged / parts[1].name).write_bytes(bytes(data))

    _fresh(tmp_path, monkeypatch, "airgapped")
    monkeypatch.setenv("PROVISION_OFFLINE", "1")
    bad = runner.invoke(app, ["bundle", "import", str(damaged / "lab.tar")])
    assert bad.exit_code == EXIT_INTEGRITY, bad.output
    assert "does not match its checksum" in bad.output and "nothing was imported" in bad.output
    root = Settings.from_env().cache_dir
    leftovers = [p for p in root.rglob("*") if p.is_file() and p.name != "CACHEDIR.TAG"] if root.exists() else []
    assert leftovers == [], leftovers  # no blob, record, pin or staging file
    # a missing part is refused the same way
    os.unlink(damaged / parts[1].name)
    with pytest.raises(IntegrityError):
        api.bundle_import(damaged / "lab.tar.000", Settings.from_env())

    good = api.bundle_import(parts[0], Settings.from_env())
    assert good.blobs == 4 and good.artifacts == ["lab-data"]


# -- one download per node ----------------------------------------------------------------------------

WORKER = """
import json, os, sys
use_dist = sys.argv[1] == "gloo"
if use_dist:
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method="env://")
from provision import api
report = api.fetch(["lab"], distributed=True)
states = sorted({f.state for f in report.files})
print(json.dumps({"ok": report.ok, "states": states, "rank": os.environ["LOCAL_RANK"]}))
if use_dist:
    dist.destroy_process_group()
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("mode", ["gloo", "no-process-group"])
def test_only_local_rank_zero_downloads(
    mode: str, server: TestServer, write_manifest: ManifestWriter, tmp_path: Path, request: Any
) -> None:
    if mode == "gloo":
        pytest.importorskip("torch.distributed")
    import subprocess
    import sys

    tag = f"dist-{mode}"
    _lab(server, write_manifest, tag)
    server.reset_counts()
    port = str(_free_port())
    procs = []
    for rank in (1, 0):  # the waiting rank starts first
        env = {
            **os.environ,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, mode], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert all(r["ok"] for r in results), results
    waiting = next(r for r in results if r["rank"] == "1")
    assert waiting["states"] == ["cached"]  # it read what rank 0 verified
    gets = [path for method, path, _ in server.requests if method == "GET" and path.startswith(f"/{tag}/")]
    assert sorted(gets) == sorted(f"/{tag}/{n}" for n in ("big.bin", "labels.txt", "pinned.txt", "inner.tar"))


# -- doctor -------------------------------------------------------------------------------------------


def test_doctor_says_whether_each_mirror_answers(
    fetched: dict[str, bytes], settings: Settings, server: TestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "mirror"
    api.mirror_export(["lab"], folder, settings)
    server.add("/served/", b"")
    dead = "http://127.0.0.1:1/mirror"
    monkeypatch.setenv("PROVISION_MIRRORS", f"{server.url('/served')} {folder.as_uri()} {tmp_path / 'none'} {dead}")
    checks = {c.name: c for c in api.doctor(None, Settings.from_env(), timeout=2).checks}
    assert checks[f"mirror {server.url('/served')}"].status == "ok"
    assert checks[f"mirror {folder.as_uri()}"].status == "ok" and "md5" in checks[f"mirror {folder.as_uri()}"].detail
    assert checks[f"mirror {tmp_path / 'none'}"].status == "warn"
    assert checks[f"mirror {dead}"].status == "warn" and "connection refused" in checks[f"mirror {dead}"].detail


# -- hostile bundles ------------------------------------------------------------------------------------


def _repack(
    src: Path,
    dst: Path,
    *,
    index: Any = None,
    reseal: bool = True,
    members: dict[str, bytes | None] | None = None,
    extra: list[tuple[tarfile.TarInfo, bytes]] = (),  # type: ignore[assignment]
) -> Path:
    """A copy of bundle ``src`` with its index edited by ``index(doc)`` (sealed again unless not
    ``reseal``), members replaced (``bytes``) or dropped (``None``), and ``extra`` members appended."""
    import hashlib

    members = members or {}
    with tarfile.open(src) as old, tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as new:
        raw = old.extractfile("provision-bundle/index.json").read()  # type: ignore[union-attr]
        seal = old.extractfile("provision-bundle/index.sha256").read()  # type: ignore[union-attr]
        if index is not None:
            doc = json.loads(raw)
            index(doc)
            raw = json.dumps(doc).encode()
            if reseal:
                seal = hashlib.sha256(raw).hexdigest().encode()
        for info in old.getmembers():
            data = old.extractfile(info).read() if info.isfile() else b""  # type: ignore[union-attr]
            if info.name == "provision-bundle/index.json":
                data = raw
            elif info.name == "provision-bundle/index.sha256":
                data = seal
            elif info.name in members:
                if members[info.name] is None:
                    continue
                data = members[info.name]  # type: ignore[assignment]
            info.size = len(data)
            new.addfile(info, io.BytesIO(data))
        for info, data in extra:
            new.addfile(info, io.BytesIO(data))
    return dst


def _refused(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tag: str, code: int = EXIT_INTEGRITY) -> str:
    """Import ``path`` into a fresh offline cache: the exit code is ``code`` and nothing is left."""
    settings = _fresh(tmp_path, monkeypatch, f"fresh-{tag}")
    monkeypatch.setenv("PROVISION_OFFLINE", "1")
    result = runner.invoke(app, ["bundle", "import", str(path)])
    assert result.exit_code == code, (tag, result.output)
    assert "\n" not in result.output.strip(), result.output  # one line
    root = settings.cache_dir
    left = [p for p in root.rglob("*") if p.is_file() and p.name != "CACHEDIR.TAG"] if root.exists() else []
    assert left == [], (tag, left)
    return result.output


def test_hostile_bundles_import_nothing(
    fetched: dict[str, bytes], settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = tmp_path / "good.tar"
    api.bundle_create(["lab"], good, settings)
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET\n")
    os.chmod(secret, 0o600)
    thief = (
        '[[dataset]]\nname = "steal"\ndescription = "x"\n[[dataset.files]]\nname = "s.txt"\n'
        f'urls = ["{secret}"]\nchecksum = "unpublished"\ntrust = "x"\n'
    ).encode()

    def add_thief(doc: dict[str, Any]) -> None:
        import hashlib

        doc["artifacts"].append("steal")
        doc["manifests"]["9-steal.toml"] = hashlib.sha256(thief).hexdigest()

    info = tarfile.TarInfo("provision-bundle/manifests/9-steal.toml")
    info.size = len(thief)
    cases: dict[str, Path] = {
        # a manifest that points at a local file with no checksum: the import never reads an origin
        "steal": _repack(good, tmp_path / "steal.tar", index=add_thief, extra=[(info, thief)]),
        # an index naming an artifact its manifests do not define
        "ghost": _repack(good, tmp_path / "ghost.tar", index=lambda d: d["artifacts"].append("ghost")),
        # a pin for an artifact the bundle does not carry (it would poison this machine's lock file)
        "pin": _repack(
            good,
            tmp_path / "pin.tar",
            index=lambda d: d["pins"].__setitem__(
                "resnet50/w.bin", {"checksum": "sha256:" + "6" * 64, "size": 1, "url": "http://evil"}
            ),
        ),
        # types the index never has
        "types": _repack(good, tmp_path / "types.tar", index=lambda d: d["blobs"][0].pop("size")),
        "bytes": _repack(good, tmp_path / "bytes.tar", index=lambda d: d.__setitem__("bytes", "lots")),
        # one byte of the index changed (not sealed again), one of a manifest
        "index": _repack(good, tmp_path / "index.tar", index=lambda d: d.__setitem__("created", "x"), reseal=False),
    }
    with tarfile.open(good) as tf:
        manifest_name = next(n for n in tf.getnames() if "/manifests/" in n)
        text = tf.extractfile(manifest_name).read()  # type: ignore[union-attr]
    cases["manifest"] = _repack(
        good, tmp_path / "manifest.tar", members={manifest_name: text.replace(b"dataset", b"datasex", 1)}
    )
    link = tarfile.TarInfo("provision-bundle/blobs/md5/../../../evil")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    cases["symlink"] = _repack(good, tmp_path / "symlink.tar", extra=[(link, b"")])
    for tag, path in cases.items():
        _refused(path, tmp_path, monkeypatch, tag)
    assert not (tmp_path / "evil").exists()


def test_an_extra_part_and_a_planted_link_are_refused(
    fetched: dict[str, bytes], settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "lab.tar"
    parts = api.bundle_create(["lab"], out, settings, split=1 << 20).parts
    garbage = parts[-1].with_name(f"lab.tar.{len(parts):03d}")
    garbage.write_bytes(b"garbage after the end")
    assert "follows the end of the bundle" in _refused(parts[0], tmp_path, monkeypatch, "extra")
    garbage.unlink()
    monkeypatch.setenv("PROVISION_CACHE", str(settings.cache_dir))
    # mirror export never follows a link planted at DIR/<alg>
    mirror, elsewhere = tmp_path / "mirror", tmp_path / "elsewhere"
    mirror.mkdir()
    elsewhere.mkdir()
    (mirror / "md5").symlink_to(elsewhere)
    result = runner.invoke(app, ["mirror", "export", "lab", str(mirror)])
    assert result.exit_code == 2 and "not a real folder" in result.output, result.output
    assert list(elsewhere.iterdir()) == []
    # --copy: no mirror file shares the cache blob's inode
    os.unlink(mirror / "md5")
    report = api.mirror_export(["lab"], mirror, settings, copy=True)
    assert "hardlink" not in report.blobs.values()
    blob = Store(settings.cache_dir).blob_path(Checksum.parse(md5(BIG)))
    assert os.stat(blob).st_ino != os.stat(mirror / "md5" / md5(BIG).split(":")[1]).st_ino
    # a link planted at <cache>/bundles is never written through
    fresh = _fresh(tmp_path, monkeypatch, "linked")
    fresh.cache_dir.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (fresh.cache_dir / "bundles").symlink_to(outside)
    monkeypatch.setenv("PROVISION_OFFLINE", "1")
    result = runner.invoke(app, ["bundle", "import", str(out) + ".000"])
    assert result.exit_code == 2 and "bundles" in result.output, result.output
    assert list(outside.iterdir()) == []
