"""SQuAD v1.1 for MLPerf BERT: recipe ``squad-bert``.

Reproduces the MLPerf Inference reference (``language/bert/squad_QSL.py``: Google's
``read_squad_examples`` and ``convert_examples_to_features`` for evaluation, with the Hugging Face
``BertTokenizer(vocab.txt)`` of ``transformers`` 2.4.0) using the ``tokenizers`` library:

- reading: every question of the dev set is one example, in file order; its context is split on
  ``" "``, ``\\t``, ``\\r``, ``\\n`` and U+202F into ``doc_tokens``;
- tokenizer: lower-cased (``lower_case``) BERT WordPiece from the model's ``vocab.txt``, token for token
  the reference's ``BertTokenizer``: :class:`~preprocess.squad_tokenizer.BertWordPiece` (its module
  docstring says how it matches 2.4.0, and where later ``transformers`` differ);
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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import tokenizers

from preprocess.recipe import Inputs, Params, Recipe, register
from preprocess.squad_tokenizer import CLS, SEP, BertWordPiece

# SPECIAL_TOKENS, BertWordPiece and load_vocab live in preprocess.squad_tokenizer; re-exported here.
__all__ = [
    "DocSpan",
    "Example",
    "Feature",
    "check_is_max_context",
    "convert_example",
    "doc_spans",
    "load_examples",
    "split_doc_tokens",
]

NAME = "squad-bert"
VERSION = "1"
FIRST_UNIQUE_ID = 1000000000

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
        tokens = [CLS, *query_tokens, SEP]
        segment_ids = [0] * len(tokens)
        token_to_orig_map: dict[int, int] = {}
        token_is_max_context: dict[int, bool] = {}
        for position in range(span.start, span.start + span.length):
            token_to_orig_map[len(tokens)] = tok_to_orig_index[position]
            token_is_max_context[len(tokens)] = check_is_max_context(spans, span_index, position)
            tokens.append(all_doc_tokens[position])
        tokens.append(SEP)
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
