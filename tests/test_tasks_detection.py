"""Detection task: provision validate on a generated OpenImages-format dataset and a tiny ONNX RetinaNet.

Each image is one flat grey level; the tiny model returns one detection per image: the box
``[200, 200, 600, 600]`` in 800x800 input pixels (the centre quarter of any image), a constant
label and, as score, the image's mean pixel (grey / 255). The ground truth puts one box of
category 1 either on that centre quarter (a hit at every IoU) or in a corner (a miss), so the
COCO mAP is known by hand. The annotation file lists an image that was never downloaded first,
so sample ``i`` is annotation entry ``i + 1``.
"""

from __future__ import annotations

import json
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
from provision.errors import EXIT_ACCURACY, ModelError
from provision.manifest.model import RuntimeSpec
from provision.validation.tasks.detection import DetectionTask
from provision.validation.validate import ValidateOptions, prepare

runner = CliRunner()

RUNTIME = 'inputs = ["images"]\noutputs = ["boxes", "labels", "scores"]\n'
# (file name, grey level -> score, width, height, ground truth on the centre quarter?)
IMAGES = [
    ("00000000000000a1.jpg", 220, 640, 480, True),  # score 0.863: hit
    ("00000000000000b2.jpg", 140, 320, 240, False),  # score 0.549: miss (box elsewhere, truth not found)
    ("00000000000000c3.jpg", 60, 480, 640, True),  # score 0.235: hit
    ("00000000000000d4.jpg", 5, 400, 400, True),  # score 0.020 < 0.05: dropped, so its truth is missed
]
# COCO AP over 101 recall points (IoU = 1 for hits, so the same at every threshold):
# 3 images, ranked hit, miss, hit over 3 truths: precision 1 up to recall 1/3 (34 points), 2/3 up to
# 2/3 (33 points): (34 + 33 * 2/3) / 101 = 56/101.
MAP_3 = 100 * 56 / 101
# all 4: the dark image's detection is dropped: 4 truths, precision 1 up to recall 1/4 (26 points),
# 2/3 up to 1/2 (25 points): (26 + 25 * 2/3) / 101 = 128/303.
MAP_4 = 100 * 128 / 303


def _jpeg(path: Path, grey: int, width: int, height: int) -> None:
    Image.fromarray(np.full((height, width, 3), grey, dtype=np.uint8)).save(path, format="JPEG", quality=95)


