"""KiTS19 DICE of 3D U-Net (``vision/medical_imaging/3d-unet-kits19/accuracy_kits.py``).

Label volumes hold 0 (background), 1 (kidney) and 2 (tumor). The reference one-hot encodes both
volumes, drops the background channel and scores each remaining class on its own, so "kidney" is
label 1 only (tumor voxels are not part of it): ``(2 |P ∩ T| + 1e-6) / (|P| + |T| + 1e-6)``. A
case's composite score is the mean of its kidney and tumor scores; the summary averages each over
the cases, a NaN counting as 0, and prints ``mean`` (the composite's average), ``kidney``, ``tumor``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from provision.errors import UsageError

__all__ = ["KIDNEY", "SMOOTH", "TUMOR", "DiceSummary", "dice_per_case", "dice_summary"]

KIDNEY = 1
TUMOR = 2
#: Added to numerator and denominator, so that a class absent from both volumes scores 1.
SMOOTH = 1e-6


def _labels(volume: npt.ArrayLike, what: str) -> npt.NDArray[np.int64]:
    array = np.asarray(volume)
    if array.dtype.kind == "b":
        array = array.astype(np.int64)
    elif array.dtype.kind == "f":
        if not bool(np.all(array == np.trunc(array))):
            raise UsageError(f"the {what} volume holds non-integer labels; expected 0, 1 and 2")
        array = array.astype(np.int64)
    elif array.dtype.kind not in "iu":
        raise UsageError(f"the {what} volume must hold integer labels, got dtype {array.dtype}")
    if array.size and (int(array.min()) < 0 or int(array.max()) > TUMOR):
        raise UsageError(f"the {what} volume holds labels outside 0..2 (background, kidney, tumor)")
    return array.astype(np.int64, copy=False)


def _dice(predicted: npt.NDArray[np.bool_], truth: npt.NDArray[np.bool_]) -> float:
    both = int(np.count_nonzero(predicted & truth))
    # the reference sums float64 one-hot masks: exact counts, so integer counting gives the same value
    return (2.0 * both + SMOOTH) / (int(np.count_nonzero(truth)) + int(np.count_nonzero(predicted)) + SMOOTH)


def dice_per_case(prediction: npt.ArrayLike, truth: npt.ArrayLike) -> tuple[float, float]:
    """``(kidney, tumor)`` DICE of one case's predicted label volume against the ground truth."""
    predicted = _labels(prediction, "predicted")
    expected = _labels(truth, "ground-truth")
    if predicted.shape != expected.shape:
        raise UsageError(f"prediction shape {predicted.shape} differs from ground truth shape {expected.shape}")
    kidney = _dice(predicted == KIDNEY, expected == KIDNEY)
    tumor = _dice(predicted == TUMOR, expected == TUMOR)
    return kidney, tumor


@dataclass(frozen=True, eq=False)
class DiceSummary:
    """Averages over the cases (NaN as 0) and each case's composite (mean of kidney and tumor)."""

    mean: float
    kidney: float
    tumor: float
    composite: npt.NDArray[np.float64]


def dice_summary(cases: Sequence[tuple[float, float]]) -> DiceSummary:
    """Mean DICE over cases of ``(kidney, tumor)`` scores, as the reference's ``summary.csv`` mean row."""
    if len(cases) == 0:
        raise UsageError("no cases to summarise; give at least one (kidney, tumor) pair")
    scores = np.asarray(cases, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] != 2:
        raise UsageError(f"cases must be (kidney, tumor) pairs, got shape {scores.shape}")
    composite = (scores[:, 0] + scores[:, 1]) / 2.0  # NaN when either is NaN, as the reference's np.mean
    kidney = np.nan_to_num(scores[:, 0], nan=0.0)
    tumor = np.nan_to_num(scores[:, 1], nan=0.0)
    composite = np.nan_to_num(composite, nan=0.0)
    return DiceSummary(
        mean=float(np.mean(composite)),
        kidney=float(np.mean(kidney)),
        tumor=float(np.mean(tumor)),
        composite=composite,
    )
