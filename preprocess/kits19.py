"""KiTS19 recipe: the MLPerf 3D U-Net reference preprocessing (``kits19-3dunet``).

``Preprocessor.preprocess_case`` of the MLPerf reference (``vision/medical_imaging/3d-unet-kits19/
preprocess.py`` with ``global_vars.py``), step for step, per case:

1. ``nibabel.load`` of ``<case>/imaging.nii.gz`` and ``<case>/segmentation.nii.gz``; the voxel
   spacing is the image header's ``pixdim[1:4]`` (as Python floats of the float32 header values);
   ``get_fdata()`` (no reorientation) cast to float32 (image) and uint8 (label);
2. when that spacing differs from ``target_spacing`` ([1.6, 1.2, 1.2] mm, compared as lists, so
   a float32 header value such as 1.2000000477 differs from 1.2), ``scipy.ndimage.zoom`` by
   ``spacing / target_spacing`` with ``mode="constant"``, ``cval`` the array's minimum,
   ``grid_mode=False``, order ``image_interpolation_order`` (1) for the image and
   ``label_interpolation_order`` (0) for the label; a channel axis is added;
3. ``np.clip`` of the image to ``clip`` [-79, 304], then ``(x - mean) / std`` (101.0, 76.9), in float32;
4. each spatial axis shorter than ``roi_shape`` (128) is padded to it in ``pad_mode_min128``
   ("edge") mode, image and label alike, ``floor(d / 2)`` before and the rest after;
5. with ``stride = int(roi * (1 - overlap))`` (64): an axis whose length modulo the stride is
   below ``stride // 2`` is cropped by that remainder (``floor(r / 2)`` from the start, the rest
   from the end); then every axis is constant-padded up to a multiple of the stride (plus one more
   stride when it would still be shorter than the ROI), ``floor / 2`` before and the rest after,
   image with ``pad_value`` (-2.2) and label with 0;
6. ``[image float32 (1, D, H, W), label uint8 (1, D, H, W)]`` is pickled to ``<case>.pkl``.

Output per case: ``<case>.pkl``, the reference's file, byte for byte in the reference's pickle
format (protocol 4, the default of the Python 3.8 the reference ran; the arrays' reconstructor
named ``numpy.core.multiarray._reconstruct`` as NumPy 1.x writes it, also under NumPy 2: see
:func:`write_reference_pickle`), so that its md5 can be compared with the published
``checksum_inference.json``; and ``<case>.json``: the shapes at each step (original, resampled,
the padded shape validation scores at), the spacing, zoom factor, paddings and crops, and the
original and resampled affines.

``finalize`` writes ``cases.json`` (the case order, the sliding-window settings the validation
task reads: ``roi_shape``, ``overlap``, ``gaussian_sigma_scale``, ``pad_value``; each case's
``<case>.json``; and the md5 comparison), and ``preprocessed_files.pkl`` (the reference's index:
``file_list`` and per case ``original_affine``, ``reshaped_affine``, ``zoom_factor``, ``case``,
``image_shape``), so the reference harness can read the folder.

**md5s.** ``md5_check``: ``"record"`` (default) compares each ``<case>.pkl`` with the published
md5 (the ``checksums`` file: by default ``checksum_inference.json`` beside the labels file, i.e.
in ``kits19-meta/meta/``) and records the result in ``cases.json``; ``"require"`` also fails the
run (exit 3) on any mismatch; ``"off"`` skips it. A mismatch does not by itself mean wrong data:
the md5s are over whole pickle files, and depend on the input volumes (the Hugging Face copies
that kits19 downloads since 2026 are not known to equal the older ones), SciPy's ``zoom`` and
NumPy's arithmetic, and the pickle format (see the README).

Items: the case names of the labels file (``meta/inference_cases.json``, a JSON list), in its
order; without one, the sorted ``case_*`` folders under the data folder holding an
``imaging.nii.gz``. A listed case missing from the data is an error (the reference asserts every
case is there) unless ``missing = "skip"``.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from preprocess.images import check_params, choice_param, once_per_params, param_error, param_number, write_text
from preprocess.recipe import Inputs, Params, Recipe, register
from provision.errors import IntegrityError, MissingDependencyError, NotFetchedError, UsageError

__all__ = [
    "CASES_INDEX",
    "CHECKSUMS_NAME",
    "KITS19_DEFAULTS",
    "Kits19Config",
    "Md5Check",
    "PreprocessedCase",
    "check_md5s",
    "kits19_libraries",
    "preprocess_case",
    "read_reference_pickle",
    "write_reference_pickle",
]

KITS19 = "kits19-3dunet"
_RECIPE_VERSION = "1"

#: The index ``finalize`` writes (case order, sliding-window settings, md5 comparison).
CASES_INDEX = "cases.json"
#: The reference's published md5s of the preprocessed inference cases (in ``kits19-meta/meta/``).
CHECKSUMS_NAME = "checksum_inference.json"
#: The reference's index pickle, read by its QSL and accuracy script.
_REFERENCE_INDEX = "preprocessed_files.pkl"

#: The pickle protocol of the reference's ``pickle.dump`` (Python 3.8's default).
PICKLE_PROTOCOL = 4
#: How NumPy 1.x names the array reconstructor in a pickle, and how NumPy 2 does.
_NUMPY1_RECONSTRUCT = b"\x8c\x15numpy.core.multiarray\x94"
_NUMPY2_RECONSTRUCT = b"\x8c\x16numpy._core.multiarray\x94"

KITS19_DEFAULTS: dict[str, Any] = {
    "target_spacing": [1.6, 1.2, 1.2],
    "image_interpolation_order": 1,
    "label_interpolation_order": 0,
    "clip": [-79.0, 304.0],
    "mean": 101.0,
    "std": 76.9,
    "roi_shape": [128, 128, 128],
    "overlap": 0.5,
    "pad_mode_min128": "edge",
    "pad_value": -2.2,
    "gaussian_sigma_scale": 0.125,
    "cache_suffix": ".pkl",
    "pickle_protocol": PICKLE_PROTOCOL,
    "missing": "error",
    "md5_check": "record",
    "checksums": None,
}


@dataclass(frozen=True)
class Kits19Config:
    """The validated parameters of ``kits19-3dunet``."""

    target_spacing: tuple[float, float, float] = (1.6, 1.2, 1.2)
    image_order: int = 1
    label_order: int = 0
    clip_min: float = -79.0
    clip_max: float = 304.0
    mean: float = 101.0
    std: float = 76.9
    roi_shape: tuple[int, int, int] = (128, 128, 128)
    overlap: float = 0.5
    min_pad_mode: str = "edge"
    pad_value: float = -2.2
    sigma_scale: float = 0.125
    missing: str = "error"
    md5_check: str = "record"
    checksums: str | None = None

    @property
    def strides(self) -> tuple[int, int, int]:
        """``int(roi * (1 - overlap))`` per axis, the reference's sliding-window step."""
        steps = [int(n * (1 - self.overlap)) for n in self.roi_shape]
        return steps[0], steps[1], steps[2]


