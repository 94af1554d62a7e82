"""The generation side of validation: which checkpoint folder, which engine, and the batched loop.

A generative benchmark (one with ``[benchmark.generation]``) is validated on the published
dataset file itself (MLPerf ships it tokenised), not on a preprocessing run: the dataset's
digest takes the preprocessing key's place in the result key. Its model is a ``huggingface``
checkpoint folder run by a generation engine (:mod:`provision.validation.runners.generate`).
:func:`generate_all` feeds the task's inputs to the engine in batches, in sample order, and
counts prompt and generated tokens for the throughput figures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.errors import UsageError
from provision.manifest.model import Artifact, Benchmark, Catalog
from provision.progress import Progress
from provision.validation.runners.generate import Engine
from provision.validation.tasks.base import GenerativeTask

__all__ = [
    "GENERATIVE_FORMATS",
    "TokenCounts",
    "checkpoint_folder",
    "choose_generative_model",
    "dataset_key",
    "generate_all",
]

#: Model formats a generation engine loads (a Hugging Face checkpoint folder).
GENERATIVE_FORMATS = ("huggingface",)


def dataset_key(data_digest: str) -> str:
    """The name a generative benchmark's results folder takes from its dataset digest
    (``<cache>/preprocessed/<benchmark>/dataset-<hex>.validation/``), where a preprocessing run's
    results take its key."""
    return "dataset-" + data_digest.partition(":")[2]


def choose_generative_model(catalog: Catalog, bench: Benchmark, model: str | None) -> Artifact:
    """``model``, or the benchmark's first Hugging Face checkpoint; UsageError when there is none."""
    if model is not None:
        if model not in bench.models:
            known = ", ".join(bench.models) or "none"
            raise UsageError(f"{bench.name} has no model {model!r}; its models: {known}")
        art = catalog.artifacts[model]
        if art.format not in GENERATIVE_FORMATS:
            raise UsageError(
                f"model {art.name} is in format {art.format!r}; generation runs huggingface checkpoint folders"
            )
        return art
    for name in bench.models:
        if catalog.artifacts[name].format in GENERATIVE_FORMATS:
            return catalog.artifacts[name]
    raise UsageError(f"{bench.name} has no huggingface checkpoint among its models ({', '.join(bench.models)})")


def checkpoint_folder(root: Path, model: Artifact) -> Path:
    """The folder holding ``config.json``: ``[model.runtime] file`` when set, else the model's only
    folder entry (an R2 folder such as ``llama3_1_8b/``), else the artifact folder itself."""
    if model.runtime is not None and model.runtime.file:
        folder = root / model.runtime.file
    else:
        folders = [f for f in model.files if f.is_folder]
        folder = root / folders[0].name.rstrip("/") if len(folders) == 1 and len(model.files) == 1 else root
    if not (folder / "config.json").is_file():
        raise UsageError(
            f"{folder}: no config.json; a huggingface model needs its checkpoint folder "
            "(set [model.runtime] file = '<folder>' in its manifest)"
        )
    return folder


@dataclass
class TokenCounts:
    """Prompt and generated tokens of a run, and the seconds the engine took."""

    prompt: int = 0
    generated: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """Totals and rates (tokens/s over the engine's wall time)."""
        return {
            "prompt_tokens": self.prompt,
            "generated_tokens": self.generated,
            "prompt_tokens_per_second": self.rate(self.prompt),
            "generated_tokens_per_second": self.rate(self.generated),
        }

    def rate(self, tokens: int) -> float | None:
        """``tokens`` per second of engine time (None before any time passed)."""
        return tokens / self.seconds if self.seconds > 0 else None


def generate_all(
    task: GenerativeTask, engine: Engine, spec: Any, batch_size: int, progress: Progress, key: str
) -> TokenCounts:
    """Every sample of ``task`` through ``engine`` in batches of ``batch_size``, in sample order."""
    counts = TokenCounts()
    n = task.count()
    start = time.perf_counter()
    for first in range(0, n, batch_size):
        indices = list(range(first, min(n, first + batch_size)))
        outputs = engine.generate(task.inputs(indices), spec)
        if len(outputs) != len(indices):
            raise UsageError(f"the engine returned {len(outputs)} generations for {len(indices)} prompts")
        task.collect(indices, outputs)
        counts.prompt += sum(o.prompt_tokens for o in outputs)
        counts.generated += sum(len(o.token_ids) for o in outputs)
        progress.advance(key, len(indices))
    counts.seconds = time.perf_counter() - start
    return counts
