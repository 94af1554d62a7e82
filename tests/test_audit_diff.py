"""audit diff: what differs between two audits, most likely cause first, and the CLI's exit status."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ManifestWriter
from test_audit import ready
from test_validation import CLASSES, _bench
from typer.testing import CliRunner

from provision import api
from provision.auditing.diff import CATEGORIES, diff_audits
from provision.auditing.document import write_audit
from provision.cli.app import app
from provision.config import Settings
from provision.errors import UsageError

runner = CliRunner()
NPY = "ILSVRC2012_val_00000003.JPEG.npy"


def _written(doc: dict[str, Any], path: Path) -> Path:
    write_audit(doc, path)
    return path


def test_two_audits_of_one_setup_are_equivalent(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    ready(tmp_path, write_manifest, settings)
    a = _written(api.audit("tinynet", settings), tmp_path / "a.json")
    b = _written(api.audit("tinynet", settings), tmp_path / "b.json")
    result = runner.invoke(app, ["audit", "diff", str(a), str(b)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("EQUIVALENT: 0 findings")
    as_json = runner.invoke(app, ["audit", "diff", str(a), str(b), "--json"])
    doc = json.loads(as_json.stdout)
    assert as_json.exit_code == 0 and doc["equivalent"] is True and doc["findings"] == []
    assert doc["a"]["benchmark"] == doc["b"]["benchmark"] == "tinynet" and doc["a"]["host"]
    # The host name, time and cache root are not differences.
    doc_b = json.loads(b.read_text())
    doc_b.update(host="other-host", created="2030-01-01T00:00:00Z", cache="/elsewhere/cache")
    assert diff_audits(json.loads(a.read_text()), doc_b).equivalent


def test_one_changed_preprocessed_file_is_named_with_its_max_abs_difference(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    ready(tmp_path, write_manifest, settings, validate=False)
    a = _written(api.audit("tinynet", settings), tmp_path / "a.json")
    # Machine B: a copy of the cache in which one output holds other bytes.
    other = settings.with_(cache_dir=tmp_path / "cache-b")
    shutil.copytree(settings.cache_dir, other.cache_dir, symlinks=True)
    doc_a = json.loads(a.read_text())
    out = Path(str(doc_a["preprocessed"]["path"]).replace(str(settings.cache_dir), str(other.cache_dir))) / NPY
    array = np.load(out)
    array[1, 100, 100] += 0.5
    np.save(out, array)
    b = _written(api.audit("tinynet", other), tmp_path / "b.json")
    result = runner.invoke(app, ["audit", "diff", str(a), str(b)])
    assert result.exit_code == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("DIFFERENT: 1 finding, 1 can change results")
    assert f"preprocessed outputs differ: 1 of 13 files, first {NPY}" in result.stdout
    assert f"{NPY}: max abs difference 0.5 (1 of 150528 values differ)" in result.stdout
    assert "outputs changed after run.json was written: changed " + NPY in result.stdout
    # The folders recorded in the reports can be overridden, and an unreachable one is said so.
    copied = tmp_path / "copied-b"
    shutil.copytree(out.parent, copied)
    moved = api.audit_diff(a, b, data_b=copied)
    assert any(f"{NPY}: max abs difference 0.5" in line for f in moved.findings for line in f.details)
    gone = api.audit_diff(a, b, data_b=tmp_path / "nowhere")
    assert any(f"not computed: {tmp_path / 'nowhere' / NPY} not reachable here" in d for d in gone.findings[0].details)


def test_a_package_version_is_named_first(tmp_path: Path, write_manifest: ManifestWriter, settings: Settings) -> None:
    ready(tmp_path, write_manifest, settings)
    doc_a = json.loads(json.dumps(api.audit("tinynet", settings)))
    doc_b = copy.deepcopy(doc_a)
    version = doc_a["environment"]["packages"]["numpy"]
    bumped = version.rsplit(".", 1)[0] + "." + str(int(version.rsplit(".", 1)[1]) + 1)
    doc_b["environment"]["packages"]["numpy"] = bumped
    doc_b["environment"]["packages"]["requests"] = "0.0.1"  # information only: listed after
    doc_b["validation"][0]["samples_per_second"] = 1.0  # throughput informs, never decides
    result = diff_audits(doc_a, doc_b)
    assert not result.equivalent
    top = result.findings[0]
    assert top.category == "environment" and top.changes_results
    assert top.title == f"numpy {version} on A, {bumped} on B"
    assert [f.changes_results for f in result.findings] == [True, False, False]
    assert result.lines()[0] == "DIFFERENT: 3 findings, 1 can change results (tinynet, model tinynet-model)"
    a, b = _written(doc_a, tmp_path / "a.json"), _written(doc_b, tmp_path / "b.json")
    cli = runner.invoke(app, ["audit", "diff", str(a), str(b)])
    assert cli.exit_code == 1 and f"1. [environment] numpy {version} on A, {bumped} on B" in cli.stdout


def test_environment_causes_device_tf32_and_cpu_vector_sets(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    ready(tmp_path, write_manifest, settings)
    doc_a = json.loads(json.dumps(api.audit("tinynet", settings)))
    doc_a["environment"]["cpu"]["flags"] = ["avx", "avx2", "avx512f", "sse4_2", "ht"]
    doc_b = copy.deepcopy(doc_a)
    doc_b["environment"]["cpu"]["flags"] = ["avx", "avx2", "sse4_2"]
    doc_b["environment"]["variables"]["OMP_NUM_THREADS"] = "1"
    run_b = doc_b["validation"][0]
    run_b["device"] = "cuda"
    run_b["runtime"]["determinism"]["tf32"] = True
    run_b["value"] = 91.66666666666667
    result = diff_audits(doc_a, doc_b)
    titles = [f.title for f in result.findings]
    assert [f.category for f in result.findings] == sorted((f.category for f in result.findings), key=CATEGORIES.index)
    assert "validation of tinynet-model (12 samples) ran on cpu on A, cuda on B" in titles
    tf32 = next(f for f in result.findings if "determinism" in f.title)
    assert tf32.details == ["tf32: false on A, true on B"] and tf32.changes_results
    cpu = next(f for f in result.findings if f.title == "CPU vector instruction sets differ")
    assert cpu.details[:2] == ["only on A: avx512f", "only on B: -"]
    assert any("OMP_NUM_THREADS: unset on A, 1 on B" in f.details for f in result.findings)
    score = result.findings[-1]
    assert score.category == "validation" and score.title.startswith("top1 100.0000% on A, 91.6667% on B")


def test_one_changed_artifact_byte_is_named(tmp_path: Path, write_manifest: ManifestWriter, settings: Settings) -> None:
    """Machine B fetched a val_map.txt with one label (one byte) different."""
    ready(tmp_path, write_manifest, settings)
    a = _written(api.audit("tinynet", settings), tmp_path / "a.json")
    side = tmp_path / "b"
    (side / "manifests").mkdir(parents=True)
    shutil.copy(tmp_path / "val.tar", side / "val.tar")  # the same images

    def write_b(text: str, name: str = "test") -> Path:
        path = side / "manifests" / f"{name}.toml"
        path.write_text(text, encoding="utf-8")
        return path

    labels = list(CLASSES)
    labels[5] = (labels[5] + 1) % 3
    _bench(side, write_b, labels=labels, model_file=tmp_path / "tinynet.onnx")
    other = settings.with_(cache_dir=side / "cache", manifest_dirs=(side / "manifests",))
    ready_b = api.run("tinynet", other)
    assert ready_b.ok
    b = _written(api.audit("tinynet", other), tmp_path / "b.json")
    result = api.audit_diff(a, b)
    assert not result.equivalent
    categories = [f.category for f in result.findings if f.changes_results]
    assert categories == sorted(categories, key=CATEGORIES.index)
    art = next(f for f in result.findings if f.category == "artifacts")
    assert art.title == "artifact tinynet-data: 1 of 2 files differ"
    assert art.details[0].startswith("val_map.txt: checksum md5:")
    manifest = next(f for f in result.findings if f.category == "manifests" and f.changes_results)
    assert any(line.startswith("tinynet-data.files[val_map.txt].checksum:") for line in manifest.details)
    pre = next(f for f in result.findings if f.title.startswith("preprocessed outputs differ"))
    assert "first val_map.txt" in pre.title
    inputs = next(f for f in result.findings if f.title.startswith("preprocessing inputs differ"))
    assert [line.split(":")[0] for line in inputs.details] == ["data", "labels"]
    score = next(f for f in result.findings if f.category == "validation" and f.changes_results)
    assert score.title.startswith("top1 100.0000% on A, 91.6667% on B (B - A = -8.3333%)")
    assert any(
        line.startswith("tinynet-data.files[val_map.txt].urls:") and line.endswith("(information only)")
        for line in manifest.details
    )


def test_different_benchmarks_or_schemas_are_refused(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    ready(tmp_path, write_manifest, settings, validate=False)
    doc = json.loads(json.dumps(api.audit("tinynet", settings)))
    with pytest.raises(UsageError, match="compare two audits of the same benchmark"):
        diff_audits(doc, {**doc, "benchmark": "bert"})
    with pytest.raises(UsageError, match="compares 'provision-audit/1' only"):
        diff_audits(doc, {**doc, "schema": "provision-audit/2"})
    a = _written(doc, tmp_path / "a.json")
    wrong = _written({**doc, "schema": "provision-audit/2"}, tmp_path / "b.json")
    result = runner.invoke(app, ["audit", "diff", str(a), str(wrong)])
    assert result.exit_code == 2 and "provision-audit/2" in result.stderr and "provision-audit/1" in result.stderr
    assert runner.invoke(app, ["audit", "diff", str(a)]).exit_code == 2
    assert runner.invoke(app, ["audit", "diff", str(a), str(a), "-o", "x.json"]).exit_code == 2


def test_a_missing_preprocessing_run_on_one_side_is_a_finding(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    ready(tmp_path, write_manifest, settings, validate=False)
    doc_a = json.loads(json.dumps(api.audit("tinynet", settings)))
    doc_b = {**doc_a, "preprocessed": None, "notes": {"preprocessed": "no preprocessing run for key 0123"}}
    result = diff_audits(doc_a, doc_b)
    assert [(f.title, f.details) for f in result.findings] == [
        ("no preprocessing run on B", ["no preprocessing run for key 0123"])
    ]


def test_paths_are_not_causes_and_a_one_sided_result_is(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    """Library search paths and homes differ between any two venvs; a result on one side only
    leaves the two machines unshown to agree."""
    ready(tmp_path, write_manifest, settings)
    doc_a = json.loads(json.dumps(api.audit("tinynet", settings)))
    doc_b = copy.deepcopy(doc_a)
    doc_b["environment"]["variables"]["LD_LIBRARY_PATH"] = "/other/venv/lib64:"
    doc_b["environment"]["variables"]["TORCH_HOME"] = "/scratch/torch"
    assert diff_audits(doc_a, doc_b).equivalent
    doc_b["validation"] = []
    result = diff_audits(doc_a, doc_b)
    assert not result.equivalent
    assert any(f.category == "validation" and "only on A" in f.title and f.changes_results for f in result.findings)
