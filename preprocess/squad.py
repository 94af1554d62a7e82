"""SQuAD v1.1 for MLPerf BERT: recipe ``squad-bert``.

Reproduces the MLPerf Inference reference (``language/bert/squad_QSL.py``: Google's
``read_squad_examples`` and ``convert_examples_to_features`` for evaluation, with the Hugging Face
``BertTokenizer(vocab.txt)`` of ``transformers`` 2.4.0) using the ``tokenizers`` library:

- reading: every question of the dev set is one example, in file order; its context is split on
  ``" "``, ``\\t``, ``\\r``, ``\\n`` and U+202F into ``doc_tokens``;
- tokenizer: lower-cased (``lower_case``) BERT WordPiece from the model's ``vocab.txt`` (clean text,
  CJK characters split, accents stripped when lower-casing, punctuation split, words over 100
  characters become ``[UNK]``; a special token ``[PAD] [UNK] [CLS] [SEP] [MASK]`` written in the
  text stays whole only as a whole whitespace-separated word). The vocabulary is read as the
  reference reads it (one token a line, only the line feed stripped, a later duplicate wins).
  Python drops control characters by its own ``unicodedata`` first, and bridges two rare cases (see
  :class:`BertWordPiece`): a word-final capital sigma, which ``str.lower`` makes U+03C2 but
  ``tokenizers`` U+03C3, and special-token strings in the text.
  Later ``transformers`` differ from the pinned 2.4.0 on exactly these: 4.x lower-cases character by
  character first (no final sigma), 4.x and 5.x split special tokens out anywhere in the text;
- features: the question is cut to ``max_query_length`` WordPieces; the context WordPieces (each
  whitespace word tokenised on its own) are cut into windows of at most ``max_seq_length - 3 -
  len(query)`` tokens that start every ``doc_stride`` tokens; each window gives ``[CLS] query [SEP]
  window [SEP]``, segment ids 0 then 1, mask 1 on the tokens, zeros up to ``max_seq_length``;
  ``token_is_max_context`` marks, for each context token, the window where its smaller side
  context (plus 0.01 x window length) is largest, the first one on a tie.

Parameters (``defaults``; the manifest's other keys, e.g. the accuracy step's, are ignored):

- ``dataset_file`` (``"dev-v1.1.json"``): the SQuAD JSON, relative to ``inputs["data"]``;
- ``vocab`` (``"vocab.txt"``): the vocabulary's file name in a model's folder, or an absolute path;
- ``vocab_model`` (``""``): which ``inputs["model:<name>"]`` folder holds it; empty means the run's
  model, ``inputs["model"]`` (the recipe ``uses`` data and model), or, without one, any model input
  holding the file (they must hold the same bytes). An ``inputs["vocab"]`` path wins over all;
- ``lower_case`` (``true``), ``max_seq_length`` (384), ``doc_stride`` (128), ``max_query_length`` (64).

Items are the question ids (``qas`` ids) in file order. ``process`` writes ``parts/<id>.json`` with
the example and its features; ``finalize`` writes, in item order (so the same for any sharding):

- ``input_ids.npy``, ``input_mask.npy``, ``segment_ids.npy``: int32, shape ``(n_features,
  max_seq_length)``, row ``i`` is feature ``i`` (the QSL sample index);
- ``features.json``: a list, one object per feature: ``unique_id`` (1000000000 + feature index),
  ``example_index`` (index into ``examples.json``), ``doc_span_index``, ``tokens``,
  ``token_to_orig_map`` and ``token_is_max_context`` (objects keyed by the token position as a
  string, as JSON requires; values: index into the example's ``doc_tokens``, and a boolean);
- ``examples.json``: a list, one object per question: ``qas_id``, ``question``, ``doc_tokens``,
  ``answers`` (the dev set's ``answers`` as they are);

then removes the parts. Those are what MLPerf's ``accuracy-squad.py`` reads from its feature cache.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import tokenizers
from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordPiece

from preprocess import Inputs, Params, Recipe, register

__all__ = [
    "SPECIAL_TOKENS",
    "BertWordPiece",
    "DocSpan",
    "Example",
    "Feature",
    "check_is_max_context",
    "convert_example",
    "doc_spans",
    "load_examples",
    "load_vocab",
    "split_doc_tokens",
]

NAME = "squad-bert"
VERSION = "1"
FIRST_UNIQUE_ID = 1000000000

#: The special tokens of Hugging Face's BertTokenizer (its ``never_split`` words).
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_UNK, _CLS, _SEP = "[UNK]", "[CLS]", "[SEP]"
_MAX_INPUT_CHARS_PER_WORD = 100

DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "dataset_file": "dev-v1.1.json",
        "vocab": "vocab.txt",
        "vocab_model": "",
        "lower_case": True,
        "max_seq_length": 384,
        "doc_stride": 128,
        "max_query_length": 64,
    }
)

_PARTS = "parts"
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_SQUAD_WHITESPACE = frozenset(" \t\r\n\u202f")


# --------------------------------------------------------------------------- tokenizer


def load_vocab(path: Path) -> dict[str, int]:
    """The vocabulary as the reference reads it: line ``i`` is token ``i`` (a duplicate keeps its last line)."""
    vocab: dict[str, int] = {}
    with open(path, encoding="utf-8") as reader:
        for index, line in enumerate(reader.readlines()):
            vocab[line.rstrip("\n")] = index
    return vocab


class BertWordPiece:
    """The reference's ``BertTokenizer(vocab_file)`` (transformers 2.4.0) on the ``tokenizers`` library.

    ``tokenizers`` does the work (clean-up, CJK split, lower case and accents, punctuation split,
    WordPiece). Python first drops the control characters of a text that has any (by its own
    ``unicodedata``, as the reference), and handles two rare cases, to give the reference's tokens:

    - a capital sigma (U+03A3): ``str.lower`` makes it final (U+03C2) at the end of a word, while
      ``tokenizers`` always lower-cases it to U+03C3, so those sigmas are replaced beforehand;
    - a special token (``[CLS]``...) written in the text: the reference keeps it whole, not lower-cased,
      only where it is a whole whitespace-separated word (as ``never_split``), and tokenises it
      like any other text elsewhere (``x[SEP]`` gives ``x [ sep ]``): such texts are split into
      words in Python, as the reference does, and each word is tokenised on its own.
    """

    def __init__(self, vocab: dict[str, int], lower_case: bool = True) -> None:
        if _UNK not in vocab:
            raise ValueError(f"the vocabulary has no {_UNK} token")
        self.vocab = dict(vocab)
        self.lower_case = lower_case
        self._unk_id = self.vocab[_UNK]
        self._model = WordPiece(self.vocab, unk_token=_UNK, max_input_chars_per_word=_MAX_INPUT_CHARS_PER_WORD)
        tokenizer = Tokenizer(self._model)
        # strip_accents=None: stripped exactly when lower-casing, as BERT's BasicTokenizer does.
        tokenizer.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lower_case
        )
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        self._tokenizer = tokenizer

    @classmethod
    def from_file(cls, path: Path, lower_case: bool = True) -> BertWordPiece:
        return cls(load_vocab(path), lower_case)

    def tokenize(self, text: str) -> list[str]:
        """WordPiece tokens of ``text`` (``BertTokenizer.tokenize``)."""
        text = _clean(text)
        if _has_special(text):
            return self._tokenize_by_words(text)
        return self._encode(text)

    def tokenize_words(self, words: list[str]) -> tuple[list[str], list[int]]:
        """Tokens of each word tokenised on its own, concatenated, and the word index of each token."""
        cleaned = [_clean(word) for word in words]
        if any(_has_special(word) for word in cleaned):
            tokens: list[str] = []
            word_ids: list[int] = []
            for index, word in enumerate(cleaned):
                pieces = self.tokenize(word)
                tokens += pieces
                word_ids += [index] * len(pieces)
            return tokens, word_ids
        if not words:
            return [], []
        prepared = [self._sigmas(word) for word in cleaned]
        encoding = self._tokenizer.encode(prepared, is_pretokenized=True, add_special_tokens=False)
        word_ids = []
        for word_id in encoding.word_ids:
            if word_id is None:  # pragma: no cover - every token of a pre-tokenised input has a word
                raise AssertionError("token without a word")
            word_ids.append(word_id)
        return list(encoding.tokens), word_ids

    def convert_tokens_to_ids(self, tokens: list[str]) -> list[int]:
        """Vocabulary ids, ``[UNK]``'s for a token not in it (``BertTokenizer.convert_tokens_to_ids``)."""
        return [self.vocab.get(token, self._unk_id) for token in tokens]

    def _sigmas(self, text: str) -> str:
        return _final_sigmas(text) if self.lower_case and _CAPITAL_SIGMA in text else text

    def _encode(self, text: str) -> list[str]:
        return list(self._tokenizer.encode(self._sigmas(text), add_special_tokens=False).tokens)

    def _tokenize_by_words(self, text: str) -> list[str]:
        # the reference's BasicTokenizer up to its whitespace split: clean-up, spaces around CJK
        # characters, str.split; a word equal to a special token is then WordPiece'd as it is
        spaced = "".join(f" {c} " if _is_cjk(c) else " " if _is_whitespace(c) else c for c in text)
        tokens: list[str] = []
        for word in spaced.split():
            if word in SPECIAL_TOKENS:
                tokens += [token.value for token in self._model.tokenize(word)]
            else:
                tokens += self._encode(word)
        return tokens


