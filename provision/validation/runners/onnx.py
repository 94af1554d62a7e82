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

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from provision.errors import MissingDependencyError, ModelError, UsageError
from provision.validation.power import nvml_gpu_name
from provision.validation.runners.base import RunnerOptions, check_count, first_line
from provision.validation.runners.device import CUDA_EP, cpu_name, cuda_index, resolve_device

if TYPE_CHECKING:
    pass

__all__: list[str] = []


_CPU_EP = "CPUExecutionProvider"
_ORT_LEVEL = "ORT_ENABLE_ALL"


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
        if self.device != "cpu" and CUDA_EP not in active:
            if options.device != "auto":
                raise UsageError(
                    f"device {options.device!r} requested but onnxruntime could not start {CUDA_EP} for {path} "
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
            "device_id": cuda_index(self.device),
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
            providers = [(CUDA_EP, self._cuda_options()), _CPU_EP]
        if not self.path.is_file():
            raise ModelError(f"ONNX model {self.path} does not exist; run 'provision fetch' for the model first")
        try:
            return ort.InferenceSession(str(self.path), sess_options=so, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise ModelError(
                f"cannot load ONNX model {self.path}: {first_line(exc)}; "
                "check the file with 'provision verify' or re-export the model"
            ) from exc

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run one batch; ``inputs`` in the order of the selected input names."""
        if self._session is None:
            raise ModelError(f"runner for {self.path.name} is closed; open it again")
        check_count(self.path, self.input_names, inputs)
        feed: dict[str, np.ndarray] = {}
        for name, array in zip(self.input_names, inputs, strict=True):
            self._check(name, array)
            feed[name] = array
        try:
            results = self._session.run(self.output_names, feed)
        except Exception as exc:
            got = ", ".join(f"{n}: {a.dtype}{tuple(a.shape)}" for n, a in feed.items())
            raise ModelError(f"onnxruntime failed to run {self.path.name} on {got}: {first_line(exc)}") from exc
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
            "device_name": (nvml_gpu_name(cuda_index(self.device)) or "unknown GPU (install provision[nvml])")
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
