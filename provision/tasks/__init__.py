"""Validation tasks: how a benchmark family's preprocessed samples feed a model and are scored.

A task reads the preprocessing output folder (the layout its recipe documents), hands the
runner one sample's arrays at a time (:meth:`Task.load`, called from the prefetching loader's
threads), turns each batch of model outputs into predictions (:meth:`Task.collect`, in the
consumer thread, batches in sample order) and finally scores them with MLPerf's own metric
definition (:mod:`provision.metrics`).

The task is chosen by the benchmark's primary accuracy metric (:data:`TASKS`); a benchmark
whose metric has no task here cannot be validated locally and says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import UsageError
from ..manifest import RuntimeSpec

__all__ = ["SCORING_VERSION", "TASKS", "UNSUPPORTED", "Score", "Task", "make_task", "unsupported"]

#: Bump when any task's loading, post-processing or scoring changes: stored validation
#: results made by older code then no longer match (``provision run`` validates again).
SCORING_VERSION = 1


@dataclass
class Score:
    """A task's result: ``value`` in the metric's published unit over ``samples`` samples.

    ``successes`` (proportion metrics such as top-1), ``per_sample`` (metrics that are a mean
    of per-sample values, in the metric's unit) or ``statistic`` (a metric that is not: the value
    recomputed on a resample, given as an index array into the scored samples) let
    :mod:`provision.validation` put a confidence interval on a subset;
    ``predictions`` are what the golden pins are compared with; ``names`` label the samples.
    """

    value: float
    samples: int
    successes: int | None = None
    per_sample: np.ndarray | None = None
    statistic: Callable[[np.ndarray], float] | None = None
    predictions: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


class Task(Protocol):
    """One benchmark family's sample loading, post-processing and scoring."""

    name: str

    def count(self) -> int:
        """How many samples the preprocessed folder holds."""
        ...

    def load(self, index: int) -> Sequence[np.ndarray]:
        """Sample ``index``'s input arrays, in the model's input order (thread-safe)."""
        ...

    def collect(self, indices: Sequence[int], outputs: Sequence[np.ndarray]) -> None:
        """Post-process one batch of model outputs (``outputs[k][j]`` belongs to ``indices[j]``)."""
        ...

    def score(self) -> Score:
        """The metric over every collected sample."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON-ready settings that change the score (offset, thresholds)."""
        ...


def _classification(folder: Path, runtime: RuntimeSpec, limit: int | None) -> Task:
    from .classification import ClassificationTask

    return ClassificationTask(folder, runtime, limit)


def _detection(folder: Path, runtime: RuntimeSpec, limit: int | None) -> Task:
    from .detection import DetectionTask

    return DetectionTask(folder, runtime, limit)


def _squad(folder: Path, runtime: RuntimeSpec, limit: int | None) -> Task:
    from .squad import SquadTask

    return SquadTask(folder, runtime, limit)


#: metric name -> task factory ``(preprocessed folder, runtime spec, limit) -> Task``; each
#: factory imports its module on first use (metric libraries load only when needed).
TASKS: Mapping[str, Callable[[Path, RuntimeSpec, int | None], Task]] = {
    "top1": _classification,
    "map": _detection,
    "f1": _squad,
}

#: Why a metric's benchmark cannot be validated by provision on one machine (yet).
UNSUPPORTED: Mapping[str, str] = {
    "dice": "3D U-Net needs sliding-window inference over whole KiTS19 volumes, not implemented "
    "(the DICE metric exists in provision.metrics.segmentation)",
    "accuracy": "the RNN-T reference model is custom PyTorch code, not a TorchScript/ONNX/torchvision model",
    "auc": "DLRM v2 needs torchrec and the ~100 GB sharded checkpoint",
}


def unsupported(metric: str) -> str | None:
    """Why ``metric`` has no local validation, or ``None`` when a task exists for it."""
    if metric in TASKS:
        return None
    return UNSUPPORTED.get(metric, "large generative models are validated with their own harness")


def make_task(metric: str, folder: Path, runtime: RuntimeSpec, limit: int | None) -> Task:
    """The task for ``metric``; :class:`UsageError` saying why when there is none."""
    why = unsupported(metric)
    if why is not None:
        raise UsageError(f"no local validation for metric {metric!r}: {why}")
    return TASKS[metric](folder, runtime, limit)
