"""ImageNet recipes: the MLPerf ResNet-50 reference profile and the PyTorch (torchvision) profile.

Both write the layout the MLPerf reference harness (``vision/classification_and_detection``,
``python/imagenet.py``) reads from its cache: one ``<image name>.npy`` per image, named after
the image's entry in ``val_map.txt`` (``ILSVRC2012_val_00000001.JPEG.npy``; an entry with
sub-folders gets the same sub-folders), plus ``val_map.txt`` itself, so a consumer that reads
``<cache>/<name>.npy`` in ``val_map.txt`` order uses the output as it is.

``imagenet-resnet50`` is ``pre_process_vgg`` of the reference (``python/dataset.py``):

1. decode with ``cv2.imread`` itself, as the reference does (``IMREAD_COLOR``: BGR, uint8, 3
   channels; grayscale and CMYK JPEGs are converted by OpenCV, the EXIF orientation is applied,
   a file is decoded by its content, so a PNG named ``.JPEG`` decodes as PNG, and a JPEG whose
   end is cut off decodes with the missing rows filled by libjpeg, see
   :func:`~preprocess.images.decode_bgr`);
2. BGR -> RGB;
3. resize keeping the aspect ratio with ``cv2.resize`` (``interpolation``, default
   ``INTER_AREA``): the short side becomes ``S = resize_short_side`` (256 =
   ``int(100 * 224 / 87.5)``) and the long side ``int(S * long / short)`` (Python float
   division, then truncation); an image whose height is not greater than its width
   (landscape or square) gets height ``S``;
4. centre crop ``crop`` (224): ``left = int((w - crop) / 2)``, ``right = int((w + crop) / 2)``,
   the same for top/bottom, on the uint8 image;
5. float32, subtract the float32 RGB ``means`` (123.68, 116.78, 103.94); no std scaling;
6. ``layout`` ``NCHW`` (ONNX/PyTorch backends) -> (3, 224, 224); ``NHWC`` (TensorFlow) ->
   (224, 224, 3); saved C-contiguous with ``np.save``.

``imagenet-torchvision`` is ``pre_process_imagenet_pytorch`` of the reference, which decodes with
``cv2.imread`` too, converts BGR -> RGB and then runs torchvision's functional transforms on a PIL
image. It is re-implemented here with PIL and numpy only (no torch import), operation for
operation:

1. decode as above, BGR -> RGB, ``PIL.Image.fromarray`` (mode RGB);
2. ``F.resize(img, 256, BILINEAR)``: torchvision's size rule (``_compute_resized_output_size``):
   ``short, long = (w, h) if w <= h else (h, w)``; the new short side is ``S`` and the new long
   side ``int(S * long / short)``; then ``img.resize((new_w, new_h), Image.BILINEAR)`` (PIL's
   antialiased bilinear filter, uint8 result; an image already of that size is copied as is);
3. ``F.center_crop(img, 224)``: ``top = int(round((h - crop) / 2.0))``,
   ``left = int(round((w - crop) / 2.0))`` (Python's round: halves go to even),
   ``img.crop((left, top, left + crop, top + crop))``;
4. ``F.to_tensor``: uint8 -> float32, then float32 division by 255 (ATen's CPU ``div`` is a true
   IEEE division for float32, not a multiplication by the reciprocal);
5. ``F.normalize``: ``(x - mean) / std`` with float32 ``means`` (0.485, 0.456, 0.406) and
   ``stds`` (0.229, 0.224, 0.225), one true float32 subtraction and division per element;
6. ``NCHW`` (the reference with a PyTorch backend) or ``NHWC`` (``permute(1, 2, 0)``).

Items: the image names of the labels file (``inputs["labels"]``, lines ``<name> <label>``, in file
order) that exist under the image folder; without a labels file, every image file (``.jpeg``,
``.jpg``, ``.png``, any case, hidden files skipped) under the image folder, recursively, as
``/``-separated relative paths in sorted order. Images the labels file lists but the folder lacks
are skipped as the reference skips them (``missing = "error"`` refuses them instead), so sample
index i of the output is line i of the written ``val_map.txt``.

The image folder is ``inputs["data"] / images`` when the ``images`` parameter is set (an absolute
path is used as it is), else ``inputs["images"]`` when the framework gives that role, else the
shallowest folder under ``inputs["data"]`` (sorted, breadth first) that directly holds an image
file, e.g. ``<artifact>/val`` for the extracted ``ILSVRC2012_img_val.tar``.

``finalize`` writes ``val_map.txt``: one ``<name> <label>`` line per item, in item order, the
label token copied from the labels file. Without a labels file the label is ``-1`` on every line,
so that the reference reader (which splits each line into a name and an int) still loads the
list for performance runs, while an accuracy run scores 0 instead of a plausible wrong number.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
import PIL
from PIL import Image

from preprocess.images import (
    F32,
    U8,
    check_item,
    check_params,
    choice_param,
    decode_bgr,
    image_folder,
    list_images,
    once_per_params,
    opencv_libraries,
    optional_path,
    output_path,
    param_error,
    param_number,
    param_triple,
    positive_int,
    present_items,
    save_array,
    to_layout,
    write_text,
)
from preprocess.recipe import Inputs, Params, Recipe, register
from provision.errors import IntegrityError, NotFetchedError, UsageError

__all__ = ["Resnet50Config", "TorchvisionConfig", "resnet50_transform", "torchvision_transform"]


#: "2": images are decoded with ``cv2.imread`` itself (version 1 used ``cv2.imdecode``, which refuses
#: a truncated JPEG, or in some OpenCV builds leaves its missing rows uninitialised).
_RECIPE_VERSION = "2"

_CV2_INTERPOLATION: dict[str, int] = {
    "area": cv2.INTER_AREA,
    "linear": cv2.INTER_LINEAR,
    "nearest": cv2.INTER_NEAREST,
    "cubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
}

_PIL_INTERPOLATION: dict[str, Image.Resampling] = {
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}

# --------------------------------------------------------------------------------------
# Labels, items and val_map.txt (both recipes)
# --------------------------------------------------------------------------------------


def _read_labels(path: Path, recipe: str) -> list[tuple[str, str]]:
    """(name, label token) per non-blank line of a ``val_map.txt``-style file, in file order."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFetchedError(f"labels file {path} does not exist; fetch the labels first", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"cannot read labels file {path}: {exc}", path=str(path)) from None
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = re.split(r"\s+", line.strip())
        if len(fields) != 2 or not re.fullmatch(r"[+-]?\d+", fields[1]):
            raise IntegrityError(
                f"labels file {path} line {number}: expected '<image name> <integer label>', got {line.strip()!r}",
                path=str(path),
            )
        if fields[0] in seen:
            raise IntegrityError(f"labels file {path} line {number}: image {fields[0]} is listed twice", path=str(path))
        seen.add(fields[0])
        check_item(fields[0], recipe)
        rows.append((fields[0], fields[1]))
    if not rows:
        raise IntegrityError(f"labels file {path} lists no image", path=str(path))
    return rows


