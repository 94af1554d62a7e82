"""``provision doctor``: every check against real files, real sockets and a real (small) filesystem.

Nothing of provision is mocked. A missing package is simulated the way Python itself sees
one (``sys.modules[name] = None``); non-enforcing NFS locks through a ``mounts`` file given
to :func:`check_cache` (the probe itself cannot be made to fail on a local filesystem).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import ManifestWriter
from httpserver import TestServer, md5
from typer.testing import CliRunner

from provision import api
from provision.cli.app import app
from provision.config import Settings
from provision.manifest.model import Artifact
from provision.readiness.machine import (
    BASE_PACKAGES,
    EXTRA_PACKAGES,
    Check,
    Package,
    check_cache,
    check_gpu,
    filesystem_of,
    package_check,
)
from provision.readiness.needs import check_disk, check_packages
from provision.readiness.network import check_credentials, check_network
from provision.readiness.run import DoctorReport, run_doctor

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

runner = CliRunner()
TOKEN = "hf_doctorSecretToken1234567890"


def _bench(server: TestServer, tag: str, *, size: int = 1000, dataset_size: int = 10) -> str:
    """A benchmark: a dataset and an ONNX model served by ``server``, the ResNet-50 recipe, top-1."""
    data, model = os.urandom(size), os.urandom(64)
    d_url = server.add(f"/doctor/{tag}/data.bin", data)
    m_url = server.add(f"/doctor/{tag}/model.onnx", model)
    return f"""schema = 1
[[dataset]]
name = "{tag}-data"
[[dataset.files]]
name = "data.bin"
urls = ["{d_url}"]
size = {len(data)}
checksum = "{md5(data)}"

[[model]]
name = "{tag}-onnx"
format = "onnx"
[[model.files]]
name = "model.onnx"
urls = ["{m_url}"]
size = {len(model)}
checksum = "{md5(model)}"

[[model]]
name = "{tag}-torch"
format = "pytorch"
[[model.files]]
name = "model.pt"
urls = ["{m_url}"]
size = {len(model)}
checksum = "{md5(model)}"
[model.runtime]
architecture = "torchvision:resnet50"

