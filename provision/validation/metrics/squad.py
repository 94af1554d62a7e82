"""SQuAD v1.1 for BERT: answer text from logits and the official scores (``language/bert``).

Two steps of MLPerf's ``accuracy-squad.py``:

1. :func:`squad_predictions` turns each feature's start/end logits into one answer per question,
   as Google's ``write_predictions`` (n-best 20, answers of at most 30 tokens, lower case): the
   ``n_best_size`` best start and end positions of every feature are paired; a pair is dropped when
   a position lies outside the tokens or outside the context (no ``token_to_orig_map`` entry), when
   the start is not in its window of maximum context, when the end comes before the start or when
   the span is longer than ``max_answer_length``. The pair with the highest start + end logit over
   all the question's features wins (the earliest on a tie); its WordPieces are joined (``" ##"``
   removed) and projected back onto the original context words by :func:`final_text`. A question
   without any valid pair gets the reference's placeholder answer ``"empty"``.
2. :func:`squad_scores` is ``evaluate-v1.1.py``: answers are normalised (lower case, ASCII
   punctuation removed, articles a/an/the removed, whitespace collapsed); exact match and token F1
   take the best over the question's reference answers; both are averaged x100 over all questions,
   an unanswered question scoring 0.

``examples`` and ``features`` are what the ``squad-bert`` recipe writes to ``examples.json`` and
``features.json`` (``token_to_orig_map`` / ``token_is_max_context`` keyed by the position as a
string; integer keys work too).
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from preprocess.bert_text import SPECIAL_TOKENS, is_cjk
from provision.errors import UsageError

__all__ = [
    "NO_ANSWER",
    "SquadScores",
    "answer_exact_match",
    "answer_f1",
    "basic_tokenize",
    "final_text",
    "normalize_answer",
    "squad_predictions",
    "squad_scores",
]

#: What the reference predicts for a question without any valid answer span.
NO_ANSWER = "empty"

#: Logit the reference pads each feature's logits with, up to the sequence length.
_PAD_LOGIT = -10000.0

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_ASCII_PUNCTUATION = frozenset(string.punctuation)
_NEVER_SPLIT = frozenset(SPECIAL_TOKENS)


# --------------------------------------------------------------------------- official scoring


def normalize_answer(text: str) -> str:
    """SQuAD's normal form: lower case, no ASCII punctuation, no articles, single spaces."""
    lowered = text.lower()
    no_punctuation = "".join(char for char in lowered if char not in _ASCII_PUNCTUATION)
    no_articles = _ARTICLES.sub(" ", no_punctuation)
    return " ".join(no_articles.split())


def answer_exact_match(prediction: str, truth: str) -> bool:
    """Whether the two answers are equal once normalised."""
    return normalize_answer(prediction) == normalize_answer(truth)


def answer_f1(prediction: str, truth: str) -> float:
    """Token F1 of the normalised answers (tokens counted with multiplicity); 0 without common tokens."""
    predicted = normalize_answer(prediction).split()
    expected = normalize_answer(truth).split()
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision = 1.0 * common / len(predicted)
    recall = 1.0 * common / len(expected)
    return (2 * precision * recall) / (precision + recall)


@dataclass(frozen=True, eq=False)
class SquadScores:
    """Exact match and F1 in percent, and each question's score (also x100, in example order)."""

    exact_match: float
    f1: float
    per_question_f1: npt.NDArray[np.float64]
    per_question_em: npt.NDArray[np.float64]


def _truths(example: Mapping[str, Any], index: int) -> list[str]:
    try:
        answers = example["answers"]
        texts = [str(answer["text"]) for answer in answers]
    except (KeyError, TypeError):
        raise UsageError(f"example {index} has no 'answers' list of {{'text': ...}} objects") from None
    if not texts:
        raise UsageError(f"example {index} ({example.get('qas_id')!r}) has no reference answer to score against")
    return texts


