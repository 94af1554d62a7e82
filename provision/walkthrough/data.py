"""The data of ``provision demo``: a generated stand-in for the ResNet-50 benchmark.

- JPEGs named like ImageNet's (``ILSVRC2012_val_%08d.JPEG``, 160-300 px, one dominant colour
  each, seeded noise) in an uncompressed tar that is byte-identical from run to run;
- a ``val_map.txt`` with about a quarter of the labels deliberately wrong, so top-1 lands
  near a real ResNet-50's rather than at 100 %;
- a tiny ONNX classifier with ResNet-50's interface (``input_tensor:0``, a background class at
  index 0 of ``softmax_tensor:0``, ``ArgMax:0``), written as protobuf wire bytes here so that
  the ``onnx`` package (a development dependency) is not needed;
- the manifest (schema 1) describing them, shaped like ``manifests/resnet50.toml``.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

__all__ = [
    "BENCHMARK",
    "DATASET",
    "LABELS",
    "MODEL",
    "MODEL_FILE",
    "TAR",
    "VAL_MAP",
    "Generated",
    "generate",
    "manifest_text",
    "onnx_classifier",
]

BENCHMARK = "demo-resnet50"
DATASET = "demo-imagenet-val"
LABELS = "demo-imagenet-aux"
MODEL = "demo-tinynet-onnx"
TAR = "ILSVRC2012_img_val.tar"
VAL_MAP = "val_map.txt"
MODEL_FILE = "tinynet.onnx"
_CLASSES = 3
_GOLDEN = 8


def _jpeg(index: int, cls: int) -> bytes:
    """A solid-colour JPEG (channel ``cls`` dominant, seeded noise), 160-300 px a side."""
    rng = np.random.default_rng(index)
    h, w = (int(v) for v in rng.integers(160, 301, size=2))
    px = np.full((h, w, 3), 40, dtype=np.uint8)
    px[:, :, cls] = 230
    px += rng.integers(0, 24, size=px.shape, dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(px).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def _tar(members: Sequence[tuple[str, bytes]]) -> bytes:
    """An uncompressed tar of ``members``, byte-identical for the same input (fixed mtime, owner)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1_700_000_000, 0o644
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # a negative int64 is its two's complement
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _int(number: int, value: int) -> bytes:
    """A varint field (protobuf wire type 0)."""
    return _varint(number << 3) + _varint(value)


def _len(number: int, value: bytes | str) -> bytes:
    """A length-delimited field (wire type 2): string, bytes or an embedded message."""
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _value_info(name: str, elem_type: int, dims: Sequence[int | str]) -> bytes:
    """ValueInfoProto{name, TypeProto{tensor_type{elem_type, TensorShapeProto{dim...}}}}."""
    shape = b"".join(_len(1, _len(2, d) if isinstance(d, str) else _int(1, d)) for d in dims)
    return _len(1, name) + _len(2, _len(1, _int(1, elem_type) + _len(2, shape)))


def _node(op: str, inputs: Sequence[str], outputs: Sequence[str], **ints: int) -> bytes:
    """NodeProto with INT attributes (AttributeProto{name, i, type = INT})."""
    attrs = b"".join(_len(5, _len(1, k) + _int(3, v) + _int(20, 2)) for k, v in ints.items())
    return b"".join(_len(1, i) for i in inputs) + b"".join(_len(2, o) for o in outputs) + _len(4, op) + attrs


def _initializer(name: str, array: np.ndarray[Any, Any]) -> bytes:
    """TensorProto{dims, data_type = FLOAT, name, raw_data (little-endian)}."""
    dims = b"".join(_int(1, d) for d in array.shape)
    return dims + _int(2, 1) + _len(8, name) + _len(9, array.astype("<f4").tobytes())