[[benchmark]]
name = "{tag}"
dataset = "{tag}-data"
models = ["{tag}-onnx", "{tag}-torch"]
dataset_size = {dataset_size}
[benchmark.preprocess]
recipe = "imagenet-resnet50"
[benchmark.accuracy]
metric = "top1"
reference = 76.46
"""


def _arts(settings: Settings, name: str) -> list[Artifact]:
    return api.load(settings).resolve([name])


def _by_name(report: DoctorReport | list[Check]) -> dict[str, Check]:
    checks = report.checks if isinstance(report, DoctorReport) else report
    return {c.name: c for c in checks}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# -- the whole report -----------------------------------------------------------------------------


def test_every_check_passes_on_a_tmp_cache(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    write_manifest(_bench(server, "docok"))
    report = run_doctor(api.load(settings), settings, "docok", timeout=5)
    checks = _by_name(report)
    assert report.ok, [c for c in report.checks if c.status == "fail"]
    for name in (
        "python", "packages", "recipe imagenet-resnet50", "package onnxruntime", "package torch",
        "package torchvision", "cache write", "cache filesystem", "cache locks", "disk",
        f"reach 127.0.0.1:{server.port}", "credentials", "gpu",
    ):  # fmt: skip
        assert checks[name].status == "ok", checks[name]
    disk = checks["disk"].detail
    assert disk.startswith(
        "docok needs 5.7 MiB more (download 1.1 KiB, preprocessed ~5.7 MiB (estimate: 10 x 588.0 KiB)"
    )
    doc = json.loads(json.dumps(report.to_json()))
    assert doc["ok"] is True and doc["name"] == "docok" and doc["counts"]["fail"] == 0
    # The probes leave nothing behind and do not create the cache.
    assert not settings.cache_dir.exists()
    assert not [p for p in settings.cache_dir.parent.iterdir() if p.name.startswith(".provision-doctor")]


def test_without_a_name_only_the_machine_is_checked(settings: Settings) -> None:
    report = api.doctor(None, settings)
    names = [c.name for c in report.checks]
    assert report.name is None and report.ok
    assert {"python", "packages", "cache write", "cache locks", "disk", "gpu"} <= set(names)
    assert {f"package {d}" for d in EXTRA_PACKAGES} <= set(names)
    assert not [n for n in names if n.startswith(("reach", "credentials", "recipe"))]


# -- packages ---------------------------------------------------------------------------------------


def test_missing_runtime_of_the_default_model_fails_and_of_another_warns(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_manifest(_bench(server, "docpkg"))
    catalog = api.load(settings)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # how Python sees an uninstalled package
    monkeypatch.setitem(sys.modules, "torchvision", None)
    checks = _by_name(check_packages(catalog, catalog.get("docpkg")))
    ort, vision = checks["package onnxruntime"], checks["package torchvision"]
    assert ort.status == "fail" and ort.fix == "pip install 'provision[onnx]'"
    assert "runs docpkg-onnx" in ort.detail
    # The PyTorch model is not the one 'run' uses: optional.
    assert vision.status == "warn" and vision.fix == "pip install 'provision[vision]'"
    assert checks["package torch"].status == "ok"


def test_a_package_older_than_required_is_named_with_the_upgrade() -> None:
    check = package_check(Package("numpy", "numpy", "999.1", "", "arrays"), "arrays", required=True)
    assert check.status == "fail" and "needs >= 999.1" in check.detail
    assert check.fix.startswith("pip install -U 'numpy>=999.1'")
    assert package_check(Package("numpy", "numpy", "1.0", "", "x"), "x", required=True).status == "ok"


def test_package_tables_match_pyproject() -> None:
    doc = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    project = doc["project"]

    def parse(req: str) -> tuple[str, str]:
        name, _, version = req.split(";")[0].partition(">=")
        return name.split("[")[0].strip().lower(), version.split(",")[0].strip()  # the minimum; "<0.29" aside

    base = {parse(r) for r in project["dependencies"] if "python_version" not in r}
    assert base == {(p.dist, p.minimum) for p in BASE_PACKAGES}
    extras = {
        (parse(r), extra) for extra, reqs in project["optional-dependencies"].items() if extra != "dev" for r in reqs
    }
    for pkg in EXTRA_PACKAGES.values():
        assert ((pkg.dist, pkg.minimum), pkg.extra) in extras, pkg


# -- disk -------------------------------------------------------------------------------------------


def test_disk_subtracts_what_is_cached(server: TestServer, write_manifest: ManifestWriter, settings: Settings) -> None:
    write_manifest(_bench(server, "doccached", size=3000))
    api.fetch(["doccached-data"], settings).raise_for_errors()
    check = check_disk(api.load(settings), settings, api.load(settings).get("doccached"))
    assert check.status == "ok"
    assert "download 128 B" in check.detail and "2.9 KiB already downloaded" in check.detail


def test_disk_fails_on_a_small_tmpfs(tmp_path: Path, write_manifest: ManifestWriter, settings: Settings) -> None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        write_manifest(
            'schema = 1\n[[dataset]]\nname = "bigdata"\n[[dataset.files]]\nname = "big.bin"\n'
            f'urls = ["http://127.0.0.1:9/big.bin"]\nsize = {5 << 20}\nchecksum = "{md5(b"")}"\n'
            '[[benchmark]]\nname = "bigbench"\ndataset = "bigdata"\ndataset_size = 100\n'
            '[benchmark.preprocess]\nrecipe = "imagenet-resnet50"\n'
        )
        small = settings.with_(cache_dir=mnt / "cache")
        catalog = api.load(small)
        check = check_disk(catalog, small, catalog.get("bigbench"))
        assert check.status == "fail", check
        assert "not enough space: bigbench needs 62.4 MiB more" in check.detail
        assert "download 5.0 MiB" in check.detail and "preprocessed ~57.4 MiB (estimate" in check.detail
        assert f"1.0 MiB free in {mnt}" in check.detail
        assert "PROVISION_CACHE" in check.fix
        cache_checks = _by_name(check_cache(small))
        assert cache_checks["cache filesystem"].detail.startswith("tmpfs")
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


# -- cache: write access, locks ------------------------------------------------------------------------


def test_locks_are_enforced_on_the_local_filesystem(settings: Settings) -> None:
    settings.cache_dir.mkdir()
    checks = _by_name(check_cache(settings))
    assert checks["cache write"].status == "ok"
    locks = checks["cache locks"]
    assert locks.status == "ok" and locks.detail == "enforced (flock and lockf across processes)"
    assert [p.name for p in settings.cache_dir.iterdir()] == []


def test_nfs_mounted_with_local_locks_warns(tmp_path: Path, settings: Settings) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/vda / ext4 rw,relatime 0 0\n"
        f"filer:/export {tmp_path} nfs4 rw,relatime,vers=4.2,hard,proto=tcp,local_lock=flock 0 0\n"
    )
    checks = _by_name(check_cache(settings, mounts=mounts))
    assert checks["cache filesystem"].detail == f"nfs4 (filer:/export on {tmp_path})"
    locks = checks["cache locks"]
    assert locks.status == "warn"
    assert "local_lock=flock" in locks.detail and "atomic rename" in locks.detail
    assert "download the same file twice" in locks.detail


def test_filesystem_of_takes_the_deepest_mount_and_unescapes(tmp_path: Path) -> None:
    spaced = tmp_path / "my disk"
    (spaced / "cache").mkdir(parents=True)
    mounts = tmp_path / "mounts"
    escaped = str(spaced).replace(" ", "\\040")
    mounts.write_text(f"/dev/vda / ext4 rw 0 0\n//nas/share {escaped} cifs rw,nobrl 0 0\n")
    assert filesystem_of(spaced / "cache" / "not-yet", mounts) == ("cifs", str(spaced), "//nas/share", "rw,nobrl")
    assert filesystem_of(tmp_path, mounts) == ("ext4", "/", "/dev/vda", "rw")
    assert filesystem_of(tmp_path, tmp_path / "absent") is None


def test_a_cache_path_that_is_a_file_fails(settings: Settings) -> None:
    settings.cache_dir.write_text("not a folder")
    [check] = check_cache(settings)
    assert check.name == "cache write" and check.status == "fail" and "not a folder" in check.detail


# -- network ---------------------------------------------------------------------------------------------


def test_reachability_ok_dead_host_and_offline(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    dead = _free_port()
    body = b"x" * 10
    url = server.add("/doctor/net/a.bin", body)
    write_manifest(
        f'schema = 1\n[[dataset]]\nname = "netdata"\n'
        f'[[dataset.files]]\nname = "a.bin"\nurls = ["http://127.0.0.1:{dead}/a.bin", "{url}"]\n'
        f'checksum = "{md5(body)}"\n'
        f'[[dataset.files]]\nname = "b.bin"\nurls = ["http://127.0.0.1:{dead}/b.bin"]\nchecksum = "{md5(b"b")}"\n'
        '[[dataset.files]]\nname = "lic.tar"\nurls = ["manual:https://example.org/register"]\n'
        f'checksum = "{md5(b"c")}"\n'
    )
    arts = _arts(settings, "netdata")
    checks = _by_name(check_network(arts, settings, timeout=2))
    ok, bad = checks[f"reach 127.0.0.1:{server.port}"], checks[f"reach 127.0.0.1:{dead}"]
    assert ok.status == "ok" and ok.detail.startswith("HTTP 200 in ")
    assert bad.status == "fail" and "connection refused" in bad.detail
    assert "no reachable source for netdata/b.bin" in bad.detail
    manual = checks["manual netdata"]
    # A licensed file that is not here: the machine is not ready, and the check says how to bring it.
    assert manual.status == "fail" and "licensed, not in the cache" in manual.detail
    assert "https://example.org/register" in manual.detail and "--from" in manual.fix
    offline = _by_name(check_network(arts, settings.with_(offline=True)))
    # Offline with files still to fetch: not ready, with the way out (never "ready" for what is not here).
    assert offline[f"reach 127.0.0.1:{dead}"].status == "fail"
    assert offline[f"reach 127.0.0.1:{dead}"].detail.startswith("offline")
    assert "--from" in offline[f"reach 127.0.0.1:{dead}"].fix
    skipped = _by_name(check_network(arts, settings, network=False))[f"reach 127.0.0.1:{dead}"]
    assert (skipped.status, skipped.detail) == ("skip", "not checked (--no-network)")


def test_an_unknown_host_name_is_named_as_such(write_manifest: ManifestWriter, settings: Settings) -> None:
    """Why a HEAD failed comes from the exception types under requests' (a socket.gaierror here), not its text."""
    write_manifest(
        'schema = 1\n[[dataset]]\nname = "nodns"\n[[dataset.files]]\nname = "a.bin"\n'
        f'urls = ["http://provision-test.invalid/a.bin"]\nchecksum = "{md5(b"a")}"\n'
    )
    checks = _by_name(check_network(_arts(settings, "nodns"), settings, timeout=2))
    bad = checks["reach provision-test.invalid"]
    assert bad.status == "fail" and "cannot resolve the host name" in bad.detail, bad


