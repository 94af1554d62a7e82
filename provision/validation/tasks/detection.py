"""COCO mAP of RetinaNet over preprocessed OpenImages samples (MLPerf accuracy-openimages.py).

Samples are what the ``openimages-retinanet`` recipe wrote: ``<file_name>.npy`` for each entry of
the annotation file's ``images`` list, in list order (an id repeated keeps its first position and
its last entry, a file name repeated counts once), keeping those present in the output folder
(the recipe skips images that were not downloaded and cuts ``--subset`` to the first N). The
recipe writes no index, so the annotation file is found as the recipe found it, from the run
record ``run.json`` beside the samples: the ``labels`` input when there is one, else the
``annotations`` parameter relative to the ``data`` input, else the shallowest (then sorted-first)
``openimages-mlperf.json`` under the ``data`` input.

Each sample is scored against the annotation entry it was made from (its ``id``, ``height`` and
``width``), so images missing from the download do not shift the ground truth.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from provision.errors import IntegrityError, ModelError
from provision.manifest.model import RuntimeSpec
from provision.preprocessing.plan import RUN_FILE, load_json
from provision.validation.loader import npy_loader
from provision.validation.tasks.base import Score

__all__ = ["ANNOTATIONS_NAME", "SCORE_THRESHOLD", "DetectionTask", "find_annotations", "read_samples"]

#: The annotation file MLPerf's download script writes (``annotations/openimages-mlperf.json``).
ANNOTATIONS_NAME = "openimages-mlperf.json"

#: The reference post-processing's score threshold (``PostProcessOpenImagesRetinanet(False, 0.05, ...)``).
SCORE_THRESHOLD = 0.05


def find_annotations(folder: Path) -> Path:
    """The annotation file the preprocessing run in ``folder`` read, from its ``run.json``."""
    record_path = folder / RUN_FILE
    record = load_json(record_path)
    if record is None:
        raise IntegrityError(
            f"{record_path}: missing or unreadable; the preprocessing output has no run record "
            "(rerun 'provision preprocess')",
            path=str(record_path),
        )
    raw_inputs, raw_params = record.get("inputs"), record.get("params")
    inputs = raw_inputs if isinstance(raw_inputs, dict) else {}
    params = raw_params if isinstance(raw_params, dict) else {}

    def path_of(role: str) -> Path | None:
        entry = inputs.get(role)
        return Path(entry["path"]) if isinstance(entry, dict) and isinstance(entry.get("path"), str) else None

    labels, data = path_of("labels"), path_of("data")
    found: Path | None = labels
    if found is None and isinstance(params.get("annotations"), str) and data is not None:
        found = data / params["annotations"]
    if found is None and data is not None and data.is_dir():
        candidates = sorted(data.rglob(ANNOTATIONS_NAME), key=lambda p: (len(p.relative_to(data).parts), p.as_posix()))
        found = candidates[0] if candidates else None
    if found is None or not found.is_file():
        where = str(found) if found is not None else f"{ANNOTATIONS_NAME} under {data}"
        raise IntegrityError(
            f"{folder}: the annotation file the preprocessing read is missing ({where}); expected the COCO-format "
            "ground truth there, got nothing; run 'provision fetch' for the dataset",
            path=where,
        )
    return found


def _read_annotations(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        message = f"{path}: cannot read the annotation file ({exc}); fetch the dataset again"
        raise IntegrityError(message, path=str(path)) from exc
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in ("images", "categories")):
        raise IntegrityError(
            f"{path}: expected COCO-format annotations with 'images' and 'categories' lists, got something else; "
            "fetch the dataset again",
            path=str(path),
        )
    return doc


def read_samples(images: Sequence[Any], folder: Path, path: Path) -> tuple[list[str], list[int]]:
    """(file names, positions in ``images``) of the samples in ``folder``, in the recipe's order.

    As the reference keys images by ``id``: an id seen again keeps its first place and takes the
    later entry (whose position is returned); a file name seen again counts once.
    """
    by_id: dict[Any, int] = {}
    for position, entry in enumerate(images):
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("file_name"), str)
            or isinstance(entry.get("id", []), (list, dict))
        ):
            raise IntegrityError(
                f"{path}: images[{position}] needs a scalar 'id' and a string 'file_name'; fetch the annotations again",
                path=str(path),
            )
        by_id[entry["id"]] = position
    chosen: dict[str, int] = {}
    for position in by_id.values():
        chosen.setdefault(images[position]["file_name"], position)
    names = [name for name in chosen if (folder / f"{name}.npy").is_file()]
    return names, [chosen[name] for name in names]


Rows = npt.NDArray[np.float32]


class DetectionTask:
    """COCO mAP@[.50:.95] of ``boxes, labels, scores`` outputs (MLPerf's ``retinanet-onnxruntime`` profile).

    The reference ONNX model takes one ``(1, 3, 800, 800)`` image and returns ``boxes`` ``(K, 4)``
    (``x1, y1, x2, y2`` in input pixels), ``labels`` ``(K,)`` and ``scores`` ``(K,)`` without a
    batch axis, which is why the reference profile sets ``max-batchsize`` 1 (:attr:`max_batch`).
    Outputs with a batch axis (``(N, K, 4)``, ``(N, K)``, ``(N, K)``) are taken too. Rows stop at
    the first score below 0.05 (:func:`~provision.validation.metrics.detection.retinanet_detections`). The
    predictions the golden pins compare are each image's best-scored label (-1 without a detection).
    """

    name = "detection"
    #: The largest batch the reference ONNX model takes (``max-batchsize`` 1 in the reference profile).
    max_batch = 1

    def __init__(self, folder: Path, runtime: RuntimeSpec, limit: int | None = None) -> None:
        self.folder = folder
        self.annotations_path = find_annotations(folder)
        doc = _read_annotations(self.annotations_path)
        self.images: list[dict[str, Any]] = doc["images"]
        names, positions = read_samples(self.images, folder, self.annotations_path)
        record = load_json(folder / RUN_FILE) or {}
        items = record.get("items")
        if isinstance(items, int) and items != len(names):
            raise IntegrityError(
                f"{folder}: the preprocessing run wrote {items} images, {len(names)} of them are listed in "
                f"{self.annotations_path}; the annotations changed since (rerun 'provision preprocess')",
                path=str(folder),
            )
        if limit is not None:
            names, positions = names[:limit], positions[:limit]
        self.names = names
        self._load = npy_loader([folder / f"{name}.npy" for name in names])
        self.positions = positions
        params = record.get("params")
        size = params.get("resize") if isinstance(params, dict) else None
        self.input_size = (int(size[0]), int(size[1])) if isinstance(size, list) and len(size) == 2 else (800, 800)
        self.categories: list[Any] = doc["categories"]
        self.annotations: list[Any] = doc.get("annotations") or []
        self._truth: dict[Any, list[dict[str, Any]]] = {}
        for box in self.annotations:
            if isinstance(box, dict) and not isinstance(box.get("image_id"), (list, dict)):
                self._truth.setdefault(box.get("image_id"), []).append(box)
        self._rows: dict[int, Rows] = {}

    def count(self) -> int:
        """Images in the preprocessed folder (the first ``limit`` of them)."""
        return len(self.names)

    def load(self, index: int) -> Sequence[np.ndarray]:
        """The preprocessed image ``<file_name>.npy`` (``(3, 800, 800)`` float32)."""
        return self._load(index)

    def _per_image(self, indices: Sequence[int], outputs: Sequence[np.ndarray]) -> list[tuple[Any, Any, Any]]:
        """One (boxes (K,4), labels (K,), scores (K,)) per sample, with or without a batch axis."""
        if len(outputs) < 3:
            raise ModelError(
                f"detection: expected the outputs boxes, labels, scores, got {len(outputs)} output(s); "
                "set [model.runtime] outputs = ['boxes', 'labels', 'scores']"
            )
        boxes, labels, scores = (np.asarray(o) for o in outputs[:3])
        n = len(indices)
        if boxes.ndim == 2 and boxes.shape[-1] == 4 and labels.ndim == 1 and scores.ndim == 1:
            if n != 1:
                raise ModelError(
                    f"detection: the model returned boxes {boxes.shape} without a batch axis for a batch of {n} "
                    "images; expected one image per run as the reference ONNX model runs, rerun with --batch-size 1"
                )
            return [(boxes, labels, scores)]
        if boxes.ndim == 3 and boxes.shape[0] == n and boxes.shape[-1] == 4 and labels.ndim == scores.ndim == 2:
            if labels.shape[0] != n or scores.shape[0] != n:
                raise ModelError(
                    f"detection: expected labels and scores with {n} rows like boxes {boxes.shape}, "
                    f"got {labels.shape} and {scores.shape}; check the manifest's outputs order"
                )
            return [(boxes[j], labels[j], scores[j]) for j in range(n)]
        raise ModelError(
            f"detection: expected boxes (K, 4), labels (K,), scores (K,) for one image or (N, K, 4), (N, K), (N, K) "
            f"for {n}, got {boxes.shape}, {labels.shape}, {scores.shape}; check the manifest's outputs order"
        )

    def collect(self, indices: Sequence[int], outputs: Sequence[np.ndarray]) -> None:
        """MLPerf detection rows per image (column 0: the image's position in the annotation file)."""
        from provision.validation.metrics.detection import retinanet_detections

        for index, (boxes, labels, scores) in zip(indices, self._per_image(indices, outputs), strict=True):
            if not boxes.shape[0] == labels.shape[0] == scores.shape[0]:
                raise ModelError(
                    f"detection: sample {index} ({self.names[index]}) has {boxes.shape[0]} boxes, "
                    f"{labels.shape[0]} labels and {scores.shape[0]} scores; expected equal counts"
                )
            self._rows[index] = retinanet_detections(
                self.positions[index], boxes, labels, scores, self.input_size, SCORE_THRESHOLD
            )

    def _resampled(self, order: Sequence[int], draws: npt.NDArray[np.int64]) -> tuple[Rows, dict[str, Any]]:
        """Rows and ground truth where every draw is an image of its own (repeats counted again)."""
        images: list[dict[str, Any]] = []
        truth: list[dict[str, Any]] = []
        rows: list[Rows] = []
        for k, draw in enumerate(draws.tolist()):
            sample = order[draw]
            image = self.images[self.positions[sample]]
            images.append({**image, "id": k + 1})
            for box in self._truth.get(image["id"], []):
                truth.append({**box, "id": len(truth) + 1, "image_id": k + 1})
            part = self._rows[sample].copy()
            part[:, 0] = k
            rows.append(part)
        stacked = np.concatenate(rows) if rows else np.zeros((0, 7), dtype=np.float32)
        return stacked, {"images": images, "annotations": truth, "categories": self.categories}

    def score(self) -> Score:
        """mAP in percent over the run images; ``statistic`` recomputes it on a resample of them."""
        from provision.validation.metrics.detection import coco_map

        order = sorted(self._rows)
        rows = [self._rows[i] for i in order]
        stacked = np.concatenate(rows) if rows else np.zeros((0, 7), dtype=np.float32)
        ground_truth = {"images": self.images, "annotations": self.annotations, "categories": self.categories}
        value = coco_map(stacked, ground_truth, [self.positions[i] for i in order])

        def statistic(draws: npt.NDArray[np.int64]) -> float:
            resampled, truth = self._resampled(order, np.asarray(draws, dtype=np.int64))
            return coco_map(resampled, truth, range(len(truth["images"])))

        predictions = [int(part[0, 6]) if len(part) else -1 for part in rows]
        return Score(
            value=value,
            samples=len(order),
            statistic=statistic,
            predictions=predictions,
            names=[self.names[i] for i in order],
            extra={
                "detections": int(stacked.shape[0]),
                "images_without_detections": sum(1 for part in rows if not len(part)),
                "annotations": str(self.annotations_path),
            },
        )

    def describe(self) -> dict[str, Any]:
        """Score threshold, model input size and the annotation file."""
        return {
            "task": self.name,
            "score_threshold": SCORE_THRESHOLD,
            "input_size": list(self.input_size),
            # The file's name, not its path: two caches at different roots must compare equal.
            "annotations": self.annotations_path.name,
        }