def _triple(p: dict[str, Any], name: str, kind: type, what: str) -> tuple[Any, Any, Any]:
    value = p[name]
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 3
        or any(isinstance(v, bool) or not isinstance(v, int if kind is int else (int, float)) or v <= 0 for v in value)
    ):
        raise param_error(KITS19, name, value, what)
    return kind(value[0]), kind(value[1]), kind(value[2])


def _order(p: dict[str, Any], name: str) -> int:
    value = p[name]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 5:
        raise param_error(KITS19, name, value, "a spline order 0..5 (the reference: 1 for images, 0 for labels)")
    return value


def _config(params: Params) -> Kits19Config:
    return cast(Kits19Config, once_per_params(_config_checked, params))


def _config_checked(params: Params) -> Kits19Config:
    p = check_params(KITS19, params, KITS19_DEFAULTS)
    choice_param(KITS19, p, "cache_suffix", [".pkl"])
    choice_param(KITS19, p, "pickle_protocol", [PICKLE_PROTOCOL])
    mode = choice_param(KITS19, p, "pad_mode_min128", ["edge"])
    missing = choice_param(KITS19, p, "missing", ["error", "skip"])
    md5_check = choice_param(KITS19, p, "md5_check", ["record", "require", "off"])
    clip = p["clip"]
    if (
        not isinstance(clip, (list, tuple))
        or len(clip) != 2
        or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in clip)
        or not clip[0] < clip[1]
    ):
        raise param_error(KITS19, "clip", clip, "[low, high], two numbers with low < high")
    std = param_number(KITS19, p, "std")
    if not std > 0:
        raise param_error(KITS19, "std", std, "a positive number")
    overlap = param_number(KITS19, p, "overlap")
    if not 0 < overlap < 1:
        raise param_error(KITS19, "overlap", overlap, "a number between 0 and 1 (exclusive)")
    sigma = param_number(KITS19, p, "gaussian_sigma_scale")
    if not sigma > 0:
        raise param_error(KITS19, "gaussian_sigma_scale", sigma, "a positive number")
    checksums = p["checksums"]
    if checksums is not None and (not isinstance(checksums, str) or not checksums):
        raise param_error(KITS19, "checksums", checksums, "a file path (string) or nothing")
    config = Kits19Config(
        target_spacing=_triple(p, "target_spacing", float, "three positive numbers (mm)"),
        image_order=_order(p, "image_interpolation_order"),
        label_order=_order(p, "label_interpolation_order"),
        clip_min=float(clip[0]),
        clip_max=float(clip[1]),
        mean=param_number(KITS19, p, "mean"),
        std=std,
        roi_shape=_triple(p, "roi_shape", int, "three positive integers"),
        overlap=overlap,
        min_pad_mode=mode,
        pad_value=param_number(KITS19, p, "pad_value"),
        sigma_scale=sigma,
        missing=missing,
        md5_check=md5_check,
        checksums=checksums,
    )
    if any(s < 1 for s in config.strides):
        raise param_error(KITS19, "overlap", overlap, f"a stride of at least 1 for ROI {p['roi_shape']}")
    return config


