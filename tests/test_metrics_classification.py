"""metrics.classification: top-1 with the background offset; the metric registry of the package."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

import provision.validation.metrics.registry as metrics
from provision.errors import UsageError
from provision.manifest.model import KNOWN_METRICS
from provision.validation.metrics.classification import top1, top1_correct
from provision.validation.metrics.registry import METRICS, MetricInfo

# Arg-maxes of a 1001-output ResNet-50 (index 0 = background) and the 0-based val_map labels.
PREDICTED = [1, 500, 1000, 0, 3]
LABELS = [0, 499, 999, 999, 3]


def test_top1_with_background_offset() -> None:
    # with offset -1 the classes are 0, 499, 999, -1, 2: the first three match, the last two do not
    # -> 3 good of 5 = 60 %
    assert top1_correct(PREDICTED, LABELS, offset=-1).tolist() == [True, True, True, False, False]
    assert top1(PREDICTED, LABELS, offset=-1) == 60.0


def test_top1_without_offset() -> None:
    # unshifted, only the last sample (3 == 3) matches -> 1 of 5 = 20 %
    assert top1(PREDICTED, LABELS) == 20.0
    assert top1_correct(PREDICTED, LABELS).dtype == np.bool_


def test_top1_accepts_a_float32_payload() -> None:
    # the MLPerf log stores the class as float32; whole numbers are class indices
    assert top1(np.array([0.0, 499.0], dtype=np.float32), [0, 1]) == 50.0


@pytest.mark.parametrize(
    ("predicted", "labels", "fragment"),
    [
        ([1, 2], [1], "2 predictions but 1 labels"),
        ([], [], "no predictions to score"),
        ([0.5, 1.0], [0, 1], "whole class indices"),
        ([[1, 2]], [[1, 2]], "1-D sequence"),
    ],
)
def test_top1_rejects_bad_input(predicted: list[Any], labels: list[Any], fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment) as info:
        top1(predicted, labels)
    assert "\n" not in str(info.value)


# --- the registry ---------------------------------------------------------------------------


def test_registry_names_every_manifest_metric() -> None:
    assert set(METRICS) == set(KNOWN_METRICS)
    for name, info in METRICS.items():
        assert info.name == name
        assert info.description


@pytest.mark.parametrize(
    ("name", "unit", "higher"),
    [
        ("top1", "%", True),
        ("map", "%", True),
        ("f1", "%", True),
        ("exact_match", "%", True),
        ("dice", "", True),
        ("wer", "%", False),
        ("accuracy", "%", True),
        ("auc", "%", True),
        ("rougel", "%", True),
        ("rougelsum", "%", True),
        ("gen_len", "characters", True),
        ("tokens_per_sample", "tokens", True),
        ("fid_score", "", False),
    ],
)
def test_registry_units_and_direction(name: str, unit: str, higher: bool) -> None:
    assert (METRICS[name].unit, METRICS[name].higher_is_better) == (unit, higher)


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        METRICS["new"] = MetricInfo("new", "%", True, "x")  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        METRICS["top1"].unit = "fraction"  # type: ignore[misc]


def test_public_names_are_exported() -> None:
    for name in metrics.__all__:
        assert hasattr(metrics, name), name
