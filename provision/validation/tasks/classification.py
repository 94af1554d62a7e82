"""Top-1 classification over preprocessed ImageNet-format samples (MLPerf accuracy-imagenet.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from provision.errors import IntegrityError, ModelError
from provision.manifest.model import RuntimeSpec
from provision.validation.loader import npy_loader
from provision.validation.tasks.base import Score

__all__ = ["ClassificationTask", "read_val_map"]


def read_val_map(path: Path) -> tuple[list[str], list[int]]:
    """(names, labels) of a ``val_map.txt`` (``<file name> <integer label>`` per line)."""
    if not path.is_file():
        raise IntegrityError(
            f"{path}: missing; the preprocessing output has no val_map.txt (rerun 'provision preprocess')",
            path=str(path),
        )
    names: list[str] = []
    labels: list[int] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=1)
        try:
            names.append(parts[0])
            labels.append(int(parts[1]))
        except (IndexError, ValueError):
            raise IntegrityError(
                f"{path}:{number}: expected '<file name> <integer label>', got {line!r}", path=str(path)
            ) from None
    return names, labels


class ClassificationTask:
    """Top-1 over ``<name>.npy`` images listed in ``val_map.txt`` (MLPerf accuracy-imagenet.py).

    The model's first selected output is either class indices (an integer output such as the
    reference ONNX model's ``ArgMax:0``) or scores (N, classes), whose argmax is taken. The
    runtime's ``offset`` is added (``-1`` for 1001-output models whose index 0 is background),
    then each prediction is compared with the ``val_map.txt`` label.
    """

    name = "classification"

    def __init__(self, folder: Path, runtime: RuntimeSpec, limit: int | None = None) -> None:
        self.folder = folder
        self.offset = runtime.offset
        names, labels = read_val_map(folder / "val_map.txt")
        if limit is not None:
            names, labels = names[:limit], labels[:limit]
        self.names = names
        self._load = npy_loader([folder / f"{name}.npy" for name in names])
        self.labels = np.asarray(labels, dtype=np.int64)
        self._predicted: dict[int, int] = {}

    def count(self) -> int:
        """Samples in ``val_map.txt`` (the first ``limit`` of them)."""
        return len(self.names)

    def load(self, index: int) -> Sequence[np.ndarray]:
        """The preprocessed image ``<name>.npy``."""
        return self._load(index)

    def collect(self, indices: Sequence[int], outputs: Sequence[np.ndarray]) -> None:
        """Class index per sample: an integer output as it is, else the argmax over classes."""
        if not outputs:
            raise ModelError("classification: the model returned no output")
        out = np.asarray(outputs[0])
        if out.shape[:1] != (len(indices),):
            raise ModelError(
                f"classification: expected an output with {len(indices)} rows (one per sample), got shape {out.shape}"
            )
        rows = out.reshape(len(indices), -1)
        # One integer per sample is a class index (ArgMax:0); anything else is scores per class,
        # float or integer (quantised logits), whose argmax is the class.
        index_output = np.issubdtype(out.dtype, np.integer) and rows.shape[1] == 1
        classes = rows[:, 0] if index_output else rows.argmax(axis=1)
        for i, c in zip(indices, classes.tolist(), strict=True):
            self._predicted[i] = int(c) + self.offset

    def score(self) -> Score:
        """Top-1 in percent, with the success count for a Wilson interval."""
        from provision.validation.metrics.classification import top1_correct

        order = sorted(self._predicted)
        predicted = np.asarray([self._predicted[i] for i in order], dtype=np.int64)
        correct = top1_correct(predicted, self.labels[order], offset=0)
        n = len(order)
        good = int(correct.sum())
        return Score(
            value=100.0 * good / n if n else 0.0,
            samples=n,
            successes=good,
            predictions=predicted.tolist(),
            names=[self.names[i] for i in order],
            extra={"correct": good},
        )

    def describe(self) -> dict[str, Any]:
        """The label offset."""
        return {"task": self.name, "offset": self.offset}