def _imagenet_items(recipe: str, inputs: Inputs, images: str | None, missing: str) -> list[str]:
    folder = image_folder(inputs, images, recipe)
    labels = inputs.get("labels")
    if labels is None:
        return list_images(folder)
    names = [name for name, _ in _read_labels(Path(labels), recipe)]
    return present_items(names, folder, missing, Path(labels), recipe)


def _write_val_map(recipe: str, items: list[str], inputs: Inputs, out_dir: Path) -> None:
    labels = inputs.get("labels")
    lines = []
    if labels is None:
        lines = [f"{item} -1\n" for item in items]
    else:
        table = dict(_read_labels(Path(labels), recipe))
        for item in items:
            if item not in table:
                raise UsageError(f"preprocessing recipe {recipe!r}: item {item!r} is not in the labels file {labels}")
            lines.append(f"{item} {table[item]}\n")
    write_text(out_dir / "val_map.txt", "".join(lines))


def _items(recipe: str, config: Callable[[Params], Any], inputs: Inputs, params: Params) -> list[str]:
    """``items`` of both ImageNet recipes: the labelled images present, in labels order."""
    c = config(params)
    return _imagenet_items(recipe, inputs, c.images, c.missing)


def _process(
    recipe: str,
    config: Callable[[Params], Any],
    transform: Callable[[U8, Any], F32],
    item: str,
    inputs: Inputs,
    out_dir: Path,
    params: Params,
) -> None:
    """``process`` of both ImageNet recipes: decode, transform, ``<item>.npy``."""
    c = config(params)
    dest = output_path(out_dir, item, recipe)
    src = image_folder(inputs, c.images, recipe) / item
    save_array(dest, transform(decode_bgr(src), c))


def _finalize(
    recipe: str, config: Callable[[Params], Any], items: list[str], inputs: Inputs, out_dir: Path, params: Params
) -> None:
    """``finalize`` of both ImageNet recipes: check the parameters, write ``val_map.txt``."""
    config(params)
    _write_val_map(recipe, items, inputs, out_dir)


