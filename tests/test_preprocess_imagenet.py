"""imagenet-resnet50 and imagenet-torchvision against independent re-implementations of MLPerf's.

Every image is generated here (awkward shapes, grayscale, CMYK, a PNG named ``.JPEG``, an EXIF
rotation). The expected arrays come from a few lines that restate the reference code
(``pre_process_vgg`` and ``pre_process_imagenet_pytorch`` of mlcommons/inference,
``vision/classification_and_detection/python/dataset.py``) with ``cv2.imread``, PIL and numpy;
the recipes are driven directly through ``preprocess.get(name)`` (items / process / finalize).
"""

from __future__ import annotations

import hashlib
import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
import numpy.typing as npt
import PIL
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
    """A smooth RGB pattern with noise (so that resampling differences show)."""
    rng = np.random.default_rng(seed)
    x = np.arange(width, dtype=np.int64)[None, :]
    y = np.arange(height, dtype=np.int64)[:, None]
    out = np.empty((height, width, 3), dtype=np.uint8)
    out[:, :, 0] = (x * 255 // max(width - 1, 1)).astype(np.uint8)
    out[:, :, 1] = (y * 255 // max(height - 1, 1)).astype(np.uint8)
    out[:, :, 2] = ((x * 7 + y * 3) % 256).astype(np.uint8)
    out += rng.integers(0, 48, size=out.shape, dtype=np.uint8)  # wraps around modulo 256
    return out


def _jpeg(path: Path, width: int, height: int, seed: int, mode: str = "RGB", **save: Any) -> None:
    image = Image.fromarray(_pixels(width, height, seed))
    image.convert(mode).save(path, format="JPEG", quality=90, **save)


def _exif_rotated(path: Path) -> None:
    image = Image.fromarray(_pixels(320, 240, 11))
    exif = image.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise on display
    image.save(path, format="JPEG", quality=90, exif=exif)


# name -> (writer, expected decoded (height, width)); file order in the labels is not sorted.
IMAGES: dict[str, Callable[[Path], None]] = {
    "ILSVRC2012_val_00000001.JPEG": lambda p: _jpeg(p, 500, 375, 1),  # landscape
    "ILSVRC2012_val_00000002.JPEG": lambda p: _jpeg(p, 333, 500, 2),  # portrait
    "ILSVRC2012_val_00000003.JPEG": lambda p: _jpeg(p, 150, 100, 3),  # short side < 224
    "ILSVRC2012_val_00000004.JPEG": lambda p: _jpeg(p, 256, 341, 4),  # short side exactly 256
    "ILSVRC2012_val_00000005.JPEG": lambda p: _jpeg(p, 343, 256, 5),  # (343 - 224) / 2 = 59.5
    "ILSVRC2012_val_00000006.JPEG": lambda p: _jpeg(p, 4000, 3000, 6),  # very large
    "ILSVRC2012_val_00000007.JPEG": lambda p: _jpeg(p, 300, 300, 7),  # square
    "ILSVRC2012_val_00000008.JPEG": lambda p: _jpeg(p, 400, 300, 8, mode="L"),  # grayscale JPEG
    "ILSVRC2012_val_00000009.JPEG": lambda p: _jpeg(p, 300, 400, 9, mode="CMYK"),  # CMYK JPEG
    "ILSVRC2012_val_00000010.JPEG": lambda p: Image.fromarray(_pixels(333, 250, 10)).save(p, format="PNG"),
    "ILSVRC2012_val_00000011.JPEG": _exif_rotated,
    "ILSVRC2012_val_00000012.JPEG": lambda p: _jpeg(p, 225, 224, 12),  # tiny landscape, odd long side
}
LABEL_ORDER = ["03", "01", "02", "12", "04", "05", "06", "07", "08", "09", "10", "11"]
MISSING = "ILSVRC2012_val_00000099.JPEG"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """data/ (tar + extracted val/), a val.txt in a non-sorted order naming one absent image."""
    base = tmp_path_factory.mktemp("imagenet")
    data = base / "data"
    (data / "val").mkdir(parents=True)
    (data / "ILSVRC2012_img_val.tar").write_bytes(b"not an image")
    for name, write in IMAGES.items():
        write(data / "val" / name)
    labels = base / "val.txt"
    lines = [f"ILSVRC2012_val_000000{n}.JPEG {int(n) * 7}" for n in LABEL_ORDER]
    lines.insert(3, f"{MISSING} 5")
    labels.write_text("\n".join(lines) + "\n")
    return {"data": data, "labels": labels, "images": data / "val"}


# ----------------------------------------------------------------------------------------
# Independent restatements of the MLPerf reference
# ----------------------------------------------------------------------------------------


def _imread(path: Path) -> U8:
    image = cv2.imread(str(path))
    assert image is not None, path
    return cast(U8, image)


def mlperf_vgg(path: Path, nchw: bool = True) -> F32:
    """pre_process_vgg(cv2.imread(path), dims=[224, 224, 3], need_transpose=nchw)."""
    img = cv2.cvtColor(_imread(path), cv2.COLOR_BGR2RGB)
    height, width, _ = img.shape
    new_height = new_width = int(100.0 * 224 / 87.5)
    if height > width:
        w, h = new_width, int(new_height * height / width)
    else:
        h, w = new_height, int(new_width * width / height)
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    height, width, _ = img.shape
    left, right = int((width - 224) / 2), int((width + 224) / 2)
    top, bottom = int((height - 224) / 2), int((height + 224) / 2)
    out = np.asarray(img[top:bottom, left:right], dtype="float32")
    out -= np.array([123.68, 116.78, 103.94], dtype=np.float32)
    result: F32 = out.transpose([2, 0, 1]) if nchw else out
    return result


def mlperf_pytorch(path: Path, nchw: bool = True) -> F32:
    """pre_process_imagenet_pytorch with torchvision's functional ops spelt out in PIL + numpy."""
    pil = Image.fromarray(cv2.cvtColor(_imread(path), cv2.COLOR_BGR2RGB))
    w, h = pil.size
    # torchvision F.resize(img, 256): the short side becomes 256, the long one int(256 * long / short)
    size = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)
    pil = pil.resize(size, Image.Resampling.BILINEAR)
    arr = np.array(pil)  # H, W, 3 uint8
    # torchvision F.center_crop(img, 224): offsets int(round((dim - 224) / 2.0))
    top = round((arr.shape[0] - 224) / 2.0)  # Python rounds halves to even
    left = round((arr.shape[1] - 224) / 2.0)
    arr = arr[top : top + 224, left : left + 224]
    # F.to_tensor: CHW float32 / 255; F.normalize: (x - mean) / std per channel, float32
    chw = np.empty((3, 224, 224), dtype=np.float32)
    for c, (mean, std) in enumerate(zip([0.485, 0.456, 0.406], [0.229, 0.224, 0.225], strict=True)):
        plane = arr[:, :, c].astype(np.float32) / np.float32(255)
        chw[c] = (plane - np.float32(mean)) / np.float32(std)
    result: F32 = chw if nchw else chw.transpose(1, 2, 0)
    return result


def _run(name: str, inputs: dict[str, Path], out: Path, **params: Any) -> list[str]:
    recipe = preprocess.get(name)
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


def _tree_digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ----------------------------------------------------------------------------------------
# Registration and parameters
# ----------------------------------------------------------------------------------------


def test_recipes_registered() -> None:
    names = preprocess.names()
    assert "imagenet-resnet50" in names and "imagenet-torchvision" in names
    assert preprocess.get("imagenet-resnet50").finalize is not None


def test_manifest_parameters_are_the_defaults() -> None:
    manifest = tomllib.loads((ROOT / "manifests" / "resnet50.toml").read_text())
    (bench,) = [b for b in manifest["benchmark"] if b["name"] == "resnet50"]
    params = dict(bench["preprocess"])
    recipe = preprocess.get(params.pop("recipe"))
    assert recipe.name == "imagenet-resnet50"
    for key, value in params.items():
        assert key in recipe.defaults, key
        assert recipe.defaults[key] == value, key


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"layuot": "NCHW"}, "unknown parameter(s) layuot"),
        ({"layout": "NWHC"}, "layout"),
        ({"interpolation": "bogus"}, "interpolation"),
        ({"resize_short_side": 232}, "crop_percent"),
        ({"resize_short_side": 200, "crop_percent": None}, "at least crop"),
        ({"scale": 0.5}, "scale"),
        ({"keep_aspect": False}, "keep_aspect"),
        ({"means": [1, 2]}, "means"),
        ({"crop": True}, "crop"),
        ({"dtype": "float16"}, "dtype"),
    ],
)
def test_bad_parameters_are_refused(dataset: dict[str, Path], params: dict[str, Any], fragment: str) -> None:
    recipe = preprocess.get("imagenet-resnet50")
    with pytest.raises(UsageError, match=r"imagenet-resnet50") as info:
        recipe.items({"data": dataset["data"]}, params)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------------------