def squad_scores(examples: Sequence[Mapping[str, Any]], predictions: Mapping[str, str]) -> SquadScores:
    """SQuAD v1.1 exact match and F1 (``evaluate-v1.1.py``) of ``predictions`` (qas_id -> answer).

    Every example counts; one without a prediction scores 0.
    """
    if not examples:
        raise UsageError("no examples to score; give the examples.json list")
    f1_values = np.zeros(len(examples), dtype=np.float64)
    em_values = np.zeros(len(examples), dtype=np.float64)
    f1_total = 0.0
    em_total = 0.0
    for index, example in enumerate(examples):
        truths = _truths(example, index)
        qas_id = example.get("qas_id")
        if not isinstance(qas_id, str):
            raise UsageError(f"example {index} has no string 'qas_id'")
        if qas_id not in predictions:
            continue
        prediction = predictions[qas_id]
        em = float(max(answer_exact_match(prediction, truth) for truth in truths))
        f1 = max(answer_f1(prediction, truth) for truth in truths)
        em_total += em
        f1_total += f1
        em_values[index] = 100.0 * em
        f1_values[index] = 100.0 * f1
    total = len(examples)
    return SquadScores(
        exact_match=100.0 * em_total / total,
        f1=100.0 * f1_total / total,
        per_question_f1=f1_values,
        per_question_em=em_values,
    )


# --------------------------------------------------------------------------- BERT's basic tokenizer


def _is_punctuation(char: str) -> bool:
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True  # every ASCII non-letter, non-digit counts, as in BERT
    return unicodedata.category(char).startswith("P")


def _clean(text: str) -> str:
    out = []
    for char in text:
        if char in "\x00\ufffd":
            continue
        if char in " \t\n\r" or unicodedata.category(char) == "Zs":
            out.append(" ")
        elif unicodedata.category(char).startswith("C"):
            continue
        else:
            out.append(char)
    return "".join(out)


def _space_cjk(text: str) -> str:
    return "".join(f" {char} " if is_cjk(char) else char for char in text)


def _strip_accents(word: str) -> str:
    return "".join(char for char in unicodedata.normalize("NFD", word) if unicodedata.category(char) != "Mn")


def _split_punctuation(word: str) -> list[str]:
    if word in _NEVER_SPLIT:
        return [word]
    pieces: list[str] = []
    current = ""
    for char in word:
        if _is_punctuation(char):
            if current:
                pieces.append(current)
                current = ""
            pieces.append(char)
        else:
            current += char
    if current:
        pieces.append(current)
    return pieces


def basic_tokenize(text: str, lower_case: bool = True) -> list[str]:
    """BERT's BasicTokenizer (the PyTorch BERT of NVIDIA's DeepLearningExamples, as MLPerf runs it).

    Control characters dropped and whitespace made spaces, CJK characters spaced out, split on
    whitespace; each word but a special token (``[CLS]``...) lower-cased with ``str.lower`` and
    stripped of accents when ``lower_case``, then split around punctuation.
    """
    words = _space_cjk(_clean(text)).split()
    pieces: list[str] = []
    for word in words:
        if lower_case and word not in _NEVER_SPLIT:
            word = _strip_accents(word.lower())
        pieces.extend(_split_punctuation(word))
    return " ".join(pieces).split()


# --------------------------------------------------------------------------- logits -> answers


def _without_spaces(text: str) -> tuple[str, list[int]]:
    """``text`` without its spaces, and for each kept character its position in ``text``."""
    positions = [i for i, char in enumerate(text) if char != " "]
    return "".join(text[i] for i in positions), positions


def final_text(pred_text: str, orig_text: str, lower_case: bool = True) -> str:
    """Project the de-tokenised answer ``pred_text`` back onto ``orig_text`` (``get_final_text``).

    ``orig_text`` is the span's context words joined by spaces. It is basic-tokenised; where
    ``pred_text`` first occurs in that, the characters are aligned one to one with ``orig_text``
    once spaces are removed, which restores the original case, accents and punctuation and drops
    what lies outside the prediction (``"Steve Smith's"`` -> ``"Steve Smith"``). When the text is
    not found or the two space-free texts differ in length, ``orig_text`` is returned as it is.
    """
    tok_text = " ".join(basic_tokenize(orig_text, lower_case))
    start = tok_text.find(pred_text)
    if start == -1:
        return orig_text
    end = start + len(pred_text) - 1
    orig_chars, orig_positions = _without_spaces(orig_text)
    tok_chars, tok_positions = _without_spaces(tok_text)
    if len(orig_chars) != len(tok_chars):
        return orig_text
    tok_to_char = {position: index for index, position in enumerate(tok_positions)}
    if start not in tok_to_char or end not in tok_to_char:
        return orig_text
    return orig_text[orig_positions[tok_to_char[start]] : orig_positions[tok_to_char[end]] + 1]


