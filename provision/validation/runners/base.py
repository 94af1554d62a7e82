"""What every runner shares: the options, the protocol, the formats and runtimes provision runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from provision.errors import ModelError, UsageError
from provision.validation.runners.device import DEVICE_PATTERN, usable_cores

if TYPE_CHECKING:
    pass

__all__ = ["CUBLAS_WORKSPACE", "FORMATS", "Runner", "RunnerOptions", "check_count", "first_line"]


#: Model formats :func:`open_runner` accepts.
FORMATS = ("onnx", "torchscript", "pytorch")


CUBLAS_WORKSPACE = ":4096:8"


@dataclass(frozen=True)
class RunnerOptions:
    """How to run a model: device, batch size, CPU threads and determinism."""

    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"; auto = cuda when the runtime sees one
    batch_size: int = 32
    threads: int | None = None  # None = every core this process may use
    allow_tf32: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if not DEVICE_PATTERN.fullmatch(self.device):
            raise UsageError(f"device {self.device!r} is not one of auto, cpu, cuda, cuda:N; pick one of those")
        if self.batch_size < 1:
            raise UsageError(f"batch size must be at least 1, got {self.batch_size}")
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"threads must be at least 1 (or unset for every core), got {self.threads}")

    @property
    def resolved_threads(self) -> int:
        """``threads``, or every usable core when unset."""
        return self.threads if self.threads is not None else usable_cores()


class Runner(Protocol):
    """A loaded model that runs one batch at a time."""

    runtime: str  # "onnxruntime" | "torch"
    device: str  # resolved: "cpu" | "cuda" | "cuda:N"

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run one batch: ``inputs`` in the model's input order; outputs as numpy arrays in output order."""
        ...  # pragma: no cover - protocol

    def describe(self) -> dict[str, Any]:
        """A JSON-ready record of runtime, device, threads, batch size and determinism settings."""
        ...  # pragma: no cover - protocol

    def close(self) -> None:
        """Release the model (and its device memory)."""
        ...  # pragma: no cover - protocol


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def check_count(path: Path, names: Sequence[str], inputs: Sequence[np.ndarray]) -> None:
    if len(inputs) != len(names):
        raise ModelError(
            f"{path.name} takes {len(names)} input(s) ({', '.join(names)}), got {len(inputs)} array(s); "
            "match the manifest's inputs to the preprocessed arrays"
        )