def _nibabel() -> Any:
    try:
        import nibabel
    except ImportError:
        raise MissingDependencyError("nibabel", "kits19", "reading KiTS19 NIfTI volumes") from None
    return nibabel


def _zoom() -> Any:
    try:
        from scipy.ndimage import zoom
    except ImportError:
        raise MissingDependencyError("scipy", "kits19", "resampling KiTS19 volumes") from None
    return zoom


def kits19_libraries() -> dict[str, str]:
    """numpy, SciPy (``zoom``), nibabel (decoding, scaling) and Python (pickle): what can change output bytes."""
    nibabel = _nibabel()
    try:
        import scipy
    except ImportError:
        raise MissingDependencyError("scipy", "kits19", "resampling KiTS19 volumes") from None
    return {
        "numpy": np.__version__,
        "scipy": str(scipy.__version__),
        "nibabel": str(nibabel.__version__),
        "python": platform.python_version(),
    }


@dataclass(frozen=True, eq=False)
class PreprocessedCase:
    """One case as the reference preprocesses it, and what each step did."""

    image: npt.NDArray[np.float32]  # (1, D, H, W)
    label: npt.NDArray[np.uint8]  # (1, D, H, W)
    info: dict[str, Any]


def _halves(total: int) -> tuple[int, int]:
    return total // 2, total - total // 2


