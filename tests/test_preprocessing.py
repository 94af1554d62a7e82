"""Preprocessing framework: cache key, skip, recompute, shards/merge, expected_tree, --subset, CLI.

A small recipe is registered here; the benchmark's dataset, subset dataset and model are real
files fetched through ``provision.api.fetch`` from plain paths. Nothing of provision is mocked;
the recipe appends to a counter file so a test can tell whether it ran (never timing).
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ManifestWriter, dataset_toml
from typer.testing import CliRunner

import preprocess
from provision import api
from provision.cli.app import app
from provision.config import Settings
from provision.errors import (
    EXIT_INTEGRITY,
    EXIT_USAGE,
    IntegrityError,
    ManifestError,
    NotFetchedError,
    ProvisionError,
    UsageError,
)
from provision.preprocessing.plan import RUN_FILE, library_signature, parse_shard, parse_signature
from provision.store.trees import hash_tree

runner = CliRunner()

#: Set per test: the counter file, and switches that make the recipe fail.
STATE: dict[str, Any] = {}

IMAGES = {f"img{i}.bin": bytes((i * 37 + j) % 256 for j in range(50 + 13 * i)) for i in range(7)}
SUBSET = {name: IMAGES[name] for name in ("img0.bin", "img1.bin", "img2.bin")}


def _count(line: str) -> None:
    with open(STATE["counter"], "a", encoding="utf-8") as fh:  # O_APPEND: safe across worker processes
        fh.write(line + "\n")


def _items(inputs: Mapping[str, Path], params: Mapping[str, Any]) -> list[str]:
    _count("items")
    return sorted(p.name for p in (inputs["data"] / "imgs").iterdir())


def _process(item: str, inputs: Mapping[str, Path], out: Path, params: Mapping[str, Any]) -> None:
    _count(f"process {item}")
    if item == STATE.get("fail_on"):
        raise ValueError("cannot decode")
    vocab = len((inputs["model"] / "vocab.txt").read_text(encoding="utf-8").split())
    data = np.frombuffer((inputs["data"] / "imgs" / item).read_bytes(), dtype=np.uint8)
    (out / "arrays").mkdir(exist_ok=True)
    np.save(out / "arrays" / f"{item}.npy", data.astype(np.int32) * int(params["scale"]) + vocab)


def _finalize(items: list[str], inputs: Mapping[str, Path], out: Path, params: Mapping[str, Any]) -> None:
    if STATE.get("fail_finalize"):
        raise OSError("disk full")
    labels = dict(line.split() for line in inputs["labels"].read_text(encoding="utf-8").splitlines())
    (out / "index.txt").write_text("".join(f"{i}\t{labels[i]}\n" for i in items), encoding="utf-8")


RECIPE = preprocess.register(
    preprocess.Recipe(
        name="test-bytes",
        version="1",
        items=_items,
        process=_process,
        finalize=_finalize,
        libraries=lambda: {"numpy": np.__version__},
        defaults={"scale": 1},
        uses=("data", "labels", "model"),
    )
)
SIGNATURE = f"numpy={np.__version__}"


def tar_gz(path: Path, tree: dict[str, bytes]) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in tree.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_600_000_000
            tf.addfile(info, io.BytesIO(data))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return path


def write_file(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def artifact_manifest(write_manifest: ManifestWriter, name: str, files: dict[str, Path], kind: str = "dataset") -> None:
    """A manifest for ``name``: every file by plain path; ``*.tar.gz`` files extract to the root."""
    rows = [(fname, [str(p)], p.read_bytes(), None) for fname, p in files.items()]
    text = dataset_toml(name, rows, kind=kind)
    if any(f.endswith(".tar.gz") for f in files):  # the archive is the last file entry
        text += 'extract = "tar.gz"\n'
    write_manifest(text, name=name)


def bench_manifest(write_manifest: ManifestWriter, scale: int = 2, expected: Mapping[str, str] | None = None) -> None:
    lines = [
        "schema = 1",
        "[[benchmark]]",
        'name = "tinybench"',
        'description = "a tiny benchmark"',
        'dataset = "tiny"',
        'labels = "tiny/labels.txt"',
        'models = ["tiny-model"]',
        'subsets = { "3" = "tiny-3" }',
        "[benchmark.preprocess]",
        'recipe = "test-bytes"',
        f"scale = {scale}",
    ]
    if expected:
        lines.append("[benchmark.preprocess.expected_tree]")
        lines += [f'"{sig}" = "{digest}"' for sig, digest in expected.items()]
    write_manifest("\n".join(lines) + "\n", name="tinybench")


@pytest.fixture
def bench(tmp_path: Path, write_manifest: ManifestWriter, settings: Settings) -> Settings:
    """``tinybench`` defined and fetched (dataset, labels, model, subset dataset)."""
    STATE.clear()
    STATE["counter"] = tmp_path / "counter.txt"
    src = tmp_path / "src"
    labels = "".join(f"{name} {i % 3}\n" for i, name in enumerate(IMAGES)).encode()
    artifact_manifest(
        write_manifest,
        "tiny",
        {"labels.txt": write_file(src / "labels.txt", labels), "imgs.tar.gz": tar_gz(src / "imgs.tar.gz", IMAGES)},
    )
    artifact_manifest(write_manifest, "tiny-3", {"imgs.tar.gz": tar_gz(src / "sub" / "imgs.tar.gz", SUBSET)})
    model = {"vocab.txt": write_file(src / "vocab.txt", b"a\nb\nc\n")}
    artifact_manifest(write_manifest, "tiny-model", model, kind="model")
    bench_manifest(write_manifest)
    assert api.fetch(["tinybench"], settings).ok
    assert api.fetch(["tinybench"], settings, subset="3").ok
    return settings


def calls() -> list[str]:
    path = Path(STATE["counter"])
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def processed() -> list[str]:
    return sorted(c.split(" ", 1)[1] for c in calls() if c.startswith("process "))


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def outputs(root: Path) -> dict[str, bytes]:
    return {k: v for k, v in files_of(root).items() if k != RUN_FILE}


# -- jobs, shards, merge -------------------------------------------------------------------------
def test_jobs_and_shards_give_byte_identical_outputs(bench: Settings) -> None:
    one = api.preprocess("tinybench", bench, jobs=1)
    assert (one.state, one.items, one.processed) == ("computed", 7, 7)
    assert processed() == sorted(IMAGES)
    reference = outputs(one.path)
    assert set(reference) == {f"arrays/{n}.npy" for n in IMAGES} | {"index.txt"}
    record = json.loads((one.path / RUN_FILE).read_text())
    assert record["output"]["digest"] == one.digest
    assert record["recipe"] == "test-bytes" and record["version"] == "1" and record["params"] == {"scale": 2}
    assert record["libraries"] == {"numpy": np.__version__} and record["signature"] == SIGNATURE
    assert set(record["inputs"]) == {"data", "labels", "model:tiny-model"}
    assert one.path == bench.cache_dir / "preprocessed" / "tinybench" / one.key[:16]

    shutil.rmtree(one.path)
    two = api.preprocess("tinybench", bench, jobs=2)
    assert (two.state, two.digest, two.key) == ("computed", one.digest, one.key)
    assert outputs(two.path) == reference

    shutil.rmtree(two.path)
    first = api.preprocess("tinybench", bench, shard=(1, 2), jobs=2)
    assert (first.state, first.items, first.missing_shards) == ("shard", 3, ["2-of-2"])
    assert not one.path.exists()
    last = api.preprocess("tinybench", bench, shard=(2, 2), jobs=1)
    assert (last.state, last.digest, last.path) == ("merged", one.digest, one.path)
    assert outputs(last.path) == reference
    assert not (one.path.parent / f"{one.key[:16]}.shards").exists()


def test_merge_assembles_shards_left_by_a_failed_finalize(bench: Settings) -> None:
    done = api.preprocess("tinybench", bench, jobs=1)
    reference = outputs(done.path)
    shutil.rmtree(done.path)
    for i in (1, 2):
        api.preprocess("tinybench", bench, shard=(i, 3))
    with pytest.raises(ProvisionError, match=r"cannot merge tinybench: missing 3-of-3"):
        api.preprocess("tinybench", bench, merge=True)
    STATE["fail_finalize"] = True
    with pytest.raises(ProvisionError, match=r"finalize failed for tinybench: OSError: disk full"):
        api.preprocess("tinybench", bench, shard=(3, 3))
    assert not done.path.exists()
    STATE["fail_finalize"] = False
    before = len(processed())
    merged = api.preprocess("tinybench", bench, merge=True)
    assert (merged.state, merged.digest) == ("merged", done.digest)
    assert len(processed()) == before  # the shards were not processed again
    assert outputs(merged.path) == reference
    with pytest.raises(UsageError, match="without --shard"):
        api.preprocess("tinybench", bench, merge=True, shard=(1, 2))


# -- the cache key -----------------------------------------------------------------------------
def test_same_key_is_skipped_without_calling_the_recipe(bench: Settings) -> None:
    first = api.preprocess("tinybench", bench, jobs=2)
    n = len(calls())
    again = api.preprocess("tinybench", bench, jobs=1)
    assert (again.state, again.processed, again.digest, again.path) == ("cached", 0, first.digest, first.path)
    assert len(calls()) == n  # neither items() nor process() ran
    shard = api.preprocess("tinybench", bench, shard=(1, 2))
    assert shard.state == "cached" and len(calls()) == n


def test_any_change_recomputes_into_a_new_key(bench: Settings, write_manifest: ManifestWriter, tmp_path: Path) -> None:
    base = api.preprocess("tinybench", bench)
    base_files = files_of(base.path)
    keys = {base.key}

    def recomputed() -> Path:
        before = len(processed())
        report = api.preprocess("tinybench", bench)
        assert report.state == "computed" and len(processed()) == before + 7
        assert report.key not in keys and report.path != base.path
        keys.add(report.key)
        assert files_of(base.path) == base_files  # the old key folder is left alone, never reused
        return report.path

    bench_manifest(write_manifest, scale=3)  # a parameter
    changed = recomputed()
    assert np.load(changed / "arrays" / "img0.bin.npy")[1] == IMAGES["img0.bin"][1] * 3 + 3
    bench_manifest(write_manifest, scale=2)
    assert api.preprocess("tinybench", bench).state == "cached"

    try:
        preprocess.register(replace(RECIPE, version="2"), replace=True)  # the recipe version
        recomputed()
        preprocess.register(replace(RECIPE, libraries=lambda: {"numpy": "0.0"}), replace=True)
        recomputed()  # a library version
    finally:
        preprocess.register(RECIPE, replace=True)
    assert api.preprocess("tinybench", bench, params={"scale": 4}).key not in keys

    vocab = write_file(tmp_path / "src2" / "vocab.txt", b"a\nb\nc\nd\n")  # an input: the model's vocabulary
    artifact_manifest(write_manifest, "tiny-model", {"vocab.txt": vocab}, kind="model")
    assert api.fetch(["tiny-model"], bench).ok
    fresh = recomputed()
    assert np.load(fresh / "arrays" / "img0.bin.npy")[1] == IMAGES["img0.bin"][1] * 2 + 4


def test_a_folder_without_its_run_record_is_never_reused(bench: Settings) -> None:
    good = api.preprocess("tinybench", bench)
    reference = outputs(good.path)
    shutil.rmtree(good.path)
    (good.path / "arrays").mkdir(parents=True)  # an interrupted or hand-made folder at the key's name
    (good.path / "arrays" / "img0.bin.npy").write_bytes(b"stale")
    again = api.preprocess("tinybench", bench)
    assert (again.state, again.digest) == ("computed", good.digest)
    assert outputs(good.path) == reference

    other = api.preprocess("tinybench", bench, params={"scale": 9})  # a run.json of another key
    shutil.rmtree(good.path)
    shutil.copytree(other.path, good.path)
    assert api.preprocess("tinybench", bench).state == "computed"
    assert outputs(good.path) == reference

    (good.path / "arrays" / "img3.bin.npy").write_bytes(b"edited")  # outputs changed after the run
    assert api.preprocess("tinybench", bench).state == "computed"
    assert outputs(good.path) == reference


def test_a_failing_item_names_it_and_leaves_nothing_in_place(bench: Settings) -> None:
    STATE["fail_on"] = "img4.bin"
    for jobs in (1, 2):
        with pytest.raises(ProvisionError, match=r"failed on item 'img4.bin' of tinybench: ValueError: cannot decode"):
            api.preprocess("tinybench", bench, jobs=jobs)
    root = bench.cache_dir / "preprocessed" / "tinybench"
    assert list(root.iterdir()) == []


def test_inputs_must_be_fetched_and_intact(tmp_path: Path, write_manifest: ManifestWriter, bench: Settings) -> None:
    data = bench.cache_dir / "artifacts" / "tiny" / "imgs" / "img2.bin"
    data.unlink()
    data.write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match=r"tiny/imgs/: extracted tree corrupt .*provision fetch tiny"):
        api.preprocess("tinybench", bench)
    shutil.rmtree(bench.cache_dir / "artifacts" / "tiny")
    (bench.cache_dir / "records" / "tiny.json").unlink()
    with pytest.raises(NotFetchedError, match=r"tiny is not fetched .*run 'provision fetch tinybench'"):
        api.preprocess("tinybench", bench)


# -- expected_tree -------------------------------------------------------------------------------
def test_expected_tree_mismatch_is_an_integrity_error(bench: Settings, write_manifest: ManifestWriter) -> None:
    pinned = api.preprocess("tinybench", bench)
    assert pinned.pin == "none"
    bench_manifest(write_manifest, scale=2, expected={"numpy=0.0.1 opencv=9": pinned.digest or ""})
    ok = api.preprocess("tinybench", bench)  # the same bytes, pinned for other libraries: fine
    assert (ok.state, ok.pin) == ("cached", "match")

    bench_manifest(write_manifest, scale=5, expected={SIGNATURE: pinned.digest or ""})
    with pytest.raises(IntegrityError) as err:
        api.preprocess("tinybench", bench)
    message = str(err.value)
    assert err.value.exit_code == EXIT_INTEGRITY and "\n" not in message
    assert f"expected {pinned.digest}, got xxh3_128:" in message
    assert "first differences: changed arrays/img0.bin.npy" in message
    assert "library versions are the pinned set" in message
    rejected = Path(str(err.value.path))
    assert rejected.name.endswith(".rejected") and (rejected / RUN_FILE).is_file()
    assert api.preprocess("tinybench", bench, subset="2").pin == "skipped"  # pins are for full runs

    bench_manifest(write_manifest, scale=5, expected={"numpy=0.0.1": pinned.digest or ""})
    with pytest.raises(IntegrityError, match=rf"numpy {np.__version__} here vs 0\.0\.1 pinned"):
        api.preprocess("tinybench", bench)
    result = runner.invoke(app, ["preprocess", "tinybench"])
    assert result.exit_code == EXIT_INTEGRITY and "numpy" in result.stderr


def test_expected_tree_must_be_a_table_of_digests(bench: Settings, write_manifest: ManifestWriter) -> None:
    bench_manifest(write_manifest, expected={SIGNATURE: "md5:abc"})
    # Caught when the manifests load (lint-time), before any preprocessing: exit 6.
    with pytest.raises(ManifestError, match=r"expected_tree: .* is not 'xxh3_128:<32 hex>'"):
        api.preprocess("tinybench", bench)


def test_signatures_and_shard_text() -> None:
    libs = {"opencv": "4.10.0", "numpy": "2.1.0", "libjpeg": "libjpeg-turbo 3.0.1"}
    sig = library_signature(libs)
    assert sig == "libjpeg=libjpeg-turbo 3.0.1 numpy=2.1.0 opencv=4.10.0"
    assert parse_signature(sig) == libs
    assert parse_shard("2/4") == (2, 4)
    for bad in ("0/2", "3/2", "1", "a/b"):
        with pytest.raises(UsageError):
            parse_shard(bad)


# -- --subset --------------------------------------------------------------------------------------
def test_subset_uses_the_subset_dataset_else_the_first_items(bench: Settings) -> None:
    full = api.preprocess("tinybench", bench)
    sub = api.preprocess("tinybench", bench, subset="3")
    record = json.loads((sub.path / RUN_FILE).read_text())
    assert record["inputs"]["data"]["path"] == str(bench.cache_dir / "artifacts" / "tiny-3")
    assert sub.items == 3 and sub.key != full.key
    first = api.preprocess("tinybench", bench, subset="2")
    assert first.items == 2 and first.key not in (full.key, sub.key)
    assert (first.path / "index.txt").read_text() == "img0.bin\t0\nimg1.bin\t1\n"
    assert api.preprocess("tinybench", bench, subset="2").state == "cached"
    assert api.preprocessed_path("tinybench", bench, subset="3") == sub.path
    with pytest.raises(UsageError, match="--subset 'x'"):
        api.preprocess("tinybench", bench, subset="x")


# -- CLI ---------------------------------------------------------------------------------------------
def test_cli_preprocess_and_path(bench: Settings) -> None:
    result = runner.invoke(app, ["path", "tinybench", "--preprocessed"])
    assert result.exit_code == EXIT_INTEGRITY
    assert "not preprocessed" in result.stderr and "provision preprocess tinybench" in result.stderr

    result = runner.invoke(app, ["preprocess", "tinybench", "--jobs", "2", "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["state"], doc["items"], doc["processed"], doc["jobs"]) == ("computed", 7, 7, 2)

    result = runner.invoke(app, ["preprocess", "tinybench"])
    assert result.exit_code == 0 and "tinybench: cached (7 items, 0 processed now" in result.stdout
    assert result.stdout.splitlines()[-1] == doc["path"]

    result = runner.invoke(app, ["path", "tinybench", "--preprocessed"])
    assert result.exit_code == 0 and result.stdout.strip() == doc["path"]

    shutil.rmtree(doc["path"])
    result = runner.invoke(app, ["preprocess", "tinybench", "--shard", "1/2"])
    assert result.exit_code == 0 and "shard 1/2 done (3 items, 3 processed now); waiting for 2-of-2" in result.stdout
    result = runner.invoke(app, ["preprocess", "tinybench", "--shard", "2/2", "--json"])
    assert json.loads(result.stdout)["state"] == "merged" and json.loads(result.stdout)["digest"] == doc["digest"]
    result = runner.invoke(app, ["preprocess", "tinybench", "--merge", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["state"] == "cached"


def test_cli_errors(bench: Settings, write_manifest: ManifestWriter) -> None:
    for args, code, text in [
        (["preprocess", "tinybench", "--shard", "3/2"], EXIT_USAGE, "--shard '3/2'"),
        (["preprocess", "tiny"], EXIT_USAGE, "preprocessing runs on benchmarks"),
        (["preprocess", "tinybench", "--subset", "zero"], EXIT_USAGE, "--subset 'zero'"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == code and text in result.stderr, result.stderr
    shutil.rmtree(bench.cache_dir / "artifacts" / "tiny-model")
    result = runner.invoke(app, ["preprocess", "tinybench", "--json"])  # this recipe reads the model
    assert result.exit_code == EXIT_INTEGRITY and "model tiny-model is not fetched" in result.stderr
    write_manifest(
        'schema = 1\n[[benchmark]]\nname = "nobench"\ndataset = "tiny"\n[benchmark.preprocess]\nrecipe = "nope"\n',
        name="nobench",
    )
    result = runner.invoke(app, ["preprocess", "nobench"])
    assert result.exit_code == EXIT_USAGE and "unknown preprocessing recipe 'nope'" in result.stderr
    shutil.rmtree(bench.cache_dir / "artifacts" / "tiny")
    result = runner.invoke(app, ["path", "tinybench", "--preprocessed"])
    assert result.exit_code == EXIT_INTEGRITY and "provision fetch tinybench" in result.stderr


def test_run_record_digest_is_the_tree_without_run_json(bench: Settings) -> None:
    report = api.preprocess("tinybench", bench)
    staged = bench.cache_dir.parent / "copy"
    shutil.copytree(report.path, staged)
    (staged / RUN_FILE).unlink()
    assert hash_tree(staged).digest == report.digest


def test_model_names_its_own_recipe(bench: Settings, write_manifest: ManifestWriter, tmp_path: Path) -> None:
    """--model picks a model whose [model.preprocess] overrides the benchmark's recipe parameters."""
    src = tmp_path / "src-b"
    model_b = {"vocab.txt": write_file(src / "vocab.txt", b"x\ny\n")}
    rows = [(fname, [str(p)], p.read_bytes(), None) for fname, p in model_b.items()]
    text = dataset_toml("tiny-model-b", rows, kind="model") + '[model.preprocess]\nrecipe = "test-bytes"\nscale = 5\n'
    write_manifest(text, name="tiny-model-b")
    write_manifest(
        'schema = 1\n[[benchmark]]\nname = "twobench"\ndataset = "tiny"\nlabels = "tiny/labels.txt"\n'
        'models = ["tiny-model", "tiny-model-b"]\n[benchmark.preprocess]\nrecipe = "test-bytes"\nscale = 2\n',
        name="twobench",
    )
    assert api.fetch(["twobench"], bench).ok
    default = api.preprocess("twobench", bench, jobs=1)
    other = api.preprocess("twobench", bench, jobs=1, model="tiny-model-b")
    assert default.key != other.key and default.path != other.path
    assert json.loads((other.path / RUN_FILE).read_text())["params"]["scale"] == 5
    assert api.preprocessed_path("twobench", bench, model="tiny-model-b") == other.path
    with pytest.raises(UsageError, match="has no model 'nope'"):
        api.preprocess("twobench", bench, model="nope")


