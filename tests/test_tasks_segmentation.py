"""3D U-Net sliding window and KiTS19 DICE task: tiny torch models exported to ONNX, generated NIfTI cases.

A small ROI (8^3, stride 4) keeps everything tiny. The sliding window is checked against a direct
run of the model (a volume that is one patch), against a Gaussian blend computed here patch by
patch (a volume of 2 x 3 x 2 patches) and across batch sizes; ``provision validate`` against a
DICE computed here from the preprocessed arrays with a pointwise model whose argmax is known.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ManifestWriter, dataset_toml
from scipy.signal import windows
from test_preprocess_kits19 import write_case
from typer.testing import CliRunner

from provision import api
from provision.cli.app import app
from provision.config import Settings
from provision.errors import EXIT_ACCURACY, ModelError
from provision.validation.runners.base import RunnerOptions
from provision.validation.runners.open import open_runner
from provision.validation.tasks.slide import blend, gaussian_map, patch_corners, segment
from provision.validation.validate import ValidateOptions

cli = CliRunner()
ROI = (8, 8, 8)


def _export(net: Any, path: Path) -> None:
    import torch

    net.eval()
    with torch.no_grad():
        torch.onnx.export(
            net,
            (torch.zeros(1, 1, *ROI),),
            str(path),
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "N"}, "output": {0: "N"}},
            opset_version=13,
            dynamo=False,
        )


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``conv.onnx``: two 3^3 convolutions (a patch's border depends on its neighbours);
    ``pointwise.onnx``: logits (0, x, 2x - 1) per voxel, i.e. class 0 below 0, 1 in (0, 1), 2 above 1."""
    import warnings

    import torch

    folder = tmp_path_factory.mktemp("unet-models")
    torch.manual_seed(0)
    conv = torch.nn.Sequential(
        torch.nn.Conv3d(1, 4, 3, padding=1), torch.nn.Tanh(), torch.nn.Conv3d(4, 3, 3, padding=1)
    )
    point = torch.nn.Conv3d(1, 3, 1)
    with torch.no_grad():
        point.weight.copy_(torch.tensor([0.0, 1.0, 2.0]).reshape(3, 1, 1, 1, 1))
        point.bias.copy_(torch.tensor([0.0, 0.0, -1.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        _export(conv, folder / "conv.onnx")
        _export(point, folder / "pointwise.onnx")
    return folder


def _session(path: Path) -> Any:
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _runner(path: Path, batch: int = 4) -> Any:
    return open_runner(path, "onnx", RunnerOptions(device="cpu", batch_size=batch, threads=1))


def test_the_gaussian_map_is_the_references() -> None:
    """scipy.signal's window (the reference's), outer products, cube root, max-normalised, float32."""
    for n in (8, 128):
        g = windows.gaussian(n, 0.125 * n)
        cube = np.cbrt(np.outer(np.outer(g, g), g).reshape(n, n, n))
        expected = (cube / cube.max()).astype(np.float32)
        assert np.array_equal(gaussian_map((n, n, n)), expected)
    assert list(patch_corners((128, 192, 256), (128, 128, 128), 0.5)) == [
        (0, j, k) for j in (0, 64) for k in (0, 64, 128)
    ]


def test_one_patch_equals_a_direct_run(models: Path) -> None:
    rng = np.random.default_rng(1)
    volume = rng.standard_normal((1, *ROI)).astype(np.float32)
    direct = _session(models / "conv.onnx").run(None, {"input": volume[None]})[0][0]
    runner = _runner(models / "conv.onnx")
    try:
        predict = lambda p: runner.run([p])[0]  # noqa: E731
        logits = blend(volume, predict, ROI, 0.5)
        assert np.allclose(logits, direct, rtol=1e-6, atol=1e-6)
        assert np.array_equal(segment(volume, predict, ROI, 0.5), np.argmax(direct, axis=0).astype(np.uint8))
        # a volume smaller than the ROI: padded at the far end with pad_value, run, cropped back
        small = volume[:, :6, :, :7]
        padded = np.full((1, *ROI), -2.2, dtype=np.float32)
        padded[:, :6, :, :7] = small
        direct_small = _session(models / "conv.onnx").run(None, {"input": padded[None]})[0][0][:, :6, :, :7]
        assert np.allclose(blend(small, predict, ROI, 0.5, pad_value=-2.2), direct_small, rtol=1e-6, atol=1e-6)
    finally:
        runner.close()


def test_many_patches_equal_the_gaussian_blend_computed_here(models: Path) -> None:
    """(1, 12, 16, 12) with ROI 8, stride 4: corners 0,4 x 0,4,8 x 0,4 = 12 patches, run one by one here."""
    rng = np.random.default_rng(2)
    volume = rng.standard_normal((1, 12, 16, 12)).astype(np.float32)
    session = _session(models / "conv.onnx")
    g = windows.gaussian(8, 1.0)
    weight = np.cbrt(np.einsum("i,j,k->ijk", g, g, g))
    weight /= weight.max()
    total = np.zeros((3, 12, 16, 12))
    norm = np.zeros((12, 16, 12))
    patches = 0
    for i in (0, 4):
        for j in (0, 4, 8):
            for k in (0, 4):
                patch = volume[None, :, i : i + 8, j : j + 8, k : k + 8]
                out = session.run(None, {"input": np.ascontiguousarray(patch)})[0][0].astype(np.float64)
                total[:, i : i + 8, j : j + 8, k : k + 8] += out * weight
                norm[i : i + 8, j : j + 8, k : k + 8] += weight
                patches += 1
    expected = total / norm
    assert patches == 12
    calls: list[int] = []
    runner = _runner(models / "conv.onnx", batch=5)
    try:

        def predict(p: np.ndarray) -> np.ndarray:
            calls.append(len(p))
            return np.asarray(runner.run([p])[0])

        got = blend(volume, predict, ROI, 0.5, batch=5)
        assert calls == [5, 5, 2]
        assert got.shape == (3, 12, 16, 12) and np.allclose(got, expected, rtol=1e-5, atol=1e-6)
        one_by_one = blend(volume, predict, ROI, 0.5, batch=1)
        assert np.array_equal(got, one_by_one)  # the reference's accumulation order whatever the batch
        labels = segment(volume, predict, ROI, 0.5, batch=3)
        clear = np.sort(expected, axis=0)[-1] - np.sort(expected, axis=0)[-2] > 1e-4  # voxels without a near-tie
        assert np.array_equal(labels[clear], np.argmax(expected, axis=0)[clear])
        # a volume off the stride grid is padded to it and cropped back
        assert blend(volume[:, :10, :15], predict, ROI, 0.5).shape == (3, 10, 15, 12)
    finally:
        runner.close()
    with pytest.raises(ModelError, match=r"expected \(2, classes, 8, 8, 8\)"):
        blend(volume[:, :8, :8, :12], lambda p: np.zeros((len(p), 3, 4, 4, 4), np.float32), ROI, 0.5, batch=2)


# ---- provision validate end to end -------------------------------------------------------------

# At the (float32-exact) target spacing, so no zoom blends values across the model's class boundaries.
SPACING = (2.0, 1.5, 1.25)
CASES = {"case_00010": ((9, 12, 10), SPACING), "case_00011": ((7, 10, 14), SPACING)}


def _dice_here(prediction: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """accuracy_kits.py: one-hot float64, background dropped, (2 sum(P*T) + 1e-6) / (sum P + sum T + 1e-6)."""
    p = np.eye(3)[prediction.reshape(-1)][:, 1:]
    t = np.eye(3)[truth.reshape(-1)][:, 1:]
    dice = (2.0 * (p * t).sum(0) + 1e-6) / (p.sum(0) + t.sum(0) + 1e-6)
    return float(dice[0]), float(dice[1])


def _bench(write_manifest: ManifestWriter, settings: Settings, root: Path, models: Path) -> None:
    """Two benchmarks over the same two cases and the pointwise model: one easy target, one impossible."""
    rows = [
        (f"{name}/{file}", [str(root / name / file)], (root / name / file).read_bytes(), None)
        for name in CASES
        for file in ("imaging.nii.gz", "segmentation.nii.gz")
    ]
    (root / "inference_cases.json").write_text(json.dumps(list(CASES)))
    meta = [
        (
            "meta/inference_cases.json",
            [str(root / "inference_cases.json")],
            (root / "inference_cases.json").read_bytes(),
            None,
        )
    ]
    model = models / "pointwise.onnx"
    text = (
        dataset_toml("tinyseg-cases", rows)
        + dataset_toml("tinyseg-meta", meta).replace("schema = 1\n", "")
        + dataset_toml("tinyseg-model", [(model.name, [str(model)], model.read_bytes(), None)], kind="model").replace(
            "schema = 1\n", ""
        )
        + '[model.runtime]\ninputs = ["input"]\noutputs = ["output"]\n'
    )
    for name, reference in (("tinyseg", 0.01), ("tinyseg-hard", 1.0)):
        text += (
            f'[[benchmark]]\nname = "{name}"\ndataset = "tinyseg-cases"\nmodels = ["tinyseg-model"]\n'
            f'labels = "tinyseg-meta/meta/inference_cases.json"\ndataset_size = {len(CASES)}\n'
            '[benchmark.preprocess]\nrecipe = "kits19-3dunet"\nroi_shape = [8, 8, 8]\noverlap = 0.5\n'
            f"target_spacing = {list(SPACING)}\n"
            f'[benchmark.accuracy]\nmetric = "dice"\nreference = {reference}\ntarget_ratio = [0.99, 0.999]\n'
        )
    write_manifest(text, name="tinyseg")
    for name in ("tinyseg", "tinyseg-hard"):
        assert api.fetch([name], settings).ok
        api.preprocess(name, settings, jobs=1)


@pytest.fixture(scope="module")
def seg_cases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tinyseg")
    rng = np.random.default_rng(7)
    for name, (shape, spacing) in CASES.items():
        image = rng.choice(np.array([-200, 40, 160, 260, 420], dtype=np.int16), size=shape)
        truth = np.digitize(image, [101, 178]).astype(np.uint8)  # the pointwise model's classes on raw values
        flip = rng.random(shape) < 0.3
        truth[flip] = rng.integers(0, 3, size=int(flip.sum()))
        write_case(root, name, image, truth, spacing)
    return root


def _expected_dice(folder: Path) -> tuple[float, list[float]]:
    import pickle

    composites = []
    for name in CASES:
        with open(folder / f"{name}.pkl", "rb") as fh:
            image, label = pickle.load(fh)
        x = image[0].astype(np.float64)
        assert np.min(np.abs(x)) > 1e-4 and np.min(np.abs(x - 1)) > 1e-4  # no voxel near a class boundary
        prediction = np.where(x > 1, 2, np.where(x > 0, 1, 0))
        kidney, tumor = _dice_here(prediction, label[0])
        composites.append((kidney + tumor) / 2)
    return float(np.mean(composites)), composites


def test_validate_scores_the_dice_computed_here_and_passes(
    write_manifest: ManifestWriter, settings: Settings, seg_cases: Path, models: Path
) -> None:
    _bench(write_manifest, settings, seg_cases, models)
    folder = api.preprocessed_path("tinyseg", settings)
    expected, composites = _expected_dice(folder)
    assert 0.2 < expected < 0.95
    report = api.validate("tinyseg", settings, options=ValidateOptions(batch_size=3, device="cpu"))
    assert report.metric == "dice" and report.samples == 2 and report.full_set and report.passed
    assert report.value == pytest.approx(expected, abs=1e-12)
    assert report.targets[0]["target"] == pytest.approx(0.0099)
    assert report.task["task"] == "segmentation" and report.task["roi_shape"] == [8, 8, 8]
    assert report.runtime["batch_size"] == 3
    per_case = report.extra["per_case"]
    assert [(v["kidney"] + v["tumor"]) / 2 for v in per_case.values()] == pytest.approx(composites, abs=1e-12)
    subset = api.validate("tinyseg", settings, options=ValidateOptions(count=1, device="cpu"))
    assert subset.samples == 1 and not subset.full_set and subset.interval_method == "bootstrap"
    assert subset.value == pytest.approx(composites[0], abs=1e-12) and subset.interval is not None


def test_validate_below_target_exits_5(
    write_manifest: ManifestWriter, settings: Settings, seg_cases: Path, models: Path
) -> None:
    _bench(write_manifest, settings, seg_cases, models)
    expected, _ = _expected_dice(api.preprocessed_path("tinyseg-hard", settings))
    result = cli.invoke(app, ["validate", "tinyseg-hard", "--device", "cpu", "--json"])
    assert result.exit_code == EXIT_ACCURACY, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    assert doc["metric"] == "dice" and doc["passed"] is False and doc["samples"] == 2
    assert doc["value"] == pytest.approx(expected, abs=1e-12) and doc["target"] == pytest.approx(0.99)