def _reshaped_affine(affine: npt.NDArray[np.float64], target: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The reference's affine at the target spacing: each non-zero rotation entry becomes ±target."""
    out: npt.NDArray[np.float64] = np.array(affine, dtype=np.float64)
    for row in range(3):
        for col in range(3):
            if affine[row, col] != 0:
                out[row, col] = target[col] * (-1.0 if affine[row, col] < 0 else 1.0)
    return out


def preprocess_case(case_dir: Path, config: Kits19Config) -> PreprocessedCase:
    """Steps 1-5 of the module docstring on ``case_dir``'s ``imaging.nii.gz`` and ``segmentation.nii.gz``."""
    nibabel = _nibabel()
    paths = [case_dir / "imaging.nii.gz", case_dir / "segmentation.nii.gz"]
    for path in paths:
        if not path.is_file():
            raise NotFetchedError(f"KiTS19 case file {path} does not exist; fetch the dataset first", path=str(path))
    try:
        image_nii = nibabel.load(paths[0].absolute())
        label_nii = nibabel.load(paths[1].absolute())
        spacing = [float(v) for v in image_nii.header["pixdim"][1:4].tolist()]
        original_affine = np.asarray(image_nii.affine, dtype=np.float64)
        raw_image = image_nii.get_fdata().astype(np.float32)
        raw_label = label_nii.get_fdata().astype(np.uint8)
    except (OSError, EOFError, ValueError) as exc:
        raise IntegrityError(
            f"cannot read KiTS19 case {case_dir.name} ({exc}); expected two gzipped NIfTI files, fetch it again",
            path=str(case_dir),
        ) from None
    if raw_image.ndim != 3 or raw_image.shape != raw_label.shape:
        raise IntegrityError(
            f"KiTS19 case {case_dir.name}: imaging shape {raw_image.shape} and segmentation shape {raw_label.shape} "
            "differ (expected two equal 3-D volumes); fetch the case again",
            path=str(case_dir),
        )
    target = np.array(config.target_spacing, dtype=np.float64)
    zoom_factor = np.array(spacing, dtype=np.float64) / target
    image, label = raw_image, raw_label
    resampled = spacing != list(config.target_spacing)
    if resampled:
        zoom = _zoom()
        image = zoom(image, zoom_factor, order=config.image_order, mode="constant", cval=image.min(), grid_mode=False)
        label = zoom(label, zoom_factor, order=config.label_order, mode="constant", cval=label.min(), grid_mode=False)
    resampled_shape = list(image.shape)
    image = image[np.newaxis]
    label = label[np.newaxis]
    # intensity: float32 throughout (NumPy keeps float32 for Python float operands)
    image = np.clip(image, config.clip_min, config.clip_max)
    image = (image - config.mean) / config.std
    # at least the ROI on every axis, edge mode
    min_pads = [_halves(max(0, config.roi_shape[a] - image.shape[a + 1])) for a in range(3)]
    image = np.pad(image, [(0, 0), *min_pads], mode="edge")  # pad_mode_min128: "edge" is the one choice
    label = np.pad(label, [(0, 0), *min_pads], mode="edge")
    # crop a small remainder, then constant-pad to the sliding window's grid
    steps = config.strides
    shape = image.shape[1:]
    crops = []
    for a in range(3):
        remainder = shape[a] % steps[a]
        crops.append(_halves(remainder if remainder < steps[a] // 2 else 0))
    window = (slice(None), *(slice(before, shape[a] - after) for a, (before, after) in enumerate(crops)))
    image = image[window]
    label = label[window]
    pads = []
    for a in range(3):
        n = image.shape[a + 1]
        extra = (steps[a] - n % steps[a]) % steps[a]
        if n + extra < config.roi_shape[a]:
            extra += steps[a]
        pads.append(_halves(extra))
    image = np.pad(image, [(0, 0), *pads], mode="constant", constant_values=[config.pad_value])
    label = np.pad(label, [(0, 0), *pads], mode="constant", constant_values=[0])
    image = image.astype(np.float32)
    label = label.astype(np.uint8)
    info = {
        "case": case_dir.name,
        "spacing": spacing,
        "zoom_factor": zoom_factor.tolist(),
        "resampled": resampled,
        "original_shape": list(raw_image.shape),
        "resampled_shape": resampled_shape,
        "min_pad": [list(p) for p in min_pads],
        "crop": [list(c) for c in crops],
        "pad": [list(p) for p in pads],
        "image_shape": list(image.shape),
        "original_affine": original_affine.tolist(),
        "reshaped_affine": _reshaped_affine(original_affine, target).tolist(),
    }
    return PreprocessedCase(image=image, label=label, info=info)


def write_reference_pickle(dest: Path, image: np.ndarray, label: np.ndarray) -> None:
    """``pickle.dump([image, label], f)`` in the byte format of the reference's environment.

    Protocol 4 (the reference's default on Python 3.8 to 3.13; the bytes are checked against
    numpy 1.26 on Python 3.11). NumPy 2 names the array reconstructor ``numpy._core.multiarray._reconstruct``, NumPy 1.x
    (which the 2021 reference ran) ``numpy.core.multiarray._reconstruct``; the rest of the stream
    is the same. The name is written once, in the first frame, and later arrays refer back to it,
    so the NumPy 1.x form is that frame with the shorter name and a frame length one less.
    NumPy 2 reads both names (:func:`read_reference_pickle`).
    """
    out = _FirstFrameRenamer(dest)
    try:
        pickle.dump([np.ascontiguousarray(image), np.ascontiguousarray(label)], out, protocol=PICKLE_PROTOCOL)
    finally:
        out.close()
    if not out.renamed:
        raise IntegrityError(
            f"{dest}: the pickle stream did not start with a protocol-4 frame naming numpy's array reconstructor; "
            f"this Python/NumPy pickles arrays differently, so the file cannot match the published md5s",
            path=str(dest),
        )


class _FirstFrameRenamer(io.RawIOBase):
    """A write-only file that rewrites NumPy 2's reconstructor name in the first frame (see above)."""

    def __init__(self, dest: Path) -> None:
        super().__init__()
        if not dest.parent.is_dir():
            dest.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(dest, "wb")  # noqa: SIM115 - closed in close()
        self._first = True
        self.renamed = False

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data) if self._first else data
        if self._first:
            self._first = False
            chunk = self._rename(chunk)
        self._fh.write(chunk)
        return len(data)

    def _rename(self, chunk: bytes) -> bytes:
        # PROTO 4, FRAME <8-byte length>, frame body
        if len(chunk) < 11 or chunk[:3] != b"\x80\x04\x95":
            return chunk
        length = int.from_bytes(chunk[3:11], "little")
        body = chunk[11 : 11 + length]
        if body.count(_NUMPY1_RECONSTRUCT) == 1 and _NUMPY2_RECONSTRUCT not in body:
            self.renamed = True  # NumPy 1.x already wrote the reference's name
            return chunk
        if body.count(_NUMPY2_RECONSTRUCT) != 1:
            return chunk
        body = body.replace(_NUMPY2_RECONSTRUCT, _NUMPY1_RECONSTRUCT)
        self.renamed = True
        return chunk[:3] + len(body).to_bytes(8, "little") + body + chunk[11 + length :]

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        super().close()


#: The globals a pickled list of arrays refers to (NumPy 1.x and 2 names of the reconstructor).
_ARRAY_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }
)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles arrays only (no other global is loaded), under either NumPy's reconstructor name."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ARRAY_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not a numpy array part")
        if name == "_reconstruct":
            return np.zeros(0).__reduce__()[0]  # this NumPy's reconstructor, under either name
        return getattr(np, name)


