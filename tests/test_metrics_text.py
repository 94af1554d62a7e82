"""metrics.text: ROUGE as MLPerf's summarisation scripts report it, and the output lengths.

Expected values are worked out from ROUGE's definition with rouge_score's tokenizer: lower case,
every non-alphanumeric character a separator, Porter stemming of tokens longer than 3 characters.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from provision.errors import UsageError
from provision.validation.metrics.text import gen_len, prepare_texts, rouge, rouge_per_sample, tokens_per_sample

needs_rouge = pytest.mark.skipif(importlib.util.find_spec("rouge_score") is None, reason="needs rouge-score")


def one_line(text: str) -> list[str]:
    return [text]


def sentences(text: str) -> list[str]:
    """A plain splitter for the tests: sentences end at '. '."""
    return [part.strip() for part in text.replace(". ", ".\0").split("\0") if part.strip()]


@needs_rouge
def test_rouge_with_stemming_by_hand() -> None:
    # prediction "the cat is running" -> [the, cat, is, run] ("running" stems to "run");
    # reference "the cat runs" -> [the, cat, run] ("runs" -> "run"; words of <= 3 letters are kept).
    # ROUGE-1: 3 shared unigrams, P 3/4, R 3/3 -> F = 2*0.75/1.75 = 0.857142... -> 85.7143
    # ROUGE-2: bigrams {the cat, cat is, is run} vs {the cat, cat run}: 1 shared, P 1/3, R 1/2 -> F 0.4
    # ROUGE-L: longest common subsequence "the cat run" (3) -> same as ROUGE-1
    scores = rouge(["the cat is running"], ["the cat runs"], types=("rouge1", "rouge2", "rougeL"))
    assert scores == {"rouge1": 85.7143, "rouge2": 40.0, "rougeL": 85.7143}


@needs_rouge
def test_rouge_l_follows_word_order() -> None:
    # "cat the sat" vs "the cat sat": every unigram shared (ROUGE-1 = 1), but the longest common
    # subsequence is 2 of 3 words ("the sat" or "cat sat") -> F = 2/3 -> 66.6667
    # the manifest spelling "rougel" is accepted and kept as the key
    scores = rouge(["cat the sat"], ["the cat sat"], types=("rouge1", "rougel"))
    assert scores == {"rouge1": 100.0, "rougel": 66.6667}


@needs_rouge
def test_rouge_lsum_reads_sentences() -> None:
    # tokens [a b c d] vs [c d a b]: ROUGE-L's LCS is 2 ("a b" or "c d") -> F 0.5. ROUGE-Lsum matches
    # each reference sentence against the prediction's sentences: "c d" and "a b" are both found
    # whole -> F 1. Bigrams {ab, bc, cd} vs {cd, da, ab}: 2 shared -> ROUGE-2 = 2/3.
    predictions, references = ["a b. c d."], ["c d. a b."]
    split = rouge(predictions, references, sentence_split=sentences)
    assert split == {"rouge1": 100.0, "rouge2": 66.6667, "rougeL": 50.0, "rougeLsum": 100.0}
    # without a split, the text is one sentence and ROUGE-Lsum equals ROUGE-L
    assert rouge(predictions, references, types=("rougeLsum",), sentence_split=one_line) == {"rougeLsum": 50.0}


@needs_rouge
def test_rouge_is_the_mean_over_samples() -> None:
    # per-sample ROUGE-1: 1.0 (identical) and 6/7 (the stemming case above) -> mean 13/14 -> 92.8571
    predictions = ["the cat sat", "the cat is running"]
    references = ["the cat sat", "the cat runs"]
    per_sample = rouge_per_sample(predictions, references, types=("rouge1",))
    np.testing.assert_allclose(per_sample["rouge1"], [1.0, 6 / 7])
    assert rouge(predictions, references, types=("rouge1",)) == {"rouge1": 92.8571}


@needs_rouge
def test_rouge_lsum_without_punkt_data_explains_how_to_get_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import nltk

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])  # an nltk data folder without punkt
    with pytest.raises(UsageError, match=r"python -m nltk.downloader punkt_tab") as info:
        rouge(["a b."], ["a b."])
    assert "\n" not in str(info.value)
    # ROUGE-1/2/L do not need the sentence split, so they work without the data
    assert rouge(["a b."], ["a b."], types=("rouge1", "rouge2", "rougeL")) == {
        "rouge1": 100.0,
        "rouge2": 100.0,
        "rougeL": 100.0,
    }


@needs_rouge
def test_rouge_rejects_bad_input() -> None:
    with pytest.raises(UsageError, match="unknown ROUGE type 'rouge3'"):
        rouge(["a"], ["a"], types=("rouge3",))
    with pytest.raises(UsageError, match="1 predictions but 2 references"):
        rouge(["a"], ["a", "b"], types=("rouge1",))
    with pytest.raises(UsageError, match="no texts"):
        rouge([], [], types=("rouge1",))


def test_prepare_texts_strips_and_puts_sentences_on_lines() -> None:
    assert prepare_texts(["  One. Two.  ", "Three."], sentence_split=sentences) == ["One.\nTwo.", "Three."]


def test_gen_len_counts_characters() -> None:
    # 3 + 4 characters (the newline counts)
    assert gen_len(["abc", "de\nf"]) == 7
    # as MLPerf counts it: after preparing, "One.  Two." (10 characters) becomes "One.\nTwo." (9)
    assert gen_len(prepare_texts([" One.  Two. "], sentence_split=sentences)) == 9


def test_tokens_per_sample_rounds_to_one_decimal() -> None:
    # 884 tokens / 3 samples = 294.666... -> 294.7
    assert tokens_per_sample([300, 289, 295]) == 294.7
    with pytest.raises(UsageError, match="no samples"):
        tokens_per_sample([])
