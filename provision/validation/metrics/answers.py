"""Answer extraction and grading of MLPerf's exact-match sets, as the reference scripts define them.

Each function takes one decoded generation (and its ground truth) and returns what the script
computes for that sample, so a set's score is the mean (or weighted mean) the task takes over them:

- Mixtral 8x7B ``evaluate-accuracy.py``, GSM8K: the text before the first ``"\\nQ:"``; the first
  number after the last ``"The answer is"`` when there is one, else the last number of the text
  (``-?[\\d,]*\\.?\\d+``), commas removed; correct when ``float`` of it equals ``float`` of the
  ground truth (:func:`gsm8k_correct`).
- Llama 3.1 405B ``evaluate-accuracy.py``: ``niah_em`` (:func:`niah_exact_match`) and ``qa_em``
  (:func:`qa_exact_match`), 0..100 per sample, on texts already stripped and sentence-split.
- DeepSeek-R1 ``eval_accuracy.py`` (:func:`choice_r1`, :func:`boxed`, :func:`aime_answer`) and
  gpt-oss-120b ``eval_accuracy.py``, which reads the Harmony ``final`` channel first
  (:func:`final_section`, :func:`choice_harmony`). LiveCodeBench and MBXP are scored by running
  the generated code; provision never runs model output (their samples are left out).
- MATH-500 is graded by PRM800K's ``grade_answer`` (:func:`math500_grader`), which is not on
  PyPI: it is used when its ``grading`` package is importable and never re-implemented.

The definitions keep the scripts' quirks, since a score must equal theirs: ``niah_em`` compares
the characters of each expected UUID with the UUID found at the same position; ``qa_em`` counts
an empty answer (or any substring of the label) as a match.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable
from typing import Any

__all__ = [
    "aime_answer",
    "aime_correct",
    "boxed",
    "choice_correct",
    "choice_harmony",
    "choice_r1",
    "final_section",
    "gsm8k_answer",
    "gsm8k_correct",
    "is_missing",
    "math500_grader",
    "niah_exact_match",
    "qa_exact_match",
    "to_float",
]

_NUMBER = re.compile(r"-?[\d,]*\.?\d+", re.MULTILINE | re.DOTALL | re.IGNORECASE)
_UUID = re.compile(r"[\w]{8}-[\w]{4}-[\w]{4}-[\w]{4}-[\w]{12}")
_BLANKS = re.compile(r"\s+")


def to_float(text: Any) -> float | None:
    """``float(text)``, or ``None`` when it is not a number (the scripts' ``try_float``)."""
    try:
        return float(text)
    except (TypeError, ValueError, OverflowError):
        return None


def gsm8k_answer(text: str, delimiter: str = "The answer is") -> str:
    """The number a GSM8K generation answers with (commas removed), ``""`` when it has none."""
    head = text.split("\nQ:")[0]
    if delimiter in head:
        after = _NUMBER.findall(head.split(delimiter)[-1])
        if after:
            return str(after[0]).replace(",", "")
    found = _NUMBER.findall(head)
    return str(found[-1]).replace(",", "") if found else ""


def gsm8k_correct(text: str, truth: Any) -> bool:
    """Whether the generation's number equals the ground truth as floats."""
    got = to_float(gsm8k_answer(text))
    return got is not None and to_float(truth) == got


def niah_exact_match(label: str, pred: str) -> float:
    """``niah_em``: 0..100, rounded to 2 decimals (see the module docstring)."""
    found = _UUID.findall(pred)
    if not found:
        return 0.0
    wanted = _UUID.findall(label)
    total = 0.0
    for got, want in zip(found, wanted, strict=False):
        total += sum(1.0 if ch.lower() in got.lower() else 0.0 for ch in want) / len(want)
    return round(total / len(found) * 100, 2)


def qa_exact_match(label: str, pred: str) -> float:
    """``qa_em``: 100 when the answer (the text after the last ``"Answer: "``, else all of it) is in the
    label, or one ``|``-separated label entry is in it with blanks removed and case ignored; else 0."""
    answer = pred
    mark = pred.rfind("Answer: ")
    if mark != -1:
        answer = pred[mark + len("Answer: ") :]
    if answer in label:
        return 100.0
    squeezed = _BLANKS.sub("", answer).lower()
    entries = [_BLANKS.sub("", entry).lower() for entry in label.split("|")]
    return 100.0 if any(entry in squeezed for entry in entries) else 0.0


def _unwrap(text: str) -> str:
    """The scripts' clean-up of a multiple-choice text: a ``['...']`` wrapper off, escaped newlines and
    quotes restored."""
    if text.startswith(("['", '["')) and text.endswith(("']", '"]')):
        text = text[2:-2].strip()
    return text.replace("\\n", "\n").replace("\\'", "'")


def _answer_pattern(last: str) -> re.Pattern[str]:
    return re.compile(
        rf"\b(?:ANSWER|FINAL\s*ANSWER)\b\s*[:=]?\s*(?:\(?\s*([A-{last}])\s*\)?)(?:\s*$|[^A-Za-z])", re.IGNORECASE
    )


def choice_r1(text: str, last: str = "D") -> str | None:
    """DeepSeek-R1's multiple-choice letter: the last ``ANSWER``/``FINAL ANSWER`` followed by a letter
    up to ``last``; for MMLU-Pro (``last = "J"``) else the last standalone letter A-J."""
    text = _unwrap(text.strip())
    if not text:
        return None
    matches = list(_answer_pattern(last).finditer(text))
    if matches:
        return matches[-1].group(1).upper()
    if last == "J":
        alone = list(re.finditer(r"\b([A-J])\b", text, re.IGNORECASE))
        if alone:
            return alone[-1].group(1).upper()
    return None


def final_section(text: str) -> str:
    """The Harmony ``final`` channel of a gpt-oss generation (up to ``<|return|>``), else the whole text."""
    text = text.strip()
    found = re.search(r"<\|channel\|>final[^<]*<\|message\|>(.*?)(?:<\|return\|>|$)", text, re.DOTALL)
    return found.group(1).strip() if found else text


def choice_harmony(text: str, last: str = "D") -> str | None:
    """gpt-oss's multiple-choice letter: in the final section (bold markers removed) a leading letter,
    else ``Answer: X``; else the last ``ANSWER``/``FINAL ANSWER`` letter of the whole text; for
    MMLU-Pro else the last standalone letter of the final section."""
    text = text.strip()
    if not text:
        return None
    final = re.sub(r"\*\*([^*]+)\*\*", r"\1", final_section(text))
    final = _unwrap(final)
    leading = re.match(rf"^[^a-zA-Z]*([A-{last}])(?:[^a-zA-Z]|$)", final.strip(), re.IGNORECASE)
    if leading:
        return leading.group(1).upper()
    answer = re.search(rf"\b(?:Answer|ANSWER)\s*[:.]?\s*([A-{last}])\b", final, re.IGNORECASE)
    if answer:
        return answer.group(1).upper()
    whole = text.replace("\\n", "\n").replace("\\'", "'")
    matches = list(_answer_pattern(last).finditer(whole))
    if matches:
        return matches[-1].group(1).upper()
    if last == "J":
        alone = list(re.finditer(rf"\b([A-{last}])\b", final, re.IGNORECASE))
        if alone:
            return alone[-1].group(1).upper()
    return None


def choice_correct(parsed: str | None, truth: Any, options: str) -> bool:
    """The letter is one of ``options`` and equals the ground truth (case ignored)."""
    if not parsed or not isinstance(truth, str) or not truth:
        return False
    return parsed.upper() in options and parsed.upper() == truth.upper()


def boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (braces matched), stripped; ``None`` when unclosed or absent."""
    text = text.strip()
    start = text.rfind("\\boxed{")
    if start == -1:
        return None
    depth = 0
    begin = start + len("\\boxed{")
    for i in range(begin, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            if depth == 0:
                return text[begin:i].strip()
            depth -= 1
    return None


def aime_answer(text: str) -> int | None:
    """An AIME answer: the last ``\\boxed{digits}``, else the last ``Answer: digits``; an integer 0..999."""
    text = text.strip()
    if not text:
        return None
    found = re.findall(r"\\boxed{\s*(\d+)\s*}", text)
    if not found:
        found = re.findall(r"Answer:\s*(\d+)(?!\.)\b", text, re.IGNORECASE | re.MULTILINE)
        if not found:
            return None
    value = int(found[-1])
    return value if 0 <= value <= 999 else None


def aime_correct(parsed: int | None, truth: Any) -> bool:
    """Integer equality with the ground truth."""
    if parsed is None:
        return False
    try:
        return int(parsed) == int(truth)
    except (TypeError, ValueError):
        return False


def math500_grader() -> Callable[[str, str], bool] | None:
    """PRM800K's ``grading.grader.grade_answer(given_answer, ground_truth)`` when importable, else ``None``."""
    try:
        module = importlib.import_module("grading.grader")
    except ImportError:
        return None
    grade = getattr(module, "grade_answer", None)
    if grade is None:
        return None

    def graded(given: str, truth: str) -> bool:
        return bool(grade(given_answer=given, ground_truth=truth))

    return graded


def is_missing(value: Any) -> bool:
    """A ground truth that is absent, as ``pandas.isna`` says of a scalar: ``None``, a float or NumPy
    NaN, ``pd.NA``, ``NaT``."""
    if value is None:
        return True
    try:
        import pandas as pd
    except ImportError:
        return isinstance(value, float) and math.isnan(value)
    try:
        return bool(pd.isna(value)) if pd.api.types.is_scalar(value) else False
    except (TypeError, ValueError):
        return False
