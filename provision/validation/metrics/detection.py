"""Object detection: RetinaNet's MLPerf payload and COCO mAP (``tools/accuracy-openimages.py``).

The reference post-processing for RetinaNet (``PostProcessOpenImagesRetinanet`` in
``python/openimages.py``, used with the ONNX model as ``openimages-800-retinanet-onnx``) turns the
model's ``boxes`` (``x1, y1, x2, y2`` in pixels of the 800x800 input), ``labels`` (the category ids
0..263 of the annotation file, used as they are) and ``scores`` (sorted, best first) into rows of
seven float32 values ``[sample_index, ymin, xmin, ymax, xmax, score, label]`` with the box divided
by the input's height and width. It stops at the first score below 0.05.

The accuracy script maps each sample index to the ``i``-th image of the annotation file's
``images`` list, scales the box by that image's height and width, converts it to COCO's
``[x, y, w, h]`` and runs pycocotools' ``COCOeval`` (``bbox``) on the image ids of every evaluated
sample, also those without a detection. The score is ``100 * stats[0]``, mAP over IoU 0.50:0.95.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from provision.errors import MissingDependencyError, UsageError

__all__ = ["DETECTION_COLUMNS", "coco_map", "retinanet_detections"]

#: The seven values of one detection in MLPerf's object-detection payload.
DETECTION_COLUMNS = ("sample_index", "ymin", "xmin", "ymax", "xmax", "score", "label")


def retinanet_detections(
    sample_index: int,
    boxes: npt.ArrayLike,
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    input_size: tuple[int, int] = (800, 800),
    score_threshold: float = 0.05,
) -> npt.NDArray[np.float32]:
    """The MLPerf payload rows ``(K, 7)`` float32 of one image from RetinaNet's outputs.

    ``boxes`` ``(N, 4)`` are ``x1, y1, x2, y2`` in pixels of the model input, ``input_size`` is its
    ``(height, width)``; ``labels`` are category ids as the annotation file numbers them and
    ``scores`` come sorted, best first, as the model returns them. As the reference, rows stop at
    the first score below ``score_threshold`` (for sorted scores: every score below it is dropped).
    """
    box = np.asarray(boxes, dtype=np.float64)
    label = np.asarray(labels).reshape(-1)
    score = np.asarray(scores).reshape(-1)
    if box.size == 0 and label.size == 0 and score.size == 0:
        return np.zeros((0, 7), dtype=np.float32)
    if box.ndim != 2 or box.shape[1] != 4:
        raise UsageError(f"RetinaNet boxes must have shape (N, 4) as x1, y1, x2, y2, got {box.shape}")
    if not box.shape[0] == label.size == score.size:
        raise UsageError(f"{box.shape[0]} boxes, {label.size} labels and {score.size} scores; they must match")
    height, width = (float(v) for v in input_size)
    if height <= 0 or width <= 0:
        raise UsageError(f"input_size must be a positive (height, width), got {tuple(input_size)}")
    # compared in float64, as NumPy 1.x compared the reference's float32 scalars with a Python float
    below = np.flatnonzero(score.astype(np.float64) < score_threshold)
    keep = int(below[0]) if below.size else score.size
    rows = np.empty((keep, 7), dtype=np.float64)
    rows[:, 0] = float(sample_index)
    rows[:, 1] = box[:keep, 1] / height
    rows[:, 2] = box[:keep, 0] / width
    rows[:, 3] = box[:keep, 3] / height
    rows[:, 4] = box[:keep, 2] / width
    rows[:, 5] = score[:keep]
    rows[:, 6] = np.trunc(label[:keep].astype(np.float64))
    # float64 then one rounding to float32: the same values as dividing in float32, as the reference does
    return rows.astype(np.float32)


def _load_ground_truth(annotations: Mapping[str, Any] | str | Path) -> dict[str, Any]:
    if isinstance(annotations, (str, Path)):
        path = Path(annotations)
        try:
            with open(path, encoding="utf-8") as handle:
                loaded = json.load(handle)
        except OSError as exc:
            raise UsageError(f"cannot read the annotation file {str(path)!r}: {exc.strerror or exc}") from exc
        except json.JSONDecodeError as exc:
            raise UsageError(f"the annotation file {str(path)!r} is not JSON: {exc.msg} at line {exc.lineno}") from exc
        dataset = loaded
    else:
        dataset = dict(annotations)
    if not isinstance(dataset, dict) or not all(isinstance(dataset.get(k), list) for k in ("images", "categories")):
        raise UsageError("the annotations are not COCO-format: they need 'images' and 'categories' lists")
    # COCOeval writes an 'ignore' key into each ground-truth box: give it copies, not the caller's dicts
    dataset["annotations"] = [dict(box) for box in dataset.get("annotations") or []]
    return dataset


def _detection_rows(detections: npt.ArrayLike) -> npt.NDArray[np.float32]:
    rows = np.asarray(detections, dtype=np.float32)
    if rows.ndim == 1 and rows.size % 7 == 0:
        rows = rows.reshape(-1, 7)
    if rows.ndim != 2 or rows.shape[1] != 7:
        raise UsageError(f"detections must be rows of 7 values {DETECTION_COLUMNS}, got shape {rows.shape}")
    return rows


def _sample_positions(values: Iterable[Any], n_images: int, what: str) -> list[int]:
    positions = []
    for value in values:
        position = int(value)
        if not 0 <= position < n_images:
            raise UsageError(f"{what} {position} is outside the annotation file's {n_images} images")
        positions.append(position)
    return positions


def coco_map(
    detections: npt.ArrayLike,
    annotations: Mapping[str, Any] | str | Path,
    sample_indices: Iterable[int] | None = None,
) -> float:
    """COCO mAP@[0.50:0.95] in percent of MLPerf detection rows, as ``accuracy-openimages.py``.

    ``detections`` are rows ``[sample_index, ymin, xmin, ymax, xmax, score, label]`` with the box in
    [0, 1] (what :func:`retinanet_detections` returns, stacked); ``annotations`` is the COCO-format
    ground truth, a dict or a JSON file path, whose ``images[i]`` is sample ``i``.
    ``sample_indices`` are the evaluated samples, with or without detections (the reference
    evaluates every sample it was sent); ``None`` evaluates every image of the annotation file.
    A set of samples with no detection at all scores 0 (the reference would crash on it).
    """
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise MissingDependencyError("pycocotools", "metrics", "COCO mAP") from None

    dataset = _load_ground_truth(annotations)
    images = dataset["images"]
    rows = _detection_rows(detections)
    row_positions = _sample_positions(rows[:, 0], len(images), "detection sample index")
    if sample_indices is None:
        evaluated = set(range(len(images)))
    else:
        evaluated = set(_sample_positions(sample_indices, len(images), "sample index"))
        stray = sorted(set(row_positions) - evaluated)
        if stray:
            raise UsageError(f"detections of sample {stray[0]} which is not among sample_indices; pass every sample")
    if not evaluated:
        raise UsageError("no samples to evaluate; give at least one sample index")

    results = []
    for row, position in zip(rows, row_positions, strict=True):
        image = images[position]
        height, width = float(image["height"]), float(image["width"])
        # float32 payload values times Python numbers, in float64 as NumPy 1.x computed the reference
        ymin, xmin, ymax, xmax = (float(v) for v in row[1:5])
        ymin, xmin, ymax, xmax = ymin * height, xmin * width, ymax * height, xmax * width
        results.append(
            {
                "image_id": image["id"],
                "category_id": int(row[6]),
                "bbox": [xmin, ymin, xmax - xmin, ymax - ymin],
                "score": float(row[5]),
            }
        )
    image_ids = sorted({images[position]["id"] for position in evaluated})

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools reports every step on stdout
        truth = COCO()
        truth.dataset = dataset
        truth.createIndex()
        if results:
            found = truth.loadRes(results)
        else:  # loadRes cannot take an empty list; an empty result set scores every image as missed
            found = COCO()
            found.dataset = {"images": list(images), "categories": copy.deepcopy(dataset["categories"])}
            found.dataset["annotations"] = []
            found.createIndex()
        evaluation = COCOeval(truth, found, iouType="bbox")
        evaluation.params.imgIds = image_ids
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    value = float(evaluation.stats[0])
    if value < 0:  # pycocotools' -1: nothing to score
        raise UsageError("the evaluated images have no ground-truth boxes, so mAP is undefined")
    return 100.0 * value
