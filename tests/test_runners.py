"""Model runners: a tiny ONNX graph, a TorchScript module and a torchvision state dict, built here.

The models are real files written into tmp_path and run by the real onnxruntime and torch;
their outputs are compared with numpy (or the in-test torch model). The missing-dependency
cases run in a subprocess where the library's import is made to fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from provision.errors import MissingDependencyError, ModelError, UsageError
from provision.validation.runners.base import RunnerOptions
from provision.validation.runners.device import cuda_available, resolve_device, usable_cores
from provision.validation.runners.open import open_runner

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
W = np.array([[1.0, -2.0, 0.5], [0.25, 3.0, -1.0], [2.0, 0.0, 1.5], [-0.5, 1.0, 0.0]], dtype=np.float32)
B = np.array([0.1, -0.2, 0.3], dtype=np.float32)
CPU = RunnerOptions(device="cpu", threads=1)
HAS_CUDA = cuda_available()


def make_onnx(path: Path, *, second_input: bool = False) -> Path:
    """x float32 (N,4) -> logits = x @ W + b (+ y when ``second_input``) and label = argmax(logits)."""
    nodes = [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["z"])]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])]
    if second_input:
        inputs.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3]))
        nodes.append(helper.make_node("Add", ["z", "y"], ["logits"]))
    else:
        nodes.append(helper.make_node("Identity", ["z"], ["logits"]))
    nodes.append(helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0))
    outputs = [
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3]),
        helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
    ]
    init = [numpy_helper.from_array(W, "W"), numpy_helper.from_array(B, "b")]
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, initializer=init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def sample(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 4)).astype(np.float32)


class Tiny(torch.nn.Module):
    """The ONNX graph's computation as a torch module returning a dict."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)
        with torch.no_grad():
            self.fc.weight.copy_(torch.from_numpy(W.T.copy()))
            self.fc.bias.copy_(torch.from_numpy(B))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.fc(x)
        return {"logits": logits, "label": logits.argmax(dim=1)}


