"""The task of each metric (:data:`TASKS`), and why a metric without one cannot be validated here."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from provision.errors import UsageError
from provision.manifest.model import Benchmark, GenerationSpec, RuntimeSpec
from provision.validation.tasks.base import DrivingTask, GenerativeTask, Task

__all__ = [
    "GENERATIVE_TASKS",
    "TASKS",
    "UNSUPPORTED",
    "GenerativeSource",
    "make_generative_task",
    "make_task",
    "unsupported",
    "unsupported_benchmark",
]


def _classification(folder: Path, runtime: RuntimeSpec, limit: int | None) -> Task:
    from provision.validation.tasks.classification import ClassificationTask

    return ClassificationTask(folder, runtime, limit)


def _detection(folder: Path, runtime: RuntimeSpec, limit: int | None) -> Task:
    from provision.validation.tasks.detection import DetectionTask

    return DetectionTask(folder, runtime, limit)


def _squad(folder: Path, runtime: RuntimeSpec, limit: int | None) -> Task:
    from provision.validation.tasks.squad import SquadTask

    return SquadTask(folder, runtime, limit)


def _segmentation(folder: Path, runtime: RuntimeSpec, limit: int | None) -> DrivingTask:
    from provision.validation.tasks.segmentation import KitsTask

    return KitsTask(folder, runtime, limit)


#: metric name -> task factory ``(preprocessed folder, runtime spec, limit) -> Task``; each
#: factory imports its module on first use (metric libraries load only when needed).
TASKS: Mapping[str, Callable[[Path, RuntimeSpec, int | None], Task | DrivingTask]] = {
    "top1": _classification,
    "map": _detection,
    "f1": _squad,
    "dice": _segmentation,
}

#: Why a metric's benchmark cannot be validated by provision on one machine (yet).
UNSUPPORTED: Mapping[str, str] = {
    "accuracy": "the RNN-T reference model is custom PyTorch code, not a TorchScript/ONNX/torchvision model",
    "auc": "DLRM v2 needs torchrec and the ~100 GB sharded checkpoint",
}


def unsupported(metric: str) -> str | None:
    """Why ``metric`` has no local validation, or ``None`` when a task exists for it."""
    if metric in TASKS:
        return None
    return UNSUPPORTED.get(metric, "large generative models are validated with their own harness")


def unsupported_benchmark(bench: Benchmark, model_formats: Sequence[str]) -> str | None:
    """Why ``bench`` cannot be validated here, or ``None``: a generative benchmark (one with
    ``[benchmark.generation]``) can; one whose models are Hugging Face checkpoints but whose manifest
    has no generation table cannot yet; otherwise its primary metric decides."""
    if bench.generation is not None:
        return None
    if bench.accuracy is None:
        return "the manifest sets no accuracy target"
    if "huggingface" in model_formats:
        return (
            f"{bench.name} has no [benchmark.generation] table: this version of provision does not generate "
            "for it (its metrics are defined, its generation settings and scorer are not)"
        )
    return unsupported(bench.accuracy.metric)


def make_task(metric: str, folder: Path, runtime: RuntimeSpec, limit: int | None) -> Task | DrivingTask:
    """The task for ``metric``; :class:`UsageError` saying why when there is none."""
    why = unsupported(metric)
    if why is not None:
        raise UsageError(f"no local validation for metric {metric!r}: {why}")
    return TASKS[metric](folder, runtime, limit)


@dataclass(frozen=True)
class GenerativeSource:
    """What a generative task reads: the fetched dataset folder, the benchmark (its metrics and
    sizes) and its generation settings; ``limit`` is ``--count``; ``model`` the checkpoint folder (a
    task that reads files of it: Whisper's spelling map)."""

    folder: Path
    bench: Benchmark
    spec: GenerationSpec
    limit: int | None
    model: Path | None = None


def _summarization(source: GenerativeSource) -> GenerativeTask:
    from provision.validation.tasks.summarization import SummarizationTask

    return SummarizationTask(source)


def _whisper(source: GenerativeSource) -> GenerativeTask:
    from provision.validation.tasks.whisper import WhisperTask

    return WhisperTask(source)


def _mixed(name: str) -> Callable[[GenerativeSource], GenerativeTask]:
    def make(source: GenerativeSource) -> GenerativeTask:
        from provision.validation.tasks.mixed import PROFILES, MixedTask

        return MixedTask(source, PROFILES[name]())

    return make


#: ``[benchmark.generation] task`` -> factory; each imports its module on first use.
GENERATIVE_TASKS: dict[str, Callable[[GenerativeSource], GenerativeTask]] = {
    "summarization": _summarization,
    "whisper": _whisper,
    **{name: _mixed(name) for name in ("mixtral", "llama3.1-405b", "deepseek-r1", "gpt-oss")},
}


def make_generative_task(source: GenerativeSource) -> GenerativeTask:
    """The generative task the benchmark's ``[benchmark.generation] task`` names."""
    factory = GENERATIVE_TASKS.get(source.spec.task)
    if factory is None:
        known = ", ".join(sorted(GENERATIVE_TASKS))
        raise UsageError(
            f"{source.bench.name}: no generative validation task {source.spec.task!r} in this version of "
            f"provision; known: {known}"
        )
    return factory(source)
