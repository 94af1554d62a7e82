"""Which models provision can run, and with which runtime: the choice run, validate, audit and doctor share.

Light on purpose (no numpy, no runtime imported): doctor and audit ask it without loading validation."""

from __future__ import annotations

import importlib.metadata

from provision.errors import UsageError
from provision.manifest.model import Artifact, Benchmark, Catalog

__all__ = ["RUNTIMES", "RUNTIME_DISTRIBUTIONS", "default_model", "runnable_models"]


#: Model format -> the runtime that runs it.
RUNTIMES = {"onnx": "onnxruntime", "torchscript": "torch", "pytorch": "torch"}


#: Distributions that provide each runtime's module (onnxruntime ships as several builds).
RUNTIME_DISTRIBUTIONS = {
    "onnxruntime": (
        "onnxruntime",
        "onnxruntime-gpu",
        "onnxruntime-directml",
        "onnxruntime-openvino",
        "onnxruntime-qnn",
    ),
    "torch": ("torch",),
}


def runtime_version(runtime: str) -> str:
    """``<distribution> <version>`` of the installed runtime (e.g. ``onnxruntime-gpu 1.20.1``)."""
    for dist in RUNTIME_DISTRIBUTIONS[runtime]:
        try:
            return f"{dist} {importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    from provision.errors import MissingDependencyError

    extra = "onnx" if runtime == "onnxruntime" else "torch"
    raise MissingDependencyError(runtime, extra, "validation")


def runnable_models(catalog: Catalog, bench: Benchmark) -> list[str]:
    """``bench``'s models in a format provision can run (onnx, torchscript, pytorch), in manifest order."""
    return [m for m in bench.models if catalog.artifacts[m].format in RUNTIMES]


def default_model(catalog: Catalog, bench: Benchmark) -> str | None:
    """The model ``run``, ``audit`` and ``doctor`` take by default: the first runnable one, else the first."""
    if bench.generation is not None:  # a generative benchmark runs its first Hugging Face checkpoint
        checkpoints = [m for m in bench.models if catalog.artifacts[m].format == "huggingface"]
        if checkpoints:
            return checkpoints[0]
    runnable = runnable_models(catalog, bench)
    return runnable[0] if runnable else (bench.models[0] if bench.models else None)


def choose_model(catalog: Catalog, bench: Benchmark, model: str | None) -> Artifact:
    if model is None:
        runnable = runnable_models(catalog, bench)
        if not runnable:
            raise UsageError(f"{bench.name} has no model provision can run (onnx, torchscript, pytorch)")
        model = runnable[0]
    if model not in bench.models:
        raise UsageError(f"{bench.name} has no model {model!r}; its models: {', '.join(bench.models) or 'none'}")
    return catalog.artifacts[model]