# imagenet-resnet50
# ----------------------------------------------------------------------------------------


def test_resnet50_matches_reference_exactly(dataset: dict[str, Path], tmp_path: Path) -> None:
    inputs = {"data": dataset["data"], "labels": dataset["labels"]}
    out = tmp_path / "out"
    items = _run("imagenet-resnet50", inputs, out)
    assert len(items) == len(IMAGES)
    for item in items:
        got = np.load(out / f"{item}.npy")
        want = mlperf_vgg(dataset["images"] / item)
        assert got.dtype == np.float32 and got.shape == (3, 224, 224), item
        assert np.array_equal(got, want), item
        # the file is what np.save of the reference's (transposed view) array writes
        assert (out / f"{item}.npy").read_bytes() == _npy_bytes(want), item


def test_resnet50_val_map_follows_the_labels_and_skips_absent_images(dataset: dict[str, Path], tmp_path: Path) -> None:
    inputs = {"data": dataset["data"], "labels": dataset["labels"]}
    out = tmp_path / "out"
    items = _run("imagenet-resnet50", inputs, out)
    expected = [f"ILSVRC2012_val_000000{n}.JPEG" for n in LABEL_ORDER]
    assert items == expected
    assert (out / "val_map.txt").read_text() == "".join(f"{name} {int(name[-7:-5]) * 7}\n" for name in expected)
    assert sorted(p.name for p in out.iterdir()) == sorted([*(f"{n}.npy" for n in expected), "val_map.txt"])