def read_reference_pickle(path: Path) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8]]:
    """``(image, label)`` of a ``<case>.pkl`` (this recipe's or the reference's), arrays only."""
    try:
        with open(path, "rb") as fh:
            loaded = _ArrayUnpickler(fh).load()
    except FileNotFoundError:
        raise NotFetchedError(
            f"preprocessed case {path} is missing; run 'provision preprocess'", path=str(path)
        ) from None
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as exc:
        raise IntegrityError(
            f"cannot read preprocessed case {path} ({exc}); expected a pickled [image, label]; preprocess again",
            path=str(path),
        ) from None
    if not (
        isinstance(loaded, list)
        and len(loaded) == 2
        and all(isinstance(a, np.ndarray) and a.ndim == 4 for a in loaded)
        and loaded[0].shape == loaded[1].shape
    ):
        raise IntegrityError(
            f"{path}: expected [image (1, D, H, W), label (1, D, H, W)], got something else; preprocess again",
            path=str(path),
        )
    return loaded[0].astype(np.float32, copy=False), loaded[1].astype(np.uint8, copy=False)


def _data(inputs: Inputs) -> Path:
    try:
        return Path(inputs["data"])
    except KeyError:
        raise UsageError(f"preprocessing recipe {KITS19!r} needs the 'data' input (the KiTS19 case folders)") from None


