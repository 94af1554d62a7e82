"""KiTS19 mean DICE of 3D U-Net over preprocessed cases (MLPerf ``3d-unet-kits19``).

Samples are what the ``kits19-3dunet`` recipe wrote: ``<case>.pkl`` (``[image (1, D, H, W) float32,
label (1, D, H, W) uint8]``) for each case of ``cases.json``'s ``file_list``, in that order; the
sliding-window settings (``roi_shape``, ``overlap``, ``gaussian_sigma_scale``, ``pad_value``) come
from the same index, i.e. from the manifest's ``[benchmark.preprocess]`` parameters.

Each case is one sample driven through the runner here (:class:`~.base.DrivingTask`): the
reference's sliding window (:mod:`.slide`) runs the model on ROI patches, several per call, blends
their logits with the Gaussian map and takes the argmax. As MLPerf's ``accuracy_kits.py`` does, the
prediction is scored at the preprocessed (padded) shape against the preprocessed label: the
reference's harness returns the whole padded volume (``image_shape``) and its ground truth is the
preprocessed ``nifti/<case>/segmentation.nii.gz``. DICE per class is
:func:`~provision.validation.metrics.segmentation.dice_per_case`; the score is the mean over cases of
the kidney/tumor composite, with each case's composite as ``per_sample`` for a subset's interval.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from preprocess.kits19 import CASES_INDEX, read_reference_pickle
from provision.errors import IntegrityError, ModelError
from provision.manifest.model import RuntimeSpec
from provision.validation.metrics.segmentation import dice_per_case, dice_summary
from provision.validation.tasks.base import Score
from provision.validation.tasks.slide import segment

if TYPE_CHECKING:
    from provision.validation.runners.base import Runner

__all__ = ["CLASSES", "MAX_PATCH_BATCH", "KitsTask"]

#: Background, kidney, tumor: the model's output channels.
CLASSES = 3
#: The most patches per model call: 8 patches of 128^3 are 64 MiB in and 192 MiB of logits out.
MAX_PATCH_BATCH = 8


def _read_index(folder: Path) -> dict[str, Any]:
    path = folder / CASES_INDEX
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IntegrityError(
            f"{path}: missing; the folder was not made by the kits19-3dunet recipe (rerun 'provision preprocess')",
            path=str(path),
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"{path}: cannot read ({exc}); rerun 'provision preprocess'", path=str(path)) from None
    ok = (
        isinstance(doc, dict)
        and isinstance(doc.get("file_list"), list)
        and all(isinstance(c, str) for c in doc["file_list"])
        and isinstance(doc.get("roi_shape"), list)
        and len(doc["roi_shape"]) == 3
        and all(isinstance(n, int) and n > 0 for n in doc["roi_shape"])
        and all(isinstance(doc.get(k), (int, float)) for k in ("overlap", "gaussian_sigma_scale", "pad_value"))
    )
    if not ok:
        raise IntegrityError(
            f"{path}: expected file_list, roi_shape (3 integers), overlap, gaussian_sigma_scale and pad_value, "
            "got something else; rerun 'provision preprocess'",
            path=str(path),
        )
    index: dict[str, Any] = doc
    return index


class KitsTask:
    """Mean DICE (kidney, tumor) of a 3D U-Net over the preprocessed KiTS19 cases (see the module docstring).

    The model takes ``(N, 1, d, h, w)`` float32 patches (``d, h, w`` the ROI, 128^3 for the reference
    models) and returns ``(N, 3, d, h, w)`` logits as its first output; up to :attr:`max_batch`
    patches (and at most the runner's batch size) go in one call.
    """

    name = "segmentation"
    #: Patches per model call at most (validate also reports the batch it used as min(--batch-size, this)).
    max_batch = MAX_PATCH_BATCH

    def __init__(self, folder: Path, runtime: RuntimeSpec, limit: int | None = None) -> None:
        self.folder = folder
        self.runtime = runtime
        index = _read_index(folder)
        cases = [c for c in index["file_list"] if (folder / f"{c}.pkl").is_file()]
        self.names: list[str] = cases[:limit] if limit is not None else cases
        self.roi_shape: tuple[int, int, int] = (index["roi_shape"][0], index["roi_shape"][1], index["roi_shape"][2])
        self.overlap = float(index["overlap"])
        self.sigma_scale = float(index["gaussian_sigma_scale"])
        self.pad_value = float(index["pad_value"])
        self._scores: dict[int, tuple[float, float]] = {}
        self._patches = 0

    def count(self) -> int:
        """How many cases will be run."""
        return len(self.names)

    def _batch(self, runner: Runner) -> int:
        asked = runner.describe().get("batch_size")
        return max(1, min(self.max_batch, asked if isinstance(asked, int) and asked > 0 else self.max_batch))

    def run_sample(self, runner: Runner, index: int) -> None:
        """Sliding-window inference over case ``index`` and its (kidney, tumor) DICE."""
        name = self.names[index]
        image, label = read_reference_pickle(self.folder / f"{name}.pkl")

        def predict(patches: np.ndarray) -> np.ndarray:
            outputs = runner.run([patches])
            if not outputs:
                raise ModelError(f"{name}: the model returned no output; expected (N, {CLASSES}, d, h, w) logits")
            logits = np.asarray(outputs[0])
            if logits.ndim != 5 or logits.shape[1] != CLASSES:
                raise ModelError(
                    f"{name}: model output has shape {logits.shape}; expected (N, {CLASSES}, d, h, w) logits for "
                    "background, kidney and tumor (check [model.runtime] outputs)"
                )
            self._patches += len(patches)
            return logits

        prediction = segment(
            image,
            predict,
            self.roi_shape,
            self.overlap,
            sigma_scale=self.sigma_scale,
            batch=self._batch(runner),
            pad_value=self.pad_value,
        )
        self._scores[index] = dice_per_case(prediction, label[0])

    def score(self) -> Score:
        """Mean composite DICE over the cases run (a fraction), per case composite for the interval."""
        ran = sorted(self._scores)
        if not ran:
            raise ModelError(f"{self.folder}: no KiTS19 case was run; nothing to score")
        pairs = [self._scores[i] for i in ran]
        summary = dice_summary(pairs)
        return Score(
            value=summary.mean,
            samples=len(ran),
            per_sample=summary.composite,
            names=[self.names[i] for i in ran],
            extra={
                "kidney": summary.kidney,
                "tumor": summary.tumor,
                "patches": self._patches,
                "per_case": {self.names[i]: {"kidney": k, "tumor": t} for i, (k, t) in zip(ran, pairs, strict=True)},
            },
        )

    def describe(self) -> dict[str, Any]:
        """The sliding-window settings."""
        return {
            "task": self.name,
            "roi_shape": list(self.roi_shape),
            "overlap": self.overlap,
            "gaussian_sigma_scale": self.sigma_scale,
            "pad_value": self.pad_value,
            "max_batch": self.max_batch,
        }