def test_resnet50_missing_error_refuses_absent_images(dataset: dict[str, Path]) -> None:
    recipe = preprocess.get("imagenet-resnet50")
    with pytest.raises(NotFetchedError, match=MISSING):
        recipe.items({"data": dataset["data"], "labels": dataset["labels"]}, {"missing": "error"})


def test_resnet50_without_labels_lists_sorted_files(dataset: dict[str, Path], tmp_path: Path) -> None:
    inputs = {"data": dataset["data"]}
    recipe = preprocess.get("imagenet-resnet50")
    items = recipe.items(inputs, {})
    assert items == sorted(IMAGES)
    subset = items[:2]
    for item in subset:
        recipe.process(item, inputs, tmp_path, {})
    assert recipe.finalize is not None
    recipe.finalize(subset, inputs, tmp_path, {})
    assert (tmp_path / "val_map.txt").read_text() == "".join(f"{name} -1\n" for name in subset)


def test_resnet50_nhwc_and_images_parameter(dataset: dict[str, Path], tmp_path: Path) -> None:
    recipe = preprocess.get("imagenet-resnet50")
    params = {"layout": "NHWC", "images": "val"}
    inputs = {"data": dataset["data"]}
    for item in ["ILSVRC2012_val_00000002.JPEG", "ILSVRC2012_val_00000009.JPEG"]:
        recipe.process(item, inputs, tmp_path, params)
        got = np.load(tmp_path / f"{item}.npy")
        assert got.shape == (224, 224, 3)
        assert np.array_equal(got, mlperf_vgg(dataset["images"] / item, nchw=False))


