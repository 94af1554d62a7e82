"""validation: provision validate / run end to end on a generated ImageNet-format dataset.

The images are solid colours with noise, one dominant RGB channel each; the tiny models
average each channel and pick the dominant one, so their predictions are known in advance:
class ``c`` for an image whose channel ``c`` dominates. The ONNX model has a background
output at index 0 (like the 1001-output ResNet-50), so its manifest needs ``offset = -1``.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ManifestWriter, dataset_toml
from PIL import Image
from typer.testing import CliRunner

from provision import api
from provision.cli.app import app
from provision.config import Settings
from provision.errors import EXIT_ACCURACY, EXIT_USAGE, NotFetchedError, UsageError
from provision.validation.validate import ValidateOptions

runner = CliRunner()

N = 12
CLASSES = [i % 3 for i in range(N)]  # the dominant channel of image i = its true class


def _image(path: Path, cls: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = 160 + 8 * seed, 240 - 6 * seed
    px = np.full((h, w, 3), 40, dtype=np.uint8)
    px[:, :, cls] = 230
    px += rng.integers(0, 20, size=px.shape, dtype=np.uint8)
    Image.fromarray(px).save(path, format="JPEG", quality=92)


def _onnx_classifier(path: Path, background: bool = True) -> None:
    """(N,3,224,224) -> per-channel means -> logits over [background,] class 0..2 -> ArgMax:0."""
    import onnx
    from onnx import TensorProto, helper

    k = 4 if background else 3
    weight = np.zeros((3, k), dtype=np.float32)
    for c in range(3):
        weight[c, c + (1 if background else 0)] = 1.0
    bias = np.zeros(k, dtype=np.float32)
    if background:
        bias[0] = -1e6  # background never wins
    nodes = [
        helper.make_node("GlobalAveragePool", ["input_tensor:0"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "W"], ["mm"]),
        helper.make_node("Add", ["mm", "B"], ["softmax_tensor:0"]),
        helper.make_node("ArgMax", ["softmax_tensor:0"], ["ArgMax:0"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-classifier",
        [helper.make_tensor_value_info("input_tensor:0", TensorProto.FLOAT, ["N", 3, 224, 224])],
        [
            helper.make_tensor_value_info("ArgMax:0", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("softmax_tensor:0", TensorProto.FLOAT, ["N", k]),
        ],
        initializer=[helper.make_tensor("W", TensorProto.FLOAT, weight.shape, weight.flatten().tolist()),
                     helper.make_tensor("B", TensorProto.FLOAT, bias.shape, bias.tolist())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def _torchscript_classifier(path: Path) -> None:
    import torch

    class Tiny(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean(dim=(2, 3))  # logits = channel means; class c = dominant channel

    torch.jit.script(Tiny()).save(str(path))


def _bench(
    tmp_path: Path,
    write_manifest: ManifestWriter,
    *,
    labels: list[int] | None = None,
    reference: float = 76.46,
    runtime: str = 'inputs = ["input_tensor:0"]\noutputs = ["ArgMax:0"]\noffset = -1\n',
    fmt: str = "onnx",
    dataset_size: int = N,
    name: str = "tinynet",
    model_file: Path | None = None,
) -> None:
    """A generated ImageNet-format benchmark: a tar of JPEGs, val_map.txt, one tiny model."""
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    names = [f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(N)]
    tar = tmp_path / "val.tar"
    if not tar.exists():
        for i, n in enumerate(names):
            _image(src / n, CLASSES[i], i)
        with tarfile.open(tar, "w") as tf:
            for n in names:
                tf.add(src / n, arcname=n)
    val_map = tmp_path / f"{name}-val_map.txt"
    truth = labels if labels is not None else CLASSES
    val_map.write_text("".join(f"{n} {c}\n" for n, c in zip(names, truth, strict=True)), encoding="utf-8")
    model = model_file or tmp_path / f"{name}.{'onnx' if fmt == 'onnx' else 'pt'}"
    if model_file is not None:
        pass
    elif fmt == "onnx":
        _onnx_classifier(model)
    else:
        _torchscript_classifier(model)
    data_rows = [
        ("val_map.txt", [str(val_map)], val_map.read_bytes(), None),
        ("val.tar", [str(tar)], tar.read_bytes(), None),
    ]
    model_toml = dataset_toml(f"{name}-model", [(model.name, [str(model)], model.read_bytes(), None)], kind="model")
    model_toml = model_toml.replace('format = "onnx"', f'format = "{fmt}"').replace("schema = 1\n", "")
    write_manifest(
        dataset_toml(f"{name}-data", data_rows)
        + 'extract = "tar"\n'
        + model_toml
        + f"[model.runtime]\n{runtime}"
        + f'[[benchmark]]\nname = "{name}"\ndataset = "{name}-data"\nlabels = "{name}-data/val_map.txt"\n'
        + f'models = ["{name}-model"]\ndataset_size = {dataset_size}\n'
        + '[benchmark.preprocess]\nrecipe = "imagenet-resnet50"\n'
        + f'[benchmark.accuracy]\nmetric = "top1"\nreference = {reference}\ntarget_ratio = [0.99, 0.999]\n',
        name=name,
    )


def _prepared(settings: Settings, name: str = "tinynet") -> None:
    assert api.fetch([name], settings).ok
    api.preprocess(name, settings, jobs=1)


def test_validate_onnx_all_correct_with_background_offset(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    _bench(tmp_path, write_manifest)
    _prepared(settings)
    report = api.validate("tinynet", settings, options=ValidateOptions(batch_size=5))
    assert report.value == 100.0 and report.samples == N and report.passed and report.full_set
    assert report.metric == "top1" and report.unit == "%" and report.device == "cpu"
    assert report.targets[0]["target"] == pytest.approx(76.46 * 0.99)
    assert report.targets[1]["target"] == pytest.approx(76.46 * 0.999)
    assert report.model_digest.startswith("md5:") and "xxh3_128:" in report.model_digest
    assert report.runtime["runtime"] == "onnxruntime" and report.task == {"task": "classification", "offset": -1}
    assert report.energy["available"] is False and report.energy["reason"]
    stored = json.loads(Path(report.record).read_text())
    assert stored["value"] == 100.0 and stored["key"] == report.key
    assert Path(report.record).parent.name.endswith(".validation")


def test_without_the_offset_every_prediction_is_one_class_off(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    """The 1001-output layout: read without offset -1, the same model scores 0%."""
    _bench(tmp_path, write_manifest, runtime='outputs = ["ArgMax:0"]\n')
    _prepared(settings)
    report = api.validate("tinynet", settings)
    assert report.value == 0.0 and not report.passed


def test_below_target_exits_5_and_reports_both_variants(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    labels = list(CLASSES)
    for i in (0, 4, 8):  # 3 of 12 labels wrong: 75.000%
        labels[i] = (labels[i] + 1) % 3
    _bench(tmp_path, write_manifest, labels=labels, reference=80.0)
    _prepared(settings)
    result = runner.invoke(app, ["validate", "tinynet", "--json"])
    assert result.exit_code == EXIT_ACCURACY, result.stderr
    doc = json.loads(result.stdout)
    for key in ("benchmark", "model", "metric", "value", "target", "passed", "samples", "device"):
        assert key in doc
    assert doc["value"] == 75.0 and doc["target"] == pytest.approx(79.2) and doc["passed"] is False
    assert [t["passed"] for t in doc["targets"]] == [False, False]
    text = runner.invoke(app, ["validate", "tinynet"])
    assert text.exit_code == EXIT_ACCURACY
    assert "top1" in text.stdout and "75.000%" in text.stdout and "FAIL" in text.stdout
    assert "samples/s" in text.stdout and "power" in text.stdout and "not available" in text.stdout


def test_count_subset_reports_a_wilson_interval(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    """On 8 of 12 samples the full-set target does not apply: a 99% Wilson interval decides."""
    labels = list(CLASSES)
    labels[1] = (labels[1] + 1) % 3  # 7 of the first 8 right: 87.5%
    _bench(tmp_path, write_manifest, labels=labels, reference=99.0)
    _prepared(settings)
    report = api.validate("tinynet", settings, options=ValidateOptions(count=8))
    assert report.samples == 8 and not report.full_set and report.value == 87.5
    assert report.interval_method == "wilson" and report.interval is not None
    lo, hi = report.interval
    # Wilson, z = 2.5758 (99%), p = 7/8, n = 8, z^2 = 6.6349: denominator 1 + z^2/n = 1.82936,
    # centre (0.875 + 0.41468) / 1.82936 = 0.70500, half-width
    # z * sqrt(p(1-p)/n + z^2/4n^2) / 1.82936 = 2.5758 * 0.19897 / 1.82936 = 0.28016 -> [42.48, 98.52] %
    assert lo == pytest.approx(42.48, abs=0.01) and hi == pytest.approx(98.52, abs=0.01)
    assert report.passed  # 98.01 (99 x 0.99) is inside the interval: consistent with the reference
    strict = api.validate("tinynet", settings, options=ValidateOptions(count=2))
    assert strict.samples == 2 and strict.interval is not None
    whole = api.validate("tinynet", settings, options=ValidateOptions(count=100))
    assert whole.samples == N and whole.full_set and whole.interval is None  # a count covering every sample


def test_subset_far_below_the_target_fails(tmp_path: Path, write_manifest: ManifestWriter, settings: Settings) -> None:
    labels = [(c + 1) % 3 for c in CLASSES]  # every label wrong: 0 of 12
    _bench(tmp_path, write_manifest, labels=labels, dataset_size=50000)
    _prepared(settings)
    report = api.validate("tinynet", settings)
    assert not report.full_set and report.value == 0.0 and report.interval is not None
    assert report.interval[1] < report.targets[0]["target"] and not report.passed


def test_golden_predictions_mismatch_is_reported(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    golden = list(CLASSES[:5])
    golden[3] = (golden[3] + 2) % 3
    runtime = f'inputs = ["input_tensor:0"]\noutputs = ["ArgMax:0"]\noffset = -1\ngolden = {golden}\n'
    _bench(tmp_path, write_manifest, runtime=runtime)
    _prepared(settings)
    result = runner.invoke(app, ["validate", "tinynet"])
    assert result.exit_code == EXIT_ACCURACY
    assert "golden mismatch: sample 3 (ILSVRC2012_val_00000004.JPEG)" in result.stdout
    assert f"expected {golden[3]}, got {CLASSES[3]}" in result.stdout
    ok_runtime = f'inputs = ["input_tensor:0"]\noutputs = ["ArgMax:0"]\noffset = -1\ngolden = {CLASSES[:5]}\n'
    _bench(tmp_path, write_manifest, runtime=ok_runtime, name="goodnet")
    _prepared(settings, "goodnet")
    report = api.validate("goodnet", settings)
    assert report.passed and report.golden is not None and report.golden["checked"] == 5


def test_torchscript_model_with_scores_output(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    """A TorchScript model returning (N, 3) scores: argmax, offset 0."""
    _bench(tmp_path, write_manifest, runtime="offset = 0\n", fmt="torchscript")
    _prepared(settings)
    report = api.validate("tinynet", settings, options=ValidateOptions(batch_size=4, threads=1))
    assert report.value == 100.0 and report.passed
    assert report.runtime["runtime"] == "torch"


def test_validate_needs_preprocessed_data_and_a_target(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    _bench(tmp_path, write_manifest)
    assert api.fetch(["tinynet"], settings).ok
    with pytest.raises(NotFetchedError, match="provision preprocess tinynet"):
        api.validate("tinynet", settings)
    with pytest.raises(UsageError, match="is a model"):
        api.validate("tinynet-model", settings)
    result = runner.invoke(app, ["validate", "tinynet", "--device", "cuda"])
    assert result.exit_code == EXIT_USAGE


def test_run_fetches_verifies_preprocesses_validates_then_reuses(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    _bench(tmp_path, write_manifest)
    first = runner.invoke(app, ["run", "tinynet", "--json", "--jobs", "1"])
    assert first.exit_code == 0, first.stderr
    doc: dict[str, Any] = json.loads(first.stdout)
    assert doc["ok"] and [s["name"] for s in doc["stages"]] == ["fetch", "verify", "preprocess", "validate"]
    assert [s["state"] for s in doc["stages"]] == ["done", "done", "done", "done"]
    assert doc["validation"]["value"] == 100.0 and doc["validation"]["passed"]
    second = runner.invoke(app, ["run", "tinynet", "--json"])
    states = [s["state"] for s in json.loads(second.stdout)["stages"]]
    assert states == ["cached", "done", "cached", "cached"]
    again = runner.invoke(app, ["run", "tinynet", "--revalidate"])
    assert again.exit_code == 0, again.stderr
    assert "validate" in again.stdout and "PASS" in again.stdout and "stage" in again.stdout


def test_run_below_target_exits_5(tmp_path: Path, write_manifest: ManifestWriter, settings: Settings) -> None:
    _bench(tmp_path, write_manifest, labels=[(c + 1) % 3 for c in CLASSES])
    result = runner.invoke(app, ["run", "tinynet"])
    assert result.exit_code == EXIT_ACCURACY
    assert "FAIL" in result.stdout


def test_torchvision_state_dict_through_the_pytorch_profile(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    """resnet50-19c8e357.pth's path: a state dict filled into torchvision's architecture, run on
    the imagenet-torchvision outputs; predictions equal the same network run here directly."""
    import torch
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.get_model("resnet18", weights=None, num_classes=3).eval()
    weights = tmp_path / "resnet18-tiny.pth"
    torch.save(net.state_dict(), weights)
    _bench(
        tmp_path,
        write_manifest,
        fmt="pytorch",
        runtime='architecture = "torchvision:resnet18"\nnum_classes = 3\n'
        '[model.preprocess]\nrecipe = "imagenet-torchvision"\n',
        model_file=weights,
    )
    assert api.fetch(["tinynet"], settings).ok
    prep = api.preprocess("tinynet", settings, jobs=1, model="tinynet-model")
    names = [line.split()[0] for line in (prep.path / "val_map.txt").read_text().splitlines()]
    batch = torch.from_numpy(np.stack([np.load(prep.path / f"{n}.npy") for n in names]))
    with torch.inference_mode():
        expected = net(batch).argmax(dim=1).numpy()
    report = api.validate("tinynet", settings, options=ValidateOptions(batch_size=5))
    assert report.runtime["architecture"] == "torchvision:resnet18" and report.preprocess_key == prep.key
    assert report.value == pytest.approx(100.0 * float(np.mean(expected == np.asarray(CLASSES))))


def test_golden_pins_longer_than_the_run_check_what_ran(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    runtime = f'inputs = ["input_tensor:0"]\noutputs = ["ArgMax:0"]\noffset = -1\ngolden = {CLASSES[:8]}\n'
    _bench(tmp_path, write_manifest, runtime=runtime)
    _prepared(settings)
    report = api.validate("tinynet", settings, options=ValidateOptions(count=3))
    assert report.golden is not None and report.golden["checked"] == 3 and report.golden["passed"]
    assert report.passed


def test_a_stored_result_is_not_reused_after_the_target_changes(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    _bench(tmp_path, write_manifest)
    assert runner.invoke(app, ["run", "tinynet", "-q"]).exit_code == 0
    again = json.loads(runner.invoke(app, ["run", "tinynet", "--json"]).stdout)
    assert again["stages"][-1]["state"] == "cached"
    manifest = tmp_path / "manifests" / "tinynet.toml"  # conftest's PROVISION_MANIFESTS folder
    manifest.write_text(manifest.read_text().replace("reference = 76.46", "reference = 101.5"))
    stricter = runner.invoke(app, ["run", "tinynet", "--json"])
    assert stricter.exit_code == EXIT_ACCURACY  # 100% < 101.5 x 0.99: validated again, not the stored PASS
    assert json.loads(stricter.stdout)["stages"][-1]["state"] == "failed"


def test_integer_scores_take_the_argmax_and_an_index_output_is_used_as_is(tmp_path: Path) -> None:
    from provision.manifest.model import RuntimeSpec
    from provision.validation.tasks.classification import ClassificationTask

    (tmp_path / "val_map.txt").write_text("a.JPEG 2\nb.JPEG 0\n", encoding="utf-8")
    task = ClassificationTask(tmp_path, RuntimeSpec(offset=0))
    task.collect([0, 1], [np.array([[1, 5, 9], [7, 2, 3]], dtype=np.int8)])  # quantised logits
    assert task.score().predictions == [2, 0]
    index = ClassificationTask(tmp_path, RuntimeSpec(offset=-1))
    index.collect([0, 1], [np.array([3, 1], dtype=np.int64)])  # ArgMax:0 of a 1001-output model
    assert index.score().predictions == [2, 0] and index.score().value == 100.0


def test_unsupported_metric_is_said_before_asking_for_the_model(
    write_manifest: ManifestWriter, settings: Settings
) -> None:
    write_manifest(
        dataset_toml("tinyclicks", [("a.bin", ["https://example.org/a.bin"], b"x", None)])
        + dataset_toml("tinyrec-model", [("m.onnx", ["https://example.org/m.onnx"], b"y", None)], kind="model").replace(
            "schema = 1\n", ""
        )
        + '[[benchmark]]\nname = "tinyrec"\ndataset = "tinyclicks"\nmodels = ["tinyrec-model"]\n'
        + '[benchmark.accuracy]\nmetric = "auc"\nreference = 80.31\n',
        name="tinyrec",
    )
    with pytest.raises(UsageError, match="no local validation for metric 'auc': DLRM"):
        api.validate("tinyrec", settings)


def test_a_new_result_supersedes_the_last_one_of_the_same_run(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    _bench(tmp_path, write_manifest)
    _prepared(settings)
    first = api.validate("tinynet", settings, options=ValidateOptions(batch_size=4))
    second = api.validate("tinynet", settings, options=ValidateOptions(batch_size=6))
    part = api.validate("tinynet", settings, options=ValidateOptions(count=5))
    folder = Path(second.record).parent
    assert first.key != second.key and not Path(first.record).exists()
    assert sorted(p.name for p in folder.glob("*.json")) == sorted([Path(second.record).name, Path(part.record).name])


def test_a_model_file_changed_after_its_fetch_is_refused(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    from provision.errors import IntegrityError

    _bench(tmp_path, write_manifest)
    _prepared(settings)
    view = settings.cache_dir / "artifacts" / "tinynet-model" / "tinynet.onnx"
    body = bytearray(view.read_bytes())
    body[-1] ^= 0xFF
    view.unlink()  # the view is a read-only link to the blob: replace it, as an editor would
    view.write_bytes(bytes(body))
    with pytest.raises(IntegrityError, match=r"tinynet-model/tinynet\.onnx: checksum mismatch .*provision fetch"):
        api.validate("tinynet", settings)
    view.unlink()
    with pytest.raises(NotFetchedError, match=r"tinynet-model/tinynet\.onnx: missing"):
        api.validate("tinynet", settings)