_CAPITAL_SIGMA = "\u03a3"
_FINAL_SIGMA = "\u03c2"
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def _has_special(text: str) -> bool:
    return "[" in text and any(token in text for token in SPECIAL_TOKENS)


def _is_removed(char: str) -> bool:
    """BERT's clean-up drops NUL, U+FFFD and control characters (category C, but tab, LF and CR)."""
    return char in "\x00\ufffd" or (char not in "\t\n\r" and unicodedata.category(char)[0] == "C")


def _is_whitespace(char: str) -> bool:
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def _is_cjk(char: str) -> bool:
    cp = ord(char)
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def _clean(text: str) -> str:
    """``text`` without the characters BERT's clean-up drops, judged by Python's ``unicodedata`` (as
    the reference does; ``tokenizers``' own tables do not count unassigned code points as control)."""
    if text.isprintable() and "\ufffd" not in text:  # no category C character (nor whitespace but the space)
        return text
    return "".join(char for char in text if not _is_removed(char))


def _final_sigmas(text: str) -> str:
    """``text`` (cleaned) with each capital sigma that the reference's ``str.lower`` makes final replaced by U+03C2.

    The reference lower-cases each whitespace word; whitespace and CJK characters are neither cased
    nor case-ignorable, so lower-casing the whole text gives the same. Every other character
    lower-cases without context, so it is left to ``tokenizers``.
    """
    lowered = text.lower()
    out = list(text)
    offset = 0  # where text[i]'s lower case starts in ``lowered``
    for i, char in enumerate(text):
        if char == _CAPITAL_SIGMA:
            if lowered[offset] == _FINAL_SIGMA:
                out[i] = _FINAL_SIGMA
            offset += 1
        else:
            offset += len(char.lower())
    return "".join(out)