def test_a_dead_host_with_another_reachable_source_only_warns(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    dead = _free_port()
    body = b"y" * 10
    url = server.add("/doctor/net2/a.bin", body)
    write_manifest(
        f'schema = 1\n[[dataset]]\nname = "net2"\n[[dataset.files]]\nname = "a.bin"\n'
        f'urls = ["http://127.0.0.1:{dead}/a.bin", "{url}"]\nchecksum = "{md5(body)}"\n'
    )
    checks = _by_name(check_network(_arts(settings, "net2"), settings, timeout=2))
    bad = checks[f"reach 127.0.0.1:{dead}"]
    assert bad.status == "warn" and "its files have other reachable sources" in bad.detail
    assert "network" not in checks


# -- credentials --------------------------------------------------------------------------------------------

_GATED = """schema = 1
[[model]]
name = "gated-llm"
format = "huggingface"
access = "gated"
[[model.files]]
name = "weights/"
urls = ["hf://meta-llama/Llama-3.1-8B-Instruct@be673f326cab4cd22ccfef76109faf68e41aa5f1/*"]
checksum = "listed"
"""


def test_gated_hub_model_needs_hf_token_and_never_shows_it(
    write_manifest: ManifestWriter, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_manifest(_GATED)
    arts = _arts(settings, "gated-llm")
    [missing] = check_credentials(arts, settings)
    assert missing.status == "fail" and "HF_TOKEN is not set" in missing.detail
    assert "https://huggingface.co/meta-llama/Llama-3.1-8B-Instruct" in missing.fix and "HF_TOKEN=" in missing.fix
    [present] = check_credentials(arts, settings.with_(hf_token=TOKEN))
    assert present.status == "ok" and "not shown" in present.detail and TOKEN not in repr(present)
    # Through the CLI, with the token in the environment: never in the output, text or JSON.
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    text = runner.invoke(app, ["doctor", "gated-llm", "--no-network"])
    assert text.exit_code == 0, text.output
    assert TOKEN not in text.output and "credentials gated-llm" in text.output
    as_json = runner.invoke(app, ["doctor", "gated-llm", "--no-network", "--json"])
    assert TOKEN not in as_json.output
    doc = json.loads(as_json.output)
    assert {c["name"]: c["status"] for c in doc["checks"]}["credentials gated-llm"] == "ok"
    monkeypatch.delenv("HF_TOKEN")
    failed = runner.invoke(app, ["doctor", "gated-llm", "--no-network"])
    assert failed.exit_code == 1 and "FAIL  credentials gated-llm" in failed.output


def test_members_r2_needs_cloudflare_credentials(write_manifest: ManifestWriter, tmp_path: Path) -> None:
    write_manifest(
        'schema = 1\n[[model]]\nname = "members-llm"\nformat = "huggingface"\naccess = "members"\n'
        '[[model.files]]\nname = "ckpt/"\nurls = ["mlc-r2://llama3-1.mlcommons-storage.org/metadata/x.uri"]\n'
        'checksum = "listed"\n'
    )
    env = {"PROVISION_CACHE": str(tmp_path / "cache"), "PROVISION_MANIFESTS": str(tmp_path / "manifests")}
    none = Settings.from_env(env)
    [missing] = check_credentials(_arts(none, "members-llm"), none)
    assert missing.status == "fail" and "CF_ACCESS_CLIENT_ID" in missing.fix and "PROVISION_R2_TOKEN" in missing.fix
    secret = "cf-" + uuid.uuid4().hex
    with_token = Settings.from_env({**env, "CF_ACCESS_CLIENT_ID": "id.access", "CF_ACCESS_CLIENT_SECRET": secret})
    [present] = check_credentials(_arts(with_token, "members-llm"), with_token)
    assert present.status == "ok" and "llama3-1.mlcommons-storage.org" in present.detail
    assert secret not in repr(present)


def test_public_sources_need_no_credentials(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    write_manifest(_bench(server, "docpub"))
    assert [(c.name, c.status) for c in check_credentials(_arts(settings, "docpub"), settings)] == [
        ("credentials", "ok")
    ]


# -- GPU and the CLI -------------------------------------------------------------------------------------------


def test_no_gpu_is_not_a_failure() -> None:
    checks = check_gpu(timeout=2)
    assert all(c.status != "fail" for c in checks)
    summary = checks[-1]
    assert summary.name == "gpu"
    if shutil.which("nvidia-smi") is None and not any(c.status == "ok" for c in checks[:-1]):
        assert summary.status == "ok" and summary.detail == "no CUDA device (CPU validation only)"


def test_cli_lines_and_exit_codes(server: TestServer, write_manifest: ManifestWriter) -> None:
    write_manifest(_bench(server, "doccli"))
    ok = runner.invoke(app, ["doctor", "doccli", "--timeout", "5"])
    assert ok.exit_code == 0, ok.output
    lines = ok.output.splitlines()
    assert all(line.split()[0] in {"OK", "WARN", "SKIP"} for line in lines[:-1]), ok.output
    assert any(line.startswith("OK    reach 127.0.0.1:") for line in lines)
    assert lines[-1].startswith("doccli: ready (")
    unknown = runner.invoke(app, ["doctor", "doccli-typo"])
    assert unknown.exit_code == 2 and "unknown name" in unknown.output


def test_offline_on_an_empty_cache_is_not_ready(
    server: TestServer, write_manifest: ManifestWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PROVISION_OFFLINE=1 with nothing cached: the machine cannot get the files, so it is not ready (exit 1),
    and the output says what is missing and how to bring it."""
    write_manifest(_bench(server, "docoff"))
    monkeypatch.setenv("PROVISION_OFFLINE", "1")
    result = runner.invoke(app, ["doctor", "docoff"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[-1].startswith("docoff: not ready (")
    missing = [line for line in lines if line.startswith("FAIL  reach 127.0.0.1:")]
    assert missing and "not cached come from here" in missing[0] and "--from" in missing[0], result.output


def test_no_host_answers_but_everything_is_cached_is_only_a_warning(
    write_manifest: ManifestWriter, settings: Settings, tmp_path: Path
) -> None:
    dead = _free_port()
    body = b"cached already"
    local = tmp_path / "c.bin"
    local.write_bytes(body)
    write_manifest(
        f'schema = 1\n[[dataset]]\nname = "cacheddata"\n[[dataset.files]]\nname = "c.bin"\n'
        f'urls = ["http://127.0.0.1:{dead}/c.bin", "{local}"]\nchecksum = "{md5(body)}"\n'
    )
    assert api.fetch(["cacheddata"], settings).ok
    checks = _by_name(check_network(_arts(settings, "cacheddata"), settings, timeout=2))
    assert checks[f"reach 127.0.0.1:{dead}"].status == "warn"
    assert checks["network"].status == "warn" and "everything NAME needs is cached" in checks["network"].detail


def test_a_broken_extra_manifest_is_one_failed_check_not_an_abort(
    write_manifest: ManifestWriter, settings: Settings
) -> None:
    write_manifest("schema = 1\n[[dataset]]\nname = 'broken'\n", name="broken")
    report = api.doctor(settings=settings, network=False)
    first = report.checks[0]
    assert (first.name, first.status) == ("manifests", "fail") and "broken" in first.detail
    assert "provision lint" in first.fix and any(c.name == "python" for c in report.checks)
    result = runner.invoke(app, ["doctor", "--no-network"])
    assert result.exit_code == 1 and "FAIL  manifests" in result.stdout
