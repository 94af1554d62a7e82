"""Sliding-window inference over a 3D volume, as MLPerf's 3D U-Net reference does it (pure numpy).

The reference (``vision/medical_imaging/3d-unet-kits19``, ``inference_utils.py`` and
``base_SUT.py``) runs the model on ROI-sized patches of the preprocessed volume and blends them:

- patch corners step by ``stride = int(roi * (1 - overlap))`` on each axis, from 0 while the
  patch fits, in ``i, j, k`` (depth, height, width) order;
- each patch's logits are multiplied by a Gaussian importance map and added into a float32
  result, the map itself into a float32 weight volume; at the end result / weight, argmax over
  the class axis, uint8;
- the map is the outer product of three 1-D Gaussian windows (``scipy.signal.gaussian(n, std)``:
  ``exp(-(k - (n - 1) / 2)^2 / (2 std^2))``, ``std = sigma_scale * n`` with ``sigma_scale`` 0.125),
  cube-rooted and divided by its maximum, cast to float32.

The reference's preprocessing pads and crops every volume so that those corners cover it
exactly. A volume that is not so shaped (smaller than the ROI, or not ending on a stride) is
padded here at its far end with ``pad_value`` first, and the result cropped back to the
volume's own shape, so every voxel is covered; on the reference's volumes this changes nothing.
Patches are accumulated in the reference's order, whatever the batch size, so the float32 sums
are the reference's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import numpy.typing as npt

from provision.errors import ModelError, UsageError

__all__ = [
    "Predict",
    "blend",
    "gaussian_map",
    "gaussian_window",
    "patch_corners",
    "segment",
    "strides",
]

F32 = npt.NDArray[np.float32]
#: A model call: a batch of patches ``(B, C, d, h, w)`` float32 -> logits ``(B, classes, d, h, w)``.
Predict = Callable[[F32], np.ndarray]


def _shape3(roi: Sequence[int]) -> tuple[int, int, int]:
    values = tuple(roi)
    if len(values) != 3 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in values):
        raise UsageError(f"ROI shape {list(values)} is not three positive integers; give e.g. [128, 128, 128]")
    return int(values[0]), int(values[1]), int(values[2])


def strides(roi: Sequence[int], overlap: float) -> tuple[int, int, int]:
    """The reference's step per axis, ``int(roi * (1 - overlap))``; overlap must lie in (0, 1)."""
    shape = _shape3(roi)
    if not 0.0 < float(overlap) < 1.0:
        raise UsageError(f"sliding-window overlap {overlap!r} is not in (0, 1) (exclusive); the reference uses 0.5")
    steps = tuple(int(n * (1 - float(overlap))) for n in shape)
    if any(s < 1 for s in steps):
        raise UsageError(f"ROI {list(shape)} with overlap {overlap} gives a stride of 0; use a larger ROI or overlap")
    return steps[0], steps[1], steps[2]


def gaussian_window(n: int, std: float) -> npt.NDArray[np.float64]:
    """``scipy.signal.windows.gaussian(n, std)``: ``exp(-(k - (n - 1) / 2)^2 / (2 std^2))``, k = 0..n-1."""
    k = np.arange(0, n) - (n - 1.0) / 2.0
    result: npt.NDArray[np.float64] = np.exp(-(k**2) / (2 * std * std))
    return result


def gaussian_map(roi: Sequence[int], sigma_scale: float = 0.125) -> F32:
    """The reference's importance map for a patch of shape ``roi`` (see the module docstring), float32."""
    d, h, w = _shape3(roi)
    if not float(sigma_scale) > 0:
        raise UsageError(f"Gaussian sigma scale {sigma_scale!r} must be positive; the reference uses 0.125")
    gd, gh, gw = (gaussian_window(n, sigma_scale * n) for n in (d, h, w))
    cube = np.outer(np.outer(gd, gh), gw).reshape(d, h, w)
    cube = np.cbrt(cube)
    cube /= cube.max()
    return cube.astype(np.float32)