def test_resnet50_manifest_parameters_give_the_same_bytes(dataset: dict[str, Path], tmp_path: Path) -> None:
    manifest = tomllib.loads((ROOT / "manifests" / "resnet50.toml").read_text())
    (bench,) = [b for b in manifest["benchmark"] if b["name"] == "resnet50"]
    params = {k: v for k, v in bench["preprocess"].items() if k != "recipe"}
    recipe = preprocess.get("imagenet-resnet50")
    item = "ILSVRC2012_val_00000001.JPEG"
    recipe.process(item, {"data": dataset["data"]}, tmp_path / "a", params)
    recipe.process(item, {"data": dataset["data"]}, tmp_path / "b", {})
    assert (tmp_path / "a" / f"{item}.npy").read_bytes() == (tmp_path / "b" / f"{item}.npy").read_bytes()


@pytest.mark.parametrize("name", ["imagenet-resnet50", "imagenet-torchvision"])
def test_processing_twice_gives_identical_bytes(dataset: dict[str, Path], tmp_path: Path, name: str) -> None:
    inputs = {"data": dataset["data"], "labels": dataset["labels"]}
    recipe = preprocess.get(name)
    items = [i for i in recipe.items(inputs, {}) if not i.endswith("06.JPEG")]
    for out in (tmp_path / "one", tmp_path / "two"):
        for item in reversed(items):  # order must not matter
            recipe.process(item, inputs, out, {})
        assert recipe.finalize is not None
        recipe.finalize(items, inputs, out, {})
    first, second = _tree_digest(tmp_path / "one"), _tree_digest(tmp_path / "two")
    assert first == second
    assert not [p for p in first if p.startswith(".") or p.endswith(".tmp")]


def test_undecodable_image_is_a_one_line_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "broken.JPEG").write_bytes(b"\xff\xd8 this is not a JPEG")
    (data / "empty.JPEG").write_bytes(b"")
    recipe = preprocess.get("imagenet-resnet50")
    for name in ["broken.JPEG", "empty.JPEG"]:
        with pytest.raises(IntegrityError) as info:
            recipe.process(name, {"data": data}, tmp_path / "out", {})
        message = str(info.value)
        assert name in message and "\n" not in message
    with pytest.raises(NotFetchedError, match=r"absent\.JPEG"):
        recipe.process("absent.JPEG", {"data": data}, tmp_path / "out", {})
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_item_names_cannot_leave_the_output_folder(dataset: dict[str, Path], tmp_path: Path) -> None:
    recipe = preprocess.get("imagenet-resnet50")
    with pytest.raises(UsageError):
        recipe.process("../val/ILSVRC2012_val_00000001.JPEG", {"data": dataset["data"]}, tmp_path, {})


def test_no_images_at_all_is_not_fetched(tmp_path: Path) -> None:
    (tmp_path / "data" / "docs").mkdir(parents=True)
    (tmp_path / "data" / "docs" / "readme.txt").write_text("x")
    with pytest.raises(NotFetchedError, match="no image file"):
        preprocess.get("imagenet-resnet50").items({"data": tmp_path / "data"}, {})


# ----------------------------------------------------------------------------------------
# imagenet-torchvision
# ----------------------------------------------------------------------------------------


def test_torchvision_matches_reference_exactly(dataset: dict[str, Path], tmp_path: Path) -> None:
    inputs = {"data": dataset["data"], "labels": dataset["labels"]}
    items = _run("imagenet-torchvision", inputs, tmp_path)
    assert items == [f"ILSVRC2012_val_000000{n}.JPEG" for n in LABEL_ORDER]
    for item in items:
        got = np.load(tmp_path / f"{item}.npy")
        want = mlperf_pytorch(dataset["images"] / item)
        assert got.dtype == np.float32 and got.shape == (3, 224, 224), item
        assert np.array_equal(got, want), item
    assert (tmp_path / "val_map.txt").read_text().splitlines()[0] == "ILSVRC2012_val_00000003.JPEG 21"


