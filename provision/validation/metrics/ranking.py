"""Click-through prediction of DLRM v2 (``recommendation/dlrm_v2/pytorch/tools/accuracy-dlrm.py``).

The reference collects one (prediction, label) pair per user-item row over all samples and reports
``AUC = 100 * sklearn.metrics.roc_auc_score(labels, predictions)``, the benchmark's metric, and the
share of rows whose rounded prediction equals the label (NumPy rounding: halves go to even).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from provision.errors import MissingDependencyError, UsageError

__all__ = ["roc_auc", "round_accuracy"]


def _pairs(scores: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    predicted = np.asarray(scores, dtype=np.float64).reshape(-1)
    truth = np.asarray(labels, dtype=np.float64).reshape(-1)
    if predicted.size != truth.size:
        raise UsageError(f"{predicted.size} scores but {truth.size} labels; give one score per label")
    if predicted.size == 0:
        raise UsageError("no scores to evaluate; give at least one (score, label) pair")
    return predicted, truth


def roc_auc(scores: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Area under the ROC curve in percent (scikit-learn's ``roc_auc_score``; ties count one half)."""
    predicted, truth = _pairs(scores, labels)
    try:
        from sklearn.metrics import roc_auc_score
    except ImportError:
        raise MissingDependencyError("scikit-learn", "metrics", "ROC AUC") from None
    if np.unique(truth).size != 2:
        raise UsageError("ROC AUC needs labels of exactly two classes (clicked and not clicked)")
    try:
        value = float(roc_auc_score(truth, predicted))
    except ValueError as exc:
        raise UsageError(f"ROC AUC cannot be computed: {str(exc).splitlines()[0]}") from exc
    return 100.0 * value


def round_accuracy(scores: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Share in percent of rows whose rounded score equals the label."""
    predicted, truth = _pairs(scores, labels)
    good = int(np.count_nonzero(np.round(predicted) == truth))
    return 100.0 * good / predicted.size
