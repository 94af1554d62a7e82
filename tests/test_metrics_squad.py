"""metrics.squad: official SQuAD v1.1 scoring and BERT's logits-to-answer post-processing.

The features are written by hand in the layout of the ``squad-bert`` recipe's ``features.json``:
``[CLS] question [SEP] context [SEP]``, ``token_to_orig_map`` / ``token_is_max_context`` keyed by
the token position as a string.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from provision.errors import UsageError
from provision.validation.metrics.squad import (
    NO_ANSWER,
    answer_exact_match,
    answer_f1,
    basic_tokenize,
    final_text,
    normalize_answer,
    squad_predictions,
    squad_scores,
)

# --- official scoring -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("The Cat!", "cat"),  # lower case, punctuation and the article go
        ("an apple, a day", "apple day"),
        ("  Theory   of  everything ", "theory of everything"),  # "the" inside a word stays
        ("A.B.C.", "abc"),  # punctuation is removed before articles: "abc" is no article
        ("the", ""),
        ("Denver Broncos (1990)", "denver broncos 1990"),
    ],
)
def test_normalize_answer(text: str, normal: str) -> None:
    assert normalize_answer(text) == normal


def test_exact_match_after_normalisation() -> None:
    assert answer_exact_match("The Denver Broncos.", "denver broncos")
    assert not answer_exact_match("Denver", "Denver Broncos")


def test_token_f1_by_hand() -> None:
    # "the cat sat" -> [cat, sat]; "a cat sat down" -> [cat, sat, down]: 2 common tokens,
    # precision 2/2, recall 2/3 -> F1 = 2 * 1 * 2/3 / (1 + 2/3) = 0.8
    assert answer_f1("the cat sat", "a cat sat down") == pytest.approx(0.8)
    # tokens count with multiplicity: [cat, cat] vs [cat] share one -> P 1/2, R 1 -> F1 2/3
    assert answer_f1("cat cat", "cat") == pytest.approx(2 / 3)
    assert answer_f1("dog", "cat") == 0.0
    assert answer_f1("the", "a") == 0.0  # both normalise to nothing


def test_squad_scores_average_over_all_questions() -> None:
    examples = [
        {"qas_id": "q1", "answers": [{"text": "Denver Broncos"}]},
        {"qas_id": "q2", "answers": [{"text": "a cat sat down"}, {"text": "dog"}]},
        {"qas_id": "q3", "answers": [{"text": "1990"}]},
    ]
    # q1 exact (EM 1, F1 1); q2 best over its answers F1 0.8, EM 0; q3 unanswered scores 0
    scores = squad_scores(examples, {"q1": "the Denver Broncos", "q2": "the cat sat"})
    assert scores.exact_match == pytest.approx(100 * 1 / 3)
    assert scores.f1 == pytest.approx(100 * (1 + 0.8) / 3)  # 60.0
    np.testing.assert_allclose(scores.per_question_f1, [100, 80, 0])
    np.testing.assert_allclose(scores.per_question_em, [100, 0, 0])
    assert np.mean(scores.per_question_f1) == pytest.approx(scores.f1)


def test_squad_scores_rejects_examples_without_answers() -> None:
    with pytest.raises(UsageError, match="no reference answer"):
        squad_scores([{"qas_id": "q", "answers": []}], {"q": "x"})
    with pytest.raises(UsageError, match="no examples"):
        squad_scores([], {})


# --- basic tokenizer and final text ---------------------------------------------------------


def test_basic_tokenize() -> None:
    assert basic_tokenize("Héllo, World!") == ["hello", ",", "world", "!"]
    assert basic_tokenize("Héllo", lower_case=False) == ["Héllo"]
    assert basic_tokenize("a [SEP] b") == ["a", "[SEP]", "b"]  # a special token stays whole
    assert basic_tokenize("日本") == ["日", "本"]
    assert basic_tokenize("x\x00y\tz") == ["xy", "z"]


@pytest.mark.parametrize(
    ("pred", "orig", "final"),
    [
        ("denver broncos", "Denver Broncos'", "Denver Broncos"),  # the trailing quote is cut off
        ("steve smith", "Steve Smith's", "Steve Smith"),
        ("( 1990 )", "(1990).", "(1990)"),  # spaces between punctuation disappear, the full stop goes
        ("1990", "(1990).", "1990"),
        ("cafe", "Café", "Café"),  # accents and case come back
        ("[UNK]", "Snow☃man", "Snow☃man"),  # not found: the original text as it is
    ],
)
def test_final_text(pred: str, orig: str, final: str) -> None:
    assert final_text(pred, orig) == final


# --- logits -> answers ------------------------------------------------------------------------


def make_feature(
    example_index: int,
    question: list[str],
    context: list[str],
    doc_index: list[int],
    max_context: list[bool] | None = None,
    span: int = 0,
) -> dict[str, Any]:
    """A feature as features.json holds it; ``doc_index[i]`` is the doc token of context token i."""
    tokens = ["[CLS]", *question, "[SEP]", *context, "[SEP]"]
    first = len(question) + 2
    flags = max_context if max_context is not None else [True] * len(context)
    return {
        "unique_id": 1000000000 + span,
        "example_index": example_index,
        "doc_span_index": span,
        "tokens": tokens,
        "token_to_orig_map": {str(first + i): d for i, d in enumerate(doc_index)},
        "token_is_max_context": {str(first + i): f for i, f in enumerate(flags)},
    }


def logits(length: int, peaks: dict[int, float], base: float = -5.0) -> np.ndarray:
    values = np.full(length, base, dtype=np.float32)
    for position, value in peaks.items():
        values[position] = value
    return values


BRONCOS_DOC = ["The", "Denver", "Broncos'", "defense", "won", "in", "(1990)."]
# position:  5      6         7         8      9    10         11    12    13  14   15    16  17
BRONCOS_CONTEXT = ["the", "denver", "bronco", "##s", "'", "defense", "won", "in", "(", "1990", ")", "."]
BRONCOS_MAP = [0, 1, 2, 2, 2, 3, 4, 5, 6, 6, 6, 6]
QUESTION = ["who", "won", "?"]  # positions 1..3


def broncos(start: dict[int, float], end: dict[int, float]) -> str:
    example = {"qas_id": "q0", "doc_tokens": BRONCOS_DOC, "answers": [{"text": "Denver Broncos"}]}
    feature = make_feature(0, QUESTION, BRONCOS_CONTEXT, BRONCOS_MAP)
    width = len(feature["tokens"]) + 2  # logits run past the tokens, as up to max_seq_length
    answers = squad_predictions([example], [feature], [logits(width, start)], [logits(width, end)])
    return answers["q0"]


def test_wordpieces_are_joined_and_projected_on_the_original() -> None:
    # start "denver" (6), end "##s" (8): "denver bronco ##s" -> "denver broncos"; the words are
    # "Denver Broncos'" -> projected back: "Denver Broncos". The question's "won" (2) has a higher
    # start logit but lies outside the context, so it is skipped.
    assert broncos({2: 9.0, 6: 5.0}, {8: 5.0}) == "Denver Broncos"


def test_parenthesised_year_keeps_its_brackets() -> None:
    # "( 1990 )" over the word "(1990)." -> "(1990)"
    assert broncos({13: 4.0}, {15: 4.0}) == "(1990)"


def test_end_before_start_and_positions_past_the_tokens_are_skipped() -> None:
    # start "defense" (10). The best end, "denver" (6), comes before it; the second best, 18, lies
    # past the 18 tokens (logits run to max_seq_length). Next is "won" (11): 3 + 2 = 5 beats every
    # other pair (at most 3 - 5 or -5 + 2) -> "defense won"
    assert broncos({10: 3.0}, {6: 8.0, 18: 7.0, 11: 2.0}) == "defense won"


def test_span_longer_than_max_answer_length_is_rejected() -> None:
    words = [f"w{i}" for i in range(40)]
    example = {"qas_id": "long", "doc_tokens": words}
    feature = make_feature(0, ["q"], words, list(range(40)))  # context tokens at positions 3..42
    start = logits(45, {3: 10.0})
    end = logits(45, {42: 10.0, 20: 8.0})
    # 3..42 is 40 tokens > 30: rejected; 3..20 (18 tokens) is the best remaining pair
    answer = squad_predictions([example], [feature], [start], [end])["long"]
    assert answer == " ".join(words[:18])
    longer = squad_predictions([example], [feature], [start], [end], max_answer_length=40)["long"]
    assert longer == " ".join(words)


def test_start_outside_its_max_context_window_is_rejected() -> None:
    doc = ["Paris", "is", "in", "France"]
    example = {"qas_id": "fr", "doc_tokens": doc}
    # window 0 holds all four words but is the max-context window only of the first two;
    # window 1 holds "in France" as their max-context window
    first = make_feature(0, ["q"], ["paris", "is", "in", "france"], [0, 1, 2, 3], [True, True, False, False])
    second = make_feature(0, ["q"], ["in", "france"], [2, 3], [True, True], span=1)
    # window 0: "in France" (start 5) sums 10 + 10 but its start is not max context; the best valid
    # pair there is "Paris is in France" (start 3, end 6), 3 + 10 = 13
    # window 1: "France" (position 4) sums 7 + 7 = 14 -> the answer
    starts = [logits(8, {5: 10.0, 3: 3.0}), logits(8, {4: 7.0})]
    ends = [logits(8, {6: 10.0, 3: 3.0}), logits(8, {4: 7.0})]
    assert squad_predictions([example], [first, second], starts, ends)["fr"] == "France"
    # with every flag set, window 0's "in France" (sum 20) wins
    first_all = make_feature(0, ["q"], ["paris", "is", "in", "france"], [0, 1, 2, 3])
    assert squad_predictions([example], [first_all, second], starts, ends)["fr"] == "in France"


def test_no_valid_span_gives_the_reference_placeholder() -> None:
    # n_best_size 1: the only start candidate is in the question -> no valid pair at all
    assert NO_ANSWER == "empty"
    example = {"qas_id": "q0", "doc_tokens": BRONCOS_DOC}
    feature = make_feature(0, QUESTION, BRONCOS_CONTEXT, BRONCOS_MAP)
    start = logits(18, {2: 9.0, 6: 5.0})
    end = logits(18, {8: 5.0})
    assert squad_predictions([example], [feature], [start], [end], n_best_size=1) == {"q0": NO_ANSWER}
    assert squad_predictions([example], [feature], [start], [end], n_best_size=2) == {"q0": "Denver Broncos"}
    # a question without features gets the placeholder too
    assert squad_predictions([example], [], np.zeros((0, 18)), np.zeros((0, 18))) == {"q0": NO_ANSWER}


def test_unknown_word_falls_back_to_the_original_text() -> None:
    example = {"qas_id": "u", "doc_tokens": ["Snow☃man", "melted"]}
    feature = make_feature(0, ["q"], ["[UNK]", "melted"], [0, 1])
    start, end = logits(6, {3: 1.0}), logits(6, {3: 1.0})
    assert squad_predictions([example], [feature], [start], [end]) == {"u": "Snow☃man"}


def test_integer_keys_and_scoring_end_to_end() -> None:
    example = {"qas_id": "q0", "doc_tokens": BRONCOS_DOC, "answers": [{"text": "Denver Broncos"}]}
    feature = make_feature(0, QUESTION, BRONCOS_CONTEXT, BRONCOS_MAP)
    feature["token_to_orig_map"] = {int(k): v for k, v in feature["token_to_orig_map"].items()}
    feature["token_is_max_context"] = {int(k): v for k, v in feature["token_is_max_context"].items()}
    answers = squad_predictions([example], [feature], [logits(18, {6: 5.0})], [logits(18, {8: 5.0})])
    assert squad_scores([example], answers).f1 == 100.0


def test_logits_must_match_the_features() -> None:
    feature = make_feature(0, QUESTION, BRONCOS_CONTEXT, BRONCOS_MAP)
    with pytest.raises(UsageError, match=r"start_logits must have shape \(n_features=1"):
        squad_predictions(
            [{"qas_id": "q0", "doc_tokens": BRONCOS_DOC}], [feature], np.zeros((2, 18)), np.zeros((1, 18))
        )
