"""The torch side of :mod:`provision.validation.runners`: TorchScript files and torchvision state dicts.

Imported by :func:`provision.validation.runners.open.open_runner` only when a torch model is opened; torch and
torchvision themselves are imported inside the functions (optional extras).
"""

from __future__ import annotations

import difflib
import importlib
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from provision.errors import MissingDependencyError, ModelError
from provision.validation.runners.base import CUBLAS_WORKSPACE, RunnerOptions, check_count, first_line
from provision.validation.runners.device import cpu_name, cuda_index, resolve_device

if TYPE_CHECKING:
    import torch

__all__ = ["TorchRunner", "open_torch"]


def _require(module: str, extra: str, purpose: str) -> None:
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``provision[extra]``."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(module, extra, purpose) from None


def _legacy_flag(read: Any) -> Any:
    try:
        return read()
    except RuntimeError:  # torch >= 2.9 refuses legacy reads after the new fp32_precision API was used
        return None


def _apply_determinism(options: RunnerOptions, device: str, threads: int) -> dict[str, Any]:
    """Set torch's process-wide determinism switches and read back what is in force."""
    import torch

    torch.manual_seed(options.seed)
    tf32 = options.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    if device == "cpu":
        torch.set_num_threads(threads)
    else:
        # cuBLAS is only deterministic with a fixed workspace; read when CUDA initialises.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    return {
        "seed": options.seed,
        "tf32_matmul": _legacy_flag(lambda: bool(torch.backends.cuda.matmul.allow_tf32)),
        "tf32_cudnn": _legacy_flag(lambda: bool(torch.backends.cudnn.allow_tf32)),
        "float32_matmul_precision": _legacy_flag(torch.get_float32_matmul_precision),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "deterministic_algorithms": bool(torch.are_deterministic_algorithms_enabled()),
        "deterministic_warn_only": bool(torch.is_deterministic_algorithms_warn_only_enabled()),
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }


@dataclass(eq=False)
class TorchRunner:
    """A torch module in eval mode; built by :func:`open_runner` for ``torchscript`` and ``pytorch``."""

    module: torch.nn.Module | None
    path: Path
    fmt: str
    device: str
    options: RunnerOptions
    determinism: dict[str, Any]
    input_names: list[str]
    output_names: list[str]
    architecture: str | None
    runtime: str = field(default="torch", init=False)

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        import torch

        if not array.flags.writeable:  # torch.from_numpy warns on read-only (memory-mapped) arrays
            array = array.copy()
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run one batch (positional inputs) under ``torch.inference_mode()``."""
        import torch

        if self.module is None:
            raise ModelError(f"runner for {self.path.name} is closed; open it again")
        if self.input_names:
            check_count(self.path, self.input_names, inputs)
        with torch.inference_mode():
            tensors = [self._tensor(a) for a in inputs]
            try:
                result = self.module(*tensors)
            except Exception as exc:
                got = ", ".join(f"{a.dtype}{tuple(a.shape)}" for a in inputs)
                raise ModelError(f"torch failed to run {self.path.name} on {got}: {first_line(exc)}") from exc
            return self._outputs(result)

    def _outputs(self, result: Any) -> list[np.ndarray]:
        import torch

        if isinstance(result, Mapping):
            keys = self.output_names or list(result)
            missing = [k for k in keys if k not in result]
            if missing:
                raise ModelError(
                    f"{self.path.name} returns no output {missing[0]!r}; its outputs are "
                    f"{', '.join(repr(k) for k in result)}; fix the manifest's outputs"
                )
            values = [result[k] for k in keys]
        else:
            values = list(result) if isinstance(result, (tuple, list)) else [result]
            if self.output_names and len(self.output_names) != len(values):
                raise ModelError(
                    f"{self.path.name} returns {len(values)} unnamed output(s) but the manifest names "
                    f"{len(self.output_names)} ({', '.join(self.output_names)}); fix the manifest's outputs"
                )
        arrays = []
        for value in values:
            if not isinstance(value, torch.Tensor):
                raise ModelError(
                    f"{self.path.name} returned a {type(value).__name__} where a tensor was expected; "
                    "only tensors, and tuples/lists/dicts of tensors, can be compared"
                )
            arrays.append(value.detach().cpu().numpy())
        return arrays

    def describe(self) -> dict[str, Any]:
        """Runtime, version, device, threads, batch size and the determinism settings applied."""
        import torch

        cuda = self.device != "cpu"
        return {
            "runtime": self.runtime,
            "version": torch.__version__,
            "format": self.fmt,
            "architecture": self.architecture,
            "device": self.device,
            "device_name": torch.cuda.get_device_name(cuda_index(self.device)) if cuda else cpu_name(),
            "cuda_version": torch.version.cuda,
            "cudnn_version": torch.backends.cudnn.version() if cuda else None,  # type: ignore[no-untyped-call]
            "threads": torch.get_num_threads(),
            "batch_size": self.options.batch_size,
            "determinism": dict(self.determinism),
        }

    def close(self) -> None:
        """Drop the module and release cached device memory."""
        self.module = None
        if self.device != "cpu":
            import torch

            torch.cuda.empty_cache()


def _jit_load(path: Path, device: str) -> torch.nn.Module:
    import torch

    with warnings.catch_warnings():  # deprecated in favour of torch.export, yet what MLPerf publishes
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.* is deprecated", category=FutureWarning)
        module: torch.nn.Module = torch.jit.load(str(path), map_location=device)  # type: ignore[no-untyped-call]
    return module


def _state_dict(path: Path) -> dict[str, Any]:
    """The tensors of a ``torch.save``d state dict (unwrapping ``{"state_dict": ...}``/``{"model": ...}``)."""
    import torch

    try:
        loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(
            f"{path} is neither TorchScript nor a state dict torch.load can read safely: {first_line(exc)}; "
            "re-export the checkpoint"
        ) from exc
    for wrapper in ("state_dict", "model"):
        if isinstance(loaded, Mapping) and isinstance(loaded.get(wrapper), Mapping):
            loaded = loaded[wrapper]
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise ModelError(f"{path} holds a {type(loaded).__name__}, not a state dict of tensors; re-export it")
    state = {str(k): v for k, v in loaded.items()}
    if state and all(k.startswith("module.") for k in state):  # saved from DataParallel/DDP
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _build_torchvision(path: Path, architecture: str, num_classes: int | None) -> torch.nn.Module:
    prefix, _, builder = architecture.partition(":")
    if prefix != "torchvision" or not builder:
        raise ModelError(
            f"architecture {architecture!r} for {path.name} is not supported; "
            "only 'torchvision:<builder>' (e.g. 'torchvision:resnet50') is"
        )
    try:
        import torchvision
    except ImportError:
        raise MissingDependencyError("torchvision", "vision", f"building {architecture}") from None
    names = list(torchvision.models.list_models())
    if builder not in names:
        close = difflib.get_close_matches(builder, names, n=5, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "see torchvision.models.list_models()"
        raise ModelError(f"torchvision has no model {builder!r} (architecture of {path.name}); {hint}")
    kwargs: dict[str, Any] = {} if num_classes is None else {"num_classes": num_classes}
    try:
        model: torch.nn.Module = torchvision.models.get_model(builder, weights=None, **kwargs)
    except Exception as exc:
        raise ModelError(f"cannot build {architecture} with {kwargs or 'defaults'}: {first_line(exc)}") from exc
    return model


def _load_into(model: torch.nn.Module, state: dict[str, Any], path: Path, architecture: str) -> None:
    """``load_state_dict(strict=True)`` with a one-line error naming the first mismatching keys."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} (checkpoint {tuple(state[k].shape)}, model {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    found = (("missing key(s)", missing), ("unexpected key(s)", unexpected), ("shape mismatch(es)", shapes))
    problems = [f"{len(keys)} {what}: {', '.join(keys[:3])}" for what, keys in found if keys]
    if problems:
        raise ModelError(
            f"state dict {path.name} does not fit {architecture}: {'; '.join(problems)}; "
            "check the manifest's architecture and num_classes"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"cannot load {path.name} into {architecture}: {first_line(exc)}") from exc


def open_torch(
    path: Path,
    fmt: str,
    options: RunnerOptions,
    inputs: Sequence[str],
    outputs: Sequence[str],
    architecture: str | None,
    num_classes: int | None,
) -> TorchRunner:
    _require("torch", "torch", "running a PyTorch model")
    device = resolve_device("torch", options.device)
    determinism = _apply_determinism(options, device, options.resolved_threads)
    if not path.is_file():
        raise ModelError(f"model {path} does not exist; run 'provision fetch' for the model first")
    if architecture is not None and fmt == "pytorch":
        model = _build_torchvision(path, architecture, num_classes)
        _load_into(model, _state_dict(path), path, architecture)
        module = model.to(device)
    else:
        try:
            module = _jit_load(path, device)
        except (RuntimeError, ValueError) as exc:
            if fmt == "torchscript":
                raise ModelError(
                    f"{path} is not a TorchScript archive: {first_line(exc)}; "
                    'if it is a state dict, declare format = "pytorch" with an architecture'
                ) from exc
            _state_dict(path)  # raises when the file is not a state dict either
            raise ModelError(
                f"{path} is a state dict, not TorchScript; the manifest needs "
                'architecture = "torchvision:<name>" (and num_classes if not the default)'
            ) from exc
    module.eval()
    return TorchRunner(module, path, fmt, device, options, determinism, list(inputs), list(outputs), architecture)
