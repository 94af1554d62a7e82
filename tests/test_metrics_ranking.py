"""metrics.ranking: ROC AUC (pair counting by hand) and the rounded-prediction accuracy of DLRM."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from provision.errors import MissingDependencyError, UsageError
from provision.validation.metrics.ranking import roc_auc, round_accuracy

needs_sklearn = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="needs scikit-learn")


@needs_sklearn
def test_auc_with_ties_by_pair_counting() -> None:
    # positives score 0.4 and 0.8, negatives 0.1 and 0.4. Of the 4 (positive, negative) pairs,
    # 0.4>0.1, 0.8>0.1, 0.8>0.4 are won and 0.4=0.4 is a tie worth 1/2 -> 3.5/4 = 87.5 %
    assert roc_auc([0.1, 0.4, 0.4, 0.8], [0, 0, 1, 1]) == pytest.approx(87.5)


@needs_sklearn
def test_auc_larger_set_with_ties() -> None:
    # positives 0.9, 0.5, 0.5; negatives 0.5, 0.2, 0.2, 0.9.
    # 0.9 beats 0.5, 0.2, 0.2 and ties 0.9: 3.5; each 0.5 beats 0.2, 0.2, ties 0.5, loses 0.9: 2.5
    # -> (3.5 + 2.5 + 2.5) / (3 * 4) = 8.5/12
    scores = [0.9, 0.5, 0.5, 0.5, 0.2, 0.2, 0.9]
    labels = [1, 1, 1, 0, 0, 0, 0]
    assert roc_auc(scores, labels) == pytest.approx(100 * 8.5 / 12)


@needs_sklearn
def test_auc_perfect_and_reversed() -> None:
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9], dtype=np.float32), [0, 0, 1, 1]) == 100.0
    assert roc_auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0


@needs_sklearn
def test_auc_needs_both_classes() -> None:
    with pytest.raises(UsageError, match="exactly two classes"):
        roc_auc([0.1, 0.9], [1, 1])


def test_auc_rejects_mismatched_lengths() -> None:
    with pytest.raises(UsageError, match="3 scores but 2 labels"):
        roc_auc([0.1, 0.2, 0.3], [0, 1])


def test_missing_scikit_learn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn.metrics", None)
    with pytest.raises(MissingDependencyError, match=r"ROC AUC needs scikit-learn.*provision\[metrics\]"):
        roc_auc([0.1, 0.9], [0, 1])


def test_round_accuracy_rounds_half_to_even() -> None:
    # rounded: 0, 0 (0.5 goes to even 0), 1, 1, 2 -> against labels 0, 0, 1, 0, 1: first three right
    scores = [0.2, 0.5, 0.51, 0.9, 1.5]
    labels = [0, 0, 1, 0, 1]
    assert round_accuracy(scores, labels) == 60.0


def test_round_accuracy_rejects_empty() -> None:
    with pytest.raises(UsageError, match="no scores"):
        round_accuracy([], [])
