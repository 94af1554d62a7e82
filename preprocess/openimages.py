"""OpenImages recipe: the MLPerf RetinaNet reference profile (``openimages-retinanet``).

``pre_process_openimages_retinanet`` of the MLPerf reference (``vision/classification_and_detection``,
``python/dataset.py``, through ``maybe_resize``), step for step:

1. decode with ``cv2.imread`` itself, as the reference does (``IMREAD_COLOR``: BGR uint8, 3
   channels, EXIF orientation applied, format taken from the content, a truncated JPEG's missing
   rows filled by libjpeg; see :func:`~preprocess.images.decode_bgr`);
2. convert to float32 **before** anything else;
3. if the array is 2-D or has other than 3 channels, ``cv2.COLOR_GRAY2RGB`` (kept for fidelity:
   ``IMREAD_COLOR`` always yields 3 channels, so grayscale JPEGs arrive as 3 equal channels);
4. ``cv2.COLOR_BGR2RGB``;
5. ``cv2.resize`` of the float32 image to ``resize`` = [height, width] (800 x 800, aspect ratio not
   kept) with ``interpolation`` (default ``INTER_LINEAR``);
6. ``img /= 255.`` (float32 division); the manifests give this as ``scale`` = 1/255, and a scale
   whose reciprocal is an integer is applied as that division, exactly as the reference does
   (any other scale is a float32 multiplication);
7. ``layout`` ``NCHW`` -> (3, 800, 800), ``NHWC`` -> (800, 800, 3); ``np.save``.

Output: ``<file_name>.npy`` per image, ``file_name`` as the annotations give it
(``<ImageID>.jpg`` -> ``<ImageID>.jpg.npy``), the layout the reference's
``preprocessed/openimages-800-retinanet/<layout>/`` cache and MLC's ``preprocessed_dir`` use.

Items: the ``file_name`` of each entry of the COCO-style annotations' ``images`` list
(``openimages-mlperf.json``), in list order (entries are keyed by ``id`` as the reference keys
them: a repeated id keeps its first position and its last file name; a repeated file name is
processed once), keeping those that exist under the image folder (``missing = "error"`` refuses a
missing one). The annotations file is ``inputs["labels"]`` when given, else the ``annotations``
parameter (relative to ``inputs["data"]``, or absolute), else the shallowest (then sorted-first)
``openimages-mlperf.json`` under ``inputs["data"]``. With no annotations file at all the items are
the sorted ``.jpg``/``.jpeg`` names under the image folder.

The image folder is found as for the ImageNet recipes (``images`` parameter, then
``inputs["images"]``, then the shallowest folder under ``inputs["data"]`` holding a ``.jpg``):
note that the ``openimages-mlperf`` artifact holds the annotations only, so the images
(``validation/data/<ImageID>.jpg`` of the MLPerf download script) must be named through
``images`` or ``inputs["images"]`` unless they were placed under the artifact folder.

No index file is written (the reference harness rebuilds the order from the annotations).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np

from preprocess.images import (
    F32,
    U8,
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
    present_items,
    save_array,
)
from preprocess.recipe import Inputs, Params, Recipe, register
from provision.errors import IntegrityError, NotFetchedError, UsageError

__all__ = ["ANNOTATIONS_NAME", "RetinanetConfig", "annotations_file", "harness_annotations", "retinanet_transform"]

RETINANET = "openimages-retinanet"

#: The annotations file the MLPerf download script writes (``annotations/openimages-mlperf.json``).
ANNOTATIONS_NAME = "openimages-mlperf.json"

#: "2": images are decoded with ``cv2.imread`` itself (version 1 used ``cv2.imdecode``, which refuses
#: a truncated JPEG, or in some OpenCV builds leaves its missing rows uninitialised).
_RECIPE_VERSION = "2"

_JPEG_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg")

_CV2_INTERPOLATION: dict[str, int] = {
    "linear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
    "nearest": cv2.INTER_NEAREST,
    "cubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
}

RETINANET_DEFAULTS: dict[str, Any] = {
    "decoder": "opencv",
    "to_float32_first": True,
    "gray_to_rgb": True,
    "color": "RGB",
    "resize": [800, 800],
    "interpolation": "linear",
    "scale": 1.0 / 255.0,
    "layout": "NCHW",
    "dtype": "float32",
    "cache_suffix": ".npy",
    "images": None,
    "annotations": None,
    "missing": "skip",
}


@dataclass(frozen=True)
class RetinanetConfig:
    """The validated parameters of ``openimages-retinanet``."""

    height: int = 800
    width: int = 800
    interpolation: int = cv2.INTER_LINEAR
    divisor: float | None = 255.0  # when set, pixels are divided by it; else multiplied by factor
    factor: float = 1.0 / 255.0
    layout: str = "NCHW"
    images: str | None = None
    annotations: str | None = None
    missing: str = "skip"


def _config(params: Params) -> RetinanetConfig:
    return cast(RetinanetConfig, once_per_params(_config_checked, params))


def _config_checked(params: Params) -> RetinanetConfig:
    name = RETINANET
    p = check_params(name, params, RETINANET_DEFAULTS)
    choice_param(name, p, "decoder", ["opencv"])
    choice_param(name, p, "to_float32_first", [True])
    choice_param(name, p, "gray_to_rgb", [True])
    choice_param(name, p, "color", ["RGB"])
    choice_param(name, p, "dtype", ["float32"])
    choice_param(name, p, "cache_suffix", [".npy"])
    interpolation = choice_param(name, p, "interpolation", sorted(_CV2_INTERPOLATION))
    layout = choice_param(name, p, "layout", ["NCHW", "NHWC"])
    missing = choice_param(name, p, "missing", ["skip", "error"])
    size = p["resize"]
    if (
        not isinstance(size, (list, tuple))
        or len(size) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in size)
    ):
        raise param_error(name, "resize", size, "[height, width], two positive integers")
    scale = p["scale"]
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        raise param_error(name, "scale", scale, "a positive number (1/255 in the reference)")
    reciprocal = 1.0 / float(scale)
    divisor: float | None = None
    if abs(reciprocal - round(reciprocal)) <= 1e-9 * reciprocal:
        divisor = float(round(reciprocal))
    return RetinanetConfig(
        height=size[0],
        width=size[1],
        interpolation=_CV2_INTERPOLATION[interpolation],
        divisor=divisor,
        factor=float(scale),
        layout=layout,
        images=optional_path(name, p, "images"),
        annotations=optional_path(name, p, "annotations"),
        missing=missing,
    )


def retinanet_transform(bgr: U8, config: RetinanetConfig) -> F32:
    """``pre_process_openimages_retinanet`` on a decoded BGR image (see the module docstring)."""
    img: F32 = np.array(bgr, dtype=np.float32)
    if img.ndim < 3 or img.shape[2] != 3:
        img = cast(F32, cv2.cvtColor(img, cv2.COLOR_GRAY2RGB))
    img = cast(F32, cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    img = cast(F32, cv2.resize(img, (config.width, config.height), interpolation=config.interpolation))
    if config.divisor is not None:
        img /= np.float32(config.divisor)
    else:
        img *= np.float32(config.factor)
    if config.layout == "NCHW":
        chw: F32 = np.ascontiguousarray(img.transpose(2, 0, 1))
        return chw
    return img


def _annotations_file(inputs: Inputs, config: RetinanetConfig) -> Path | None:
    if "labels" in inputs:
        return Path(inputs["labels"])
    data = Path(inputs["data"]) if "data" in inputs else None
    if config.annotations is not None:
        if data is None:
            raise UsageError(f"preprocessing recipe {RETINANET!r} needs the 'data' input (the dataset folder)")
        return data / config.annotations
    if data is None or not data.is_dir():
        return None
    found = sorted(data.rglob(ANNOTATIONS_NAME), key=lambda path: (len(path.relative_to(data).parts), path.as_posix()))
    return found[0] if found else None


def _read_annotations(path: Path) -> tuple[dict[str, Any], dict[Any, dict[str, Any]]]:
    """The annotation document and its ``images`` entries keyed by ``id`` as the reference keys them
    (``images[i["id"]] = ...`` in list order: a repeated id keeps its first position and its last entry)."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        raise NotFetchedError(f"annotations file {path} does not exist; fetch it first", path=str(path)) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"cannot read annotations file {path}: {exc}", path=str(path)) from None
    entries = doc.get("images") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise IntegrityError(f"annotations file {path} has no 'images' list (COCO format expected)", path=str(path))
    by_id: dict[Any, dict[str, Any]] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str) or "id" not in entry:
            raise IntegrityError(
                f"annotations file {path}: images[{index}] needs an 'id' and a string 'file_name'", path=str(path)
            )
        key = entry["id"]
        if isinstance(key, (list, dict)):
            raise IntegrityError(
                f"annotations file {path}: images[{index}] has an id that is not a scalar", path=str(path)
            )
        by_id[key] = entry
    return doc, by_id


