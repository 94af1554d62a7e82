"""A small real benchmark for fleet tests: six JPEGs in a tar, the ResNet-50 recipe, a stub model.

Fetched from plain paths; ``provision preprocess tiny-r50`` runs the built-in ``imagenet-resnet50``
recipe, so worker processes started by a test (or by Slurm) need nothing registered in-process.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from conftest import ManifestWriter, dataset_toml

NAMES = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, 7)]


def jpeg(path: Path, width: int, height: int, seed: int) -> None:
    """A random-noise JPEG of ``width`` x ``height``."""
    import cv2

    rng = np.random.default_rng(seed)
    cv2.imwrite(str(path), rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def tiny_r50(
    tmp_path: Path, write_manifest: ManifestWriter, write_jpeg: Callable[[Path, int, int, int], None] = jpeg
) -> Path:
    """Write the tiny-imagenet / tiny-resnet / tiny-r50 manifest; returns the folder of the source JPEGs
    (``tmp_path/src``, each made by ``write_jpeg(path, width, height, seed)``)."""
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    for i, name in enumerate(NAMES):
        write_jpeg(src / name, 200 + 37 * i, 150 + 23 * i, i)
    tar = tmp_path / "val.tar"
    with tarfile.open(tar, "w") as tf:
        for name in NAMES:
            tf.add(src / name, arcname=name)
    labels = tmp_path / "val_map.txt"
    labels.write_text("".join(f"{n} {i}\n" for i, n in enumerate(NAMES)), encoding="utf-8")
    rows = [("val_map.txt", [str(labels)], labels.read_bytes(), None), ("val.tar", [str(tar)], tar.read_bytes(), None)]
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not a model")
    write_manifest(
        dataset_toml("tiny-imagenet", rows)
        + 'extract = "tar"\n'
        + dataset_toml("tiny-resnet", [("m.onnx", [str(model)], model.read_bytes(), None)], kind="model").replace(
            "schema = 1\n", ""
        )
        + '[[benchmark]]\nname = "tiny-r50"\ndataset = "tiny-imagenet"\nlabels = "tiny-imagenet/val_map.txt"\n'
        + 'models = ["tiny-resnet"]\n[benchmark.preprocess]\nrecipe = "imagenet-resnet50"\n',
        name="tiny-r50",
    )
    return src
