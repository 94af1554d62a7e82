"""Run a model on batches of numpy arrays: ONNX (onnxruntime), TorchScript, torchvision state dicts.

- :func:`open_runner` returns a :class:`Runner`; ``run`` takes one batch (arrays in the
  model's input order) and returns numpy arrays in output order; ``describe`` returns a
  JSON-ready record of the runtime, device and the determinism settings actually applied.
- torch, torchvision and onnxruntime are optional (``provision[torch]``, ``provision[vision]``,
  ``provision[onnx]``) and imported on first use; importing this module imports none of them.
- A ``pytorch`` checkpoint is either TorchScript or a state dict for a ``torchvision:<builder>``
  architecture. No other architecture is supported: a manifest never names code to import.
- torch's determinism switches (TF32, cuDNN, deterministic algorithms, thread count, seed) are
  process-wide: opening a torch runner sets them for the whole process.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import platform
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .errors import MissingDependencyError, ModelError, UsageError
from .power import nvml_gpu_name

if TYPE_CHECKING:
    pass

__all__ = [
    "FORMATS",
    "RUNTIMES",
    "Runner",
    "RunnerOptions",
    "cpu_name",
    "cuda_available",
    "open_runner",
    "resolve_device",
    "usable_cores",
]

#: Model formats :func:`open_runner` accepts.
FORMATS = ("onnx", "torchscript", "pytorch")

#: Runtimes :func:`resolve_device` knows.
RUNTIMES = ("onnxruntime", "torch")

_DEVICE = re.compile(r"auto|cpu|cuda(?::(\d+))?")
_CUDA_EP = "CUDAExecutionProvider"
_CPU_EP = "CPUExecutionProvider"
_ORT_LEVEL = "ORT_ENABLE_ALL"
_CUBLAS_WORKSPACE = ":4096:8"


@dataclass(frozen=True)
class RunnerOptions:
    """How to run a model: device, batch size, CPU threads and determinism."""

    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"; auto = cuda when the runtime sees one
    batch_size: int = 32
    threads: int | None = None  # None = every core this process may use
    allow_tf32: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if not _DEVICE.fullmatch(self.device):
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


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def cuda_available() -> bool:
    """Whether torch sees a CUDA device; ``False`` without importing anything when torch is not installed."""
    if not _installed("torch"):
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _ort_providers() -> list[str]:
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
    match = _DEVICE.fullmatch(requested)
    if match is None:
        raise UsageError(f"device {requested!r} is not one of auto, cpu, cuda, cuda:N; pick one of those")
    if runtime not in RUNTIMES:
        raise UsageError(f"runtime {runtime!r} is not one of {', '.join(RUNTIMES)}")
    if requested == "cpu":
        return "cpu"
    if runtime == "onnxruntime":
        providers = _ort_providers()
        has_cuda = _CUDA_EP in providers
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


def _cuda_index(device: str) -> int:
    return int(device.partition(":")[2] or 0)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


# ---------------------------------------------------------------------------------------------- onnxruntime


class OnnxRunner:
    """An onnxruntime session; built by :func:`open_runner` for ``fmt="onnx"``."""

    runtime = "onnxruntime"

    def __init__(self, path: Path, options: RunnerOptions, inputs: Sequence[str], outputs: Sequence[str]) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingDependencyError("onnxruntime", "onnx", "running an ONNX model") from None
        self._ort = ort
        self.path = path
        self.options = options
        self.threads = options.resolved_threads
        self.device = resolve_device(self.runtime, options.device)
        ort.set_seed(options.seed)
        self._session = self._open(self.device)
        active = self._session.get_providers()
        if self.device != "cpu" and _CUDA_EP not in active:
            if options.device != "auto":
                raise UsageError(
                    f"device {options.device!r} requested but onnxruntime could not start {_CUDA_EP} for {path} "
                    f"(active providers: {', '.join(active)}); check the CUDA/cuDNN libraries or use --device cpu"
                )
            self.device = "cpu"
            self._session = self._open("cpu")
        self._inputs = self._session.get_inputs()
        self._outputs = self._session.get_outputs()
        self.input_names = _select(path, "input", [i.name for i in self._inputs], inputs)
        self.output_names = _select(path, "output", [o.name for o in self._outputs], outputs)
        self._input_meta = {i.name: i for i in self._inputs}

    def _cuda_options(self) -> dict[str, Any]:
        return {
            "device_id": _cuda_index(self.device),
            "cudnn_conv_algo_search": "DEFAULT",  # a fixed heuristic, not timing-based EXHAUSTIVE search
            "use_tf32": int(self.options.allow_tf32),
        }

    def _open(self, device: str) -> Any:
        ort = self._ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        # The prefetching loader runs beside the session: idle runtime threads sleep, not spin, so
        # the loader thread gets a core (measured: benchmarks/validate.py).
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _ORT_LEVEL)
        so.use_deterministic_compute = True
        providers: list[Any] = [_CPU_EP]
        if device != "cpu":
            providers = [(_CUDA_EP, self._cuda_options()), _CPU_EP]
        if not self.path.is_file():
            raise ModelError(f"ONNX model {self.path} does not exist; run 'provision fetch' for the model first")
        try:
            return ort.InferenceSession(str(self.path), sess_options=so, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise ModelError(
                f"cannot load ONNX model {self.path}: {_first_line(exc)}; "
                "check the file with 'provision verify' or re-export the model"
            ) from exc

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run one batch; ``inputs`` in the order of the selected input names."""
        if self._session is None:
            raise ModelError(f"runner for {self.path.name} is closed; open it again")
        _check_count(self.path, self.input_names, inputs)
        feed: dict[str, np.ndarray] = {}
        for name, array in zip(self.input_names, inputs, strict=True):
            self._check(name, array)
            feed[name] = array
        try:
            results = self._session.run(self.output_names, feed)
        except Exception as exc:
            got = ", ".join(f"{n}: {a.dtype}{tuple(a.shape)}" for n, a in feed.items())
            raise ModelError(f"onnxruntime failed to run {self.path.name} on {got}: {_first_line(exc)}") from exc
        return [np.asarray(r) for r in results]

    def _check(self, name: str, array: np.ndarray) -> None:
        meta = self._input_meta[name]
        if not meta.type.startswith("tensor(") or meta.shape is None:
            return  # sequences and maps, or a tensor of unknown rank: onnxruntime checks them
        want = _ort_dtype(meta.type)
        shape = list(meta.shape)
        wrong_dtype = want is not None and array.dtype != want
        wrong_rank = len(shape) != array.ndim
        wrong_dims = not wrong_rank and any(
            isinstance(d, int) and d != g for d, g in zip(shape, array.shape, strict=True)
        )
        if wrong_dtype or wrong_rank or wrong_dims:
            raise ModelError(
                f"input {name!r} of {self.path.name} expects {meta.type} of shape {shape}, "
                f"got {array.dtype}{tuple(array.shape)}; fix the preprocessing output or the manifest's inputs"
            )

    def describe(self) -> dict[str, Any]:
        """Runtime, version, device, providers, threads, batch size and the determinism settings."""
        cuda = self.device != "cpu"
        return {
            "runtime": self.runtime,
            "version": self._ort.__version__,
            "format": "onnx",
            "device": self.device,
            "device_name": (nvml_gpu_name(_cuda_index(self.device)) or "unknown GPU (install provision[nvml])")
            if cuda
            else cpu_name(),
            "threads": self.threads,
            "batch_size": self.options.batch_size,
            "providers": list(self._session.get_providers()),
            "inputs": list(self.input_names),
            "outputs": list(self.output_names),
            "determinism": {
                "seed": self.options.seed,
                "graph_optimization_level": _ORT_LEVEL,
                "execution_mode": "sequential",
                "inter_op_threads": 1,
                "deterministic_compute": True,
                "tf32": bool(self.options.allow_tf32) if cuda else False,
                "cudnn_conv_algo_search": "DEFAULT" if cuda else None,
            },
        }

    def close(self) -> None:
        """Drop the session."""
        self._session = None