# --------------------------------------------------------------------------- examples


@dataclass(frozen=True)
class Example:
    """One question (``read_squad_examples`` for evaluation)."""

    qas_id: str
    question: str
    doc_tokens: tuple[str, ...]
    answers: tuple[Any, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "qas_id": self.qas_id,
            "question": self.question,
            "doc_tokens": list(self.doc_tokens),
            "answers": list(self.answers),
        }


def split_doc_tokens(context: str) -> tuple[str, ...]:
    """The context split on SQuAD's whitespace (space, tab, CR, LF, U+202F)."""
    tokens: list[str] = []
    current: list[str] = []
    for char in context:
        if char in _SQUAD_WHITESPACE:
            if current:
                tokens.append("".join(current))
                current = []
        else:
            current.append(char)
    if current:
        tokens.append("".join(current))
    return tuple(tokens)


def _iter_examples(dataset: Any) -> Iterator[Example]:
    try:
        articles = dataset["data"]
    except (KeyError, TypeError):
        raise ValueError("not a SQuAD file: no top-level 'data' list") from None
    for article in articles:
        for paragraph in article["paragraphs"]:
            doc_tokens = split_doc_tokens(paragraph["context"])
            for qa in paragraph["qas"]:
                qas_id = qa["id"]
                if not isinstance(qas_id, str):
                    raise ValueError(f"SQuAD question id {qas_id!r} is not a string")
                yield Example(qas_id, qa["question"], doc_tokens, tuple(qa.get("answers", ())))


