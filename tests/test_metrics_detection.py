"""metrics.detection: RetinaNet payload rows and COCO mAP on hand-made ground truth.

Every image is 200 px wide and 100 px high, and each ground-truth box is ``[x=20, y=10, w=100,
h=50]``: x 20..120, y 10..60, i.e. ``[ymin, xmin, ymax, xmax] = [0.1, 0.1, 0.6, 0.6]`` normalised.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from provision.errors import MissingDependencyError, UsageError
from provision.validation.metrics.detection import coco_map, retinanet_detections

needs_pycocotools = pytest.mark.skipif(importlib.util.find_spec("pycocotools") is None, reason="needs pycocotools")

BOX = [20.0, 10.0, 100.0, 50.0]
PERFECT = [0.1, 0.1, 0.6, 0.6]  # ymin, xmin, ymax, xmax of BOX
ELSEWHERE = [0.7, 0.7, 0.9, 0.9]  # no overlap with BOX


def ground_truth(labels_per_image: list[list[int]], n_categories: int = 4) -> dict[str, Any]:
    images = [{"id": i + 1, "width": 200, "height": 100, "file_name": f"{i}.jpg"} for i in range(len(labels_per_image))]
    annotations: list[dict[str, Any]] = []
    for image_index, labels in enumerate(labels_per_image):
        for label in labels:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_index + 1,
                    "category_id": label,
                    "bbox": list(BOX),
                    "area": BOX[2] * BOX[3],
                    "iscrowd": 0,
                }
            )
    categories = [{"id": c, "name": f"class{c}"} for c in range(n_categories)]
    return {"images": images, "annotations": annotations, "categories": categories}


def row(sample: int, box: list[float], label: int, score: float = 0.9) -> list[float]:
    return [float(sample), *box, score, float(label)]


# --- retinanet_detections -----------------------------------------------------------------


def test_retinanet_rows_are_normalised_and_reordered() -> None:
    # the model gives x1, y1, x2, y2 in input pixels; rows are [idx, y1/H, x1/W, y2/H, x2/W, score, label]
    rows = retinanet_detections(7, [[80, 40, 480, 240]], [12], [0.75], input_size=(800, 800))
    assert rows.dtype == np.float32
    assert rows.shape == (1, 7)
    expected = np.array([[7, 40 / 800, 80 / 800, 240 / 800, 480 / 800, 0.75, 12]], dtype=np.float32)
    np.testing.assert_array_equal(rows, expected)


def test_retinanet_uses_height_for_y_and_width_for_x() -> None:
    # input 600 high, 1000 wide: y divides by 600, x by 1000
    rows = retinanet_detections(0, [[100, 60, 500, 300]], [1], [0.5], input_size=(600, 1000))
    np.testing.assert_allclose(rows[0, 1:5], [0.1, 0.1, 0.5, 0.5], rtol=1e-6)


def test_retinanet_threshold_stops_at_first_low_score() -> None:
    # 0.05 itself is kept (only scores below it stop); the reference breaks at 0.049, so the 0.3
    # after it is dropped too (the model's scores are sorted, so this only matters for unsorted input)
    scores = [0.9, 0.5, 0.05, 0.049, 0.3]
    boxes = [[0, 0, 8, 8]] * 5
    rows = retinanet_detections(0, boxes, [0, 1, 2, 3, 4], scores)
    assert rows[:, 6].tolist() == [0, 1, 2]
    np.testing.assert_array_equal(rows[:, 5], np.array([0.9, 0.5, 0.05], dtype=np.float32))


def test_retinanet_no_detections() -> None:
    assert retinanet_detections(3, np.zeros((0, 4)), [], []).shape == (0, 7)


def test_retinanet_rejects_mismatched_outputs() -> None:
    with pytest.raises(UsageError, match="2 boxes, 1 labels and 2 scores"):
        retinanet_detections(0, [[0, 0, 1, 1], [0, 0, 1, 1]], [1], [0.9, 0.8])
    with pytest.raises(UsageError, match=r"shape \(N, 4\)"):
        retinanet_detections(0, [[0, 0, 1]], [1], [0.9])


# --- coco_map ---------------------------------------------------------------------------------


@needs_pycocotools
def test_perfect_detector_scores_100() -> None:
    truth = ground_truth([[0], [1]])
    detections = np.array([row(0, PERFECT, 0), row(1, PERFECT, 1)], dtype=np.float32)
    assert coco_map(detections, truth) == pytest.approx(100.0)


@needs_pycocotools
def test_one_right_one_wrong_box() -> None:
    # class 0: its only box found at every IoU -> AP 1; class 1: its detection does not overlap -> AP 0.
    # Classes 2 and 3 have no boxes and do not count. mAP = (1 + 0) / 2 -> 50 %
    truth = ground_truth([[0], [1]])
    detections = np.array([row(0, PERFECT, 0), row(1, ELSEWHERE, 1)], dtype=np.float32)
    assert coco_map(detections, truth) == pytest.approx(50.0)


@needs_pycocotools
def test_boxes_of_half_the_classes() -> None:
    # four classes with one box each; the detector finds classes 0 and 2 exactly -> APs 1, 0, 1, 0 -> 50 %
    truth = ground_truth([[0, 1], [2, 3]])
    detections = np.array([row(0, PERFECT, 0), row(1, PERFECT, 2)], dtype=np.float32)
    assert coco_map(detections, truth) == pytest.approx(50.0)


@needs_pycocotools
def test_partial_overlap_counts_at_low_iou_thresholds_only() -> None:
    # the detection keeps x 20..120 but ends at y 46: overlap 100*36 over union 100*50 -> IoU 0.72.
    # It matches at IoU thresholds 0.50, 0.55, 0.60, 0.65, 0.70 (AP 1) and misses at 0.75..0.95 (AP 0)
    # -> mean over the ten thresholds 5/10 -> 50 %
    truth = ground_truth([[0]])
    detections = np.array([row(0, [0.1, 0.1, 0.46, 0.6], 0)], dtype=np.float32)
    assert coco_map(detections, truth) == pytest.approx(50.0, abs=1e-9)


@needs_pycocotools
def test_evaluated_image_without_detections_lowers_recall() -> None:
    # two boxes of class 0, one per image; only image 0 has a detection. Recall 0.5 at precision 1:
    # COCO's 101 recall points 0.00..0.50 (51 of them) have precision 1, the other 50 have 0
    # -> AP = 51/101 at every IoU threshold -> 50.495...%
    truth = ground_truth([[0], [0]])
    detections = np.array([row(0, PERFECT, 0)], dtype=np.float32)
    assert coco_map(detections, truth, sample_indices=[0, 1]) == pytest.approx(100 * 51 / 101)
    assert coco_map(detections, truth) == pytest.approx(100 * 51 / 101)  # None: every image
    # evaluating image 0 alone leaves out the missed box
    assert coco_map(detections, truth, sample_indices=[0]) == pytest.approx(100.0)


@needs_pycocotools
def test_retinanet_rows_feed_coco_map() -> None:
    # 800x800 input pixels of BOX on a 200x100 image: x 20..120 -> 80..480, y 10..60 -> 80..480
    truth = ground_truth([[0], [3]])
    first = retinanet_detections(0, [[80, 80, 480, 480], [0, 0, 10, 10]], [0, 2], [0.8, 0.01])
    second = retinanet_detections(1, [[80, 80, 480, 480]], [3], [0.6])
    assert coco_map(np.concatenate([first, second]), truth) == pytest.approx(100.0)
    # the flat float32 payload of the log works as well
    assert coco_map(np.concatenate([first, second]).reshape(-1), truth) == pytest.approx(100.0)


@needs_pycocotools
def test_annotations_from_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "openimages-mlperf.json"
    path.write_text(json.dumps(ground_truth([[0], [1]])), encoding="utf-8")
    detections = np.array([row(0, PERFECT, 0), row(1, ELSEWHERE, 1)], dtype=np.float32)
    assert coco_map(detections, path) == pytest.approx(50.0)
    assert coco_map(detections, str(path)) == pytest.approx(50.0)


@needs_pycocotools
def test_no_detections_scores_zero() -> None:
    truth = ground_truth([[0], [1]])
    assert coco_map(np.zeros((0, 7), dtype=np.float32), truth) == 0.0


@needs_pycocotools
def test_quiet_and_leaves_the_ground_truth_alone(capsys: pytest.CaptureFixture[str]) -> None:
    truth = ground_truth([[0], [1]])
    before = copy.deepcopy(truth)
    coco_map(np.array([row(0, PERFECT, 0)], dtype=np.float32), truth)
    assert capsys.readouterr().out == ""
    assert truth == before


@needs_pycocotools
def test_detection_outside_the_evaluated_samples() -> None:
    truth = ground_truth([[0], [1]])
    with pytest.raises(UsageError, match="sample 1 which is not among sample_indices"):
        coco_map(np.array([row(1, PERFECT, 1)], dtype=np.float32), truth, sample_indices=[0])
    with pytest.raises(UsageError, match="outside the annotation file's 2 images"):
        coco_map(np.array([row(2, PERFECT, 1)], dtype=np.float32), truth)


@needs_pycocotools
def test_bad_detection_shape() -> None:
    with pytest.raises(UsageError, match="rows of 7 values"):
        coco_map(np.zeros((2, 6), dtype=np.float32), ground_truth([[0]]))


def test_missing_pycocotools(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pycocotools.coco", None)
    with pytest.raises(MissingDependencyError, match=r"COCO mAP needs pycocotools.*provision\[metrics\]"):
        coco_map(np.zeros((0, 7)), ground_truth([[0]]))
