"""Whisper speech recognition scored as MLPerf's speech2text ``accuracy_eval.py`` scores it.

Samples (``QSL.py``, ``manifest.py``): the rows of the repack manifest (``dev-all-repack.json``, a
JSON list of ``{"transcript", "files": [{"fname", "speed", ...}], "original_duration", ...}``) whose
``original_duration`` is at most 30 s, in file order; each row's audio is its first file of speed 1,
``fname`` relative to the manifest's folder (the reference's ``--dataset_dir``; the leading folders
of a path written on another machine, ``./data/dev-all-repack/x.wav``, are dropped until the file is
found). Audio is read as ``librosa.load(path, sr=16000)`` reads a 16 kHz wav: float32 samples,
channels averaged to mono (another sample rate is refused, not resampled); the engine pads each
clip with zeros to Whisper's 30 s of features.

Scoring: a hypothesis is the engine's text lower-cased and stripped, each character outside the
42-symbol list of ``reference_SUT.py`` (space, a-z, apostrophe, 0-9, ``$ % + -``) dropped; a
reference is the transcript with the same characters dropped (not lower-cased, as ``manifest.py``).
Both go through Whisper's ``EnglishTextNormalizer`` (transformers' copy of openai-whisper's, with the
checkpoint's ``normalizer.json`` spelling map), then each sample's word edits are counted after the
concatenation-aware alignment (:func:`~provision.validation.metrics.speech.concatenation_word_errors`).
WER = total edits / total reference words; ``accuracy`` = (1 - WER) x 100, unrounded (the script
prints the float as is and the checker compares that); ``wer`` is WER x 100. On a subset the interval
resamples samples and recomputes the ratio of totals (``Score.statistic``), not a mean of per-sample rates.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from provision.errors import MissingDependencyError, UsageError
from provision.validation.metrics.speech import concatenation_word_errors
from provision.validation.runners.speech import SAMPLE_RATE
from provision.validation.tasks.base import Score, in_order

if TYPE_CHECKING:
    from provision.validation.runners.generate import Generated
    from provision.validation.tasks.registry import GenerativeSource

__all__ = [
    "LABELS",
    "MAX_DURATION",
    "WHISPER_METRICS",
    "WhisperTask",
    "english_normalizer",
    "hypothesis_text",
    "read_clip",
    "read_repack_manifest",
    "reference_text",
    "resolve_audio",
]

#: The characters the reference SUT sends back (``reference_SUT.py`` ``labels``); others are dropped.
LABELS = " abcdefghijklmnopqrstuvwxyz'0123456789$%+-"
#: Clips longer than this (seconds) are left out (``QSL.py`` ``MAX_DURATION`` default).
MAX_DURATION = 30.0
WHISPER_METRICS = ("accuracy", "wer")

_KEEP = frozenset(LABELS)


def reference_text(transcript: str) -> str:
    """A manifest transcript as the scorer sees it: characters outside :data:`LABELS` dropped."""
    return "".join(c for c in transcript if c in _KEEP)


def hypothesis_text(text: str) -> str:
    """A generation as the SUT returns it: lower-cased, stripped, characters outside :data:`LABELS` dropped."""
    return reference_text(text.lower().strip())


def english_normalizer(model_dir: Path) -> Callable[[str], str]:
    """Whisper's ``EnglishTextNormalizer`` with the spelling map of the checkpoint's ``normalizer.json``."""
    path = model_dir / "normalizer.json"
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            f"{path}: missing; Whisper's EnglishTextNormalizer needs the checkpoint's spelling map "
            "(openai/whisper-* ship normalizer.json): fetch the whole checkpoint folder"
        ) from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not JSON ({exc.msg} at line {exc.lineno}); fetch the checkpoint again") from None
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise UsageError(f"{path}: expected a JSON object of spellings (word -> word), got {type(mapping).__name__}")
    try:
        from transformers.models.whisper.english_normalizer import EnglishTextNormalizer
    except ImportError:
        raise MissingDependencyError("transformers", "llm", "Whisper's text normaliser") from None
    normalizer: Callable[[str], str] = EnglishTextNormalizer(mapping)  # type: ignore[no-untyped-call]
    return normalizer


def resolve_audio(folder: Path, fname: str) -> Path:
    """``fname`` of a manifest row as a file under ``folder``: as written, else without its leading
    folders one at a time (a path written where the set was built); UsageError when none exists."""
    parts = PurePosixPath(fname.replace("\\", "/")).parts
    parts = tuple(p for p in parts if p not in ("/", "."))
    for first in range(len(parts)):
        candidate = folder.joinpath(*parts[first:])
        if candidate.is_file():
            return candidate
    raise UsageError(f"{folder}: no audio file {fname!r} (nor any tail of that path); fetch the dataset folder again")


def read_repack_manifest(path: Path, column: str = "transcript") -> list[dict[str, Any]]:
    """The rows the reference keeps (duration at most :data:`MAX_DURATION`), each checked for
    ``column`` (the transcript), ``files`` (one of speed 1 with a ``fname``) and ``original_duration``."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: missing; fetch the benchmark's dataset first (provision fetch)") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not JSON ({exc.msg} at line {exc.lineno}); fetch the dataset again") from None
    if not isinstance(rows, list):
        raise UsageError(f"{path}: expected a JSON list of clips, got {type(rows).__name__}")
    kept = []
    for k, row in enumerate(rows):
        where = f"{path.name} row {k}"
        if not isinstance(row, dict) or not {column, "files", "original_duration"} <= row.keys():
            raise UsageError(f"{where}: expected keys {column}, files, original_duration; is this the repack manifest?")
        duration = row["original_duration"]
        if isinstance(duration, bool) or not isinstance(duration, (int, float)):
            raise UsageError(f"{where}: original_duration should be seconds, got {duration!r}")
        if duration > MAX_DURATION:
            continue
        if not isinstance(row[column], str):
            continue  # manifest.py drops a row whose transcript is not text
        files = row["files"]
        speed_one = [f for f in files if isinstance(f, dict) and f.get("speed") == 1] if isinstance(files, list) else []
        if not speed_one or not isinstance(speed_one[0].get("fname"), str):
            raise UsageError(f"{where}: no file of speed 1 with a fname; is this the repack manifest?")
        kept.append({"transcript": row[column], "fname": speed_one[0]["fname"], "duration": float(duration)})
    return kept