# --------------------------------------------------------------------------------------
# imagenet-resnet50 (MLPerf pre_process_vgg)
# --------------------------------------------------------------------------------------

RESNET50 = "imagenet-resnet50"

RESNET50_DEFAULTS: dict[str, Any] = {
    "decoder": "opencv",
    "color": "RGB",
    "resize_short_side": 256,
    "crop_percent": 87.5,
    "interpolation": "area",
    "keep_aspect": True,
    "crop": 224,
    "means": [123.68, 116.78, 103.94],
    "scale": 1.0,
    "layout": "NCHW",
    "dtype": "float32",
    "label_offset": -1,
    "cache_suffix": ".npy",
    "images": None,
    "missing": "skip",
}


@dataclass(frozen=True)
class Resnet50Config:
    """The validated parameters of ``imagenet-resnet50``."""

    short_side: int = 256
    crop: int = 224
    interpolation: int = cv2.INTER_AREA
    means: tuple[float, float, float] = (123.68, 116.78, 103.94)
    layout: str = "NCHW"
    images: str | None = None
    missing: str = "skip"


def _resnet50_config(params: Params) -> Resnet50Config:
    return cast(Resnet50Config, once_per_params(_resnet50_config_checked, params))


def _resnet50_config_checked(params: Params) -> Resnet50Config:
    name = RESNET50
    p = check_params(name, params, RESNET50_DEFAULTS)
    choice_param(name, p, "decoder", ["opencv"])
    choice_param(name, p, "color", ["RGB"])
    choice_param(name, p, "keep_aspect", [True])
    choice_param(name, p, "dtype", ["float32"])
    choice_param(name, p, "cache_suffix", [".npy"])
    interpolation = choice_param(name, p, "interpolation", sorted(_CV2_INTERPOLATION))
    layout = choice_param(name, p, "layout", ["NCHW", "NHWC"])
    missing = choice_param(name, p, "missing", ["skip", "error"])
    crop = positive_int(name, p, "crop")
    short = positive_int(name, p, "resize_short_side")
    if short < crop:
        raise param_error(name, "resize_short_side", short, f"at least crop = {crop}")
    if p["crop_percent"] is not None:
        percent = param_number(name, p, "crop_percent")
        if percent <= 0 or int(100.0 * crop / percent) != short:
            raise param_error(
                name, "crop_percent", p["crop_percent"], f"a value with int(100 * crop / crop_percent) = {short}"
            )
    if param_number(name, p, "scale") != 1.0:
        raise param_error(name, "scale", p["scale"], "1.0 (pre_process_vgg does not scale)")
    label_offset = p["label_offset"]
    if isinstance(label_offset, bool) or not isinstance(label_offset, int):
        raise param_error(name, "label_offset", label_offset, "an integer (used by post-processing only)")
    return Resnet50Config(
        short_side=short,
        crop=crop,
        interpolation=_CV2_INTERPOLATION[interpolation],
        means=param_triple(name, p, "means"),
        layout=layout,
        images=optional_path(name, p, "images"),
        missing=missing,
    )


def resnet50_transform(bgr: U8, config: Resnet50Config) -> F32:
    """``pre_process_vgg`` on a decoded BGR image (see the module docstring)."""
    img = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    height, width = img.shape[:2]
    short = config.short_side
    if height > width:
        new_w, new_h = short, int(short * height / width)
    else:
        new_w, new_h = int(short * width / height), short
    img = cv2.resize(img, (new_w, new_h), interpolation=config.interpolation)
    height, width = img.shape[:2]
    crop = config.crop
    left, right = int((width - crop) / 2), int((width + crop) / 2)
    top, bottom = int((height - crop) / 2), int((height + crop) / 2)
    out: F32 = np.asarray(img[top:bottom, left:right], dtype=np.float32)
    out -= np.array(config.means, dtype=np.float32)
    return to_layout(out, config.layout)


register(
    Recipe(
        name=RESNET50,
        version=_RECIPE_VERSION,
        items=functools.partial(_items, RESNET50, _resnet50_config),
        process=functools.partial(_process, RESNET50, _resnet50_config, resnet50_transform),
        finalize=functools.partial(_finalize, RESNET50, _resnet50_config),
        libraries=opencv_libraries,
        defaults=RESNET50_DEFAULTS,
        description=(
            "MLPerf ResNet-50 reference (pre_process_vgg): OpenCV decode, RGB, INTER_AREA resize of the short side "
            "to 256, centre crop 224, float32 minus RGB means 123.68/116.78/103.94, NCHW; <name>.npy + val_map.txt"
        ),
    )
)