def load_examples(path: Path) -> list[Example]:
    """Every question of the SQuAD file ``path``, in file order (ids must be unique)."""
    return list(_load_examples(str(path), *_stamp(path)))


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


@functools.lru_cache(maxsize=2)
def _load_examples(path: str, size: int, mtime_ns: int) -> tuple[Example, ...]:
    with open(path, encoding="utf-8") as f:
        dataset = json.load(f)
    examples = tuple(_iter_examples(dataset))
    seen: set[str] = set()
    for example in examples:
        if example.qas_id in seen:
            raise ValueError(f"{path}: question id {example.qas_id!r} appears twice")
        seen.add(example.qas_id)
    return examples


@functools.lru_cache(maxsize=2)
def _example_index(path: str, size: int, mtime_ns: int) -> dict[str, Example]:
    return {example.qas_id: example for example in _load_examples(path, size, mtime_ns)}


# --------------------------------------------------------------------------- features


@dataclass(frozen=True)
class DocSpan:
    start: int
    length: int


@dataclass(frozen=True)
class Feature:
    """One window of one example; ``input_ids``/``segment_ids`` cover the tokens, unpadded."""

    doc_span_index: int
    tokens: list[str]
    token_to_orig_map: dict[int, int]
    token_is_max_context: dict[int, bool]
    input_ids: list[int]
    segment_ids: list[int]

    def to_json(self) -> dict[str, Any]:
        return {
            "doc_span_index": self.doc_span_index,
            "tokens": self.tokens,
            "token_to_orig_map": {str(k): v for k, v in self.token_to_orig_map.items()},
            "token_is_max_context": {str(k): v for k, v in self.token_is_max_context.items()},
            "input_ids": self.input_ids,
            "segment_ids": self.segment_ids,
        }


def doc_spans(n_tokens: int, max_tokens_for_doc: int, doc_stride: int) -> list[DocSpan]:
    """Windows of at most ``max_tokens_for_doc`` tokens, ``doc_stride`` apart, the last one ending the text."""
    if max_tokens_for_doc < 1 or doc_stride < 1:
        raise ValueError("windows need max_tokens_for_doc >= 1 and doc_stride >= 1")
    spans: list[DocSpan] = []
    start = 0
    while start < n_tokens:
        length = min(n_tokens - start, max_tokens_for_doc)
        spans.append(DocSpan(start, length))
        if start + length == n_tokens:
            break
        start += min(length, doc_stride)
    return spans


def check_is_max_context(spans: list[DocSpan], span_index: int, position: int) -> bool:
    """Whether window ``span_index`` gives token ``position`` its most context (the reference's rule)."""
    best_score: float | None = None
    best_index: int | None = None
    for index, span in enumerate(spans):
        end = span.start + span.length - 1
        if position < span.start or position > end:
            continue
        score = min(position - span.start, end - position) + 0.01 * span.length
        if best_score is None or score > best_score:
            best_score = score
            best_index = index
    return span_index == best_index


def convert_example(
    example: Example,
    tokenizer: BertWordPiece,
    max_seq_length: int,
    doc_stride: int,
    max_query_length: int,
) -> list[Feature]:
    """The example's features (``convert_examples_to_features`` for evaluation); none for an empty context."""
    query_tokens = tokenizer.tokenize(example.question)[:max_query_length]
    all_doc_tokens, tok_to_orig_index = tokenizer.tokenize_words(list(example.doc_tokens))
    spans = doc_spans(len(all_doc_tokens), max_seq_length - len(query_tokens) - 3, doc_stride)
    features: list[Feature] = []
    for span_index, span in enumerate(spans):
        tokens = [_CLS, *query_tokens, _SEP]
        segment_ids = [0] * len(tokens)
        token_to_orig_map: dict[int, int] = {}
        token_is_max_context: dict[int, bool] = {}
        for position in range(span.start, span.start + span.length):
            token_to_orig_map[len(tokens)] = tok_to_orig_index[position]
            token_is_max_context[len(tokens)] = check_is_max_context(spans, span_index, position)
            tokens.append(all_doc_tokens[position])
        tokens.append(_SEP)
        segment_ids += [1] * (span.length + 1)
        features.append(
            Feature(
                doc_span_index=span_index,
                tokens=tokens,
                token_to_orig_map=token_to_orig_map,
                token_is_max_context=token_is_max_context,
                input_ids=tokenizer.convert_tokens_to_ids(tokens),
                segment_ids=segment_ids,
            )
        )
    return features


