#!/usr/bin/env python3
"""Benchmark ``provision validate`` throughput: a tiny ONNX model and a ResNet-50 ONNX on CPU.

One run:

1. **generates** ``--images`` JPEGs (default 2048; ResNet-50 runs on the first
   ``--resnet-images``, default 256; 500x375-like sizes, smooth colour fields
   with noise) into a tar with a ``val_map.txt``, writes a manifest for a benchmark using the
   ``imagenet-resnet50`` recipe, fetches it into a scratch cache (plain-path URLs) and
   preprocesses it (untimed);
2. **builds two ONNX models**: the tiny classifier of ``tests/test_validation.py`` (channel
   means -> 4 logits -> ArgMax) and **ResNet-50**: torchvision's ``resnet50`` architecture
   exported with ``torch.onnx.export`` (opset 13, dynamic batch) plus an ArgMax output. Its
   weights are random (the real MLPerf file cannot be downloaded here): the accuracy is
   meaningless, the compute per image is that of the reference model (ResNet-50 v1.5 graph,
   fp32, 224x224; the reference file has 1001 outputs instead of 1000, a negligible
   difference). Needs torch and torchvision (``pip install 'provision[vision]'``);
3. **times**, alternating and repeated (``--runs``, median reported), on the same
   preprocessed samples, for each model:

   - ``serial``: a plain loop, the way the MLPerf reference's ``accuracy`` mode and most
     hand-written scripts work: load a batch of ``.npy`` files, then run it, one after the
     other, in one thread, same onnxruntime session options (all cores, same batch);
   - ``provision``: ``provision.api.validate`` end to end (catalog, digest checks, runner
     open, prefetching loader, scoring, result record), reporting its own samples/s over the
     inference loop and the wall time of the whole call;

4. **prints** a Markdown table: samples/s, the ratio to the serial loop, and a machine line.

Usage: ``python benchmarks/validate.py [--images 2048] [--resnet-images 256] [--batch 32] [--runs 3]
[--skip-resnet]``.
The figures in ``benchmarks/README.md`` come from this script on the machine named there.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def _jpeg(path: Path, seed: int) -> int:
    import cv2

    rng = np.random.default_rng(seed)
    h, w = [(375, 500), (500, 375), (333, 500), (500, 500)][seed % 4]
    small = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    img = cv2.add(img, rng.integers(0, 24, size=img.shape, dtype=np.uint8))
    cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return int(img.reshape(-1, 3).mean(axis=0).argmax())


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return "md5:" + h.hexdigest()


def _resnet50_onnx(path: Path) -> None:
    import torch
    import torchvision

    class WithArgMax(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = torchvision.models.resnet50(weights=None)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            logits = self.net(x)
            return logits.argmax(dim=1), logits

    torch.manual_seed(0)
    model = WithArgMax().eval()
    torch.onnx.export(
        model,
        (torch.zeros(1, 3, 224, 224),),
        str(path),
        input_names=["input_tensor:0"],
        output_names=["ArgMax:0", "softmax_tensor:0"],
        dynamic_axes={"input_tensor:0": {0: "N"}, "ArgMax:0": {0: "N"}, "softmax_tensor:0": {0: "N"}},
        opset_version=13,
        dynamo=False,
    )


def _setup(work: Path, images: int, resnet: bool) -> tuple[Any, list[str]]:
    from test_validation import _onnx_classifier

    from provision import api
    from provision.config import Settings

    src = work / "src"
    src.mkdir(parents=True)
    names = [f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(images)]
    labels = [_jpeg(src / n, i) for i, n in enumerate(names)]
    tar = work / "val.tar"
    with tarfile.open(tar, "w") as tf:
        for n in names:
            tf.add(src / n, arcname=n)
    val_map = work / "val_map.txt"
    val_map.write_text("".join(f"{n} {c}\n" for n, c in zip(names, labels, strict=True)), encoding="utf-8")
    models = {"tiny": work / "tiny.onnx"}
    _onnx_classifier(models["tiny"])
    if resnet:
        models["resnet50"] = work / "resnet50.onnx"
        _resnet50_onnx(models["resnet50"])
    text = ["schema = 1", '[[dataset]]\nname = "bench-data"']
    for f in (val_map, tar):
        text.append(f'[[dataset.files]]\nname = "{f.name}"\nurls = ["{f}"]\nchecksum = "{_md5(f)}"')
    text.append('extract = "tar"')
    for key, path in models.items():
        offset = -1 if key == "tiny" else 0
        text.append(
            f'[[model]]\nname = "bench-{key}"\nformat = "onnx"\n[[model.files]]\nname = "{path.name}"\n'
            f'urls = ["{path}"]\nchecksum = "{_md5(path)}"\n[model.runtime]\ninputs = ["input_tensor:0"]\n'
            f'outputs = ["ArgMax:0"]\noffset = {offset}'
        )
    text.append(
        '[[benchmark]]\nname = "bench"\ndataset = "bench-data"\nlabels = "bench-data/val_map.txt"\n'
        f"models = [{', '.join(repr('bench-' + k).replace(chr(39), chr(34)) for k in models)}]\n"
        f"dataset_size = {images}\n"
        '[benchmark.preprocess]\nrecipe = "imagenet-resnet50"\n'
        '[benchmark.accuracy]\nmetric = "top1"\nreference = 1.0\ntarget_ratio = [0.99]'
    )
    manifests = work / "manifests"
    manifests.mkdir()
    (manifests / "bench.toml").write_text("\n".join(text) + "\n", encoding="utf-8")
    settings = Settings.from_env(cache_dir=work / "cache").with_(manifest_dirs=(manifests,))
    report = api.fetch(["bench"], settings)
    report.raise_for_errors()
    api.preprocess("bench", settings)
    return settings, [f"bench-{k}" for k in models]


def _serial(settings: Any, model: str, batch: int, count: int) -> float:
    """samples/s of a plain load-then-run loop with the same onnxruntime settings."""
    import onnxruntime as ort

    from provision import api
    from provision.validation.runners.device import usable_cores

    folder = api.preprocessed_path("bench", settings)
    names = [line.split()[0] for line in (folder / "val_map.txt").read_text().splitlines()][:count]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = usable_cores()
    opts.inter_op_num_threads = 1
    path = next((settings.cache_dir / "artifacts" / model).glob("*.onnx"))
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    start = time.perf_counter()
    for i in range(0, len(names), batch):
        x = np.stack([np.load(folder / f"{n}.npy") for n in names[i : i + batch]])
        session.run(["ArgMax:0"], {"input_tensor:0": x})
    return len(names) / (time.perf_counter() - start)


def main() -> None:
    """Set up, time, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--resnet-images", type=int, default=256, help="the first N images for ResNet-50")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-resnet", action="store_true")
    args = parser.parse_args()

    from provision import api
    from provision.validation.runners.device import cpu_name, usable_cores
    from provision.validation.validate import ValidateOptions

    with tempfile.TemporaryDirectory(prefix="provision-bench-validate-") as tmp:
        settings, models = _setup(Path(tmp), args.images, not args.skip_resnet)
        rows = []
        for model in models:
            count = args.images if model.endswith("tiny") else min(args.images, args.resnet_images)
            serial: list[float] = []
            ours: list[float] = []
            wall: list[float] = []
            for r in range(args.runs + 1):  # run 0 is an untimed warm-up
                order = ["serial", "provision"] if r % 2 == 0 else ["provision", "serial"]
                for kind in order:
                    if kind == "serial":
                        value = _serial(settings, model, args.batch, count)
                        if r:
                            serial.append(value)
                    else:
                        t = time.perf_counter()
                        report = api.validate(
                            "bench", settings, model=model, options=ValidateOptions(batch_size=args.batch, count=count)
                        )
                        if r:
                            ours.append(report.samples_per_second)
                            wall.append(time.perf_counter() - t)
            s, p = statistics.median(serial), statistics.median(ours)
            rows.append((f"{model} ({count} images)", s, p, p / s, statistics.median(wall)))
        print(
            "| model | serial loop samples/s | provision validate samples/s | ratio "
            "| validate wall s |"
        )
        print("|---|---|---|---|---|")
        for model, s, p, ratio, w in rows:
            print(f"| {model} | {s:.1f} | {p:.1f} | {ratio:.2f}x | {w:.2f} |")
        print(
            f"\nmachine: {cpu_name()}, {usable_cores()} usable cores, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, batch {args.batch}, median of {args.runs} runs, "
            f"numpy {np.__version__}, onnxruntime {__import__('onnxruntime').__version__}, pid {os.getpid()}"
        )


if __name__ == "__main__":
    main()