def test_run_fetches_and_preprocesses_for_the_chosen_model(
    bench: Settings, write_manifest: ManifestWriter, tmp_path: Path
) -> None:
    """provision run NAME --model M: fetch what M needs, then preprocess with M's recipe."""
    src = tmp_path / "src-c"
    model_c = {"vocab.txt": write_file(src / "vocab.txt", b"p\nq\nr\ns\n")}
    rows = [(fname, [str(p)], p.read_bytes(), None) for fname, p in model_c.items()]
    text = dataset_toml("tiny-model-c", rows, kind="model") + '[model.preprocess]\nrecipe = "test-bytes"\nscale = 7\n'
    write_manifest(text, name="tiny-model-c")
    write_manifest(
        'schema = 1\n[[benchmark]]\nname = "runbench"\ndataset = "tiny"\nlabels = "tiny/labels.txt"\n'
        'models = ["tiny-model", "tiny-model-c"]\n[benchmark.preprocess]\nrecipe = "test-bytes"\nscale = 2\n',
        name="runbench",
    )
    result = runner.invoke(app, ["run", "runbench", "--model", "tiny-model-c", "--json", "--jobs", "1"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["ok"] and doc["preprocess"]["state"] == "computed"
    record = json.loads((Path(doc["preprocess"]["path"]) / RUN_FILE).read_text())
    assert record["params"]["scale"] == 7
    assert (bench.cache_dir / "artifacts" / "tiny-model-c" / "vocab.txt").exists()
    bad = runner.invoke(app, ["run", "runbench", "--model", "nope"])
    assert bad.exit_code == EXIT_USAGE and "has no model 'nope'" in bad.stderr
    assert runner.invoke(app, ["run", "tiny"]).exit_code == EXIT_USAGE
