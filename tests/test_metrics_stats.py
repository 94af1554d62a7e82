"""metrics.stats: Wilson intervals against the formula, bootstrap determinism and coverage."""

from __future__ import annotations

import numpy as np
import pytest

from provision.errors import UsageError
from provision.validation.metrics.stats import bootstrap_interval, bootstrap_statistic, normal_quantile, wilson_interval

Z99 = 2.5758293035489  # two-sided 99 %: the normal 0.995 quantile


def test_normal_quantile() -> None:
    assert normal_quantile(0.99) == pytest.approx(Z99, abs=1e-12)
    assert normal_quantile(0.95) == pytest.approx(1.959963984540054, abs=1e-12)


def test_wilson_by_the_formula() -> None:
    # k = 90, n = 100, p = 0.9, z² = 6.634896: centre = (90 + z²/2) / (100 + z²) = 0.875112;
    # half-width = z * sqrt(n) / (n + z²) * sqrt(p(1-p) + z²/4n) = 0.241556 * 0.326477 = 0.078863
    # -> (0.796249, 0.953974)
    low, high = wilson_interval(90, 100, confidence=0.99)
    assert low == pytest.approx(0.796249, abs=5e-7)
    assert high == pytest.approx(0.953974, abs=5e-7)


def test_wilson_edges() -> None:
    # k = 0: the low end is 0 and the high end z² / (n + z²); k = n mirrors it
    z2 = Z99 * Z99
    low, high = wilson_interval(0, 100)
    assert low == 0.0
    assert high == pytest.approx(z2 / (100 + z2))  # 0.062221
    low, high = wilson_interval(100, 100)
    assert low == pytest.approx(100 / (100 + z2))  # 0.937779
    assert high == 1.0
    low, high = wilson_interval(1, 1)
    assert 0.0 < low < high == 1.0


def test_wilson_narrows_with_more_samples_and_lower_confidence() -> None:
    small = wilson_interval(90, 100)
    large = wilson_interval(9000, 10000)
    assert large[1] - large[0] < small[1] - small[0]
    loose = wilson_interval(90, 100, confidence=0.9)
    assert loose[1] - loose[0] < small[1] - small[0]


@pytest.mark.parametrize(
    ("successes", "n", "confidence", "fragment"),
    [
        (1, 0, 0.99, "at least one trial"),
        (5, 4, 0.99, "between 0 and n=4"),
        (-1, 4, 0.99, "between 0 and n=4"),
        (1, 4, 1.0, "strictly between 0 and 1"),
        (1, 4, 0.0, "strictly between 0 and 1"),
    ],
)
def test_wilson_rejects_bad_input(successes: int, n: int, confidence: float, fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment):
        wilson_interval(successes, n, confidence)


VALUES = np.random.default_rng(42).uniform(0, 100, size=300)


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    first = bootstrap_interval(VALUES, seed=7, resamples=500)
    assert bootstrap_interval(VALUES, seed=7, resamples=500) == first
    assert bootstrap_interval(VALUES, seed=8, resamples=500) != first


def test_bootstrap_interval_contains_the_mean() -> None:
    low, high = bootstrap_interval(VALUES)
    assert low < float(np.mean(VALUES)) < high
    # about z * sd / sqrt(n) either side: sd of U(0, 100) ~ 28.9 -> half-width ~ 2.58 * 28.9 / 17.3 ~ 4.3
    assert 2.0 < (high - low) / 2 < 7.0


def test_bootstrap_of_constant_values_is_a_point() -> None:
    assert bootstrap_interval([5.0, 5.0, 5.0], resamples=50) == (5.0, 5.0)


def test_bootstrap_statistic_matches_the_mean_interval() -> None:
    by_mean = bootstrap_interval(VALUES, resamples=300, seed=3)
    by_statistic = bootstrap_statistic(len(VALUES), lambda idx: float(VALUES[idx].mean()), resamples=300, seed=3)
    assert by_statistic == pytest.approx(by_mean)


def test_bootstrap_statistic_of_a_ratio_of_sums() -> None:
    # a WER-like statistic: errors and words per sample, ratio of the resampled totals
    rng = np.random.default_rng(0)
    words = rng.integers(5, 30, size=200)
    errors = rng.binomial(words, 0.1)
    ratio = float(errors.sum() / words.sum())
    low, high = bootstrap_statistic(200, lambda idx: float(errors[idx].sum() / words[idx].sum()), resamples=400)
    assert low < ratio < high


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"values": []}, "at least one sample"),
        ({"values": [1.0, float("nan")]}, "finite"),
        ({"values": [1.0], "resamples": 0}, "resamples must be at least 1"),
        ({"values": [1.0], "confidence": 1.5}, "strictly between 0 and 1"),
    ],
)
def test_bootstrap_rejects_bad_input(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment):
        bootstrap_interval(**kwargs)  # type: ignore[arg-type]