class Pair(torch.nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x + y, x * y


def script(module: torch.nn.Module, path: Path) -> Path:
    """Save ``module`` as TorchScript (deprecated in recent torch, yet what MLPerf publishes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(module).save(str(path))
    return path


@pytest.fixture(autouse=True)
def torch_state() -> Iterator[None]:
    """Restore torch's process-wide switches that opening a torch runner sets."""
    saved = (
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.get_float32_matmul_precision(),
    )
    yield
    torch.set_num_threads(saved[0])
    torch.use_deterministic_algorithms(saved[1], warn_only=saved[2])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[3], saved[4]
    torch.set_float32_matmul_precision(saved[5])


# ---------------------------------------------------------------------------------------------- onnx


def test_onnx_outputs_match_numpy_for_any_batch_size(tmp_path: Path) -> None:
    runner = open_runner(make_onnx(tmp_path / "m.onnx"), "onnx", CPU)
    assert (runner.runtime, runner.device) == ("onnxruntime", "cpu")
    for n in (5, 2, 1):
        x = sample(n, seed=n)
        logits, label = runner.run([x])
        np.testing.assert_allclose(logits, x @ W + B, rtol=1e-6, atol=1e-6)
        assert label.dtype == np.int64
        np.testing.assert_array_equal(label, np.argmax(x @ W + B, axis=1))
    runner.close()
    with pytest.raises(ModelError, match="closed"):
        runner.run([sample(1)])


def test_onnx_output_selection_and_order(tmp_path: Path) -> None:
    path = make_onnx(tmp_path / "m.onnx")
    x = sample(3)
    only = open_runner(path, "onnx", CPU, outputs=["label"]).run([x])
    assert len(only) == 1 and only[0].dtype == np.int64
    label, logits = open_runner(path, "onnx", CPU, outputs=["label", "logits"]).run([x])
    np.testing.assert_array_equal(label, np.argmax(logits, axis=1))
    assert logits.shape == (3, 3)


def test_onnx_input_order_follows_names(tmp_path: Path) -> None:
    path = make_onnx(tmp_path / "m.onnx", second_input=True)
    x, y = sample(4), np.full((4, 3), 10.0, dtype=np.float32)
    (logits,) = open_runner(path, "onnx", CPU, inputs=["y", "x"], outputs=["logits"]).run([y, x])
    np.testing.assert_allclose(logits, x @ W + B + 10.0, rtol=1e-6)
    (default,) = open_runner(path, "onnx", CPU, outputs=["logits"]).run([x, y])  # model order: x, y
    np.testing.assert_array_equal(default, logits)


def test_onnx_wrong_names_list_the_real_ones(tmp_path: Path) -> None:
    path = make_onnx(tmp_path / "m.onnx", second_input=True)
    with pytest.raises(ModelError, match=r"no input 'image'.*'x', 'y'"):
        open_runner(path, "onnx", CPU, inputs=["image"])
    with pytest.raises(ModelError, match=r"no output 'probs'.*'logits', 'label'"):
        open_runner(path, "onnx", CPU, outputs=["probs"])


def test_onnx_wrong_arrays_are_model_errors(tmp_path: Path) -> None:
    runner = open_runner(make_onnx(tmp_path / "m.onnx"), "onnx", CPU)
    with pytest.raises(ModelError, match=r"takes 1 input\(s\) \(x\), got 2"):
        runner.run([sample(2), sample(2)])
    with pytest.raises(ModelError, match=r"expects tensor\(float\) of shape \['N', 4\], got float64\(2, 4\)"):
        runner.run([sample(2).astype(np.float64)])
    with pytest.raises(ModelError, match=r"got float32\(2, 5\)"):
        runner.run([np.zeros((2, 5), np.float32)])


def test_onnx_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        open_runner(tmp_path / "absent.onnx", "onnx", CPU)
    (tmp_path / "bad.onnx").write_bytes(b"not a protobuf")
    with pytest.raises(ModelError, match=r"cannot load ONNX model .*bad\.onnx"):
        open_runner(tmp_path / "bad.onnx", "onnx", CPU)


def test_onnx_describe(tmp_path: Path) -> None:
    doc = open_runner(make_onnx(tmp_path / "m.onnx"), "onnx", RunnerOptions(device="cpu", batch_size=8)).describe()
    json.dumps(doc)
    assert doc["runtime"] == "onnxruntime" and doc["version"] == ort.__version__
    assert doc["device"] == "cpu" and doc["device_name"]
    assert doc["threads"] == usable_cores() and doc["batch_size"] == 8
    assert doc["providers"] == ["CPUExecutionProvider"]
    assert doc["inputs"] == ["x"] and doc["outputs"] == ["logits", "label"]
    det = doc["determinism"]
    assert det["graph_optimization_level"] == "ORT_ENABLE_ALL" and det["seed"] == 0 and det["tf32"] is False
    assert det["inter_op_threads"] == 1 and det["deterministic_compute"] is True


# ---------------------------------------------------------------------------------------------- torch


@pytest.mark.parametrize("fmt", ["torchscript", "pytorch"])
def test_torchscript_dict_outputs(tmp_path: Path, fmt: str) -> None:
    path = script(Tiny(), tmp_path / "tiny.pt")
    x = sample(5)
    runner = open_runner(path, fmt, CPU)
    assert (runner.runtime, runner.device) == ("torch", "cpu")
    logits, label = runner.run([x])
    np.testing.assert_allclose(logits, x @ W + B, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(label, np.argmax(x @ W + B, axis=1))
    label2, logits2 = open_runner(path, fmt, CPU, outputs=["label", "logits"]).run([x])
    np.testing.assert_array_equal(label2, label)
    np.testing.assert_array_equal(logits2, logits)
    with pytest.raises(ModelError, match=r"no output 'probs'.*'logits', 'label'"):
        open_runner(path, fmt, CPU, outputs=["probs"]).run([x])
    runner.close()
    with pytest.raises(ModelError, match="closed"):
        runner.run([x])


def test_torchscript_tuple_outputs_and_read_only_inputs(tmp_path: Path) -> None:
    path = script(Pair(), tmp_path / "pair.pt")
    x, y = sample(3), sample(3, seed=1)
    x.flags.writeable = False  # as from a memory-mapped .npy
    total, product = open_runner(path, "torchscript", CPU).run([x, y])
    np.testing.assert_array_equal(total, x + y)
    np.testing.assert_array_equal(product, x * y)
    with pytest.raises(ModelError, match=r"returns 2 unnamed output\(s\) but the manifest names 1"):
        open_runner(path, "torchscript", CPU, outputs=["sum"]).run([x, y])
    with pytest.raises(ModelError, match=r"torch failed to run pair\.pt"):
        open_runner(path, "torchscript", CPU).run([x])


def resnet_state(tmp_path: Path, num_classes: int = 4) -> tuple[Path, torch.nn.Module]:
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(1234)
    model = torchvision.models.get_model("resnet18", weights=None, num_classes=num_classes).eval()
    path = tmp_path / "resnet18.pth"
    torch.save(model.state_dict(), path)
    return path, model


def test_torchvision_state_dict_matches_the_model(tmp_path: Path) -> None:
    path, model = resnet_state(tmp_path)
    runner = open_runner(path, "pytorch", CPU, architecture="torchvision:resnet18", num_classes=4)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    (got,) = runner.run([x])
    with torch.inference_mode():
        want = model(torch.from_numpy(x)).numpy()
    assert got.shape == (2, 4)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert runner.describe()["architecture"] == "torchvision:resnet18"


def test_wrapped_and_data_parallel_state_dicts_load(tmp_path: Path) -> None:
    _, model = resnet_state(tmp_path)
    wrapped = {"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}, "epoch": 3}
    torch.save(wrapped, tmp_path / "wrapped.pth")
    runner = open_runner(tmp_path / "wrapped.pth", "pytorch", CPU, architecture="torchvision:resnet18", num_classes=4)
    x = np.ones((1, 3, 32, 32), np.float32)
    with torch.inference_mode():
        np.testing.assert_allclose(runner.run([x])[0], model(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-6)


def test_state_dict_without_architecture_says_what_to_declare(tmp_path: Path) -> None:
    path, _ = resnet_state(tmp_path)
    with pytest.raises(ModelError, match=r"state dict, not TorchScript.*architecture = \"torchvision:<name>\""):
        open_runner(path, "pytorch", CPU)
    with pytest.raises(ModelError, match="not a TorchScript archive"):
        open_runner(path, "torchscript", CPU)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ModelError, match="neither TorchScript nor a state dict"):
        open_runner(tmp_path / "junk.pt", "pytorch", CPU)


def test_state_dict_mismatch_names_keys(tmp_path: Path) -> None:
    path, _ = resnet_state(tmp_path, num_classes=4)
    with pytest.raises(ModelError, match=r"shape mismatch.*fc\.weight \(checkpoint \(4, 512\), model \(10, 512\)\)"):
        open_runner(path, "pytorch", CPU, architecture="torchvision:resnet18", num_classes=10)
    with pytest.raises(ModelError, match=r"96 missing key\(s\): layer1\.2\.conv1\.weight"):
        open_runner(path, "pytorch", CPU, architecture="torchvision:resnet34", num_classes=4)
    with pytest.raises(ModelError, match=r"missing key\(s\): features\.0\.weight.*unexpected key\(s\): conv1\.weight"):
        open_runner(path, "pytorch", CPU, architecture="torchvision:squeezenet1_1", num_classes=4)


def test_unknown_or_foreign_architecture(tmp_path: Path) -> None:
    path, _ = resnet_state(tmp_path)
    with pytest.raises(ModelError, match=r"no model 'resnet19'.*did you mean .*resnet18"):
        open_runner(path, "pytorch", CPU, architecture="torchvision:resnet19", num_classes=4)
    with pytest.raises(ModelError, match=r"only 'torchvision:<builder>'"):
        open_runner(path, "pytorch", CPU, architecture="mypackage.models:Net")
    with pytest.raises(UsageError, match="only applies to format 'pytorch'"):
        open_runner(path, "onnx", CPU, architecture="torchvision:resnet18")
    with pytest.raises(UsageError, match="not one of onnx, torchscript, pytorch"):
        open_runner(path, "tensorflow", CPU)


def test_torch_describe_records_determinism(tmp_path: Path) -> None:
    path = script(Tiny(), tmp_path / "tiny.pt")
    doc = open_runner(path, "torchscript", RunnerOptions(device="cpu", threads=1, seed=7)).describe()
    json.dumps(doc)
    assert doc["runtime"] == "torch" and doc["version"] == torch.__version__ and doc["format"] == "torchscript"
    assert doc["device"] == "cpu" and doc["device_name"] and doc["threads"] == 1 and doc["batch_size"] == 32
    det = doc["determinism"]
    assert det["seed"] == 7 and det["tf32_matmul"] is False and det["tf32_cudnn"] is False
    assert det["float32_matmul_precision"] == "highest"
    assert det["cudnn_deterministic"] is True and det["cudnn_benchmark"] is False
    assert det["deterministic_algorithms"] is True and det["deterministic_warn_only"] is True
    assert torch.initial_seed() == 7
    tf32 = open_runner(path, "torchscript", RunnerOptions(device="cpu", threads=2, allow_tf32=True)).describe()
    assert tf32["determinism"]["tf32_matmul"] is True and tf32["determinism"]["tf32_cudnn"] is True
    assert tf32["determinism"]["float32_matmul_precision"] == "high" and tf32["threads"] == 2


# ---------------------------------------------------------------------------------------------- devices


def test_bad_options_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="'gpu' is not one of auto, cpu, cuda, cuda:N"):
        RunnerOptions(device="gpu")
    with pytest.raises(UsageError, match="batch size"):
        RunnerOptions(batch_size=0)
    with pytest.raises(UsageError, match="threads"):
        RunnerOptions(threads=0)
    with pytest.raises(UsageError, match="runtime 'tensorrt'"):
        resolve_device("tensorrt", "cpu")


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA")
def test_cuda_requested_without_one(tmp_path: Path) -> None:
    assert resolve_device("torch", "auto") == "cpu"
    with pytest.raises(UsageError, match=r"'cuda' requested but torch .* sees 0 CUDA device"):
        resolve_device("torch", "cuda")
    with pytest.raises(UsageError, match=r"'cuda:1' requested"):
        open_runner(script(Tiny(), tmp_path / "tiny.pt"), "torchscript", RunnerOptions(device="cuda:1"))


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(), reason="onnxruntime has CUDA")
def test_onnx_cuda_requested_without_provider(tmp_path: Path) -> None:
    assert resolve_device("onnxruntime", "auto") == "cpu"
    assert open_runner(make_onnx(tmp_path / "m.onnx"), "onnx", RunnerOptions()).device == "cpu"
    with pytest.raises(UsageError, match=r"'cuda' requested but onnxruntime has providers .*CPUExecutionProvider"):
        open_runner(make_onnx(tmp_path / "m.onnx"), "onnx", RunnerOptions(device="cuda"))


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")
def test_gpu_torch_matches_cpu(tmp_path: Path) -> None:
    path, _ = resnet_state(tmp_path)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    arch = "torchvision:resnet18"
    (cpu,) = open_runner(path, "pytorch", CPU, architecture=arch, num_classes=4).run([x])
    gpu_runner = open_runner(path, "pytorch", RunnerOptions(device="cuda"), architecture=arch, num_classes=4)
    (gpu,) = gpu_runner.run([x])
    doc = gpu_runner.describe()
    assert doc["device"] == "cuda" and doc["determinism"]["tf32_matmul"] is False
    assert doc["determinism"]["cublas_workspace_config"]
    np.testing.assert_allclose(gpu, cpu, rtol=1e-3, atol=1e-4)
    gpu_runner.close()


@pytest.mark.gpu
@pytest.mark.skipif("CUDAExecutionProvider" not in ort.get_available_providers(), reason="needs onnxruntime-gpu")
def test_gpu_onnx_matches_cpu(tmp_path: Path) -> None:
    path = make_onnx(tmp_path / "m.onnx")
    x = sample(8)
    cpu = open_runner(path, "onnx", CPU).run([x])
    runner = open_runner(path, "onnx", RunnerOptions(device="cuda"))
    assert runner.describe()["providers"][0] == "CUDAExecutionProvider"
    gpu = runner.run([x])
    np.testing.assert_allclose(gpu[0], cpu[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(gpu[1], cpu[1])


# ---------------------------------------------------------------------------------------------- imports


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=REPO, timeout=120
    )


def test_importing_runners_imports_no_runtime() -> None:
    proc = run_python(
        """
        import sys
        import provision.validation.runners.base, provision.validation.runners.device, provision.validation.runners.onnx
        import provision.validation.runners.open, provision.validation.runners.torch
        import provision.validation.loader, provision.validation.power
        heavy = [m for m in ("torch", "onnxruntime", "torchvision", "pynvml") if m in sys.modules]
        assert not heavy, heavy
        """
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    ("blocked", "fmt", "extra"),
    [("onnxruntime", "onnx", "onnx"), ("torch", "torchscript", "torch"), ("torchvision", "pytorch", "vision")],
)
def test_missing_library_names_the_extra(tmp_path: Path, blocked: str, fmt: str, extra: str) -> None:
    model = tmp_path / "model.bin"
    if fmt == "onnx":
        make_onnx(model)
    else:
        torch.save({"w": torch.zeros(1)}, model)
    arch = "'torchvision:resnet18'" if fmt == "pytorch" else "None"
    proc = run_python(
        f"""
        import sys
        sys.modules[{blocked!r}] = None  # makes 'import {blocked}' raise ImportError
        from pathlib import Path
        from provision.errors import MissingDependencyError
        from provision.validation.runners.base import RunnerOptions
        from provision.validation.runners.device import cuda_available
        from provision.validation.runners.open import open_runner
        try:
            open_runner(Path({str(model)!r}), {fmt!r}, RunnerOptions(device="cpu"), architecture={arch})
        except MissingDependencyError as exc:
            print(exc)
        if {blocked!r} == "torch":
            print("cuda_available", cuda_available())
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert f"needs {blocked}, which is not installed: pip install 'provision[{extra}]'" in proc.stdout
    if blocked == "torch":
        assert "cuda_available False" in proc.stdout
    assert issubclass(MissingDependencyError, ImportError)
