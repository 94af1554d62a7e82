"""Helpers shared by the image recipes (imagenet, openimages): parameter checks, finding the
image folder, decoding with ``cv2.imread`` as the reference does, writing ``.npy`` outputs,
OpenCV build facts.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, cast

import cv2
import numpy as np
import numpy.typing as npt

from preprocess.recipe import Inputs, Params
from provision.errors import IntegrityError, NotFetchedError, UsageError

#: File name endings (compared in lower case) counted as images when a folder is searched.
IMAGE_SUFFIXES: tuple[str, ...] = (".jpeg", ".jpg", ".png")

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

# --------------------------------------------------------------------------------------
# Shared helpers (also used by preprocess.openimages)
# --------------------------------------------------------------------------------------


def check_params(recipe: str, params: Params, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``defaults`` overlaid with ``params``; an unknown key is a one-line :class:`UsageError`."""
    unknown = sorted(set(params) - set(defaults) - {"recipe"})
    if unknown:
        raise UsageError(
            f"preprocessing recipe {recipe!r}: unknown parameter(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(defaults))}"
        )
    merged = dict(defaults)
    merged.update({k: v for k, v in params.items() if k != "recipe"})
    return merged


def param_error(recipe: str, name: str, value: object, expected: str) -> UsageError:
    return UsageError(f"preprocessing recipe {recipe!r}: parameter {name} = {value!r}; expected {expected}")


def choice_param(recipe: str, p: Mapping[str, Any], name: str, allowed: Sequence[Any]) -> Any:
    value = p[name]
    if not any(type(value) is type(a) and value == a for a in allowed):
        raise param_error(recipe, name, value, " or ".join(repr(a) for a in allowed))
    return value


def positive_int(recipe: str, p: Mapping[str, Any], name: str) -> int:
    value = p[name]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise param_error(recipe, name, value, "a positive integer")
    return value


def param_number(recipe: str, p: Mapping[str, Any], name: str) -> float:
    value = p[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise param_error(recipe, name, value, "a number")
    return float(value)


def param_triple(recipe: str, p: Mapping[str, Any], name: str, *, nonzero: bool = False) -> tuple[float, float, float]:
    value = p[name]
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 3
        or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value)
        or (nonzero and any(v == 0 for v in value))
    ):
        raise param_error(recipe, name, value, "a list of 3 numbers (R, G, B)" + (", none zero" if nonzero else ""))
    return (float(value[0]), float(value[1]), float(value[2]))


def optional_path(recipe: str, p: Mapping[str, Any], name: str) -> str | None:
    value = p[name]
    if value is not None and (not isinstance(value, str) or not value):
        raise param_error(recipe, name, value, "a folder path (string) or nothing")
    return value


def _data(inputs: Inputs, recipe: str) -> Path:
    try:
        return Path(inputs["data"])
    except KeyError:
        raise UsageError(f"preprocessing recipe {recipe!r} needs the 'data' input (the dataset folder)") from None


def _has_image(folder: Path, suffixes: tuple[str, ...]) -> tuple[bool, list[str]]:
    """Whether ``folder`` directly holds an image file; its sub-folder names otherwise."""
    subdirs: list[str] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.name.lower().endswith(suffixes) and entry.is_file():
                return True, []
            if entry.is_dir():
                subdirs.append(entry.name)
    return False, subdirs


#: Validated configurations by their parameters (checked once per process, not per item).
_CONFIGS: dict[tuple[str, str], Any] = {}


def once_per_params(build: Callable[[Params], Any], params: Params) -> Any:
    """``build(params)``, remembered per process by the parameters' canonical JSON."""
    key = (build.__qualname__, json.dumps(dict(params), sort_keys=True, default=str))
    if key not in _CONFIGS:
        _CONFIGS[key] = build(params)
    return _CONFIGS[key]


