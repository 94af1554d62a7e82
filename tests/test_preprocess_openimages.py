"""openimages-retinanet against an independent restatement of MLPerf's RetinaNet preprocessing.

The expected arrays restate ``pre_process_openimages_retinanet`` / ``maybe_resize`` of
mlcommons/inference (``vision/classification_and_detection/python/dataset.py``) on
``cv2.imread`` output; the item order restates how ``python/openimages.py`` walks the
annotations' ``images`` list. Every image and annotation file is generated here.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

import preprocess
from provision.errors import IntegrityError, NotFetchedError, UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]


def _pixels(width: int, height: int, seed: int) -> U8:
    rng = np.random.default_rng(seed)
    x = np.arange(width, dtype=np.int64)[None, :]
    y = np.arange(height, dtype=np.int64)[:, None]
    out = np.empty((height, width, 3), dtype=np.uint8)
    out[:, :, 0] = (x * 255 // max(width - 1, 1)).astype(np.uint8)
    out[:, :, 1] = (y * 255 // max(height - 1, 1)).astype(np.uint8)
    out[:, :, 2] = ((x * 5 + y * 11) % 256).astype(np.uint8)
    out += rng.integers(0, 64, size=out.shape, dtype=np.uint8)
    return out


def _jpeg(width: int, height: int, seed: int, mode: str = "RGB") -> Callable[[Path], None]:
    def write(path: Path) -> None:
        Image.fromarray(_pixels(width, height, seed)).convert(mode).save(path, format="JPEG", quality=92)

    return write


def _png(path: Path) -> None:
    Image.fromarray(_pixels(640, 480, 7)).save(path, format="PNG")


IMAGES: dict[str, Callable[[Path], None]] = {
    "0a1b2c3d4e5f6071.jpg": _jpeg(1024, 683, 1),  # landscape
    "00ff00ff00ff00ff.jpg": _jpeg(681, 1024, 2),  # portrait
    "1111111111111111.jpg": _jpeg(13, 9, 3),  # tiny: upscaled
    "2222222222222222.jpg": _jpeg(3000, 2000, 4),  # large
    "3333333333333333.jpg": _jpeg(500, 400, 5, mode="L"),  # grayscale JPEG
    "4444444444444444.jpg": _jpeg(400, 500, 6, mode="CMYK"),  # CMYK JPEG
    "5555555555555555.jpg": _png,  # a PNG named .jpg
    "6666666666666666.jpg": _jpeg(800, 800, 8),  # already 800 x 800
}
# The annotations' order (not sorted), with an absent image and a repeated id as the reference sees them.
ANNOTATION_ORDER = [
    (3, "2222222222222222.jpg"),
    (1, "0a1b2c3d4e5f6071.jpg"),
    (7, "ffffffffffffffff.jpg"),  # not downloaded: skipped
    (2, "00ff00ff00ff00ff.jpg"),
    (4, "3333333333333333.jpg"),
    (5, "4444444444444444.jpg"),
    (6, "5555555555555555.jpg"),
    (8, "1111111111111111.jpg"),
    (9, "6666666666666666.jpg"),
]
EXPECTED_ORDER = [name for _, name in ANNOTATION_ORDER if name in IMAGES]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """<root>/annotations/openimages-mlperf.json and <root>/validation/data/*.jpg, as the MLPerf script lays them."""
    root = tmp_path_factory.mktemp("openimages")
    images = root / "validation" / "data"
    images.mkdir(parents=True)
    for name, write in IMAGES.items():
        write(images / name)
    (root / "annotations").mkdir()
    doc = {
        "info": {"dataset": "openimages_mlperf", "version": "v6"},
        "licenses": [],
        "categories": [{"id": 0, "name": "Airplane", "supercategory": None}],
        "images": [
            {"id": i, "file_name": name, "height": 1, "width": 1, "license": None, "coco_url": None}
            for i, name in ANNOTATION_ORDER
        ],
        "annotations": [],
    }
    annotations = root / "annotations" / "openimages-mlperf.json"
    annotations.write_text(json.dumps(doc))
    return {"data": root, "images": images, "annotations": annotations}


def mlperf_retinanet(path: Path, nchw: bool = True, dims: tuple[int, int] = (800, 800)) -> F32:
    """pre_process_openimages_retinanet(cv2.imread(path), dims=[800, 800, 3], need_transpose=nchw)."""
    img: Any = np.array(cv2.imread(str(path)), dtype=np.float32)
    if len(img.shape) < 3 or img.shape[2] != 3:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    im_height, im_width = dims
    img = cv2.resize(img, (im_width, im_height), interpolation=cv2.INTER_LINEAR)
    img /= 255.0
    result: F32 = img.transpose([2, 0, 1]) if nchw else img
    return result


def _run(inputs: dict[str, Path], out: Path, **params: Any) -> list[str]:
    recipe = preprocess.get("openimages-retinanet")
    items = recipe.items(inputs, params)
    for item in items:
        recipe.process(item, inputs, out, params)
    if recipe.finalize is not None:
        recipe.finalize(items, inputs, out, params)
    return items


def _npy_bytes(array: npt.NDArray[Any]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_manifest_parameters_are_the_defaults() -> None:
    manifest = tomllib.loads((ROOT / "manifests" / "retinanet.toml").read_text())
    (bench,) = [b for b in manifest["benchmark"] if b["name"] == "retinanet"]
    params = dict(bench["preprocess"])
    recipe = preprocess.get(params.pop("recipe"))
    assert recipe.name == "openimages-retinanet"
    for key, value in params.items():
        assert key in recipe.defaults, key
        assert recipe.defaults[key] == value, key


def test_retinanet_matches_reference_exactly_in_annotation_order(dataset: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    items = _run({"data": dataset["data"]}, out)
    assert items == EXPECTED_ORDER
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{name}.npy" for name in EXPECTED_ORDER)
    for item in items:
        got = np.load(out / f"{item}.npy")
        want = mlperf_retinanet(dataset["images"] / item)
        assert got.dtype == np.float32 and got.shape == (3, 800, 800), item
        assert np.array_equal(got, want), item
        assert (out / f"{item}.npy").read_bytes() == _npy_bytes(want), item


def test_manifest_parameters_and_nhwc(dataset: dict[str, Path], tmp_path: Path) -> None:
    manifest = tomllib.loads((ROOT / "manifests" / "retinanet.toml").read_text())
    (bench,) = [b for b in manifest["benchmark"] if b["name"] == "retinanet"]
    params = {k: v for k, v in bench["preprocess"].items() if k != "recipe"}
    recipe = preprocess.get("openimages-retinanet")
    inputs = {"data": dataset["data"]}
    for item in ["3333333333333333.jpg", "0a1b2c3d4e5f6071.jpg"]:
        recipe.process(item, inputs, tmp_path / "manifest", params)
        assert np.array_equal(
            np.load(tmp_path / "manifest" / f"{item}.npy"), mlperf_retinanet(dataset["images"] / item)
        )
        recipe.process(item, inputs, tmp_path / "nhwc", {"layout": "NHWC"})
        got = np.load(tmp_path / "nhwc" / f"{item}.npy")
        assert got.shape == (800, 800, 3)
        assert np.array_equal(got, mlperf_retinanet(dataset["images"] / item, nchw=False))


def test_other_sizes_and_scales(dataset: dict[str, Path], tmp_path: Path) -> None:
    recipe = preprocess.get("openimages-retinanet")
    item = "00ff00ff00ff00ff.jpg"
    recipe.process(item, {"data": dataset["data"]}, tmp_path, {"resize": [300, 200], "scale": 1.0, "layout": "NHWC"})
    got = np.load(tmp_path / f"{item}.npy")
    want = mlperf_retinanet(dataset["images"] / item, nchw=False, dims=(300, 200)) * np.float32(255)
    assert got.shape == (300, 200, 3)
    # scale 1.0 divides by 1: the values are the resized pixels, which is the reference times 255 (to rounding)
    assert np.allclose(got, want, rtol=1e-6, atol=1e-4)


def test_explicit_annotations_and_images_parameters(dataset: dict[str, Path], tmp_path: Path) -> None:
    """The artifact holds the annotations only: the images are named by an absolute 'images' folder."""
    artifact = tmp_path / "artifact"
    (artifact / "annotations").mkdir(parents=True)
    (artifact / "annotations" / "openimages-mlperf.json").write_bytes(dataset["annotations"].read_bytes())
    recipe = preprocess.get("openimages-retinanet")
    inputs = {"data": artifact}
    with pytest.raises(NotFetchedError, match="no image file"):
        recipe.items(inputs, {})
    params = {"images": str(dataset["images"]), "annotations": "annotations/openimages-mlperf.json"}
    assert recipe.items(inputs, params) == EXPECTED_ORDER
    assert recipe.items({"data": artifact, "images": dataset["images"]}, {}) == EXPECTED_ORDER
    assert recipe.items({"data": dataset["data"], "labels": dataset["annotations"]}, {}) == EXPECTED_ORDER
    with pytest.raises(NotFetchedError, match=r"ffffffffffffffff\.jpg"):
        recipe.items(inputs, {**params, "missing": "error"})


def test_without_annotations_items_are_sorted_jpgs(dataset: dict[str, Path]) -> None:
    recipe = preprocess.get("openimages-retinanet")
    assert recipe.items({"data": dataset["images"]}, {}) == sorted(IMAGES)


def test_repeated_ids_and_names_follow_the_reference(tmp_path: Path, dataset: dict[str, Path]) -> None:
    doc = {
        "images": [
            {"id": 1, "file_name": "0a1b2c3d4e5f6071.jpg"},
            {"id": 2, "file_name": "00ff00ff00ff00ff.jpg"},
            {"id": 1, "file_name": "1111111111111111.jpg"},  # same id: first position, last name
            {"id": 3, "file_name": "00ff00ff00ff00ff.jpg"},  # same name twice: processed once
        ]
    }
    annotations = tmp_path / "a.json"
    annotations.write_text(json.dumps(doc))
    items = preprocess.get("openimages-retinanet").items({"data": dataset["data"], "labels": annotations}, {})
    assert items == ["1111111111111111.jpg", "00ff00ff00ff00ff.jpg"]


def test_malformed_annotations_and_parameters(tmp_path: Path, dataset: dict[str, Path]) -> None:
    recipe = preprocess.get("openimages-retinanet")
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [{"file_name": 3}]}')
    with pytest.raises(IntegrityError, match="images\\[0\\]"):
        recipe.items({"data": dataset["data"], "labels": bad}, {})
    bad.write_text("{not json")
    with pytest.raises(IntegrityError, match="cannot read annotations"):
        recipe.items({"data": dataset["data"], "labels": bad}, {})
    escape = tmp_path / "escape.json"
    escape.write_text(json.dumps({"images": [{"id": 1, "file_name": "../x.jpg"}]}))
    with pytest.raises(UsageError):
        recipe.items({"data": dataset["data"], "labels": escape}, {})
    for params in ({"resize": [800]}, {"scale": 0}, {"to_float32_first": False}, {"interpolation": "area2"}, {"x": 1}):
        with pytest.raises(UsageError, match="openimages-retinanet"):
            recipe.items({"data": dataset["data"]}, params)


def test_processing_twice_gives_identical_bytes(dataset: dict[str, Path], tmp_path: Path) -> None:
    recipe = preprocess.get("openimages-retinanet")
    inputs = {"data": dataset["data"]}
    items = [i for i in recipe.items(inputs, {}) if not i.startswith("2222")]
    digests = []
    for out in (tmp_path / "one", tmp_path / "two"):
        for item in reversed(items):
            recipe.process(item, inputs, out, {})
        digests.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())})
    assert digests[0] == digests[1]
    assert sorted(digests[0]) == sorted(f"{i}.npy" for i in items)


def test_undecodable_image_is_a_one_line_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "deadbeefdeadbeef.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(IntegrityError) as info:
        preprocess.get("openimages-retinanet").process("deadbeefdeadbeef.jpg", {"data": data}, tmp_path / "out", {})
    assert "deadbeefdeadbeef.jpg" in str(info.value) and "\n" not in str(info.value)


def test_libraries() -> None:
    libs = preprocess.get("openimages-retinanet").libraries()
    assert set(libs) == {"numpy", "opencv", "opencv-jpeg"}
    assert libs["opencv"] == cv2.__version__ and libs["numpy"] == np.__version__
    assert "jpeg" in libs["opencv-jpeg"].lower()


def test_truncated_jpegs_decode_as_the_reference_imread(tmp_path: Path) -> None:
    """JPEGs cut short: the reference's cv2.imread decodes them (libjpeg fills the missing rows), and so
    does the recipe, byte for byte and the same on a second run (where cv2.imdecode refuses the files)."""
    images = tmp_path / "data"
    images.mkdir()
    names = ["aaaaaaaaaaaaaaa1.jpg", "aaaaaaaaaaaaaaa2.jpg", "aaaaaaaaaaaaaaa3.jpg"]
    for name, (width, height, seed, mode), keep in zip(
        names, [(640, 480, 31, "RGB"), (300, 500, 32, "L"), (500, 400, 33, "CMYK")], [0.5, 0.3, 0.7], strict=True
    ):
        _jpeg(width, height, seed, mode)(images / name)
        data = (images / name).read_bytes()
        (images / name).write_bytes(data[: int(len(data) * keep)])
    recipe = preprocess.get("openimages-retinanet")
    runs = []
    for out in (tmp_path / "one", tmp_path / "two"):
        assert _run({"data": images}, out) == names
        runs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert runs[0] == runs[1] and len(runs[0]) == len(names)
    for name in names:
        assert runs[0][f"{name}.npy"] == _npy_bytes(mlperf_retinanet(images / name)), name
    assert recipe.version == "2"
