"""Opening a model file with the runner for its format (onnxruntime or torch), imported on first use."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from provision.errors import UsageError
from provision.validation.runners.base import FORMATS, Runner, RunnerOptions
from provision.validation.runners.onnx import OnnxRunner

if TYPE_CHECKING:
    pass

__all__ = ["open_runner"]


def open_runner(
    path: Path,
    fmt: str,
    options: RunnerOptions,
    *,
    inputs: Sequence[str] = (),
    outputs: Sequence[str] = (),
    architecture: str | None = None,
    num_classes: int | None = None,
) -> Runner:
    """Load the model at ``path`` (``fmt`` one of :data:`FORMATS`) for inference with ``options``.

    ``inputs``/``outputs`` name the model's inputs and outputs to use (empty: all, in model
    order; for torch they name dict outputs and fix the input count). ``architecture``
    (``"torchvision:<builder>"``) and ``num_classes`` describe a ``pytorch`` state dict.
    """
    if fmt not in FORMATS:
        raise UsageError(f"model format {fmt!r} is not one of {', '.join(FORMATS)}")
    if architecture is not None and fmt != "pytorch":
        raise UsageError(f"architecture {architecture!r} only applies to format 'pytorch', not {fmt!r}")
    if fmt == "onnx":
        return OnnxRunner(path, options, inputs, outputs)
    from provision.validation.runners.torch import open_torch

    return open_torch(path, fmt, options, inputs, outputs, architecture, num_classes)