def test_torchvision_crop_rounds_halves_to_even(dataset: dict[str, Path], tmp_path: Path) -> None:
    """343 x 256: (343 - 224) / 2 = 59.5 -> torchvision crops at 60, the VGG profile at 59."""
    item = "ILSVRC2012_val_00000005.JPEG"
    recipe = preprocess.get("imagenet-torchvision")
    recipe.process(item, {"data": dataset["data"]}, tmp_path, {"layout": "NHWC"})
    got = np.load(tmp_path / f"{item}.npy")
    assert got.shape == (224, 224, 3)
    assert np.array_equal(got, mlperf_pytorch(dataset["images"] / item, nchw=False))
    rgb = cv2.cvtColor(_imread(dataset["images"] / item), cv2.COLOR_BGR2RGB)
    resized = np.array(Image.fromarray(rgb).resize((343, 256), Image.Resampling.BILINEAR))
    crop = resized[16:240, 60:284].astype(np.float32) / np.float32(255)
    expected = (crop - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    assert np.array_equal(got, expected)


def test_torchvision_against_real_torchvision_when_installed(dataset: dict[str, Path], tmp_path: Path) -> None:
    functional = pytest.importorskip("torchvision.transforms.functional")
    recipe = preprocess.get("imagenet-torchvision")
    for item in sorted(IMAGES):
        recipe.process(item, {"data": dataset["data"]}, tmp_path, {})
        rgb = cv2.cvtColor(_imread(dataset["images"] / item), cv2.COLOR_BGR2RGB)
        img = functional.resize(Image.fromarray(rgb), 256, functional.InterpolationMode.BILINEAR)
        img = functional.center_crop(img, 224)
        tensor = functional.normalize(
            functional.to_tensor(img), mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225], inplace=False
        )
        assert np.array_equal(np.load(tmp_path / f"{item}.npy"), np.asarray(tensor, dtype="float32")), item


# ----------------------------------------------------------------------------------------
# libraries()
# ----------------------------------------------------------------------------------------


def test_libraries_name_the_versions_that_change_bytes() -> None:
    libs = preprocess.get("imagenet-resnet50").libraries()
    assert libs["numpy"] == np.__version__
    assert libs["opencv"] == cv2.__version__
    assert "jpeg" in libs["opencv-jpeg"].lower() and "ver" in libs["opencv-jpeg"]
    assert all(isinstance(v, str) and 0 < len(v) <= 60 for v in libs.values())
    assert "pillow" not in libs
    torch_libs = preprocess.get("imagenet-torchvision").libraries()
    assert torch_libs == {**libs, "pillow": PIL.__version__}


def test_resnet50_through_the_framework_is_identical_for_jobs_and_shards(
    tmp_path: Path, write_manifest: Any, settings: Any
) -> None:
    """A fetched tar of JPEGs -> provision preprocess: jobs 1, jobs 2 and shards 1/2 + 2/2 agree."""
    from fleetkit import NAMES as names
    from fleetkit import tiny_r50

    from provision import api

    src = tiny_r50(tmp_path, write_manifest, lambda path, w, h, seed: _jpeg(path, w, h, seed=seed))
    assert api.fetch(["tiny-r50"], settings).ok
    one = api.preprocess("tiny-r50", settings, jobs=1)
    outputs = {p.name: p.read_bytes() for p in one.path.glob("*.npy")}
    assert len(outputs) == len(names)
    first = names[0]
    assert np.array_equal(np.load(one.path / f"{first}.npy"), mlperf_vgg(src / first))
    digest = one.digest
    import shutil

    states = []
    for kwargs in ({"jobs": 2}, {"jobs": 1, "shard": (1, 2)}, {"jobs": 2, "shard": (2, 2)}):
        if "shard" not in kwargs or kwargs["shard"] == (1, 2):
            shutil.rmtree(settings.cache_dir / "preprocessed")
        report = api.preprocess("tiny-r50", settings, **kwargs)
        states.append(report.state)
        if report.state != "shard":
            assert report.digest == digest, kwargs
    assert states == ["computed", "shard", "merged"]


