# ruff: noqa: RUF001  # the look-alike characters (Greek, curly quotes, dashes) are the test data
"""Recipe ``squad-bert``: tokenizer exactness, feature conversion, determinism and output layout.

The references here are written independently of ``preprocess.squad``: a plain transcription of the
BERT tokenizer that MLPerf's reference used (``BertTokenizer(vocab_file)`` of ``transformers``
2.4.0: special tokens kept whole, then BERT's BasicTokenizer, which lower-cases each whitespace word
with ``str.lower``, and greedy WordPiece) and of Google's ``convert_examples_to_features`` for
evaluation. When ``transformers`` is installed its pure-Python BERT tokenizer is a second, outside
reference.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import random
import shutil
import string
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ManifestWriter, dataset_toml

import preprocess
from preprocess import squad, squad_tokenizer
from provision import api
from provision.config import Settings

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = [
    "the", "a", "of", "and", "in", "to", "is", "was", "who", "what", "when", "where", "which", "how", "many",
    "cafe", "naive", "resume", "it", "don", "un", "aff", "19", "95", "1995", "text", "hello", "world", "river",
    "city", "north", "south", "king", "queen", "war", "year", "first", "new", "york", "paris", "france",
    "日", "本", "語", "σ", "ς", "ο", "δ", "ω", "α", "β", "–", "—",
]  # fmt: skip
SUFFIXES = [
    "##aff",
    "##able",
    "##95",
    "##s",
    "##ed",
    "##ing",
    "##er",
    "##ly",
    "##ο",
    "##δ",
    "##σ",
    "##ς",
    "##ω",
    "##α",
    "##β",
]


def write_vocab(path: Path) -> Path:
    """A small uncased vocabulary: the special tokens, single characters, their ## forms and some words."""
    tokens = [*SPECIAL, *string.ascii_lowercase, *string.digits, *string.punctuation, *WORDS, *SUFFIXES]
    tokens += ["##" + c for c in string.ascii_lowercase + string.digits]
    path.write_text("\n".join(dict.fromkeys(tokens)) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- reference tokenizer


class RefBertTokenizer:
    """transformers 2.4.0 ``BertTokenizer(vocab_file).tokenize`` and ``convert_tokens_to_ids``, written out plainly."""

    def __init__(self, vocab_file: Path, lower_case: bool = True) -> None:
        self.vocab: dict[str, int] = {}
        with open(vocab_file, encoding="utf-8") as f:
            for i, line in enumerate(f.readlines()):
                self.vocab[line.rstrip("\n")] = i
        self.lower_case = lower_case

    def tokenize(self, text: str) -> list[str]:
        # BertTokenizer(vocab_file) of 2.4.0 has no added tokens and empty init_kwargs: its tokenize()
        # neither splits special tokens out nor lower-cases; _tokenize passes them as never_split
        return [piece for word in self._basic(text) for piece in self._wordpiece(word)]

    def convert_tokens_to_ids(self, tokens: Sequence[str]) -> list[int]:
        return [self.vocab.get(t, self.vocab["[UNK]"]) for t in tokens]

    def _basic(self, text: str) -> list[str]:
        cleaned = []
        for ch in text:
            if ord(ch) == 0 or ord(ch) == 0xFFFD or _is_control(ch):
                continue
            cleaned.append(" " if _is_whitespace(ch) else ch)
        spaced = "".join(f" {ch} " if _is_cjk(ord(ch)) else ch for ch in cleaned)
        out: list[str] = []
        for token in spaced.split():
            if token in SPECIAL:  # never_split: kept as it is
                out.append(token)
                continue
            if self.lower_case:
                token = token.lower()
                token = "".join(c for c in unicodedata.normalize("NFD", token) if unicodedata.category(c) != "Mn")
            word = ""
            for ch in token:
                if _is_punctuation(ch):
                    if word:
                        out.append(word)
                    out.append(ch)
                    word = ""
                else:
                    word += ch
            if word:
                out.append(word)
        return " ".join(out).split()

    def _wordpiece(self, word: str) -> list[str]:
        if len(word) > 100:
            return ["[UNK]"]
        pieces: list[str] = []
        start = 0
        while start < len(word):
            end = len(word)
            while end > start:
                candidate = ("##" if start else "") + word[start:end]
                if candidate in self.vocab:
                    pieces.append(candidate)
                    break
                end -= 1
            else:
                return ["[UNK]"]
            start = end
        return pieces


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    ranges = [
        (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
        (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
    ]  # fmt: skip
    return any(lo <= cp <= hi for lo, hi in ranges)


TRICKY = [
    "Café naïve résumé",
    "CAFÉ NAÏVE RÉSUMÉ Ångström Å",
    "日本語のテキスト",
    'Hello, world! (1895-1943). "Quoted" [bracketed] {braces} a/b a_b a-b a.b.',
    "a\tb\nc\r\nd  e\u00a0f\u2028g\u3000h\u202fi",
    "x\x00y\x07z\u200bw\ufffdq\x85r\u00ads",
    "unassigned a\u0378b, private use a\ue000b, non-character a\uffffb",
    "[SE\x07P] [C\u200bLS]x \ufffd[CLS] x\ufffd[SEP]\x00 \x00[MASK]",
    "yIΣ\ufffdénx ΑΣ\ufffd ΑΣ\x00Β",
    "a" * 101,
    "a" * 100,
    "b" * 150 + " the",
    "It's 1995, don't! It’s “curly” ‘quotes’ — dashes – here",
    "3.14159 1,000,000 42nd 10% $5 €7 ½ x² 2019–2020",
    "ΟΔΟΣ ΟΔΟΣ. ΟΔΟΣ.Α οδοΣ ΣΑ Σ",
    "İstanbul ǅ ﬁ ß ẞ Ω",
    "[CLS] hello [SEP]x[UNK] [MASK][PAD] [cls] [Sep]",
    "unaffable Unaffable UNAFFABLE",
    "😀 ☃ emoji😀mixed",
    "e\u0301 combining e\u0301\u0301 and \u0301 alone",
    "   leading and trailing   ",
    "",
    "\t\n ",
    "한국어 텍스트 and Ελληνικά",
]

_FUZZ_ALPHABET = [
    *string.ascii_letters, *string.digits, *string.punctuation, " ", " ", " ", "\t", "\n", "\r",
    "\u00a0", "\u202f", "\u3000", "\u2028", "\x00", "\x07", "\x85", "\u200b", "\u00ad", "\ufffd",
    "é", "É", "e\u0301", "\u0301", "ñ", "ß", "İ", "Σ", "σ", "ς", "Ω", "\u212b", "ﬁ", "日", "本", "の", "テ",
    "한", "😀", "½", "²", "–", "—", "“", "”", "‘", "’", "«", "»", "¿", "§", "€",
    "[CLS]", "[SEP]", "[UNK]", "[MASK]", "[PAD]", "the ", "cafe", "unaffable", "1995",
]  # fmt: skip


def fuzz_texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(_FUZZ_ALPHABET) for _ in range(rng.randint(1, 40))) for _ in range(n)]


@pytest.fixture
def vocab_file(tmp_path: Path) -> Path:
    return write_vocab(tmp_path / "vocab.txt")


def transformers_reference(vocab_file: Path) -> Any:
    """The pure-Python BERT tokenizer of the installed transformers (4.x ``BertTokenizer``, 5.x legacy class)."""
    transformers: Any = pytest.importorskip("transformers")
    cls: Any = transformers.BertTokenizer
    with contextlib.suppress(ImportError):  # 5.x: BertTokenizer is tokenizers-backed, the Python one is "legacy"
        cls = importlib.import_module("transformers.models.bert.tokenization_bert_legacy").BertTokenizerLegacy
    tok = cls(str(vocab_file), do_lower_case=True)
    if getattr(tok, "is_fast", False):
        pytest.skip("this transformers has no pure-Python BERT tokenizer (only the tokenizers-backed one)")
    return tok


# --------------------------------------------------------------------------- tokenizer tests


def test_tokenizer_matches_reference_on_tricky_text(vocab_file: Path) -> None:
    ours = squad_tokenizer.BertWordPiece.from_file(vocab_file)
    ref = RefBertTokenizer(vocab_file)
    for text in TRICKY + fuzz_texts(400, seed=20240601):
        expected = ref.tokenize(text)
        assert ours.tokenize(text) == expected, repr(text)
        assert ours.convert_tokens_to_ids(expected) == ref.convert_tokens_to_ids(expected)


def test_tokenizer_matches_transformers_python_tokenizer(vocab_file: Path) -> None:
    hf = transformers_reference(vocab_file)
    ours = squad_tokenizer.BertWordPiece.from_file(vocab_file)
    ref = RefBertTokenizer(vocab_file)
    legacy = type(hf).__name__ == "BertTokenizerLegacy"
    compared = 0
    for text in TRICKY + fuzz_texts(600, seed=7):
        if any(special in text for special in SPECIAL):
            continue  # 4.x and 5.x split special tokens out anywhere; 2.4.0 only keeps whole words whole
        cleaned = "".join(c for c in text if not (c in "\x00\ufffd" or _is_control(c)))
        if not legacy and ("\u03a3" in text or any(special in cleaned for special in SPECIAL)):
            # 4.x lower-cases one character at a time first (before the clean-up): no final sigma,
            # and "[SE\x07P]" is no special word; 2.4.0 and 5.x's Python tokenizer lower-case words
            continue
        compared += 1
        expected = hf.tokenize(text)
        assert ours.tokenize(text) == expected, repr(text)
        assert ref.tokenize(text) == expected, repr(text)  # the in-test reference agrees too
        assert ours.convert_tokens_to_ids(expected) == hf.convert_tokens_to_ids(expected)
    assert compared > 300


def test_tokenizer_spot_values(vocab_file: Path) -> None:
    ours = squad_tokenizer.BertWordPiece.from_file(vocab_file)
    assert ours.tokenize("Café naïve résumé") == ["cafe", "naive", "resume"]
    assert ours.tokenize("日本語のテキスト") == ["日", "本", "語", "[UNK]"]  # kana are not split apart
    assert ours.tokenize("It's 1995, don't!") == ["it", "'", "s", "1995", ",", "don", "'", "t", "!"]
    assert ours.tokenize("unaffable") == ["un", "##aff", "##able"]
    assert ours.tokenize("a" * 101) == ["[UNK]"]
    assert ours.tokenize("a" * 100) == ["a"] + ["##a"] * 99
    assert ours.tokenize("x\x00y\u200bz\ufffd") == ["x", "##y", "##z"]
    assert ours.tokenize("a\tb\nc\u00a0d\u3000e") == ["a", "b", "c", "d", "e"]
    assert ours.tokenize("a\u0378b a\uffffb") == ["a", "##b", "a", "##b"]  # unassigned: category Cn, dropped
    assert ours.tokenize("[SE\x07P]") == ["[SEP]"]  # cleaned first, then a whole special word
    # str.lower's final sigma (U+03C2), as in the reference, where tokenizers alone gives U+03C3
    assert ours.tokenize("ΟΔΟΣ") == ["ο", "##δ", "##ο", "##ς"]
    # a special token stays whole only as a whole word (transformers 2.4.0's never_split)
    assert ours.tokenize("[CLS] x[SEP] [sep]\t[MASK]日[UNK]") == [
        "[CLS]", "x", "[", "s", "##e", "##p", "]", "[", "s", "##e", "##p", "]", "[MASK]", "日", "[UNK]",
    ]  # fmt: skip
    assert ours.tokenize_words(["[CLS]", "a[SEP]", "B"]) == (
        ["[CLS]", "a", "[", "s", "##e", "##p", "]", "b"],
        [0, 1, 1, 1, 1, 1, 1, 2],
    )


def test_capital_sigma_lower_cased_like_str_lower(vocab_file: Path) -> None:
    ours = squad_tokenizer.BertWordPiece.from_file(vocab_file)
    ref = RefBertTokenizer(vocab_file)
    final, medial = "\u03c2", "\u03c3"
    cases = {
        "ΟΔΟΣ": final,
        "ΟΔΟΣ.": final,  # "." is case-ignorable, then nothing cased
        "ΟΔΟΣ.Α": medial,  # ... then a cased letter
        "Σ": medial,  # nothing cased before it
        "ΑΣ\x07Β": medial,  # the control character is dropped before lower-casing
        "ΑΣ\ufffdΒ": medial,  # and so is U+FFFD (a printable character)
        "ΑΣ\u200bΒ": medial,
        "ΑΣ Β": final,
        "ΑΣ[SEP]Β": final,  # special tokens split the text first
        "ΑΣ\u0301": final,  # a combining mark is case-ignorable
        "ΑΣ日": final,
    }
    for text, sigma in cases.items():
        tokens = ours.tokenize(text)
        assert tokens == ref.tokenize(text), repr(text)
        assert sigma in "".join(tokens) and ({final, medial} - {sigma}).isdisjoint("".join(tokens)), repr(text)
    assert ours.tokenize_words(list(cases)) == ref_words(ref, list(cases))
    assert squad_tokenizer.BertWordPiece.from_file(vocab_file, lower_case=False).tokenize("ΟΔΟΣ") == ["[UNK]"]


def ref_words(ref: RefBertTokenizer, words: list[str]) -> tuple[list[str], list[int]]:
    pairs = [(tok, i) for i, word in enumerate(words) for tok in ref.tokenize(word)]
    return [t for t, _ in pairs], [i for _, i in pairs]


def test_tokenize_words_is_word_by_word(vocab_file: Path) -> None:
    ours = squad_tokenizer.BertWordPiece.from_file(vocab_file)
    ref = RefBertTokenizer(vocab_file)
    rng = random.Random(3)
    for _ in range(100):
        words = [w for w in (t.strip() for t in fuzz_texts(rng.randint(0, 12), rng.randint(0, 10**6))) if w]
        tokens, word_ids = ours.tokenize_words(words)
        expected = [(tok, i) for i, word in enumerate(words) for tok in ref.tokenize(word)]
        assert list(zip(tokens, word_ids, strict=True)) == expected


def test_vocab_read_like_the_reference(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_bytes(b"[PAD]\n[UNK]\nab \ncd\r\nab\nab \n")  # a trailing space stays; a duplicate keeps its last line
    assert squad_tokenizer.load_vocab(path) == {"[PAD]": 0, "[UNK]": 1, "ab ": 5, "cd": 3, "ab": 4}
    assert squad_tokenizer.load_vocab(path) == RefBertTokenizer(path).vocab


# --------------------------------------------------------------------------- reference feature conversion


def ref_doc_tokens(context: str) -> list[str]:
    """``read_squad_examples``' whitespace split, written as the original loop."""
    doc_tokens: list[str] = []
    prev_is_whitespace = True
    for c in context:
        if c in (" ", "\t", "\r", "\n") or ord(c) == 0x202F:
            prev_is_whitespace = True
        else:
            if prev_is_whitespace:
                doc_tokens.append(c)
            else:
                doc_tokens[-1] += c
            prev_is_whitespace = False
    return doc_tokens


def ref_convert(
    dataset: Mapping[str, Any], vocab: Path, max_seq_length: int, doc_stride: int, max_query_length: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(examples, features) of Google's evaluation path, features with padded id lists."""
    tok = RefBertTokenizer(vocab)
    examples: list[dict[str, Any]] = []
    for article in dataset["data"]:
        for paragraph in article["paragraphs"]:
            doc_tokens = ref_doc_tokens(paragraph["context"])
            for qa in paragraph["qas"]:
                examples.append(
                    {"qas_id": qa["id"], "question": qa["question"], "doc_tokens": doc_tokens, "answers": qa["answers"]}
                )
    features: list[dict[str, Any]] = []
    unique_id = 1000000000
    for example_index, example in enumerate(examples):
        query = tok.tokenize(example["question"])[:max_query_length]
        tok_to_orig: list[int] = []
        all_doc: list[str] = []
        for i, word in enumerate(example["doc_tokens"]):
            for sub in tok.tokenize(word):
                tok_to_orig.append(i)
                all_doc.append(sub)
        max_doc = max_seq_length - len(query) - 3
        spans: list[tuple[int, int]] = []
        start = 0
        while start < len(all_doc):
            length = min(len(all_doc) - start, max_doc)
            spans.append((start, length))
            if start + length == len(all_doc):
                break
            start += min(length, doc_stride)
        for span_index, (span_start, span_length) in enumerate(spans):
            tokens = ["[CLS]", *query, "[SEP]"]
            segment_ids = [0] * len(tokens)
            to_orig: dict[str, int] = {}
            max_context: dict[str, bool] = {}
            for pos in range(span_start, span_start + span_length):
                best: tuple[float, int] | None = None
                for j, (a, n) in enumerate(spans):
                    if a <= pos <= a + n - 1:
                        score = min(pos - a, a + n - 1 - pos) + 0.01 * n
                        if best is None or score > best[0]:
                            best = (score, j)
                assert best is not None
                to_orig[str(len(tokens))] = tok_to_orig[pos]
                max_context[str(len(tokens))] = best[1] == span_index
                tokens.append(all_doc[pos])
                segment_ids.append(1)
            tokens.append("[SEP]")
            segment_ids.append(1)
            input_ids = tok.convert_tokens_to_ids(tokens)
            input_mask = [1] * len(input_ids)
            pad = max_seq_length - len(input_ids)
            features.append(
                {
                    "unique_id": unique_id,
                    "example_index": example_index,
                    "doc_span_index": span_index,
                    "tokens": tokens,
                    "token_to_orig_map": to_orig,
                    "token_is_max_context": max_context,
                    "input_ids": input_ids + [0] * pad,
                    "input_mask": input_mask + [0] * pad,
                    "segment_ids": segment_ids + [0] * pad,
                }
            )
            unique_id += 1
    return examples, features


# --------------------------------------------------------------------------- synthetic SQuAD


_POOL = [
    *WORDS, "The", "King", "Paris", "France", "NORTH", "Café", "naïve", "(1895-1943).", "don't", "It's", "1995,",
    "日本語のテキスト", "a" * 120, "x\u200by", "ΟΔΟΣ", "[CLS]", "unaffable", "Résumé", "“quoted”", "Σ", "€5", "½",
]  # fmt: skip
_SEPARATORS = [" ", " ", " ", " ", "  ", "\t", "\n", "\u202f", " \u00a0 ", " \x07 ", "\r\n"]


def _text(rng: random.Random, n_words: int) -> str:
    return "".join(rng.choice(_POOL) + rng.choice(_SEPARATORS) for _ in range(n_words)).strip(" ")


def make_squad(seed: int = 11) -> dict[str, Any]:
    """Small SQuAD-format data: long contexts (several windows), short ones, an empty one, odd ids."""
    rng = random.Random(seed)
    counter = iter(range(10**6))

    def qa(context: str, question: str | None = None, qid: str | None = None) -> dict[str, Any]:
        start = rng.randrange(max(1, len(context) - 10))
        text = context[start : start + rng.randint(1, 10)]
        return {
            "id": qid or f"{next(counter):04d}{rng.getrandbits(80):020x}",
            "question": question if question is not None else _text(rng, rng.randint(2, 15)) + "?",
            "answers": [{"answer_start": start, "text": text}, {"answer_start": 0, "text": context[:3]}],
        }

    long_context = _text(rng, 600)
    medium_context = _text(rng, 60)
    paragraphs = [
        {"context": long_context, "qas": [qa(long_context) for _ in range(3)] + [qa(long_context, _text(rng, 90))]},
        {"context": medium_context, "qas": [qa(medium_context), qa(medium_context, qid="odd id/ü")]},
        {"context": "Paris.", "qas": [qa("Paris.", "Where?")]},
        {"context": " \x07 \u200b ", "qas": [qa(" \x07 \u200b ", "Nothing to tokenise?")]},
        {"context": _text(rng, 8), "qas": [qa("x", "")]},
    ]
    return {
        "version": "1.1",
        "data": [{"title": "One", "paragraphs": paragraphs[:2]}, {"title": "Two", "paragraphs": paragraphs[2:]}],
    }


def layout(tmp_path: Path, dataset: Mapping[str, Any]) -> tuple[dict[str, Path], Path]:
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "dev-v1.1.json").write_text(json.dumps(dataset), encoding="utf-8")
    model = tmp_path / "models" / "bert-onnx"
    model.mkdir(parents=True, exist_ok=True)
    write_vocab(model / "vocab.txt")
    return {"data": data, "model:bert-onnx": model}, model / "vocab.txt"


def run_recipe(
    inputs: Mapping[str, Path], out_dir: Path, params: Mapping[str, Any], order: Sequence[str] | None = None
) -> list[str]:
    recipe = squad.RECIPE
    items = recipe.items(inputs, params)
    for item in order if order is not None else items:
        recipe.process(item, inputs, out_dir, params)
    assert recipe.finalize is not None
    recipe.finalize(items, inputs, out_dir, params)
    return items


def read_outputs(out_dir: Path) -> dict[str, bytes]:
    return {p.relative_to(out_dir).as_posix(): p.read_bytes() for p in sorted(out_dir.rglob("*")) if p.is_file()}


OUTPUT_FILES = ["examples.json", "features.json", "input_ids.npy", "input_mask.npy", "segment_ids.npy"]
PARAM_SETS = [
    {},  # the defaults: 384 / 128 / 64
    {"max_seq_length": 24, "doc_stride": 4, "max_query_length": 5},
    {"max_seq_length": 64, "doc_stride": 16, "max_query_length": 10},
    {"max_seq_length": 40, "doc_stride": 64, "max_query_length": 8},  # stride longer than a window
]


# --------------------------------------------------------------------------- feature tests


@pytest.mark.parametrize("params", PARAM_SETS)
def test_features_match_reference(tmp_path: Path, params: dict[str, Any]) -> None:
    dataset = make_squad()
    inputs, vocab = layout(tmp_path, dataset)
    out = tmp_path / "out"
    items = run_recipe(inputs, out, params)
    settings = {**squad.DEFAULTS, **params}
    examples, features = ref_convert(
        dataset, vocab, settings["max_seq_length"], settings["doc_stride"], settings["max_query_length"]
    )
    assert items == [e["qas_id"] for e in examples]
    assert json.loads((out / "examples.json").read_bytes()) == examples
    got = json.loads((out / "features.json").read_bytes())
    assert len(got) == len(features) > len(examples)  # the long context needs several windows
    arrays = {name: np.load(out / f"{name}.npy") for name in ("input_ids", "input_mask", "segment_ids")}
    for i, (mine, ref) in enumerate(zip(got, features, strict=True)):
        for name in ("input_ids", "input_mask", "segment_ids"):
            assert arrays[name][i].tolist() == ref.pop(name), (i, name)
        assert mine == ref, i
    # the long context gives several windows; the empty one none, as in the reference
    example_indexes = [f["example_index"] for f in got]
    assert example_indexes.count(0) > 1
    empty = next(i for i, e in enumerate(examples) if e["question"] == "Nothing to tokenise?")
    assert examples[empty]["doc_tokens"] and empty not in example_indexes


def test_hand_computed_features(tmp_path: Path) -> None:
    q1 = {"id": "q1", "question": "Who was the king?", "answers": []}
    q2 = {"id": "q2", "question": "Where?", "answers": []}
    paragraphs = [
        {"context": "The king of France and\u202fthe queen.", "qas": [q1]},
        {"context": "Paris.", "qas": [q2]},
    ]
    dataset = {"data": [{"paragraphs": paragraphs}]}
    inputs, vocab_path = layout(tmp_path, dataset)
    vocab = RefBertTokenizer(vocab_path).vocab
    out = tmp_path / "out"
    run_recipe(inputs, out, {"max_seq_length": 12, "doc_stride": 2, "max_query_length": 3})
    features = json.loads((out / "features.json").read_bytes())
    ids = np.load(out / "input_ids.npy")
    mask = np.load(out / "input_mask.npy")
    segments = np.load(out / "segment_ids.npy")
    assert ids.shape == (3, 12)

    # query cut to 3 tokens; 8 context tokens in windows of 12 - 3 - 3 = 6, stride 2: [0, 6) and [2, 8)
    t0 = ["[CLS]", "who", "was", "the", "[SEP]", "the", "king", "of", "france", "and", "the", "[SEP]"]
    t1 = ["[CLS]", "who", "was", "the", "[SEP]", "of", "france", "and", "the", "queen", ".", "[SEP]"]
    t2 = ["[CLS]", "where", "?", "[SEP]", "paris", ".", "[SEP]"]
    assert [f["tokens"] for f in features] == [t0, t1, t2]
    assert [f["unique_id"] for f in features] == [1000000000, 1000000001, 1000000002]
    assert [(f["example_index"], f["doc_span_index"]) for f in features] == [(0, 0), (0, 1), (1, 0)]
    assert features[0]["token_to_orig_map"] == {"5": 0, "6": 1, "7": 2, "8": 3, "9": 4, "10": 5}
    assert features[1]["token_to_orig_map"] == {"5": 2, "6": 3, "7": 4, "8": 5, "9": 6, "10": 6}
    # context token 2: window 0 has min(2, 3) left/right context, window 1 min(0, 5): window 0 wins;
    # token 4: min(4, 1) vs min(2, 3): window 1 wins
    assert features[0]["token_is_max_context"] == {"5": True, "6": True, "7": True, "8": True, "9": False, "10": False}
    assert features[1]["token_is_max_context"] == {"5": False, "6": False, "7": True, "8": True, "9": True, "10": True}
    assert features[2]["token_to_orig_map"] == {"4": 0, "5": 0}
    for row, tokens in enumerate([t0, t1, t2]):
        assert ids[row].tolist() == [vocab[t] for t in tokens] + [0] * (12 - len(tokens))
        assert mask[row].tolist() == [1] * len(tokens) + [0] * (12 - len(tokens))
    assert segments.tolist() == [[0] * 5 + [1] * 7, [0] * 5 + [1] * 7, [0] * 4 + [1] * 3 + [0] * 5]


def test_doc_spans_and_max_context_rules() -> None:
    spans = squad.doc_spans(10, 4, 2)
    assert [(s.start, s.length) for s in spans] == [(0, 4), (2, 4), (4, 4), (6, 4)]
    assert [(s.start, s.length) for s in squad.doc_spans(9, 4, 3)] == [(0, 4), (3, 4), (6, 3)]
    assert [(s.start, s.length) for s in squad.doc_spans(5, 8, 2)] == [(0, 5)]
    assert squad.doc_spans(0, 8, 2) == []
    # position 3: window 0 has min(3, 0), window 1 min(1, 2)
    assert [squad.check_is_max_context(spans, i, 3) for i in range(4)] == [False, True, False, False]
    assert [squad.check_is_max_context(spans, i, 5) for i in range(4)] == [False, False, True, False]
    # a tie (same length, same smaller side) goes to the first window
    tie = squad.doc_spans(5, 4, 1)
    assert [squad.check_is_max_context(tie, i, 2) for i in range(2)] == [True, False]
    # the 0.01 x length term: on equal sides the longer window wins
    uneven = [squad.DocSpan(0, 5), squad.DocSpan(2, 4)]
    assert [squad.check_is_max_context(uneven, i, 3) for i in range(2)] == [True, False]
    uneven = [squad.DocSpan(0, 4), squad.DocSpan(1, 5)]
    assert [squad.check_is_max_context(uneven, i, 2) for i in range(2)] == [False, True]


# --------------------------------------------------------------------------- recipe behaviour


def test_items_in_file_order_and_unique(tmp_path: Path) -> None:
    dataset = make_squad()
    inputs, _ = layout(tmp_path, dataset)
    expected = [qa["id"] for a in dataset["data"] for p in a["paragraphs"] for qa in p["qas"]]
    assert squad.RECIPE.items(inputs, {}) == expected
    assert squad.RECIPE.items(inputs, {}) == expected  # and again (cached)
    dataset["data"][1]["paragraphs"][0]["qas"].append(dict(dataset["data"][0]["paragraphs"][0]["qas"][0]))
    inputs, _ = layout(tmp_path / "dup", dataset)
    with pytest.raises(ValueError, match="appears twice"):
        squad.RECIPE.items(inputs, {})


def test_finalize_layout_and_dtypes(tmp_path: Path) -> None:
    inputs, _ = layout(tmp_path, make_squad())
    out = tmp_path / "out"
    items = run_recipe(inputs, out, {})
    assert sorted(read_outputs(out)) == OUTPUT_FILES  # the parts are gone
    features = json.loads((out / "features.json").read_bytes())
    examples = json.loads((out / "examples.json").read_bytes())
    assert [e["qas_id"] for e in examples] == items
    for name in ("input_ids", "input_mask", "segment_ids"):
        array = np.load(out / f"{name}.npy", allow_pickle=False)
        assert array.dtype == np.int32 and array.shape == (len(features), 384), name
    mask = np.load(out / "input_mask.npy")
    assert [f["unique_id"] for f in features] == list(range(1000000000, 1000000000 + len(features)))
    example_indexes = [f["example_index"] for f in features]
    assert example_indexes == sorted(example_indexes) and 0 <= example_indexes[0] <= example_indexes[-1] < len(items)
    for row, feature in enumerate(features):
        assert set(feature) == {
            "unique_id", "example_index", "doc_span_index", "tokens", "token_to_orig_map", "token_is_max_context",
        }  # fmt: skip
        assert int(mask[row].sum()) == len(feature["tokens"])
        doc_tokens = examples[feature["example_index"]]["doc_tokens"]
        assert all(0 <= v < len(doc_tokens) for v in feature["token_to_orig_map"].values())
        assert feature["token_to_orig_map"].keys() == feature["token_is_max_context"].keys()


def test_any_order_and_sharding_give_identical_bytes(tmp_path: Path) -> None:
    inputs, _ = layout(tmp_path, make_squad())
    params = {"max_seq_length": 64, "doc_stride": 16, "max_query_length": 10}
    items = run_recipe(inputs, tmp_path / "a", params)
    shuffled = list(items)
    random.Random(5).shuffle(shuffled)
    run_recipe(inputs, tmp_path / "b", params, order=shuffled)
    # two "machines", each with half the items, then the parts brought together
    for shard in (shuffled[1::2], shuffled[0::2]):
        for item in shard:
            squad.RECIPE.process(item, inputs, tmp_path / "c", params)
    assert squad.RECIPE.finalize is not None
    squad.RECIPE.finalize(items, inputs, tmp_path / "c", params)
    a, b, c = (read_outputs(tmp_path / d) for d in "abc")
    assert a == b == c
    run_recipe(inputs, tmp_path / "d", params)  # and a rerun
    assert read_outputs(tmp_path / "d") == a


def test_process_is_per_item(tmp_path: Path) -> None:
    inputs, _ = layout(tmp_path, make_squad())
    items = squad.RECIPE.items(inputs, {})
    squad.RECIPE.process(items[1], inputs, tmp_path / "one", {})
    squad.RECIPE.process(items[0], inputs, tmp_path / "all", {})
    squad.RECIPE.process(items[1], inputs, tmp_path / "all", {})
    part = next((tmp_path / "one").rglob("*.json"))
    assert part.read_bytes() == (tmp_path / "all" / part.relative_to(tmp_path / "one")).read_bytes()
    with pytest.raises(KeyError, match="no question"):
        squad.RECIPE.process("missing", inputs, tmp_path / "one", {})


def test_finalize_rejects_missing_and_stale_parts(tmp_path: Path) -> None:
    inputs, _ = layout(tmp_path, make_squad())
    items = squad.RECIPE.items(inputs, {})
    assert squad.RECIPE.finalize is not None
    for item in items[:-1]:
        squad.RECIPE.process(item, inputs, tmp_path / "out", {})
    with pytest.raises(FileNotFoundError, match="not processed"):
        squad.RECIPE.finalize(items, inputs, tmp_path / "out", {})
    squad.RECIPE.process(items[-1], inputs, tmp_path / "out", {"doc_stride": 100})
    with pytest.raises(ValueError, match="other inputs or parameters"):
        squad.RECIPE.finalize(items, inputs, tmp_path / "out", {})


def test_parameters_are_checked(tmp_path: Path) -> None:
    inputs, _ = layout(tmp_path, make_squad())
    for bad in ({"max_seq_length": 10, "max_query_length": 7}, {"doc_stride": 0}, {"lower_case": "yes"}):
        with pytest.raises(ValueError):
            squad.RECIPE.items(inputs, bad)
    # the manifest's accuracy-step keys are accepted and ignored
    squad.RECIPE.items(inputs, {"recipe": "squad-bert", "cache": "eval_features.pickle", "n_best_size": 20})


def test_vocabulary_resolution(tmp_path: Path) -> None:
    dataset = make_squad()
    inputs, vocab = layout(tmp_path, dataset)
    other = tmp_path / "models" / "bert-tf"
    other.mkdir()
    (other / "vocab.txt").write_bytes(vocab.read_bytes())
    empty = tmp_path / "models" / "bert-pytorch"  # a model without the file is skipped
    empty.mkdir()
    both = {**inputs, "model:bert-tf": other, "model:bert-pytorch": empty}
    reference = read_outputs_after(tmp_path / "one", inputs, {})
    assert read_outputs_after(tmp_path / "two", both, {}) == reference

    (other / "vocab.txt").write_text("[UNK]\nthe\n", encoding="utf-8")
    with pytest.raises(ValueError, match="vocab_model"):
        squad.RECIPE.items(both, {})
    assert read_outputs_after(tmp_path / "three", both, {"vocab_model": "bert-onnx"}) == reference
    assert read_outputs_after(tmp_path / "four", {"data": inputs["data"]}, {"vocab": str(vocab)}) == reference
    assert read_outputs_after(tmp_path / "five", {"data": inputs["data"], "vocab": vocab}, {}) == reference
    # as the framework gives them: the run's model as "model" (and "model:<name>"), which wins
    framework = {**both, "model": other.parent / "bert-onnx"}
    assert read_outputs_after(tmp_path / "six", framework, {}) == reference
    framework = {**both, "model": other}
    assert read_outputs_after(tmp_path / "seven", framework, {}) != reference  # the other vocabulary
    with pytest.raises(KeyError, match="not among the inputs"):
        squad.RECIPE.items(both, {"vocab_model": "bert-missing"})
    with pytest.raises(FileNotFoundError, match="no model input"):
        squad.RECIPE.items({"data": inputs["data"]}, {})


def read_outputs_after(out: Path, inputs: Mapping[str, Path], params: Mapping[str, Any]) -> dict[str, bytes]:
    run_recipe(inputs, out, params)
    return read_outputs(out)


def test_registered() -> None:
    assert "squad" in preprocess.RECIPE_MODULES  # so load_all() registers it without this test's import
    recipe = preprocess.get("squad-bert")
    assert recipe is squad.RECIPE
    assert set(recipe.uses) == {"data", "model"}
    assert "squad-bert" in preprocess.names()
    libraries = recipe.libraries()
    assert set(libraries) == {"tokenizers", "numpy"} and all(libraries.values())
    assert recipe.defaults["max_seq_length"] == 384 and recipe.defaults["doc_stride"] == 128


# --------------------------------------------------------------------------- through the framework


def test_provision_preprocess_end_to_end(tmp_path: Path, write_manifest: ManifestWriter, settings: Settings) -> None:
    """Fetched through provision from plain paths, run with --jobs and --shard: the same bytes, as the reference."""
    dataset = make_squad(seed=3)
    src = tmp_path / "src"
    src.mkdir()
    dev = src / "dev-v1.1.json"
    dev.write_text(json.dumps(dataset), encoding="utf-8")
    vocab = write_vocab(src / "vocab.txt")
    write_manifest(dataset_toml("squad-tiny", [("dev-v1.1.json", [str(dev)], dev.read_bytes(), None)]), name="data")
    model_toml = dataset_toml("bert-tiny", [("vocab.txt", [str(vocab)], vocab.read_bytes(), None)], kind="model")
    write_manifest(model_toml, name="model")
    bench = [
        "schema = 1",
        "[[benchmark]]",
        'name = "squadbench"',
        'description = "tiny SQuAD"',
        'dataset = "squad-tiny"',
        'labels = "squad-tiny/dev-v1.1.json"',
        'models = ["bert-tiny"]',
        "[benchmark.preprocess]",
        'recipe = "squad-bert"',
        'vocab = "vocab.txt"',
        "lower_case = true",
        "max_seq_length = 64",
        "doc_stride = 16",
        "max_query_length = 10",
        'cache = "eval_features.pickle"',
        "n_best_size = 20",
    ]
    write_manifest("\n".join(bench) + "\n", name="bench")
    assert api.fetch(["squadbench"], settings).ok

    one = api.preprocess("squadbench", settings, jobs=1)
    assert one.state == "computed" and one.items == len(squad.RECIPE.items({"data": dev.parent}, {"vocab": str(vocab)}))
    reference = {k: v for k, v in read_outputs(one.path).items() if k in OUTPUT_FILES}
    assert sorted(reference) == OUTPUT_FILES
    shutil.rmtree(one.path)
    two = api.preprocess("squadbench", settings, jobs=2)
    assert {k: v for k, v in read_outputs(two.path).items() if k in OUTPUT_FILES} == reference
    shutil.rmtree(two.path)
    assert api.preprocess("squadbench", settings, shard=(2, 2), jobs=1).state == "shard"
    merged = api.preprocess("squadbench", settings, shard=(1, 2), jobs=2)
    assert merged.state == "merged" and merged.digest == one.digest
    assert {k: v for k, v in read_outputs(merged.path).items() if k in OUTPUT_FILES} == reference

    _, features = ref_convert(dataset, vocab, 64, 16, 10)
    ids = np.load(merged.path / "input_ids.npy")
    assert ids.tolist() == [f["input_ids"] for f in features]
    assert [f["tokens"] for f in json.loads(reference["features.json"])] == [f["tokens"] for f in features]


# --------------------------------------------------------------------------- the real dev set, on request


@pytest.mark.slow
def test_real_squad_dev_set(tmp_path: Path) -> None:
    """Set SQUAD_DEV_JSON (dev-v1.1.json) and BERT_VOCAB_TXT (the model's vocab.txt) to run (a few minutes)."""
    dev, vocab = os.environ.get("SQUAD_DEV_JSON"), os.environ.get("BERT_VOCAB_TXT")
    if not (dev and vocab):
        pytest.skip("SQUAD_DEV_JSON and BERT_VOCAB_TXT are not set")
    inputs = {"data": Path(dev).parent, "vocab": Path(vocab)}
    params = {"dataset_file": Path(dev).name}
    out = tmp_path / "out"
    run_recipe(inputs, out, params)
    dataset = json.loads(Path(dev).read_text(encoding="utf-8"))
    _, features = ref_convert(dataset, Path(vocab), 384, 128, 64)
    got = json.loads((out / "features.json").read_bytes())
    ids = np.load(out / "input_ids.npy")
    assert len(got) == len(features)
    if Path(dev).stat().st_size == 4854279:
        assert len(got) == 10833
    for i, (mine, ref) in enumerate(zip(got, features, strict=True)):
        assert ids[i].tolist() == ref.pop("input_ids"), i
        del ref["input_mask"], ref["segment_ids"]
        assert mine == ref, i
