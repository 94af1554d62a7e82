"""Confidence intervals for accuracy measured on a sample of the data.

- :func:`wilson_interval`: Wilson's score interval of a proportion (top-1, exact match, any share
  of good samples), as fractions;
- :func:`bootstrap_interval`: percentile bootstrap of the mean of per-sample values (per-question
  F1, per-sample ROUGE, per-case DICE), in the values' unit;
- :func:`bootstrap_statistic`: the same for any statistic of resampled sample indices (mAP, AUC,
  WER as a ratio of sums), which the callable computes from the index array it is given.

Bootstraps draw from ``numpy.random.default_rng(seed)``, one index array of ``n`` draws with
replacement per resample, so a seed gives the same interval every time, and
``bootstrap_interval(v)`` equals ``bootstrap_statistic(len(v), lambda i: v[i].mean())``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from provision.errors import UsageError

__all__ = ["bootstrap_interval", "bootstrap_statistic", "normal_quantile", "wilson_interval"]


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise UsageError(f"confidence must lie strictly between 0 and 1 (e.g. 0.99), got {confidence}")


def normal_quantile(confidence: float) -> float:
    """The two-sided standard normal quantile ``z`` for ``confidence`` (2.5758... for 0.99)."""
    _check_confidence(confidence)
    return NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)


def wilson_interval(successes: int, n: int, confidence: float = 0.99) -> tuple[float, float]:
    """Wilson score interval ``(low, high)`` of the proportion ``successes / n``, as fractions.

    With ``p = k/n`` and ``z`` the two-sided normal quantile: centre ``(p + z²/2n) / (1 + z²/n)``,
    half-width ``z / (1 + z²/n) * sqrt(p(1-p)/n + z²/4n²)``. ``k = 0`` gives a low end of exactly 0
    and ``k = n`` a high end of exactly 1.
    """
    if n <= 0:
        raise UsageError(f"a proportion needs at least one trial, got n={n}")
    if not 0 <= successes <= n:
        raise UsageError(f"successes must lie between 0 and n={n}, got {successes}")
    z = normal_quantile(confidence)
    p = successes / n
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n))
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def _resamples(n: int, resamples: int, seed: int) -> Iterator[npt.NDArray[np.int64]]:
    if n <= 0:
        raise UsageError(f"a bootstrap needs at least one sample, got n={n}")
    if resamples < 1:
        raise UsageError(f"resamples must be at least 1, got {resamples}")
    generator = np.random.default_rng(seed)
    for _ in range(resamples):
        yield generator.integers(0, n, size=n, dtype=np.int64)


def _percentile_interval(statistics: npt.NDArray[np.float64], confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(statistics, [tail, 1.0 - tail])
    return float(low), float(high)


def bootstrap_statistic(
    n: int,
    statistic: Callable[[npt.NDArray[np.int64]], float],
    confidence: float = 0.99,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over ``n`` samples.

    Each resample draws ``n`` sample indices with replacement and calls ``statistic(indices)``; the
    interval holds the central ``confidence`` share of those values.
    """
    _check_confidence(confidence)
    values = np.fromiter((float(statistic(indices)) for indices in _resamples(n, resamples, seed)), np.float64)
    return _percentile_interval(values, confidence)


def bootstrap_interval(
    values: npt.ArrayLike,
    confidence: float = 0.99,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-sample ``values`` (same unit as the values)."""
    _check_confidence(confidence)
    sample = np.asarray(values, dtype=np.float64).reshape(-1)
    if not bool(np.all(np.isfinite(sample))):
        raise UsageError("per-sample values must be finite numbers (found NaN or infinity)")
    resampled = _resamples(sample.size, resamples, seed)
    means = np.fromiter((float(sample[indices].mean()) for indices in resampled), np.float64)
    return _percentile_interval(means, confidence)