# --------------------------------------------------------------------------------------
# imagenet-torchvision (MLPerf pre_process_imagenet_pytorch)
# --------------------------------------------------------------------------------------

TORCHVISION = "imagenet-torchvision"

TORCHVISION_DEFAULTS: dict[str, Any] = {
    "decoder": "opencv",
    "color": "RGB",
    "resize_short_side": 256,
    "interpolation": "bilinear",
    "crop": 224,
    "means": [0.485, 0.456, 0.406],
    "stds": [0.229, 0.224, 0.225],
    "layout": "NCHW",
    "dtype": "float32",
    "label_offset": 0,
    "cache_suffix": ".npy",
    "images": None,
    "missing": "skip",
}


@dataclass(frozen=True)
class TorchvisionConfig:
    """The validated parameters of ``imagenet-torchvision``."""

    short_side: int = 256
    crop: int = 224
    resample: Image.Resampling = Image.Resampling.BILINEAR
    means: tuple[float, float, float] = (0.485, 0.456, 0.406)
    stds: tuple[float, float, float] = (0.229, 0.224, 0.225)
    layout: str = "NCHW"
    images: str | None = None
    missing: str = "skip"


def _torchvision_config(params: Params) -> TorchvisionConfig:
    return cast(TorchvisionConfig, once_per_params(_torchvision_config_checked, params))


def _torchvision_config_checked(params: Params) -> TorchvisionConfig:
    name = TORCHVISION
    p = check_params(name, params, TORCHVISION_DEFAULTS)
    choice_param(name, p, "decoder", ["opencv"])
    choice_param(name, p, "color", ["RGB"])
    choice_param(name, p, "dtype", ["float32"])
    choice_param(name, p, "cache_suffix", [".npy"])
    interpolation = choice_param(name, p, "interpolation", sorted(_PIL_INTERPOLATION))
    layout = choice_param(name, p, "layout", ["NCHW", "NHWC"])
    missing = choice_param(name, p, "missing", ["skip", "error"])
    crop = positive_int(name, p, "crop")
    short = positive_int(name, p, "resize_short_side")
    if short < crop:
        raise param_error(name, "resize_short_side", short, f"at least crop = {crop}")
    label_offset = p["label_offset"]
    if isinstance(label_offset, bool) or not isinstance(label_offset, int):
        raise param_error(name, "label_offset", label_offset, "an integer (used by post-processing only)")
    return TorchvisionConfig(
        short_side=short,
        crop=crop,
        resample=_PIL_INTERPOLATION[interpolation],
        means=param_triple(name, p, "means"),
        stds=param_triple(name, p, "stds", nonzero=True),
        layout=layout,
        images=optional_path(name, p, "images"),
        missing=missing,
    )


def torchvision_transform(bgr: U8, config: TorchvisionConfig) -> F32:
    """``pre_process_imagenet_pytorch`` on a decoded BGR image, without torch (see the module docstring)."""
    image = Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = config.short_side, int(config.short_side * long / short)
    new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
    image = image.resize((new_w, new_h), config.resample)
    crop = config.crop
    top = round((new_h - crop) / 2.0)  # torchvision: int(round(...)); Python rounds halves to even
    left = round((new_w - crop) / 2.0)
    image = image.crop((left, top, left + crop, top + crop))
    pixels = np.asarray(image, dtype=np.uint8).astype(np.float32)
    scaled: F32 = pixels / np.float32(255)
    means = np.array(config.means, dtype=np.float32)
    stds = np.array(config.stds, dtype=np.float32)
    out = cast(F32, (scaled - means) / stds)
    return to_layout(out, config.layout)


def _torchvision_libraries() -> dict[str, str]:
    return {**opencv_libraries(), "pillow": str(PIL.__version__)}


register(
    Recipe(
        name=TORCHVISION,
        version=_RECIPE_VERSION,
        items=functools.partial(_items, TORCHVISION, _torchvision_config),
        process=functools.partial(_process, TORCHVISION, _torchvision_config, torchvision_transform),
        finalize=functools.partial(_finalize, TORCHVISION, _torchvision_config),
        libraries=_torchvision_libraries,
        defaults=TORCHVISION_DEFAULTS,
        description=(
            "MLPerf ResNet-50 PyTorch profile (pre_process_imagenet_pytorch): OpenCV decode, RGB, PIL bilinear resize "
            "of the short side to 256, centre crop 224, /255, mean/std normalisation, NCHW; <name>.npy + val_map.txt"
        ),
    )
)