# --------------------------------------------------------------------------- parameters and inputs


@dataclass(frozen=True)
class _Settings:
    dataset: Path
    vocab: Path
    lower_case: bool
    max_seq_length: int
    doc_stride: int
    max_query_length: int


def _int_param(params: dict[str, Any], key: str, minimum: int) -> int:
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{NAME}: parameter {key!r} must be an integer >= {minimum}, not {value!r}")
    return value


def _settings(inputs: Inputs, params: Params) -> _Settings:
    merged = {**DEFAULTS, **params}
    if not isinstance(merged["lower_case"], bool):
        raise ValueError(f"{NAME}: parameter 'lower_case' must be true or false")
    max_seq_length = _int_param(merged, "max_seq_length", 4)
    max_query_length = _int_param(merged, "max_query_length", 0)
    doc_stride = _int_param(merged, "doc_stride", 1)
    if max_seq_length - max_query_length - 3 < 1:
        raise ValueError(f"{NAME}: max_seq_length must exceed max_query_length + 3")
    if "data" not in inputs:
        raise KeyError(f"{NAME}: needs the dataset folder as input 'data'")
    return _Settings(
        dataset=Path(inputs["data"]) / str(merged["dataset_file"]),
        vocab=_vocab_path(inputs, str(merged["vocab"]), str(merged["vocab_model"] or "")),
        lower_case=merged["lower_case"],
        max_seq_length=max_seq_length,
        doc_stride=doc_stride,
        max_query_length=max_query_length,
    )


def _vocab_path(inputs: Inputs, vocab: str, vocab_model: str) -> Path:
    if "vocab" in inputs:
        return Path(inputs["vocab"])
    if os.path.isabs(vocab):
        return Path(vocab)
    if vocab_model:
        role = f"model:{vocab_model}"
        if role not in inputs:
            raise KeyError(f"{NAME}: vocab_model {vocab_model!r} is not among the inputs ({', '.join(sorted(inputs))})")
        return Path(inputs[role]) / vocab
    if "model" in inputs:  # the model the run is for
        return Path(inputs["model"]) / vocab
    candidates = [
        Path(inputs[role]) / vocab
        for role in sorted(inputs)
        if role.startswith("model:") and (Path(inputs[role]) / vocab).is_file()
    ]
    if not candidates:
        raise FileNotFoundError(f"{NAME}: no model input holds {vocab!r}; fetch a BERT model or set 'vocab_model'")
    first = _file_digest(str(candidates[0]), *_stamp(candidates[0]))
    for other in candidates[1:]:
        if _file_digest(str(other), *_stamp(other)) != first:
            raise ValueError(
                f"{NAME}: {candidates[0]} and {other} differ; name the model whose vocabulary to use in 'vocab_model'"
            )
    return candidates[0]


@functools.lru_cache(maxsize=16)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@functools.lru_cache(maxsize=2)
def _tokenizer(path: str, size: int, mtime_ns: int, lower_case: bool) -> BertWordPiece:
    return BertWordPiece.from_file(Path(path), lower_case)


def _fingerprint(settings: _Settings) -> dict[str, Any]:
    """What a part depends on besides its question: checked by ``finalize`` against stale parts."""
    return {
        "recipe": f"{NAME}/{VERSION}",
        "dataset_sha256": _file_digest(str(settings.dataset), *_stamp(settings.dataset)),
        "vocab_sha256": _file_digest(str(settings.vocab), *_stamp(settings.vocab)),
        "lower_case": settings.lower_case,
        "max_seq_length": settings.max_seq_length,
        "doc_stride": settings.doc_stride,
        "max_query_length": settings.max_query_length,
    }


def _part_path(out_dir: Path, qas_id: str) -> Path:
    name = qas_id if _SAFE_ID.fullmatch(qas_id) else "_" + hashlib.sha256(qas_id.encode("utf-8")).hexdigest()
    return out_dir / _PARTS / f"{name}.json"