#: image_folder results of this process (a run asks once per item; the answer does not change).
_FOLDERS: dict[tuple[Any, ...], Path] = {}


def image_folder(inputs: Inputs, images: str | None, recipe: str, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> Path:
    """The folder the item names are relative to (see the module docstring); remembered per process."""
    key = (tuple(sorted((k, str(v)) for k, v in inputs.items())), images, recipe, suffixes)
    found = _FOLDERS.get(key)
    if found is None or not found.is_dir():
        found = _FOLDERS[key] = _find_image_folder(inputs, images, recipe, suffixes)
    return found


def _find_image_folder(inputs: Inputs, images: str | None, recipe: str, suffixes: tuple[str, ...]) -> Path:
    if images is not None:
        folder = Path(images) if Path(images).is_absolute() else _data(inputs, recipe) / images
        if not folder.is_dir():
            raise NotFetchedError(
                f"preprocessing recipe {recipe!r}: image folder {folder} (parameter images = {images!r}) "
                "does not exist; fetch the dataset or fix the parameter",
                path=str(folder),
            )
        return folder
    if "images" in inputs:
        folder = Path(inputs["images"])
        if not folder.is_dir():
            raise NotFetchedError(
                f"preprocessing recipe {recipe!r}: image folder {folder} does not exist", path=str(folder)
            )
        return folder
    data = _data(inputs, recipe)
    if not data.is_dir():
        raise NotFetchedError(
            f"preprocessing recipe {recipe!r}: dataset folder {data} does not exist; fetch the dataset first",
            path=str(data),
        )
    level = [data]
    while level:
        below: list[Path] = []
        for folder in level:
            found, subdirs = _has_image(folder, suffixes)
            if found:
                return folder
            below.extend(folder / name for name in sorted(subdirs))
        level = below
    raise NotFetchedError(
        f"preprocessing recipe {recipe!r}: no image file ({', '.join(suffixes)}) anywhere under {data}; "
        "fetch the images or set the parameter images",
        path=str(data),
    )


def list_images(folder: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[str]:
    """Every image file under ``folder`` (recursively, hidden entries skipped) as sorted posix paths."""
    found: list[str] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = Path(root).relative_to(folder)
        for name in files:
            if not name.startswith(".") and name.lower().endswith(suffixes):
                found.append((rel / name).as_posix())
    return sorted(found)


def check_item(item: str, recipe: str) -> PurePosixPath:
    rel = PurePosixPath(item)
    if not item or item.startswith("/") or "\\" in item or any(part in ("", ".", "..") for part in item.split("/")):
        raise UsageError(f"preprocessing recipe {recipe!r}: item {item!r} is not a plain relative file name")
    return rel


def output_path(out_dir: Path, item: str, recipe: str) -> Path:
    """``out_dir/<item>.npy`` (the reference cache name), refusing names that leave ``out_dir``."""
    rel = check_item(item, recipe)
    return out_dir.joinpath(*rel.parts[:-1], rel.name + ".npy")


def present_items(names: Sequence[str], folder: Path, missing: str, source: Path, recipe: str) -> list[str]:
    """``names`` that exist as files under ``folder``, in order (``missing = "error"``: all or fail)."""
    present = [name for name in names if (folder / name).is_file()]
    absent = len(names) - len(present)
    if absent and missing == "error":
        first = next(name for name in names if not (folder / name).is_file())
        raise NotFetchedError(
            f"preprocessing recipe {recipe!r}: {absent} of {len(names)} images listed in {source} are missing "
            f"under {folder} (first: {first}); fetch the full dataset or set missing = 'skip'",
            path=str(folder / first),
        )
    if not present:
        raise NotFetchedError(
            f"preprocessing recipe {recipe!r}: none of the {len(names)} images listed in {source} is under "
            f"{folder}; fetch the images or set the parameter images",
            path=str(folder),
        )
    return present


def decode_bgr(path: Path) -> U8:
    """``cv2.imread(path)`` itself (BGR uint8 HxWx3), as the MLPerf reference decodes; one-line errors.

    Not ``cv2.imdecode`` of the bytes: for a JPEG whose end is cut off, ``imread`` decodes what is
    there and libjpeg fills the missing rows (deterministically), while ``imdecode`` refuses the
    file, or in some OpenCV builds leaves those rows uninitialised. libjpeg's own warning ("Premature
    end of JPEG file") goes to stderr, as it does in the reference. A file ``imread`` cannot read at
    all (it returns ``None``; the reference then fails in ``cv2.cvtColor``) is an
    :class:`IntegrityError` naming it. A name that is not valid UTF-8 is refused before OpenCV sees
    it: ``cv2.imread`` of such a ``str`` crashes the process.
    """
    name = str(path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise IntegrityError(
            f"cannot decode image {name!r}: its name is not valid UTF-8, which cv2.imread cannot open; "
            "rename the file (or extract the dataset again)",
            path=name,
        ) from None
    try:
        size = os.stat(path).st_size  # before imread, which logs its own warning for a missing file
    except FileNotFoundError:
        raise NotFetchedError(f"image {path} does not exist; fetch the dataset again", path=name) from None
    except OSError as exc:
        raise IntegrityError(f"cannot read image {path}: {exc.strerror or exc}", path=name) from None
    if size == 0:
        raise IntegrityError(f"cannot decode image {path}: the file is empty; fetch the dataset again", path=name)
    try:
        image = cv2.imread(name)  # the reference's call: no flags, i.e. IMREAD_COLOR
    except cv2.error as exc:
        detail = " ".join(str(exc).split())
        raise IntegrityError(f"cannot decode image {path} with OpenCV {cv2.__version__}: {detail}", path=name) from None
    if image is None:
        if not os.access(path, os.R_OK):
            raise IntegrityError(f"cannot read image {path}: permission denied", path=name)
        raise IntegrityError(
            f"cannot decode image {path} with OpenCV {cv2.__version__} (cv2.imread): not an image format it reads, "
            f"or a corrupt file ({size} bytes); verify the dataset ('provision verify')",
            path=name,
        )
    return cast(U8, image)


def _atomic_write(dest: Path, write: Callable[[Any], None]) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "xb") as fh:
            write(fh)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def save_array(dest: Path, array: npt.NDArray[Any]) -> None:
    """``np.save`` of ``array`` (C order) to a new file ``dest``.

    No temp name of its own: the framework writes every output into a temp folder that is
    renamed into place only when the whole run is complete and digested.
    """
    contiguous = np.ascontiguousarray(array)
    if not dest.parent.is_dir():
        dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as fh:
        np.save(fh, contiguous, allow_pickle=False)


def write_text(dest: Path, text: str) -> None:
    """``text`` as UTF-8 with ``\\n`` line ends to ``dest``, atomically."""
    data = text.encode("utf-8")
    _atomic_write(dest, lambda fh: fh.write(data))


@functools.lru_cache(maxsize=1)
def opencv_jpeg() -> str:
    """The JPEG library OpenCV was built with, from ``cv2.getBuildInformation()``."""
    for line in cv2.getBuildInformation().splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "JPEG":
            words = value.split()
            if words and "/" in words[0]:  # a system library path: keep its file name
                words[0] = words[0].rsplit("/", 1)[-1]
            return " ".join(words) or "unknown"
    return "unknown"


def opencv_libraries() -> dict[str, str]:
    """numpy, OpenCV and OpenCV's JPEG decoder: the versions that can change decoded and resized bytes."""
    return {"numpy": np.__version__, "opencv": str(cv2.__version__), "opencv-jpeg": opencv_jpeg()}


def to_layout(array: F32, layout: str) -> F32:
    if layout == "NCHW":
        result: F32 = np.ascontiguousarray(array.transpose(2, 0, 1))
        return result
    return array
