"""Top-1 accuracy of image classification (MLPerf ``tools/accuracy-imagenet.py``).

MLPerf's post-processor adds an offset to the model's arg-max before it is logged: ``-1`` for the
TF/ONNX ResNet-50 models, whose 1001 outputs start with a background class, ``0`` for models with
1000 outputs. The accuracy script then counts a sample as good when the logged class equals the
0-based label of ``val_map.txt``, and prints ``100 * good / n``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from provision.errors import UsageError

__all__ = ["top1", "top1_correct"]


def _class_indices(values: npt.ArrayLike, what: str) -> npt.NDArray[np.int64]:
    """``values`` as a 1-D int64 array; whole-numbered floats (a float32 payload) are accepted."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise UsageError(f"{what} must be a 1-D sequence of class indices, got shape {array.shape}")
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    if array.dtype.kind == "f" and bool(np.all(np.isfinite(array) & (array == np.trunc(array)))):
        return array.astype(np.int64)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    raise UsageError(f"{what} must hold whole class indices, got dtype {array.dtype}")


def top1_correct(predicted: npt.ArrayLike, labels: npt.ArrayLike, offset: int = 0) -> npt.NDArray[np.bool_]:
    """Per sample, whether ``predicted + offset`` equals the label.

    ``predicted`` are the model's raw arg-max class indices; ``offset`` is added first (``-1`` for
    1001-output models whose index 0 is background). Raises :class:`UsageError` for empty input or
    lengths that differ.
    """
    pred = _class_indices(predicted, "predicted classes")
    truth = _class_indices(labels, "labels")
    if pred.size != truth.size:
        raise UsageError(f"{pred.size} predictions but {truth.size} labels; give one prediction per label")
    if pred.size == 0:
        raise UsageError("no predictions to score; top-1 accuracy needs at least one sample")
    correct: npt.NDArray[np.bool_] = (pred + int(offset)) == truth
    return correct


def top1(predicted: npt.ArrayLike, labels: npt.ArrayLike, offset: int = 0) -> float:
    """Top-1 accuracy in percent, ``100 * good / n`` (see :func:`top1_correct` for the arguments)."""
    correct = top1_correct(predicted, labels, offset)
    return 100.0 * int(np.count_nonzero(correct)) / correct.size