def read_clip(path: Path) -> np.ndarray:
    """A wav as ``librosa.load(path, sr=16000)`` gives a 16 kHz file: float32, mono (channels averaged)."""
    try:
        import soundfile
    except ImportError:
        raise MissingDependencyError("soundfile", "llm", "reading Whisper's audio clips") from None
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        raise UsageError(f"{path}: not a readable audio file ({exc}); fetch the dataset folder again") from None
    if rate != SAMPLE_RATE:
        raise UsageError(f"{path}: {rate} Hz, expected {SAMPLE_RATE} Hz (the repack set is 16 kHz); not resampled")
    mono = samples[:, 0] if samples.shape[1] == 1 else samples.mean(axis=1)
    return np.ascontiguousarray(mono, dtype=np.float32)


class WhisperTask:
    """Word accuracy of Whisper on the repack manifest's clips (see the module docstring)."""

    name = "whisper"
    kind = "speech"

    def __init__(self, source: GenerativeSource) -> None:
        spec = source.spec
        if source.model is None:
            raise UsageError(f"{source.bench.name}: the whisper task needs the checkpoint folder (its normalizer.json)")
        self.path = source.folder / spec.file
        rows = read_repack_manifest(self.path, spec.reference)
        if source.limit is not None:
            rows = rows[: source.limit]
        self.spec = spec
        self.folder = self.path.parent  # the reference's --dataset_dir holds the manifest
        self.rows = rows
        self.references = [str(r["transcript"]) for r in rows]
        self.normalize = english_normalizer(source.model)
        self.metrics = list(dict.fromkeys(m.metric for m in source.bench.metrics if not m.scenario))
        unknown = [m for m in self.metrics if m not in WHISPER_METRICS]
        if unknown:
            raise UsageError(
                f"{source.bench.name}: the whisper task scores {', '.join(WHISPER_METRICS)}, not {', '.join(unknown)}"
            )
        self.generated: dict[int, Generated] = {}

    def count(self) -> int:
        """Clips in the manifest (30 s or shorter, after ``--count``)."""
        return len(self.rows)

    def inputs(self, indices: Sequence[int]) -> list[Any]:
        """The waveforms of ``indices`` (16 kHz float32 mono), read from their wavs."""
        return [read_clip(resolve_audio(self.folder, self.rows[i]["fname"])) for i in indices]

    def collect(self, indices: Sequence[int], outputs: Sequence[Generated]) -> None:
        """Keep each generation by sample index."""
        for index, out in zip(indices, outputs, strict=True):
            self.generated[index] = out

    def errors(self) -> tuple[np.ndarray, np.ndarray]:
        """Per sample: word edits and reference words, after the SUT's filter and the normaliser."""
        edits = np.zeros(len(self.rows), dtype=np.int64)
        words = np.zeros(len(self.rows), dtype=np.int64)
        for i, reference in enumerate(self.references):
            hypothesis = self.normalize(hypothesis_text(self.generated[i].text))
            edits[i], words[i] = concatenation_word_errors(hypothesis, self.normalize(reference_text(reference)))
        return edits, words

    def score(self) -> Score:
        """``accuracy`` (and ``wer`` when a target names it); the first the targets name is the primary."""
        in_order(self.generated, len(self.rows), "clips have no transcription")
        edits, words = self.errors()
        if int(words.sum()) == 0:
            raise UsageError(f"{self.path}: the references have no words after normalising; WER is undefined")

        def wer(indices: np.ndarray) -> float:
            return float(edits[indices].sum()) / max(float(words[indices].sum()), 1.0)

        n = len(self.rows)
        every = np.arange(n)
        scores = {
            "accuracy": Score((1 - wer(every)) * 100, n, statistic=lambda idx: (1 - wer(idx)) * 100),
            "wer": Score(wer(every) * 100, n, statistic=lambda idx: wer(idx) * 100),
        }
        primary = scores[self.metrics[0]] if self.metrics else scores["accuracy"]
        first = self.metrics[0] if self.metrics else "accuracy"
        primary.names = [PurePosixPath(str(r["fname"])).name for r in self.rows]
        primary.more = {m: scores[m] for m in self.metrics if m != first}
        primary.extra = {
            "word_errors": int(edits.sum()),
            "reference_words": int(words.sum()),
            "generated_tokens": int(sum(len(g.token_ids) for g in self.generated.values())),
        }
        return primary

    def texts(self) -> list[str]:
        """The raw generations in sample order."""
        return [self.generated[i].text for i in range(len(self.rows))]

    def describe(self) -> dict[str, Any]:
        """File, prompt and scoring."""
        return {
            "task": self.name,
            "file": self.spec.file,
            "prompt": self.spec.prompt,
            "reference": self.spec.reference,
            "metrics": self.metrics,
            "max_duration_s": MAX_DURATION,
            "scoring": "SUT's 42-symbol filter, Whisper EnglishTextNormalizer (normalizer.json), concatenation-aware "
            "word Levenshtein; WER = sum of edits / sum of reference words; accuracy = (1 - WER) x 100 unrounded",
        }