def _best_positions(logits: npt.NDArray[np.float64], n_best: int) -> list[int]:
    """Positions of the ``n_best`` largest logits, largest first, the lower position first on a tie."""
    order = np.argsort(-logits, kind="stable")[:n_best]
    return [int(i) for i in order]


def _position_map(raw: Any, what: str, feature_index: int) -> dict[int, Any]:
    if not isinstance(raw, Mapping):
        raise UsageError(f"feature {feature_index} has no {what!r} object")
    return {int(key): value for key, value in raw.items()}


def _logit_matrix(values: npt.ArrayLike, n_features: int, width: int, what: str) -> npt.NDArray[np.float64]:
    matrix = np.asarray(values, dtype=np.float64)  # the reference works on Python floats from float64
    if matrix.ndim != 2 or matrix.shape[0] != n_features:
        raise UsageError(f"{what} must have shape (n_features={n_features}, seq_len), got {matrix.shape}")
    if matrix.shape[1] < width:  # the reference pads every feature's logits to the sequence length
        pad = np.full((n_features, width - matrix.shape[1]), _PAD_LOGIT)
        matrix = np.concatenate([matrix, pad], axis=1)
    return matrix


def squad_predictions(
    examples: Sequence[Mapping[str, Any]],
    features: Sequence[Mapping[str, Any]],
    start_logits: npt.ArrayLike,
    end_logits: npt.ArrayLike,
    n_best_size: int = 20,
    max_answer_length: int = 30,
    lower_case: bool = True,
) -> dict[str, str]:
    """One answer text per question (qas_id -> text) from BERT's logits, as MLPerf's ``write_predictions``.

    ``start_logits`` / ``end_logits`` are ``(n_features, seq_len)``, row ``i`` for ``features[i]``.
    See the module docstring for the rules; a question without a valid span gets :data:`NO_ANSWER`.
    """
    if n_best_size < 1 or max_answer_length < 1:
        raise UsageError("n_best_size and max_answer_length must be at least 1")
    width = max((len(feature.get("tokens", ())) for feature in features), default=0)
    starts = _logit_matrix(start_logits, len(features), width, "start_logits")
    ends = _logit_matrix(end_logits, len(features), width, "end_logits")

    by_example: dict[int, list[int]] = {}
    for feature_index, feature in enumerate(features):
        try:
            by_example.setdefault(int(feature["example_index"]), []).append(feature_index)
        except (KeyError, TypeError, ValueError):
            raise UsageError(f"feature {feature_index} has no integer 'example_index'") from None

    predictions: dict[str, str] = {}
    for example_index, example in enumerate(examples):
        qas_id = example.get("qas_id")
        if not isinstance(qas_id, str):
            raise UsageError(f"example {example_index} has no string 'qas_id'")
        best: tuple[float, int, int, int] | None = None  # (score, feature, start, end)
        best_maps: dict[int, Any] = {}
        for feature_index in by_example.get(example_index, []):
            feature = features[feature_index]
            n_tokens = len(feature["tokens"])
            to_orig = _position_map(feature.get("token_to_orig_map"), "token_to_orig_map", feature_index)
            max_context = _position_map(feature.get("token_is_max_context"), "token_is_max_context", feature_index)
            end_candidates = _best_positions(ends[feature_index], n_best_size)
            for start in _best_positions(starts[feature_index], n_best_size):
                if start >= n_tokens or start not in to_orig or not max_context.get(start, False):
                    continue
                for end in end_candidates:
                    if end >= n_tokens or end not in to_orig or end < start or end - start + 1 > max_answer_length:
                        continue
                    score = float(starts[feature_index, start]) + float(ends[feature_index, end])
                    if best is None or score > best[0]:  # strict: the first of equal scores wins
                        best = (score, feature_index, start, end)
                        best_maps = to_orig
        if best is None:
            predictions[qas_id] = NO_ANSWER
            continue
        _, feature_index, start, end = best
        pieces = features[feature_index]["tokens"][start : end + 1]
        joined = " ".join(pieces).replace(" ##", "").replace("##", "")
        pred_text = " ".join(joined.strip().split())
        doc_tokens = example.get("doc_tokens")
        if not isinstance(doc_tokens, Sequence):
            raise UsageError(f"example {example_index} ({qas_id!r}) has no 'doc_tokens' list")
        orig_text = " ".join(doc_tokens[int(best_maps[start]) : int(best_maps[end]) + 1])
        predictions[qas_id] = final_text(pred_text, orig_text, lower_case)
    return predictions