def patch_corners(shape: Sequence[int], roi: Sequence[int], overlap: float) -> Iterator[tuple[int, int, int]]:
    """Patch corners ``(i, j, k)`` in the reference's order over a volume of spatial ``shape``."""
    size = _shape3(shape)
    box = _shape3(roi)
    steps = strides(box, overlap)
    counts = [(size[a] - box[a]) // steps[a] + 1 for a in range(3)]
    if any(c < 1 for c in counts):
        raise UsageError(f"volume {list(size)} is smaller than the ROI {list(box)}; pad it first")
    for i in range(0, steps[0] * counts[0], steps[0]):
        for j in range(0, steps[1] * counts[1], steps[1]):
            for k in range(0, steps[2] * counts[2], steps[2]):
                yield i, j, k


def _fit(volume: F32, roi: tuple[int, int, int], steps: tuple[int, int, int], pad_value: float) -> F32:
    """``volume`` (C, D, H, W) padded at the far end of each axis so the corners cover it exactly."""
    pads = [(0, 0)]
    for axis in range(3):
        n = volume.shape[axis + 1]
        target = max(n, roi[axis])
        remainder = (target - roi[axis]) % steps[axis]
        if remainder:
            target += steps[axis] - remainder
        pads.append((0, target - n))
    if all(after == 0 for _, after in pads):
        return volume
    padded: F32 = np.pad(volume, pads, mode="constant", constant_values=np.float32(pad_value))
    return padded


def blend(
    volume: np.ndarray,
    predict: Predict,
    roi: Sequence[int],
    overlap: float = 0.5,
    *,
    sigma_scale: float = 0.125,
    batch: int = 1,
    pad_value: float = 0.0,
) -> F32:
    """Gaussian-weighted mean logits ``(classes, D, H, W)`` of ``predict`` over ``volume`` ``(C, D, H, W)``.

    ``predict`` gets up to ``batch`` patches per call. The result is cropped to ``volume``'s shape.
    """
    image = np.asarray(volume, dtype=np.float32)
    if image.ndim != 4:
        raise UsageError(f"sliding-window input has shape {image.shape}; expected (channels, depth, height, width)")
    if batch < 1:
        raise UsageError(f"sliding-window batch {batch} must be at least 1")
    box = _shape3(roi)
    steps = strides(box, overlap)
    spatial = image.shape[1:]
    image = _fit(image, box, steps, pad_value)
    weights = gaussian_map(box, sigma_scale)
    norm = np.zeros(image.shape[1:], dtype=np.float32)
    result: F32 | None = None
    corners = list(patch_corners(image.shape[1:], box, overlap))
    for start in range(0, len(corners), batch):
        chunk = corners[start : start + batch]
        patches = np.stack([image[:, i : i + box[0], j : j + box[1], k : k + box[2]] for i, j, k in chunk])
        logits = np.asarray(predict(np.ascontiguousarray(patches)))
        expected = (len(chunk), box[0], box[1], box[2])
        if logits.ndim != 5 or (logits.shape[0], *logits.shape[2:]) != expected:
            raise ModelError(
                f"model output for {len(chunk)} patch(es) of {list(box)} has shape {logits.shape}; "
                f"expected ({len(chunk)}, classes, {box[0]}, {box[1]}, {box[2]}) (NCDHW logits)"
            )
        if result is None:
            result = np.zeros((logits.shape[1], *image.shape[1:]), dtype=np.float32)
        for (i, j, k), patch in zip(chunk, logits.astype(np.float32, copy=False), strict=True):
            window = (slice(i, i + box[0]), slice(j, j + box[1]), slice(k, k + box[2]))
            result[:, window[0], window[1], window[2]] += patch * weights
            norm[window] += weights
    if result is None:  # pragma: no cover - patch_corners always yields at least one corner
        raise UsageError(f"volume {list(spatial)} gave no patches")
    result /= norm
    cropped: F32 = np.ascontiguousarray(result[:, : spatial[0], : spatial[1], : spatial[2]])
    return cropped


def segment(
    volume: np.ndarray,
    predict: Predict,
    roi: Sequence[int],
    overlap: float = 0.5,
    *,
    sigma_scale: float = 0.125,
    batch: int = 1,
    pad_value: float = 0.0,
) -> npt.NDArray[np.uint8]:
    """The label volume ``(D, H, W)`` uint8: argmax over classes of :func:`blend`'s logits."""
    logits = blend(volume, predict, roi, overlap, sigma_scale=sigma_scale, batch=batch, pad_value=pad_value)
    labels: npt.NDArray[np.uint8] = np.argmax(logits, axis=0).astype(np.uint8)
    return labels