def onnx_classifier() -> bytes:
    """A tiny ONNX model with ResNet-50's interface, as serialized ModelProto bytes.

    ``input_tensor:0`` (N,3,224,224) -> GlobalAveragePool -> Flatten -> MatMul -> Add ->
    ``softmax_tensor:0`` (N,4: background + 3 classes) -> ``ArgMax:0`` (N). Class ``c`` wins
    for an image whose channel ``c`` dominates; the background never does, so the manifest
    needs ``offset = -1`` as the real 1001-output model does. IR version 8, opset 13.
    """
    weight = np.zeros((_CLASSES, _CLASSES + 1), dtype=np.float32)
    for c in range(_CLASSES):
        weight[c, c + 1] = 1.0
    bias = np.zeros(_CLASSES + 1, dtype=np.float32)
    bias[0] = -1e6
    float_, int64 = 1, 7
    graph = b"".join(
        [
            _len(1, _node("GlobalAveragePool", ["input_tensor:0"], ["pooled"])),
            _len(1, _node("Flatten", ["pooled"], ["flat"], axis=1)),
            _len(1, _node("MatMul", ["flat", "W"], ["scores"])),
            _len(1, _node("Add", ["scores", "B"], ["softmax_tensor:0"])),
            _len(1, _node("ArgMax", ["softmax_tensor:0"], ["ArgMax:0"], axis=1, keepdims=0)),
            _len(2, "provision-demo-tinynet"),
            _len(5, _initializer("W", weight)),
            _len(5, _initializer("B", bias)),
            _len(11, _value_info("input_tensor:0", float_, ["N", 3, 224, 224])),
            _len(12, _value_info("ArgMax:0", int64, ["N"])),
            _len(12, _value_info("softmax_tensor:0", float_, ["N", _CLASSES + 1])),
        ]
    )
    return _int(1, 8) + _len(2, "provision-demo") + _len(7, graph) + _len(8, _len(1, "") + _int(2, 13))


@dataclass
class Generated:
    files: dict[str, bytes]
    images: int
    wrong: list[int]
    golden: list[int]


def generate(images: int) -> Generated:
    """The tar of JPEGs, val_map.txt (with some labels wrong on purpose) and the model."""
    names = [f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(images)]
    classes = [(i * 7 + i // 5) % _CLASSES for i in range(images)]
    wrong = sorted(int(i) for i in np.random.default_rng(2012).choice(images, int(images * 0.23), replace=False))
    labels = [(c + 1) % _CLASSES if i in wrong else c for i, c in enumerate(classes)]
    tar = _tar([(n, _jpeg(i, classes[i])) for i, n in enumerate(names)])
    val_map = "".join(f"{n} {label}\n" for n, label in zip(names, labels, strict=True)).encode()
    return Generated({TAR: tar, VAL_MAP: val_map, MODEL_FILE: onnx_classifier()}, images, wrong, classes[:_GOLDEN])


def manifest_text(gen: Generated, url: Callable[[str], str]) -> str:
    """The demo's manifest (schema 1), shaped like ``manifests/resnet50.toml``."""

    def file(name: str) -> str:
        body = gen.files[name]
        return (
            f'name = "{name}"\nurls = ["{url(name)}"]\nsize = {len(body)}\n'
            f'checksum = "md5:{hashlib.md5(body).hexdigest()}"\n'
        )

    return f"""schema = 1
# Written by 'provision demo': a generated stand-in for manifests/resnet50.toml, served on 127.0.0.1.

[[dataset]]
name = "{DATASET}"
description = "Generated stand-in for the ImageNet 2012 validation tar: {gen.images} solid-colour JPEGs"
license = "generated by provision demo"
[[dataset.files]]
{file(TAR)}extract = "tar"
extract_to = "val"
expect_files = {gen.images}

[[dataset]]
name = "{LABELS}"
description = "val_map.txt of the generated images ({len(gen.wrong)} labels deliberately wrong)"
license = "generated by provision demo"
[[dataset.files]]
{file(VAL_MAP)}
[[model]]
name = "{MODEL}"
description = "Tiny ONNX classifier with ResNet-50's interface (background output, ArgMax:0)"
license = "generated by provision demo"
format = "onnx"
[[model.files]]
{file(MODEL_FILE)}[model.runtime]
inputs = ["input_tensor:0"]
outputs = ["ArgMax:0"]
offset = -1
golden = {gen.golden}

[[benchmark]]
name = "{BENCHMARK}"
description = "provision demo: the ResNet-50 pipeline on generated data"
dataset = "{DATASET}"
labels = "{LABELS}/{VAL_MAP}"
models = ["{MODEL}"]
dataset_size = {gen.images}
[benchmark.preprocess]
recipe = "imagenet-resnet50"
[benchmark.accuracy]
metric = "top1"
reference = 76.46
target_ratio = [0.99, 0.999]
"""