def _listed_cases(path: Path) -> list[str]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFetchedError(f"case list {path} does not exist; fetch it first", path=str(path)) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"cannot read case list {path}: {exc}; fetch it again", path=str(path)) from None
    if not isinstance(doc, list) or not all(isinstance(c, str) and c.startswith("case_") for c in doc):
        raise IntegrityError(
            f"case list {path}: expected a JSON list of names like 'case_00000', got something else; fetch it again",
            path=str(path),
        )
    for case in doc:
        if "/" in case or "\\" in case or case in (".", ".."):
            raise IntegrityError(f"case list {path}: case name {case!r} is not a plain folder name", path=str(path))
    return list(dict.fromkeys(doc))


def _items(inputs: Inputs, params: Params) -> list[str]:
    config = _config(params)
    data = _data(inputs)
    if "labels" not in inputs:
        if not data.is_dir():
            raise NotFetchedError(f"KiTS19 data folder {data} does not exist; fetch the dataset first", path=str(data))
        return sorted(p.name for p in data.glob("case_*") if (p / "imaging.nii.gz").is_file())
    cases = _listed_cases(Path(inputs["labels"]))
    present = [c for c in cases if (data / c / "imaging.nii.gz").is_file()]
    if config.missing == "error" and len(present) != len(cases):
        absent = [c for c in cases if c not in set(present)]
        raise NotFetchedError(
            f"{len(absent)} of {len(cases)} KiTS19 cases listed in {inputs['labels']} are missing under {data} "
            f'(first: {absent[0]}); fetch them, or set missing = "skip"',
            path=str(data / absent[0]),
        )
    return present


def _process(item: str, inputs: Inputs, out_dir: Path, params: Params) -> None:
    config = _config(params)
    case = preprocess_case(_data(inputs) / item, config)
    write_reference_pickle(out_dir / f"{item}.pkl", case.image, case.label)
    write_text(out_dir / f"{item}.json", json.dumps(case.info, indent=1, sort_keys=True) + "\n")