def _annotation_names(path: Path) -> list[str]:
    """``file_name`` of each ``images`` entry, keyed by ``id`` as the reference keys them (each name once)."""
    _, by_id = _read_annotations(path)
    return list(dict.fromkeys(entry["file_name"] for entry in by_id.values()))


def annotations_file(run_inputs: Inputs, params: Params) -> Path | None:
    """The annotation file a run with these inputs and parameters read (see the module docstring)."""
    return _annotations_file(run_inputs, _config(params))


def harness_annotations(path: Path, out_dir: Path) -> dict[str, Any]:
    """The annotation file ``path`` cut to the samples in ``out_dir``, for MLPerf's reference harness.

    The reference (``python/openimages.py`` with ``--use_preprocessed_dataset``) keys the images by
    ``id`` and skips those without ``<file_name>.npy``; its accuracy script
    (``tools/accuracy-openimages.py``) then takes sample ``i`` to be ``images[i]`` of the file, so a
    file that lists an image the outputs lack shifts every later sample onto the wrong ground truth.
    Returned: the document as it is, with ``images`` the entries of the recipe's items in their
    order (per file name, the entry of the first id that names it; only those with an output) and
    ``annotations`` only the boxes of those images.
    """
    doc, by_id = _read_annotations(path)
    chosen: dict[str, Any] = {}
    for key, entry in by_id.items():
        chosen.setdefault(entry["file_name"], key)
    kept = [key for name, key in chosen.items() if (out_dir / f"{name}.npy").is_file()]
    ids = {key for key in kept if not isinstance(key, (list, dict))}
    boxes = doc.get("annotations") or []
    if not isinstance(boxes, list):
        raise IntegrityError(f"annotations file {path}: 'annotations' is not a list (COCO format expected)")
    return {
        **doc,
        "images": [by_id[key] for key in kept],
        "annotations": [box for box in boxes if isinstance(box, dict) and _image_id(box) in ids],
    }


