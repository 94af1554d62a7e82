"""What every task shares: the score it returns, the protocol it follows, the scoring version."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from provision.validation.runners.base import Runner
    from provision.validation.runners.generate import Generated

__all__ = ["SCORING_VERSION", "DrivingTask", "GenerativeTask", "Score", "Task", "in_order"]


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
    ``more`` holds the other metrics of the same run by metric name (ROUGE-2, ROUGE-L and tokens per
    sample beside ROUGE-1), each judged against its own targets. ``notes`` go into the verdict as they
    are; ``unjudged`` names metrics of the benchmark the task could not compute, with the reason.
    """

    value: float
    samples: int
    successes: int | None = None
    per_sample: np.ndarray | None = None
    statistic: Callable[[np.ndarray], float] | None = None
    predictions: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    more: dict[str, Score] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unjudged: dict[str, str] = field(default_factory=dict)


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


@runtime_checkable
class DrivingTask(Protocol):
    """A task that calls the runner itself, one sample at a time: a sample is more than one model
    call (3D U-Net's sliding window runs many patches over one volume and blends them)."""

    name: str

    def count(self) -> int:
        """How many samples the preprocessed folder holds."""
        ...

    def run_sample(self, runner: Runner, index: int) -> None:
        """Run sample ``index`` through ``runner`` (as many calls as it needs) and post-process it."""
        ...

    def score(self) -> Score:
        """The metric over every sample run."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON-ready settings that change the score."""
        ...


@runtime_checkable
class GenerativeTask(Protocol):
    """A task whose model generates: a batch of inputs goes to a generation engine of ``kind``
    (``text``: token ids or prompt text; ``speech``: audio), and the generations come back."""

    name: str
    kind: str

    def count(self) -> int:
        """How many samples the dataset file holds (after ``--count``)."""
        ...

    def inputs(self, indices: Sequence[int]) -> list[Any]:
        """The engine inputs of samples ``indices``, in that order."""
        ...

    def collect(self, indices: Sequence[int], outputs: Sequence[Generated]) -> None:
        """Post-process one batch of generations (``outputs[j]`` belongs to ``indices[j]``)."""
        ...

    def score(self) -> Score:
        """The primary metric over every collected sample, the others in ``Score.more``."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON-ready settings that change the score (file, columns, post-processing)."""
        ...


def in_order(
    generated: Mapping[int, Generated], n: int, missing: str = "samples have no generation"
) -> list[Generated]:
    """The generations of samples ``0..n-1`` in order; UsageError (``"<count> <missing> (first: i)"``) when any
    sample has none."""
    from provision.errors import UsageError

    absent = [i for i in range(n) if i not in generated]
    if absent:
        raise UsageError(f"{len(absent)} {missing} (first: {absent[0]})")
    return [generated[i] for i in range(n)]
