"""audit: the report of what decided a benchmark result, on the generated ImageNet-format benchmark."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import ManifestWriter
from test_validation import _bench
from typer.testing import CliRunner

from provision import api
from provision.auditing.build import manifest_data, opencv_build_info
from provision.auditing.document import SCHEMA, load_audit, write_audit
from provision.cli.app import app
from provision.config import Settings, environment_snapshot
from provision.errors import EXIT_USAGE, NotFetchedError, UsageError
from provision.manifest.checksum import Checksum
from provision.manifest.model import Artifact, FileSpec
from provision.version import __version__

runner = CliRunner()


def ready(tmp_path: Path, write_manifest: ManifestWriter, settings: Settings, *, validate: bool = True) -> None:
    """tinynet fetched, preprocessed and (by default) validated in the test's cache."""
    _bench(tmp_path, write_manifest)
    assert api.fetch(["tinynet"], settings).ok
    api.preprocess("tinynet", settings, jobs=1)
    if validate:
        assert api.validate("tinynet", settings).passed


def test_report_round_trips_and_describes_every_stage(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    ready(tmp_path, write_manifest, settings)
    doc = api.audit("tinynet", settings)
    path = tmp_path / "report.json"
    size = write_audit(doc, path)
    assert size == path.stat().st_size
    assert load_audit(path) == json.loads(json.dumps(doc))
    assert doc["schema"] == SCHEMA and doc["benchmark"] == "tinynet" and doc["model"] == "tinynet-model"
    assert doc["tool"]["version"] == __version__
    files = doc["artifacts"]["tinynet-data"]["files"]
    assert files["val_map.txt"]["state"] == "ok" and files["val_map.txt"]["checksum"].startswith("md5:")
    assert files["val.tar"]["xxh3_128"].startswith("xxh3_128:")
    tree = doc["extracted"]["tinynet-data"]["val.tar"]
    assert tree["state"] == "ok" and tree["count"] == 12 and tree["digest"] == tree["recorded_digest"]
    pre = doc["preprocessed"]
    assert pre["state"] == "ok" and pre["digest"] == pre["run"]["output"]["digest"] and "tree" not in pre["run"]
    assert pre["run"]["recipe"] == "imagenet-resnet50" and pre["run"]["libraries"]["numpy"] == np.__version__
    # the compact per-file encoding: "<xxh3_128 hex>:<size>"
    entry = pre["files"]["ILSVRC2012_val_00000001.JPEG.npy"]
    digest, size_text = entry.split(":")
    assert (
        len(digest) == 32 and int(size_text) == (Path(pre["path"]) / "ILSVRC2012_val_00000001.JPEG.npy").stat().st_size
    )
    assert "run.json" not in pre["files"] and len(pre["files"]) == 13
    assert [v["model"] for v in doc["validation"]] == ["tinynet-model"] and doc["validation"][0]["value"] == 100.0
    assert doc["manifests"]["digest"].startswith("sha256:")
    assert set(doc["manifests"]["entries"]["artifacts"]) == {"tinynet-data", "tinynet-model"}
    assert all(v.startswith("sha256:") for v in doc["manifests"]["files"].values())
    assert doc["libraries"]["opencv_build"]["jpeg"]
    env = doc["environment"]
    assert env["packages"]["numpy"] == np.__version__ and env["packages"]["pillow-simd"] is None
    assert env["python"]["version"] and env["cpu"]["model"] and "gpu" in env and doc["notes"] == {}


def test_wrong_or_newer_schema_is_refused(tmp_path: Path, write_manifest: ManifestWriter, settings: Settings) -> None:
    ready(tmp_path, write_manifest, settings, validate=False)
    path = tmp_path / "report.json"
    doc = api.audit("tinynet", settings)
    write_audit({**doc, "schema": "provision-audit/2"}, path)
    with pytest.raises(UsageError, match="reads 'provision-audit/1'"):
        load_audit(path)
    path.write_text('{"files": {}}', encoding="utf-8")
    with pytest.raises(UsageError, match="not a provision audit"):
        load_audit(path)
    path.write_text("not json", encoding="utf-8")
    with pytest.raises(UsageError, match="not a readable JSON audit"):
        load_audit(path)
    with pytest.raises(UsageError, match="no such audit file"):
        load_audit(tmp_path / "missing.json")


def test_unchanged_cache_is_not_read_and_a_touched_file_is_rehashed(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    ready(tmp_path, write_manifest, settings, validate=False)
    first = api.audit("tinynet", settings)
    assert first["stats"]["files_rehashed"] == 0 and first["stats"]["bytes_rehashed"] == 0
    assert first["stats"]["files_checked"] == 3 + 12 + 13  # artifact files + extracted + preprocessed
    out = Path(first["preprocessed"]["path"]) / "ILSVRC2012_val_00000002.JPEG.npy"
    st = out.stat()
    os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # same bytes, another mtime
    touched = api.audit("tinynet", settings)
    assert touched["stats"]["files_rehashed"] == 1 and touched["stats"]["bytes_rehashed"] == st.st_size
    assert (
        touched["preprocessed"]["state"] == "ok" and touched["preprocessed"]["files"] == first["preprocessed"]["files"]
    )
    array = np.load(out)
    array[0, 0, 0] += 1.0
    np.save(out, array)
    changed = api.audit("tinynet", settings)
    assert changed["preprocessed"]["state"] == "changed"
    assert changed["preprocessed"]["problems"] == ["changed ILSVRC2012_val_00000002.JPEG.npy"]
    assert changed["preprocessed"]["digest"] != first["preprocessed"]["digest"]
    assert changed["preprocessed"]["recorded_digest"] == first["preprocessed"]["digest"]


def test_a_changed_artifact_file_is_rehashed_and_marked(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    ready(tmp_path, write_manifest, settings, validate=False)
    view = settings.cache_dir / "artifacts" / "tinynet-model" / "tinynet.onnx"
    data = bytearray(view.read_bytes())
    data[-1] ^= 1
    view.unlink()  # a hard link to the read-only blob: replace it, as an editor would
    view.write_bytes(bytes(data))
    files = api.audit("tinynet", settings)["artifacts"]["tinynet-model"]["files"]
    assert files["tinynet.onnx"]["state"] == "changed" and files["tinynet.onnx"]["checksum"].startswith("md5:")
    # An extracted image edited in place: the tree says which, and no preprocessing run can be trusted.
    image = settings.cache_dir / "artifacts" / "tinynet-data" / "val" / "ILSVRC2012_val_00000007.JPEG"
    image.write_bytes(image.read_bytes() + b"\0")
    doc = api.audit("tinynet", settings)
    tree = doc["extracted"]["tinynet-data"]["val.tar"]
    assert tree["state"] == "changed" and tree["problems"] == ["changed ILSVRC2012_val_00000007.JPEG"]
    assert tree["digest"] != tree["recorded_digest"]
    assert doc["preprocessed"] is None and "no preprocessing run can be resolved" in doc["notes"]["preprocessed"]
    assert "ILSVRC2012_val_00000007.JPEG" in doc["notes"]["preprocessed"]


def test_secrets_never_reach_the_report(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready(tmp_path, write_manifest, settings, validate=False)
    monkeypatch.setenv("HF_TOKEN", "hf_secret123")
    monkeypatch.setenv("PROVISION_AUTH_TOKEN", "prov-secret-456")
    monkeypatch.setenv("HF_ENDPOINT", "https://alice:pw-secret-789@hub.example.org/api")
    monkeypatch.setenv("CUDA_SIGNED_URL", "https://x.example/y?X-Amz-Signature=sig-secret-000&part=1")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    path = tmp_path / "report.json"
    write_audit(api.audit("tinynet", settings), path)
    text = path.read_text(encoding="utf-8")
    for secret in ("hf_secret123", "prov-secret-456", "pw-secret-789", "sig-secret-000"):
        assert secret not in text
    variables = json.loads(text)["environment"]["variables"]
    assert variables["HF_TOKEN"] == "<redacted>" and variables["PROVISION_AUTH_TOKEN"] == "<redacted>"
    assert variables["HF_ENDPOINT"] == "https://alice:****@hub.example.org/api"
    assert variables["CUDA_SIGNED_URL"] == "https://x.example/y?X-Amz-Signature=****&part=1"
    assert variables["OMP_NUM_THREADS"] == "3"


def test_environment_snapshot_keeps_what_matters_and_redacts_secrets() -> None:
    env = {
        "OMP_NUM_THREADS": "8",
        "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
        "PYTHONHASHSEED": "0",
        "TOKENIZERS_PARALLELISM": "false",
        "HOME": "/root",
        "PATH": "/usr/bin",
        "AWS_SECRET_ACCESS_KEY": "never-kept",
        "CF_ACCESS_CLIENT_SECRET": "cf-secret",
        "hf_api_key": "lower-case-secret",
        "PROVISION_MIRRORS": "https://tok@m1.example/base, https://m2.example/base",
        "TORCH_HOME": "/data/ghp_abcdefghijklmnopqrst/torch",
    }
    snap = environment_snapshot(env)
    assert snap == {
        "CF_ACCESS_CLIENT_SECRET": "<redacted>",
        "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
        "OMP_NUM_THREADS": "8",
        "PROVISION_MIRRORS": "https://****@m1.example/base, https://m2.example/base",
        "PYTHONHASHSEED": "0",
        "TOKENIZERS_PARALLELISM": "false",
        "TORCH_HOME": "/data/<redacted>/torch",
        "hf_api_key": "<redacted>",
    }


def test_credentials_in_manifest_urls_are_redacted() -> None:
    spec = FileSpec(
        "model.onnx",
        ("https://alice:pw-secret@models.example/m.onnx", "https://cdn.example/m.onnx?sig=abc123&v=2"),
        Checksum.parse("md5:" + "0" * 32),
    )
    art = Artifact("model", "m", (spec,), source=Path("/somewhere/m.toml"))
    doc = manifest_data(art)
    assert doc["files"][0]["urls"] == [
        "https://alice:****@models.example/m.onnx",
        "https://cdn.example/m.onnx?sig=****&v=2",
    ]
    assert doc["files"][0]["checksum"] == "md5:" + "0" * 32 and "source" not in doc


def test_opencv_build_info_keeps_the_lines_that_change_bytes() -> None:
    text = """
General configuration for OpenCV 4.10.0 =====================================
  Version control:               4.10.0-dirty
  CPU/HW features:
    Baseline:                    SSE SSE2 SSE3
      requested:                 SSE3
    Dispatched code generation:  SSE4_1 SSE4_2 AVX2 AVX512_SKX
  Media I/O:
    ZLib:                        /usr/lib/x86_64-linux-gnu/libz.so (ver 1.2.13)
    JPEG:                        /usr/lib/x86_64-linux-gnu/libjpeg.so (ver 80)
      SIMD Support Request:      NO
    PNG:                         build (ver 1.6.37)
      SIMD Support Request:      YES
  Parallel framework:            TBB (ver 2021.5 interface 12050)
  Other third-party libraries:
    Intel IPP:                   2021.11.0 [2021.11.0]
"""
    info = opencv_build_info(text)
    assert info == {
        "version": "4.10.0",
        "version_control": "4.10.0-dirty",
        "cpu_baseline": "SSE SSE2 SSE3",
        "cpu_dispatch": "SSE4_1 SSE4_2 AVX2 AVX512_SKX",
        "zlib": "libz.so (ver 1.2.13)",
        "jpeg": "libjpeg.so (ver 80)",
        "png": "build (ver 1.6.37)",
        "parallel_framework": "TBB (ver 2021.5 interface 12050)",
        "ipp": "2021.11.0 [2021.11.0]",
    }
    import cv2

    real = opencv_build_info(cv2.getBuildInformation())
    assert real["version"] == cv2.__version__.split("-")[0] and real["jpeg"] and real["cpu_baseline"]


def test_not_fetched_says_run(tmp_path: Path, write_manifest: ManifestWriter, settings: Settings) -> None:
    _bench(tmp_path, write_manifest)
    with pytest.raises(NotFetchedError, match="run 'provision run tinynet' first"):
        api.audit("tinynet", settings)
    with pytest.raises(UsageError, match="is a model"):
        api.audit("tinynet-model", settings)
    with pytest.raises(UsageError, match="has no model 'other'"):
        api.audit("tinynet", settings, model="other")


def test_missing_preprocessing_or_validation_is_a_note(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    _bench(tmp_path, write_manifest)
    assert api.fetch(["tinynet"], settings).ok
    doc = api.audit("tinynet", settings)
    assert doc["preprocessed"] is None and doc["validation"] == []
    assert "run 'provision preprocess tinynet'" in doc["notes"]["preprocessed"]
    assert doc["notes"]["validation"]
    api.preprocess("tinynet", settings, jobs=1)
    doc = api.audit("tinynet", settings)
    assert doc["preprocessed"] is not None and doc["validation"] == []
    assert "run 'provision validate tinynet'" in doc["notes"]["validation"] and "preprocessed" not in doc["notes"]


def test_cli_writes_the_report_and_prints_a_summary(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    ready(tmp_path, write_manifest, settings)
    out = tmp_path / "a.json"
    result = runner.invoke(app, ["audit", "tinynet", "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == str(out)
    assert f"{out.stat().st_size} bytes" in lines[1] and "28 files counted (0 re-hashed)" in lines[1]
    assert "1 validation result" in lines[1] and lines[1].endswith(" s")
    assert load_audit(out)["benchmark"] == "tinynet"
    printed = runner.invoke(app, ["audit", "tinynet", "--model", "tinynet-model"])
    assert printed.exit_code == 0 and json.loads(printed.stdout)["schema"] == SCHEMA
    assert runner.invoke(app, ["audit", "tinynet", "--json"]).exit_code == EXIT_USAGE
    assert runner.invoke(app, ["audit", "tinynet", "extra.json"]).exit_code == EXIT_USAGE
    missing = runner.invoke(app, ["audit", "nosuch"])
    assert missing.exit_code == EXIT_USAGE and "unknown name 'nosuch'" in missing.stderr


def test_a_damaged_report_is_a_usage_error(tmp_path: Path) -> None:
    """Hand-edited or truncated sections: one line naming the section, exit 2 — not a crash."""
    import copy

    from provision.errors import UsageError

    good = {"schema": SCHEMA, "validation": [], "environment": {"packages": {}}}
    for key, bad in (("validation", ["x"]), ("preprocessed", "x"), ("environment", {"packages": [1, 2]})):
        doc = copy.deepcopy(good)
        doc[key] = bad
        path = tmp_path / f"{key}.json"
        path.write_text(json.dumps(doc))
        with pytest.raises(UsageError, match="the report is damaged"):
            load_audit(path)
