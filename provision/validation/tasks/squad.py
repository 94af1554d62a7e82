"""SQuAD v1.1 F1 of BERT over preprocessed features (MLPerf accuracy-squad.py).

Samples are the features the ``squad-bert`` recipe wrote: row ``i`` of ``input_ids.npy``,
``input_mask.npy`` and ``segment_ids.npy`` is ``features.json[i]``, and each feature names its
question in ``examples.json`` (``example_index``); a question's features are consecutive. The
model's start and end logits of every feature become one answer per question
(:func:`~provision.validation.metrics.squad.squad_predictions`, with the run's ``n_best_size``,
``max_answer_length`` and ``lower_case`` from ``run.json``) and are scored with the official
``evaluate-v1.1.py`` rules (:func:`~provision.validation.metrics.squad.squad_scores`).

With ``limit`` (``--count``) only the first features run; a question is scored when all its
features ran, so the question cut by the limit and every later one are left out (a question
without any feature, whose context gave no window, counts when it comes before the cut).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from provision.errors import IntegrityError, ModelError, UsageError
from provision.manifest.model import RuntimeSpec
from provision.preprocessing.plan import RUN_FILE, load_json
from provision.validation.tasks.base import Score

__all__ = ["ARRAYS", "SquadTask"]

#: The model's inputs, in order, as the recipe names its arrays.
ARRAYS = ("input_ids", "input_mask", "segment_ids")

_DEFAULTS: dict[str, Any] = {"n_best_size": 20, "max_answer_length": 30, "lower_case": True}


def _read_list(path: Path) -> list[Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IntegrityError(
            f"{path}: missing; the preprocessing output has no {path.name} (rerun 'provision preprocess')",
            path=str(path),
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"{path}: cannot read it ({exc}); rerun 'provision preprocess'", path=str(path)) from exc
    if not isinstance(doc, list):
        raise IntegrityError(f"{path}: expected a JSON list, got {type(doc).__name__}", path=str(path))
    return doc


def _read_array(path: Path) -> npt.NDArray[Any]:
    try:
        array: npt.NDArray[Any] = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise IntegrityError(f"{path}: cannot read it ({exc}); rerun 'provision preprocess'", path=str(path)) from exc
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.integer):
        raise IntegrityError(
            f"{path}: expected integer rows (n_features, max_seq_length), got {array.dtype}{array.shape}",
            path=str(path),
        )
    return array


def _settings(folder: Path) -> dict[str, Any]:
    """The run's answer-extraction settings (``n_best_size``...), the reference's by default."""
    record = load_json(folder / RUN_FILE) or {}
    raw = record.get("params")
    params = raw if isinstance(raw, dict) else {}
    out: dict[str, Any] = {}
    for key, default in _DEFAULTS.items():
        value = params.get(key, default)
        ok = isinstance(value, bool) if isinstance(default, bool) else type(value) is int and value > 0
        if not ok:
            raise UsageError(
                f"{folder / RUN_FILE}: [benchmark.preprocess] {key} must be "
                f"{'true or false' if isinstance(default, bool) else 'a positive integer'}, got {value!r}; "
                "fix the manifest and rerun 'provision preprocess'"
            )
        out[key] = value
    return out


class SquadTask:
    """F1 and exact match of start/end logits (MLPerf's BERT reference, ``accuracy-squad.py``).

    The reference ONNX model takes ``input_ids``, ``input_mask``, ``segment_ids`` as int64
    ``(N, 384)`` and returns ``output_start_logits`` and ``output_end_logits`` ``(N, 384)``; a
    single ``(N, 384, 2)`` output (start in column 0, end in column 1) is taken too. The
    predictions the golden pins compare are each feature's argmax of the start logits.
    """

    name = "squad"

    def __init__(self, folder: Path, runtime: RuntimeSpec, limit: int | None = None) -> None:
        self.folder = folder
        self.examples = _read_list(folder / "examples.json")
        self.features = _read_list(folder / "features.json")
        arrays = [_read_array(folder / f"{name}.npy") for name in ARRAYS]
        shapes = {array.shape for array in arrays}
        if len(shapes) != 1 or arrays[0].shape[0] != len(self.features):
            raise IntegrityError(
                f"{folder}: expected {', '.join(ARRAYS)} of one shape with a row per features.json entry "
                f"({len(self.features)}), got {', '.join(str(a.shape) for a in arrays)}; rerun 'provision preprocess'",
                path=str(folder),
            )
        self.arrays = arrays
        self.seq_len = int(arrays[0].shape[1])
        self.example_of = self._example_indexes()
        total = len(self.features)
        self.n = total if limit is None else min(limit, total)
        self.settings = _settings(folder)
        self._start: dict[int, npt.NDArray[np.float64]] = {}
        self._end: dict[int, npt.NDArray[np.float64]] = {}

    def _example_indexes(self) -> list[int]:
        path = self.folder / "features.json"
        out: list[int] = []
        for i, feature in enumerate(self.features):
            index = feature.get("example_index") if isinstance(feature, dict) else None
            if not isinstance(index, int) or not 0 <= index < len(self.examples) or (out and index < out[-1]):
                raise IntegrityError(
                    f"{path}: feature {i} has example_index {index!r}; expected non-decreasing indexes into the "
                    f"{len(self.examples)} examples; rerun 'provision preprocess'",
                    path=str(path),
                )
            out.append(index)
        return out

    def count(self) -> int:
        """Features in the preprocessed folder (the first ``limit`` of them)."""
        return self.n

    def load(self, index: int) -> Sequence[np.ndarray]:
        """Feature ``index``'s ``input_ids``, ``input_mask``, ``segment_ids`` as int64."""
        return tuple(array[index].astype(np.int64) for array in self.arrays)

    def _logits(self, n: int, outputs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        if not outputs:
            raise ModelError("squad: the model returned no output; expected start and end logits")
        first = np.asarray(outputs[0])
        if len(outputs) == 1:
            if first.ndim == 3 and first.shape[0] == n and first.shape[2] == 2:
                return first[:, :, 0], first[:, :, 1]
            raise ModelError(
                f"squad: expected one (N={n}, seq_len, 2) logits output, got shape {first.shape}; or set "
                "[model.runtime] outputs = ['output_start_logits', 'output_end_logits']"
            )
        second = np.asarray(outputs[1])
        if first.ndim != 2 or first.shape[0] != n or second.shape != first.shape:
            raise ModelError(
                f"squad: expected start and end logits of shape (N={n}, seq_len), got {first.shape} and "
                f"{second.shape}; check the manifest's outputs (start first, then end)"
            )
        return first, second

    def collect(self, indices: Sequence[int], outputs: Sequence[np.ndarray]) -> None:
        """Keep each feature's start and end logits."""
        start, end = self._logits(len(indices), outputs)
        for row, index in enumerate(indices):
            self._start[index] = np.asarray(start[row], dtype=np.float64)
            self._end[index] = np.asarray(end[row], dtype=np.float64)

    def _scored(self) -> tuple[int, int]:
        """(questions, features) scored: every question whose features all ran, and their features."""
        ran = 0
        while ran in self._start:
            ran += 1
        if ran == len(self.features):
            return len(self.examples), ran
        cut = self.example_of[ran]  # the first question with a feature that did not run
        return cut, self.example_of.index(cut)

    def score(self) -> Score:
        """F1 in percent over the whole questions run, with per-question F1 for a bootstrap interval."""
        from provision.validation.metrics.squad import squad_predictions, squad_scores

        questions, features = self._scored()
        if questions == 0:
            first = self.example_of.count(self.example_of[0]) if self.example_of else 0
            raise UsageError(
                f"{self.folder}: the {len(self._start)} features run cover no whole question (the first has "
                f"{first} features); use a larger --count"
            )
        width = max(self.seq_len, 1)
        start = np.stack([self._start[i] for i in range(features)]) if features else np.zeros((0, width))
        end = np.stack([self._end[i] for i in range(features)]) if features else np.zeros((0, width))
        examples = self.examples[:questions]
        answers = squad_predictions(
            examples,
            self.features[:features],
            start,
            end,
            n_best_size=int(self.settings["n_best_size"]),
            max_answer_length=int(self.settings["max_answer_length"]),
            lower_case=bool(self.settings["lower_case"]),
        )
        scores = squad_scores(examples, answers)
        names = [
            f"{self.examples[self.example_of[i]].get('qas_id')}#{self.features[i].get('doc_span_index', 0)}"
            for i in range(features)
        ]
        return Score(
            value=scores.f1,
            samples=features,
            per_sample=scores.per_question_f1,
            predictions=[int(np.argmax(start[i])) for i in range(features)],
            names=names,
            extra={"exact_match": scores.exact_match, "questions": questions, "features": features},
        )

    def describe(self) -> dict[str, Any]:
        """The answer-extraction settings."""
        return {"task": self.name, **self.settings}