def _annotations(path: Path) -> None:
    images = [{"id": 1, "file_name": "ffffffffffffffff.jpg", "height": 100, "width": 100}]  # not downloaded
    truth = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 50, 50], "area": 2500, "iscrowd": 0}]
    for k, (name, _, width, height, hit) in enumerate(IMAGES, 2):
        images.append({"id": k, "file_name": name, "height": height, "width": width})
        box = [width / 4, height / 4, width / 2, height / 2] if hit else [0, 0, width / 8, height / 8]
        truth.append({"id": k, "image_id": k, "category_id": 1, "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
    categories = [{"id": c, "name": f"class{c}"} for c in range(3)]
    path.write_text(json.dumps({"images": images, "annotations": truth, "categories": categories}))


def _onnx_detector(path: Path, label: int = 1, batched: bool = False) -> None:
    """images (N,3,800,800) -> one detection per image: the centre box, ``label``, score = mean pixel.

    Unbatched (the reference's layout): boxes (1,4), labels (1,), scores (N,) - right for N = 1 only.
    Batched: boxes (N,1,4), labels (N,1), scores (N,1).
    """
    import onnx
    from onnx import TensorProto, helper

    box = np.array([200, 200, 600, 600], dtype=np.float32)
    if batched:
        nodes = [
            helper.make_node("ReduceMean", ["images"], ["mean4"], axes=[1, 2, 3], keepdims=1),  # (N,1,1,1)
            helper.make_node("Flatten", ["mean4"], ["scores"], axis=1),  # (N,1)
            helper.make_node("Squeeze", ["mean4", "axis3"], ["mean3"]),  # (N,1,1)
            helper.make_node("Mul", ["mean3", "zero"], ["zeros3"]),
            helper.make_node("Add", ["zeros3", "box"], ["boxes"]),  # (N,1,4)
            helper.make_node("Mul", ["scores", "zero"], ["zeros2"]),
            helper.make_node("Cast", ["zeros2"], ["zeros2i"], to=TensorProto.INT64),
            helper.make_node("Add", ["zeros2i", "label"], ["labels"]),  # (N,1)
        ]
        shapes = (["N", 1, 4], ["N", 1], ["N", 1])
        init = [
            helper.make_tensor("box", TensorProto.FLOAT, [1, 1, 4], box.tolist()),
            helper.make_tensor("label", TensorProto.INT64, [1, 1], [label]),
            helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
            helper.make_tensor("axis3", TensorProto.INT64, [1], [3]),
        ]
    else:
        nodes = [
            helper.make_node("ReduceMean", ["images"], ["scores"], axes=[1, 2, 3], keepdims=0),  # (N,)
            helper.make_node("Identity", ["box"], ["boxes"]),
            helper.make_node("Identity", ["label"], ["labels"]),
        ]
        shapes = ([1, 4], [1], ["N"])
        init = [
            helper.make_tensor("box", TensorProto.FLOAT, [1, 4], box.tolist()),
            helper.make_tensor("label", TensorProto.INT64, [1], [label]),
        ]
    graph = helper.make_graph(
        nodes,
        "tiny-retinanet",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 800, 800])],
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, shapes[0]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, shapes[2]),  # model order as the export's
            helper.make_tensor_value_info("labels", TensorProto.INT64, shapes[1]),
        ],
        initializer=init,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated images, annotation file and models, shared by the tests of this module."""
    src = tmp_path_factory.mktemp("openimages-src")
    for name, grey, width, height, _ in IMAGES:
        _jpeg(src / name, grey, width, height)
    _annotations(src / "openimages-mlperf.json")
    _onnx_detector(src / "reference.onnx")
    _onnx_detector(src / "batched.onnx", batched=True)
    _onnx_detector(src / "wrong-label.onnx", label=2)
    return src


def _bench(
    write_manifest: ManifestWriter,
    settings: Settings,
    src: Path,
    *,
    model: str = "reference.onnx",
    images: int = len(IMAGES),
    runtime: str = RUNTIME,
    name: str = "tinyret",
) -> None:
    """A generated OpenImages-format benchmark: the annotation file and ``images`` JPEGs, one tiny model."""
    names = ["openimages-mlperf.json"] + [n for n, *_ in IMAGES[:images]]
    rows = [(n, [str(src / n)], (src / n).read_bytes(), None) for n in names]
    model_path = src / model
    model_toml = dataset_toml(
        f"{name}-model", [(model_path.name, [str(model_path)], model_path.read_bytes(), None)], kind="model"
    ).replace("schema = 1\n", "")
    write_manifest(
        dataset_toml(f"{name}-data", rows)
        + model_toml
        + f"[model.runtime]\n{runtime}"
        + f'[[benchmark]]\nname = "{name}"\ndataset = "{name}-data"\nmodels = ["{name}-model"]\n'
        + f"dataset_size = {images}\n"
        + '[benchmark.preprocess]\nrecipe = "openimages-retinanet"\n'
        + '[benchmark.accuracy]\nmetric = "map"\nreference = 37.55\ntarget_ratio = [0.99]\n',
        name=name,
    )
    assert api.fetch([name], settings).ok
    api.preprocess(name, settings, jobs=1)


def test_reference_layout_at_batch_1_scores_the_hand_computed_map(
    write_manifest: ManifestWriter, settings: Settings, files: Path
) -> None:
    """Unbatched outputs, the score threshold, and truth looked up past the missing image."""
    _bench(write_manifest, settings, files)
    report = api.validate("tinyret", settings, options=ValidateOptions(batch_size=1))
    assert report.metric == "map" and report.unit == "%" and report.samples == 4 and report.full_set
    assert report.value == pytest.approx(MAP_4, abs=1e-9)
    assert report.passed and report.targets[0]["target"] == pytest.approx(37.1745)
    assert report.task["task"] == "detection" and report.task["score_threshold"] == 0.05
    assert report.task["annotations"].endswith("openimages-mlperf.json")
    assert report.extra["detections"] == 3 and report.extra["images_without_detections"] == 1


def test_batched_outputs_give_the_same_map_and_the_batch_is_capped_at_1(
    write_manifest: ManifestWriter, settings: Settings, files: Path
) -> None:
    """The reference layout has no batch axis: validation runs detection one image per call."""
    _bench(write_manifest, settings, files, model="batched.onnx")
    report = api.validate("tinyret", settings, options=ValidateOptions(batch_size=3))
    assert report.value == pytest.approx(MAP_4, abs=1e-9) and report.runtime["batch_size"] == 1
    _bench(write_manifest, settings, files, name="tinyref")
    unbatched = api.validate("tinyref", settings, options=ValidateOptions(batch_size=32))
    assert unbatched.value == pytest.approx(MAP_4, abs=1e-9) and unbatched.runtime["batch_size"] == 1


def test_no_detection_of_the_true_class_scores_0_and_exits_5(
    write_manifest: ManifestWriter, settings: Settings, files: Path
) -> None:
    _bench(write_manifest, settings, files, model="wrong-label.onnx", images=3)
    result = runner.invoke(app, ["validate", "tinyret", "--batch-size", "1", "--json"])
    assert result.exit_code == EXIT_ACCURACY, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    assert doc["metric"] == "map" and doc["value"] == 0.0 and doc["passed"] is False and doc["samples"] == 3


def test_count_subset_reports_a_bootstrap_interval(
    write_manifest: ManifestWriter, settings: Settings, files: Path
) -> None:
    """3 of 4 images: mAP 56/101; resamples range from all misses (0) to all hits (100)."""
    _bench(write_manifest, settings, files)
    report = api.validate("tinyret", settings, options=ValidateOptions(batch_size=1, count=3))
    assert report.samples == 3 and not report.full_set
    assert report.value == pytest.approx(MAP_3, abs=1e-9)
    assert report.interval_method == "bootstrap (200 resamples)" and report.interval == [0.0, 100.0]
    assert report.passed  # the target 37.17 lies inside the interval


def test_statistic_counts_a_repeated_image_again(
    write_manifest: ManifestWriter, settings: Settings, files: Path
) -> None:
    """Resampling draws with replacement: a drawn-twice image is two images, truths and detections both."""
    _bench(write_manifest, settings, files, images=2)
    folder = prepare(api.load(settings), "tinyret", settings).folder
    task = DetectionTask(folder, RuntimeSpec())
    assert task.names == [IMAGES[0][0], IMAGES[1][0]] and task.positions == [1, 2]
    for index in range(task.count()):
        grey = IMAGES[index][1]
        assert task.load(index)[0].shape == (3, 800, 800)
        task.collect([index], [np.array([[200.0, 200, 600, 600]]), np.array([1]), np.array([grey / 255])])
    score = task.score()
    assert score.value == pytest.approx(100 * 51 / 101)  # hit then miss over 2 truths: recall 1/2 at precision 1
    assert score.statistic is not None and score.predictions == [1, 1]
    assert score.statistic(np.array([0, 0])) == pytest.approx(100.0)
    assert score.statistic(np.array([1, 1])) == 0.0
    # hit, miss, miss over 3 truths: precision 1 up to recall 1/3 (34 points) = 34/101, not the 51/101 of {hit, miss}
    assert score.statistic(np.array([0, 1, 1])) == pytest.approx(100 * 34 / 101)


def test_unbatched_outputs_for_a_batch_of_two_are_refused(
    write_manifest: ManifestWriter, settings: Settings, files: Path
) -> None:
    """Outputs without a batch axis cannot be split between two images: a ModelError, not a guess."""
    _bench(write_manifest, settings, files, images=2)
    task = DetectionTask(prepare(api.load(settings), "tinyret", settings).folder, RuntimeSpec())
    box = np.array([[200.0, 200, 600, 600]])
    with pytest.raises(ModelError, match=r"without a batch axis for a batch of 2 .*--batch-size 1"):
        task.collect([0, 1], [box, np.array([1]), np.array([0.5])])