def _image_id(box: dict[str, Any]) -> Any:
    """A box's ``image_id``, or ``None`` when it is not a scalar (it then matches no image)."""
    value = box.get("image_id")
    return None if isinstance(value, (list, dict)) else value


def _items(inputs: Inputs, params: Params) -> list[str]:
    config = _config(params)
    folder = image_folder(inputs, config.images, RETINANET, _JPEG_SUFFIXES)
    annotations = _annotations_file(inputs, config)
    if annotations is None:
        return list_images(folder, _JPEG_SUFFIXES)
    names = _annotation_names(annotations)
    for name in names:
        output_path(Path("."), name, RETINANET)  # refuses names that would leave the output folder
    return present_items(names, folder, config.missing, annotations, RETINANET)


def _process(item: str, inputs: Inputs, out_dir: Path, params: Params) -> None:
    config = _config(params)
    dest = output_path(out_dir, item, RETINANET)
    src = image_folder(inputs, config.images, RETINANET, _JPEG_SUFFIXES) / item
    save_array(dest, retinanet_transform(decode_bgr(src), config))


register(
    Recipe(
        name=RETINANET,
        version=_RECIPE_VERSION,
        items=_items,
        process=_process,
        finalize=None,
        libraries=opencv_libraries,
        defaults=RETINANET_DEFAULTS,
        description=(
            "MLPerf RetinaNet reference (pre_process_openimages_retinanet): OpenCV decode, float32, RGB, INTER_LINEAR "
            "resize to 800x800, /255, NCHW; <ImageID>.jpg.npy in the annotations' image order"
        ),
    )
)
