"""ROUGE and output lengths of summarisation (GPT-J ``evaluation.py``, Llama ``evaluate-accuracy.py``).

The MLPerf scripts decode the generated tokens, strip each text and put each sentence on its own
line (nltk ``sent_tokenize``, for both predictions and references), then call Hugging Face
``evaluate``'s ROUGE with stemming and without aggregation. That is Google's ``rouge_score``:
``RougeScorer(types, use_stemmer=True).score(reference, prediction)`` per sample, keeping the
F-measure. Each metric is the mean over samples x100, rounded to 4 decimals (NumPy rounding, as
``round`` of a NumPy float). ``gen_len`` is the total number of characters of the prepared
predictions and ``tokens_per_sample`` the mean number of generated tokens, rounded to 1 decimal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from provision.errors import MissingDependencyError, UsageError

__all__ = ["ROUGE_TYPES", "SentenceSplit", "gen_len", "prepare_texts", "rouge", "rouge_per_sample", "tokens_per_sample"]

#: The ROUGE variants MLPerf reports, spelled as ``rouge_score`` spells them.
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")

SentenceSplit = Callable[[str], list[str]]

_PUNKT_HINT = "run 'python -m nltk.downloader punkt_tab' (or pass sentence_split=...)"


def _canonical_type(name: str) -> str:
    for known in ROUGE_TYPES:
        if name.lower() == known.lower():
            return known
    raise UsageError(f"unknown ROUGE type {name!r}; expected one of {', '.join(ROUGE_TYPES)}")


def _nltk_sentence_split() -> SentenceSplit:
    """nltk's ``sent_tokenize`` (English punkt), checked to have its data."""
    try:
        import nltk
    except ImportError:
        raise MissingDependencyError("nltk", "metrics", "ROUGE-Lsum sentence splitting") from None
    try:
        nltk.sent_tokenize("Punkt is here. Is it?")
    except LookupError:
        message = f"ROUGE-Lsum splits sentences with nltk's punkt data, which is not installed: {_PUNKT_HINT}"
        raise UsageError(message) from None
    split: SentenceSplit = nltk.sent_tokenize
    return split


def prepare_texts(texts: Sequence[str], sentence_split: SentenceSplit | None = None) -> list[str]:
    """MLPerf's ``postprocess_text``: each text stripped, its sentences joined by newlines.

    ``sentence_split`` defaults to nltk's ``sent_tokenize`` (needs the ``punkt_tab`` data).
    """
    split = sentence_split if sentence_split is not None else _nltk_sentence_split()
    return ["\n".join(split(text.strip())) for text in texts]


def _scores(
    predictions: Sequence[str],
    references: Sequence[str],
    types: Sequence[str],
    sentence_split: SentenceSplit | None,
) -> dict[str, npt.NDArray[np.float64]]:
    if isinstance(predictions, str) or isinstance(references, str):
        raise UsageError("give lists of texts, not a single string")
    if len(predictions) != len(references):
        raise UsageError(f"{len(predictions)} predictions but {len(references)} references; give one per sample")
    if not predictions:
        raise UsageError("no texts to score; ROUGE needs at least one sample")
    if not types:
        raise UsageError(f"no ROUGE type asked for; expected some of {', '.join(ROUGE_TYPES)}")
    wanted = {name: _canonical_type(name) for name in types}
    try:
        from rouge_score import rouge_scorer
    except ImportError:
        raise MissingDependencyError("rouge-score", "metrics", "ROUGE") from None

    if "rougeLsum" in wanted.values():
        preds = prepare_texts(predictions, sentence_split)
        refs = prepare_texts(references, sentence_split)
    else:
        # ROUGE-1/2/L tokenise each text by lower-casing it and splitting at every character that is
        # not an ASCII letter or digit, so the line breaks between sentences separate like the spaces
        # they replace; sentence splitting (which only swaps the whitespace between sentences for
        # "\n") cannot change their tokens. Only ROUGE-Lsum reads the lines, so the split is skipped.
        preds = [text.strip() for text in predictions]
        refs = [text.strip() for text in references]

    kinds = sorted(set(wanted.values()), key=ROUGE_TYPES.index)
    scorer: Any = rouge_scorer.RougeScorer(kinds, use_stemmer=True)
    values = {kind: np.empty(len(preds), dtype=np.float64) for kind in kinds}
    for index, (prediction, reference) in enumerate(zip(preds, refs, strict=True)):
        result = scorer.score(reference, prediction)
        for kind in kinds:
            values[kind][index] = float(result[kind].fmeasure)
    return {name: values[kind].copy() for name, kind in wanted.items()}


def rouge_per_sample(
    predictions: Sequence[str],
    references: Sequence[str],
    types: Sequence[str] = ROUGE_TYPES,
    sentence_split: SentenceSplit | None = None,
) -> dict[str, npt.NDArray[np.float64]]:
    """Each sample's ROUGE F-measure (0..1) per type, keyed by the type names as given.

    Types are ``rouge1``, ``rouge2``, ``rougeL``, ``rougeLsum`` in any letter case (so the
    manifest's ``rougel`` works). ``sentence_split`` puts sentences on their own lines before
    scoring; only ``rougeLsum`` depends on it. ``None`` uses nltk's ``sent_tokenize``, which needs the
    ``punkt_tab`` data (``python -m nltk.downloader punkt_tab``) when ``rougeLsum`` is asked for.
    """
    return _scores(predictions, references, types, sentence_split)


def rouge(
    predictions: Sequence[str],
    references: Sequence[str],
    types: Sequence[str] = ROUGE_TYPES,
    sentence_split: SentenceSplit | None = None,
) -> dict[str, float]:
    """ROUGE scores as MLPerf reports them: mean F-measure x100, rounded to 4 decimals.

    See :func:`rouge_per_sample` for the arguments.
    """
    per_sample = _scores(predictions, references, types, sentence_split)
    # the reference rounds a NumPy float with round(), i.e. np.round (scale, round half to even, unscale)
    return {name: float(np.round(np.mean(values) * 100, 4)) for name, values in per_sample.items()}


def gen_len(predictions: Sequence[str]) -> int:
    """Total characters of the predictions.

    MLPerf counts the prepared texts (:func:`prepare_texts`: stripped, one sentence a line); pass
    those to get its exact number.
    """
    if isinstance(predictions, str):
        raise UsageError("give a list of texts, not a single string")
    return sum(len(text) for text in predictions)


def tokens_per_sample(token_counts: Sequence[int]) -> float:
    """Generated tokens per sample, rounded to 1 decimal (Llama 2's ``tokens_per_sample``)."""
    if not token_counts:
        raise UsageError("no samples; tokens_per_sample needs at least one token count")
    return round(sum(int(count) for count in token_counts) / len(token_counts), 1)
