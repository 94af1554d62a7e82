"""metrics.speech: word-level Levenshtein and corpus WER as RNN-T's accuracy_eval computes it."""

from __future__ import annotations

import math

import pytest

from provision.errors import UsageError
from provision.validation.metrics.speech import levenshtein, wer_accuracy, word_error_rate, word_errors


@pytest.mark.parametrize(
    ("first", "second", "distance"),
    [
        ([], [], 0),
        (["a"], [], 1),
        ([], ["a", "b"], 2),
        (["a", "b", "c"], ["a", "b", "c"], 0),
        (["a", "b", "c"], ["a", "x", "c", "d"], 2),  # substitute b -> x, insert d
        (["b", "c", "d"], ["a", "b", "c"], 2),  # insert a in front, delete d
        (["kitten"], ["sitting"], 1),  # words, not characters
    ],
)
def test_levenshtein(first: list[str], second: list[str], distance: int) -> None:
    assert levenshtein(first, second) == distance
    assert levenshtein(second, first) == distance


def test_word_errors_counts_reference_words() -> None:
    # three reference words missing: 3 deletions against 6 reference words
    assert word_errors("the cat sat", "the cat sat on the mat") == (3, 6)
    assert word_errors("  the   cat ", "the cat") == (0, 2)  # whitespace splitting


def test_wer_is_a_ratio_of_totals() -> None:
    hypotheses = ["the cat sat", "a dog barked"]
    references = ["the cat sat on the mat", "the dog barked"]
    # edits 3 + 1 (a -> the) over words 6 + 3 -> 4/9; a mean of per-sample rates would be 5/12
    assert word_error_rate(hypotheses, references) == pytest.approx(4 / 9)
    assert wer_accuracy(hypotheses, references) == pytest.approx((1 - 4 / 9) * 100)


def test_wer_of_a_single_sample() -> None:
    assert word_error_rate(["the cat sat"], ["the cat sat on the mat"]) == 0.5
    assert wer_accuracy(["the cat sat"], ["the cat sat on the mat"]) == 50.0
    assert wer_accuracy(["hello world"], ["hello world"]) == 100.0


def test_wer_can_exceed_one() -> None:
    # three inserted words against one reference word -> 3/1
    assert word_error_rate(["oh a b c"], ["oh"]) == 3.0
    assert wer_accuracy(["oh a b c"], ["oh"]) == -200.0


def test_no_reference_words_is_infinite_as_the_reference() -> None:
    assert math.isinf(word_error_rate(["something"], [""]))


@pytest.mark.parametrize(
    ("hypotheses", "references", "fragment"),
    [
        (["a"], ["a", "b"], "1 hypotheses but 2 references"),
        ([], [], "no transcripts"),
        ("a b", "a b", "not a single string"),
    ],
)
def test_wer_rejects_bad_input(hypotheses: list[str], references: list[str], fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment):
        word_error_rate(hypotheses, references)
