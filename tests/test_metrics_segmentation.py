"""metrics.segmentation: KiTS19 DICE per class on small 3-D volumes, and the summary over cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from provision.errors import UsageError
from provision.validation.metrics.segmentation import dice_per_case, dice_summary

# 2x2x2 volumes. Truth: kidney (1) at 001, 010; tumor (2) at 011, 100, 101.
TRUTH = np.array([[[0, 1], [1, 2]], [[2, 2], [0, 0]]], dtype=np.uint8)
# Prediction: kidney at 001, 111; tumor at 010, 011, 100.
PRED = np.array([[[0, 1], [2, 2]], [[2, 0], [0, 1]]], dtype=np.uint8)


def test_dice_per_class_by_hand() -> None:
    # kidney: 2 predicted, 2 true, 1 shared (001) -> (2*1 + 1e-6) / (2 + 2 + 1e-6)
    # tumor:  3 predicted, 3 true, 2 shared (011, 100) -> (2*2 + 1e-6) / (3 + 3 + 1e-6)
    kidney, tumor = dice_per_case(PRED, TRUTH)
    assert kidney == (2 + 1e-6) / (4 + 1e-6)
    assert tumor == (4 + 1e-6) / (6 + 1e-6)


def test_kidney_is_label_one_only() -> None:
    # were "kidney" labels 1 and 2 together, it would score 2*4/(5+5) = 0.8 here, not 0.5
    kidney, _ = dice_per_case(PRED, TRUTH)
    assert kidney == pytest.approx(0.5, abs=1e-6)


def test_class_absent_from_both_scores_one_and_from_truth_only_near_zero() -> None:
    background = np.zeros((2, 3, 4), dtype=np.int64)
    assert dice_per_case(background, background) == (1.0, 1.0)  # 1e-6 / 1e-6
    predicted = background.copy()
    predicted[0, 0, 0] = 2
    kidney, tumor = dice_per_case(predicted, background)
    assert kidney == 1.0
    assert tumor == 1e-6 / (1 + 1e-6)


def test_identical_volumes_score_one() -> None:
    kidney, tumor = dice_per_case(TRUTH, TRUTH.astype(np.float64))  # whole-number floats are labels
    assert kidney == pytest.approx(1.0)
    assert tumor == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("pred", "fragment"),
    [
        (np.zeros((2, 2, 3), dtype=np.uint8), "differs from ground truth shape"),
        (np.full((2, 2, 2), 3, dtype=np.uint8), "labels outside 0..2"),
        (np.full((2, 2, 2), 0.5), "non-integer labels"),
    ],
)
def test_dice_rejects_bad_volumes(pred: np.ndarray, fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment):
        dice_per_case(pred, TRUTH)


def test_summary_means_and_nan_as_zero() -> None:
    # composites: (0.5+1)/2 = 0.75, (0.9+0.7)/2 = 0.8, (NaN+0.4)/2 = NaN -> 0 (not 0.2: the
    # reference averages the pair before replacing NaN)
    summary = dice_summary([(0.5, 1.0), (0.9, 0.7), (math.nan, 0.4)])
    np.testing.assert_allclose(summary.composite, [0.75, 0.8, 0.0])
    assert summary.mean == pytest.approx((0.75 + 0.8 + 0.0) / 3)
    assert summary.kidney == pytest.approx((0.5 + 0.9 + 0.0) / 3)
    assert summary.tumor == pytest.approx((1.0 + 0.7 + 0.4) / 3)


def test_summary_of_computed_cases() -> None:
    cases = [dice_per_case(PRED, TRUTH), dice_per_case(TRUTH, TRUTH)]
    summary = dice_summary(cases)
    assert summary.mean == pytest.approx(((0.5 + 2 / 3) / 2 + 1.0) / 2, abs=1e-6)


def test_summary_rejects_empty_and_malformed() -> None:
    with pytest.raises(UsageError, match="no cases"):
        dice_summary([])
    with pytest.raises(UsageError, match=r"\(kidney, tumor\) pairs"):
        dice_summary([(0.1, 0.2, 0.3)])  # type: ignore[list-item]