# ----------------------------------------------------------------------------------------
# Truncated JPEGs: decoded as the reference's cv2.imread decodes them
# ----------------------------------------------------------------------------------------


def _truncated(width: int, height: int, seed: int, keep: float | int, **save: Any) -> Callable[[Path], None]:
    """A JPEG writer that then cuts the end off: keeps that fraction of its bytes (a float) or drops that many
    (an int)."""

    def write(path: Path) -> None:
        _jpeg(path, width, height, seed, **save)
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)] if isinstance(keep, float) else data[:-keep])

    return write


#: name -> writer of a JPEG whose end is cut off (the decoder sees it end early).
TRUNCATED: dict[str, Callable[[Path], None]] = {
    "half.JPEG": _truncated(500, 375, 21, 0.5),  # the lower half of the rows is missing
    "no-eoi.JPEG": _truncated(333, 500, 22, 2),  # only the end-of-image marker is missing
    "progressive.JPEG": _truncated(400, 300, 23, 0.6, progressive=True),  # later scans missing
    "gray.JPEG": _truncated(300, 260, 24, 0.4, mode="L"),
}


@pytest.fixture(scope="module")
def truncated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("truncated")
    for name, write in TRUNCATED.items():
        write(folder / name)
    return folder


@pytest.mark.parametrize(
    ("name", "reference"), [("imagenet-resnet50", mlperf_vgg), ("imagenet-torchvision", mlperf_pytorch)]
)
def test_truncated_jpegs_decode_as_the_reference_imread(
    truncated: Path, tmp_path: Path, name: str, reference: Callable[[Path], F32]
) -> None:
    """The reference's cv2.imread decodes a JPEG cut short (libjpeg fills the rows it lacks); so does
    provision, byte for byte, where cv2.imdecode of the same bytes refuses the file."""
    recipe = preprocess.get(name)
    inputs = {"data": truncated}
    items = recipe.items(inputs, {})
    assert items == sorted(TRUNCATED)
    for item in items:
        recipe.process(item, inputs, tmp_path / "out", {})
        want = reference(truncated / item)
        assert np.array_equal(np.load(tmp_path / "out" / f"{item}.npy"), want), item
        assert (tmp_path / "out" / f"{item}.npy").read_bytes() == _npy_bytes(want), item


def test_truncated_jpegs_give_the_same_bytes_in_another_process(truncated: Path, tmp_path: Path) -> None:
    """Two runs, one here and one in a fresh interpreter, agree bit for bit (no uninitialised rows)."""
    import subprocess

    recipe = preprocess.get("imagenet-resnet50")
    for item in sorted(TRUNCATED):
        recipe.process(item, {"data": truncated}, tmp_path / "here", {})
    script = (
        "import sys, preprocess\nfrom pathlib import Path\nrecipe = preprocess.get('imagenet-resnet50')\n"
        "for item in sys.argv[3:]:\n    recipe.process(item, {'data': Path(sys.argv[1])}, Path(sys.argv[2]), {})\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(truncated), str(tmp_path / "there"), *sorted(TRUNCATED)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert _tree_digest(tmp_path / "here") == _tree_digest(tmp_path / "there")
    assert len(_tree_digest(tmp_path / "here")) == len(TRUNCATED)


def test_a_name_cv2_imread_cannot_open_is_a_one_line_error(tmp_path: Path) -> None:
    """cv2.imread of a str that is not valid UTF-8 crashes the interpreter: refused before OpenCV sees it."""
    import os

    data = tmp_path / "data"
    data.mkdir()
    raw = os.fsencode(data) + b"/bad\xff.JPEG"
    _jpeg(Path(os.fsdecode(raw)), 240, 240, 25)
    with pytest.raises(IntegrityError) as info:
        preprocess.get("imagenet-resnet50").process(os.fsdecode(b"bad\xff.JPEG"), {"data": data}, tmp_path / "out", {})
    assert "UTF-8" in str(info.value) and "\n" not in str(info.value)
