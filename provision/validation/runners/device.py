"""Where a model runs: usable CPU cores, the CPU's name, the device a runtime will use, and the
generation libraries' versions and dtypes."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import platform
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provision.errors import MissingDependencyError, UsageError

if TYPE_CHECKING:
    pass

__all__ = [
    "CUDA_EP",
    "DEVICE_PATTERN",
    "RUNTIME_NAMES",
    "cpu_name",
    "cuda_available",
    "cuda_index",
    "engine_version",
    "module_installed",
    "ort_providers",
    "resolve_device",
    "torch_dtype",
    "usable_cores",
]

#: Runtimes :func:`resolve_device` knows.
RUNTIME_NAMES = ("onnxruntime", "torch")
#: What ``--device`` accepts.
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(?::(\d+))?")


CUDA_EP = "CUDAExecutionProvider"


def usable_cores() -> int:
    """The number of CPU cores this process may run on (its affinity mask, where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def cpu_name() -> str:
    """The CPU model, from ``/proc/cpuinfo`` where it exists, else what :mod:`platform` says."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    for key in ("model name", "Model", "Hardware", "cpu model"):
        for line in text.splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == key and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def module_installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def cuda_available() -> bool:
    """Whether torch sees a CUDA device; ``False`` without importing anything when torch is not installed."""
    if not module_installed("torch"):
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def ort_providers() -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError:
        raise MissingDependencyError("onnxruntime", "onnx", "running an ONNX model") from None
    return list(ort.get_available_providers())


def resolve_device(runtime: str, requested: str) -> str:
    """Turn ``auto``/``cpu``/``cuda``/``cuda:N`` into the device ``runtime`` will use.

    ``auto`` is ``cuda`` when the runtime sees one (torch: ``torch.cuda.is_available()``;
    onnxruntime: ``CUDAExecutionProvider`` among its providers), else ``cpu``. Asking for
    ``cuda`` where the runtime has none raises :class:`UsageError` naming what exists.
    """
    match = DEVICE_PATTERN.fullmatch(requested)
    if match is None:
        raise UsageError(f"device {requested!r} is not one of auto, cpu, cuda, cuda:N; pick one of those")
    if runtime not in RUNTIME_NAMES:
        raise UsageError(f"runtime {runtime!r} is not one of {', '.join(RUNTIME_NAMES)}")
    if requested == "cpu":
        return "cpu"
    if runtime == "onnxruntime":
        providers = ort_providers()
        has_cuda = CUDA_EP in providers
        what = f"onnxruntime has providers {', '.join(providers)}"
        count = None
    else:
        try:
            import torch
        except ImportError:
            raise MissingDependencyError("torch", "torch", "running a PyTorch model") from None
        has_cuda = bool(torch.cuda.is_available())
        count = torch.cuda.device_count() if has_cuda else 0
        what = f"torch {torch.__version__} sees {count} CUDA device(s) (built for CUDA {torch.version.cuda})"
    if requested == "auto":
        return "cuda" if has_cuda else "cpu"
    if not has_cuda:
        raise UsageError(f"device {requested!r} requested but {what}; use --device cpu or auto")
    index = match.group(1)
    if index is not None and count is not None and int(index) >= count:
        raise UsageError(f"device {requested!r} requested but {what}; use cuda:0..cuda:{count - 1}")
    return requested


def cuda_index(device: str) -> int:
    return int(device.partition(":")[2] or 0)


def engine_version(engine: str, purpose: str = "generation") -> str:
    """``<distribution> <version>`` of ``engine`` (``vllm 0.11.0``); MissingDependencyError naming the extra
    (and ``purpose``) if absent."""
    try:
        return f"{engine} {importlib.metadata.version(engine)}"
    except importlib.metadata.PackageNotFoundError:
        raise MissingDependencyError(engine, "vllm" if engine == "vllm" else "llm", purpose) from None


def torch_dtype(name: str) -> Any:
    """The torch dtype of a manifest ``dtype`` name (``"auto"`` stays a string for transformers)."""
    import torch

    return {"auto": "auto", "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]
