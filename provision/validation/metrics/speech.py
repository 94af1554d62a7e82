"""Word error rate of speech recognition (RNN-T ``accuracy_eval.py`` with ``helpers.word_error_rate``).

Each transcript is split on whitespace into words; a sample's errors are the word-level Levenshtein
distance (substitutions, insertions, deletions, each costing 1) from the hypothesis to the
reference. WER is the total of the errors over the total of reference words, summed over all
samples (not an average of per-sample rates); MLPerf reports the accuracy ``(1 - WER) * 100``.

Whisper's scorer (speech2text ``accuracy_eval.py`` with ``helpers.compute_wer_with_concatenation``)
first aligns the two word lists greedily, accepting a run of 2 or 3 words on one side written as one
word on the other ("any one" for "anyone") as a match: :func:`concatenation_word_errors`.
"""

from __future__ import annotations

from collections.abc import Sequence

from provision.errors import UsageError

__all__ = ["concatenation_word_errors", "levenshtein", "wer_accuracy", "word_error_rate", "word_errors"]


def levenshtein(first: Sequence[str], second: Sequence[str]) -> int:
    """Edit distance between two word sequences (unit costs)."""
    if len(first) < len(second):
        first, second = second, first
    # one row of the dynamic programme over the shorter sequence
    row = list(range(len(second) + 1))
    for i, word in enumerate(first, start=1):
        diagonal, row[0] = row[0], i
        for j, other in enumerate(second, start=1):
            replace = diagonal + (word != other)
            diagonal = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, replace)
    return row[-1]


def word_errors(hypothesis: str, reference: str) -> tuple[int, int]:
    """``(edits, reference_words)`` of one transcript."""
    reference_words = reference.split()
    return levenshtein(hypothesis.split(), reference_words), len(reference_words)


def word_error_rate(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Total word edits over total reference words; ``inf`` when the references have no words (as the reference)."""
    if isinstance(hypotheses, str) or isinstance(references, str):
        raise UsageError("give lists of transcripts, not a single string")
    if len(hypotheses) != len(references):
        raise UsageError(f"{len(hypotheses)} hypotheses but {len(references)} references; give one per sample")
    if not references:
        raise UsageError("no transcripts to score; WER needs at least one sample")
    edits = words = 0
    for hypothesis, reference in zip(hypotheses, references, strict=True):
        sample_edits, sample_words = word_errors(hypothesis, reference)
        edits += sample_edits
        words += sample_words
    if words == 0:
        return float("inf")
    return (1.0 * edits) / words


def wer_accuracy(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """MLPerf's speech accuracy in percent, ``(1 - WER) * 100``."""
    return (1 - word_error_rate(hypotheses, references)) * 100


def _merged(hypothesis: Sequence[str], reference: Sequence[str]) -> tuple[list[str], list[str]]:
    """Both word lists after the greedy alignment: where ``k`` (2 or 3) words of one side, joined,
    equal the current word of the other, they become one word; otherwise one word of each is
    taken. At each step the reference side is tried before the hypothesis side for each ``k``."""
    hyp_out: list[str] = []
    ref_out: list[str] = []
    i = j = 0
    while i < len(reference) and j < len(hypothesis):
        take_ref = take_hyp = 1
        if reference[i] != hypothesis[j]:
            for k in (2, 3):
                if i + k <= len(reference) and "".join(reference[i : i + k]) == hypothesis[j]:
                    take_ref = k
                    break
                if j + k <= len(hypothesis) and "".join(hypothesis[j : j + k]) == reference[i]:
                    take_hyp = k
                    break
        ref_out.append("".join(reference[i : i + take_ref]))
        hyp_out.append("".join(hypothesis[j : j + take_hyp]))
        i += take_ref
        j += take_hyp
    ref_out.extend(reference[i:])
    hyp_out.extend(hypothesis[j:])
    return hyp_out, ref_out


def concatenation_word_errors(hypothesis: str, reference: str) -> tuple[int, int]:
    """``(edits, reference_words)`` of one transcript as Whisper's MLPerf scorer counts them: the word
    Levenshtein distance after merging concatenations (see :func:`_merged`), over the reference's
    words before merging."""
    reference_words = reference.split()
    hyp, ref = _merged(hypothesis.split(), reference_words)
    return levenshtein(hyp, ref), len(reference_words)