@dataclass(frozen=True)
class Md5Check:
    """Each case's md5 against the published one: ``matched``, ``mismatched`` (case, got, published), ``unlisted``."""

    checksum_file: str
    matched: list[str]
    mismatched: list[tuple[str, str, str]]
    unlisted: list[str]

    def describe(self) -> dict[str, Any]:
        """JSON-ready form (for ``cases.json``)."""
        return {
            "checksum_file": self.checksum_file,
            "matched": self.matched,
            "mismatched": [{"case": c, "md5": got, "published": want} for c, got, want in self.mismatched],
            "unlisted": self.unlisted,
        }


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def check_md5s(folder: Path, cases: list[str], checksum_file: Path) -> Md5Check:
    """md5 of each ``<case>.pkl`` in ``folder`` against ``checksum_file`` (``{"case_XXXXX.pkl": md5}``)."""
    try:
        published = json.loads(checksum_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(
            f"cannot read the published md5s {checksum_file}: {exc}; fetch kits19-meta again", path=str(checksum_file)
        ) from None
    if not isinstance(published, dict) or not all(isinstance(v, str) for v in published.values()):
        raise IntegrityError(
            f"{checksum_file}: expected a JSON object of file name -> md5, got something else; fetch kits19-meta again",
            path=str(checksum_file),
        )
    matched: list[str] = []
    mismatched: list[tuple[str, str, str]] = []
    unlisted: list[str] = []
    for case in cases:
        name = f"{case}.pkl"
        got = _md5(folder / name)
        want = published.get(name)
        if want is None:
            unlisted.append(case)
        elif got == want.lower():
            matched.append(case)
        else:
            mismatched.append((case, got, want))
    return Md5Check(str(checksum_file), matched, mismatched, unlisted)


def _checksum_file(inputs: Inputs, config: Kits19Config) -> Path | None:
    if config.checksums is not None:
        path = Path(config.checksums)
        if not path.is_absolute():
            base = Path(inputs["labels"]).parent if "labels" in inputs else _data(inputs)
            path = base / path
        if not path.is_file():
            raise NotFetchedError(f"md5 file {path} (parameter checksums) is missing; fetch it first", path=str(path))
        return path
    if "labels" in inputs:
        beside = Path(inputs["labels"]).parent / CHECKSUMS_NAME
        return beside if beside.is_file() else None
    return None


def _finalize(items: list[str], inputs: Inputs, out_dir: Path, params: Params) -> None:
    config = _config(params)
    infos: dict[str, dict[str, Any]] = {}
    for case in items:
        path = out_dir / f"{case}.json"
        try:
            infos[case] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise IntegrityError(f"{path}: cannot read the case record ({exc}); preprocess again") from None
    md5: dict[str, Any] | None = None
    checksum_file = _checksum_file(inputs, config) if config.md5_check != "off" else None
    if checksum_file is not None:
        check = check_md5s(out_dir, items, checksum_file)
        md5 = check.describe()
        if config.md5_check == "require" and (check.mismatched or check.unlisted):
            first = check.mismatched[0][0] if check.mismatched else check.unlisted[0]
            raise IntegrityError(
                f"{len(check.mismatched)} of {len(items)} preprocessed KiTS19 cases differ from the published md5s "
                f"in {checksum_file} and {len(check.unlisted)} are not listed (first: {first}.pkl); "
                'see the README on what the md5s depend on, or set md5_check = "record"',
                path=str(out_dir / f"{first}.pkl"),
            )
    index = {
        "recipe": KITS19,
        "version": _RECIPE_VERSION,
        "file_list": items,
        "roi_shape": list(config.roi_shape),
        "overlap": config.overlap,
        "gaussian_sigma_scale": config.sigma_scale,
        "pad_value": config.pad_value,
        "md5": md5,
        "cases": infos,
    }
    write_text(out_dir / CASES_INDEX, json.dumps(index, indent=1, sort_keys=True) + "\n")
    reference = {
        "file_list": items,
        "cases": {
            case: {
                "original_affine": np.array(info["original_affine"]),
                "reshaped_affine": np.array(info["reshaped_affine"]),
                "zoom_factor": np.array(info["zoom_factor"]),
                "case": case,
                "image_shape": tuple(info["image_shape"]),
            }
            for case, info in infos.items()
        },
    }
    with open(out_dir / _REFERENCE_INDEX, "wb") as fh:
        pickle.dump(reference, fh, protocol=PICKLE_PROTOCOL)


register(
    Recipe(
        name=KITS19,
        version=_RECIPE_VERSION,
        items=_items,
        process=_process,
        finalize=_finalize,
        libraries=kits19_libraries,
        defaults=KITS19_DEFAULTS,
        description=(
            "MLPerf 3D U-Net reference (preprocess.py): nibabel load, scipy zoom to 1.6x1.2x1.2 mm (order 1 image, "
            "0 label), clip [-79, 304], (x-101)/76.9, edge pad to the ROI, crop/pad to the 64-voxel grid (-2.2); "
            "<case>.pkl in the reference's pickle bytes, cases.json"
        ),
    )
)