def _ort_dtype(type_name: str) -> np.dtype[Any] | None:
    """numpy's dtype for onnxruntime's ``tensor(float)``-style type name (``None``: no numpy equivalent)."""
    inner = type_name.removeprefix("tensor(").removesuffix(")")
    try:
        return np.dtype({"float": "float32", "double": "float64", "string": "object"}.get(inner, inner))
    except TypeError:
        return None


def _check_count(path: Path, names: Sequence[str], inputs: Sequence[np.ndarray]) -> None:
    if len(inputs) != len(names):
        raise ModelError(
            f"{path.name} takes {len(names)} input(s) ({', '.join(names)}), got {len(inputs)} array(s); "
            "match the manifest's inputs to the preprocessed arrays"
        )


def _select(path: Path, kind: str, names: list[str], wanted: Sequence[str]) -> list[str]:
    """``wanted`` checked against the model's ``names`` (all of them, in model order, when empty)."""
    if not wanted:
        return list(names)
    unknown = [w for w in wanted if w not in names]
    if unknown:
        raise ModelError(
            f"{path.name} has no {kind} {unknown[0]!r}; its {kind}s are {', '.join(repr(n) for n in names)}; "
            f"fix the manifest's {kind}s"
        )
    return list(wanted)


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
    from .runners_torch import open_torch

    return open_torch(path, fmt, options, inputs, outputs, architecture, num_classes)