def _dump(obj: Any) -> bytes:
    return (json.dumps(obj, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")


# --------------------------------------------------------------------------- recipe


def _items(inputs: Inputs, params: Params) -> list[str]:
    settings = _settings(inputs, params)
    return [example.qas_id for example in load_examples(settings.dataset)]


def _process(item: str, inputs: Inputs, out_dir: Path, params: Params) -> None:
    settings = _settings(inputs, params)
    examples = _example_index(str(settings.dataset), *_stamp(settings.dataset))
    try:
        example = examples[item]
    except KeyError:
        raise KeyError(f"{NAME}: no question {item!r} in {settings.dataset}") from None
    tokenizer = _tokenizer(str(settings.vocab), *_stamp(settings.vocab), settings.lower_case)
    features = convert_example(
        example, tokenizer, settings.max_seq_length, settings.doc_stride, settings.max_query_length
    )
    part = _part_path(Path(out_dir), item)
    part.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "settings": _fingerprint(settings),
        "example": example.to_json(),
        "features": [feature.to_json() for feature in features],
    }
    tmp = part.with_name(part.name + ".tmp")
    tmp.write_bytes(_dump(record))
    os.replace(tmp, part)


def _finalize(items: list[str], inputs: Inputs, out_dir: Path, params: Params) -> None:
    settings = _settings(inputs, params)
    out_dir = Path(out_dir)
    width = settings.max_seq_length
    parts = [_part_path(out_dir, item) for item in items]
    missing = [item for item, part in zip(items, parts, strict=True) if not part.is_file()]
    if missing:
        raise FileNotFoundError(f"{NAME}: {len(missing)} question(s) not processed, e.g. {missing[0]!r}")

    fingerprint = _fingerprint(settings)
    examples: list[dict[str, Any]] = []
    features: list[dict[str, Any]] = []
    rows: list[tuple[list[int], list[int]]] = []
    for example_index, part in enumerate(parts):
        record = json.loads(part.read_bytes())
        if record.get("settings") != fingerprint:
            raise ValueError(f"{NAME}: {part} was made from other inputs or parameters; process it again")
        examples.append(record["example"])
        for feature in record["features"]:
            rows.append((feature.pop("input_ids"), feature.pop("segment_ids")))
            features.append(
                {
                    "unique_id": FIRST_UNIQUE_ID + len(features),
                    "example_index": example_index,
                    "doc_span_index": feature["doc_span_index"],
                    "tokens": feature["tokens"],
                    "token_to_orig_map": feature["token_to_orig_map"],
                    "token_is_max_context": feature["token_is_max_context"],
                }
            )

    input_ids = np.zeros((len(rows), width), dtype=np.int32)
    input_mask = np.zeros((len(rows), width), dtype=np.int32)
    segment_ids = np.zeros((len(rows), width), dtype=np.int32)
    for row, (ids, segments) in enumerate(rows):
        input_ids[row, : len(ids)] = ids
        input_mask[row, : len(ids)] = 1
        segment_ids[row, : len(ids)] = segments

    for name, array in (("input_ids", input_ids), ("input_mask", input_mask), ("segment_ids", segment_ids)):
        with open(out_dir / f"{name}.npy", "wb") as f:
            np.save(f, array, allow_pickle=False)
    (out_dir / "features.json").write_bytes(_dump(features))
    (out_dir / "examples.json").write_bytes(_dump(examples))

    for part in parts:
        part.unlink()
    with contextlib.suppress(OSError):  # something else is in there: leave it
        (out_dir / _PARTS).rmdir()


def _libraries() -> dict[str, str]:
    return {"tokenizers": tokenizers.__version__, "numpy": np.__version__}


RECIPE = register(
    Recipe(
        name=NAME,
        version=VERSION,
        items=_items,
        process=_process,
        finalize=_finalize,
        libraries=_libraries,
        defaults=DEFAULTS,
        uses=("data", "model"),
        description=(
            "SQuAD v1.1 to BERT features as MLPerf's reference: lower-cased WordPiece (vocab.txt of the model), "
            "max_seq_length 384, doc_stride 128, max_query_length 64; input_ids/input_mask/segment_ids int32 .npy "
            "plus features.json and examples.json for the accuracy script"
        ),
    )
)
