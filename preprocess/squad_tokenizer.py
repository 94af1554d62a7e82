"""BERT WordPiece for recipe ``squad-bert`` (:mod:`preprocess.squad`): the MLPerf reference's tokenizer.

The reference (``language/bert/squad_QSL.py``) tokenises with the Hugging Face ``BertTokenizer(vocab.txt)``
of ``transformers`` 2.4.0; :class:`BertWordPiece` gives the same tokens using the ``tokenizers`` library:

- lower-cased (``lower_case``) BERT WordPiece from the model's ``vocab.txt`` (clean text, CJK characters
  split, accents stripped when lower-casing, punctuation split, words over 100 characters become
  ``[UNK]``; a special token ``[PAD] [UNK] [CLS] [SEP] [MASK]`` written in the text stays whole only as
  a whole whitespace-separated word). The vocabulary is read as the reference reads it
  (:func:`load_vocab`: one token a line, only the line feed stripped, a later duplicate wins);
- Python drops control characters by its own ``unicodedata`` first, and bridges two rare cases (see
  :class:`BertWordPiece`): a word-final capital sigma, which ``str.lower`` makes U+03C2 but
  ``tokenizers`` U+03C3, and special-token strings in the text.

Later ``transformers`` differ from the pinned 2.4.0 on exactly these: 4.x lower-cases character by
character first (no final sigma), 4.x and 5.x split special tokens out anywhere in the text.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordPiece

from preprocess.bert_text import SPECIAL_TOKENS, is_cjk

__all__ = ["CLS", "SEP", "UNK", "BertWordPiece", "load_vocab"]

UNK, CLS, SEP = "[UNK]", "[CLS]", "[SEP]"
_MAX_INPUT_CHARS_PER_WORD = 100


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
        if UNK not in vocab:
            raise ValueError(f"the vocabulary has no {UNK} token")
        self.vocab = dict(vocab)
        self.lower_case = lower_case
        self._unk_id = self.vocab[UNK]
        self._model = WordPiece(self.vocab, unk_token=UNK, max_input_chars_per_word=_MAX_INPUT_CHARS_PER_WORD)
        tokenizer = Tokenizer(self._model)
        # strip_accents=None: stripped exactly when lower-casing, as BERT's BasicTokenizer does.
        tokenizer.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lower_case
        )
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        self._tokenizer = tokenizer

    @classmethod
    def from_file(cls, path: Path, lower_case: bool = True) -> BertWordPiece:
        """The tokenizer of the vocabulary file ``path`` (read by :func:`load_vocab`)."""
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
        spaced = "".join(f" {c} " if is_cjk(c) else " " if _is_whitespace(c) else c for c in text)
        tokens: list[str] = []
        for word in spaced.split():
            if word in SPECIAL_TOKENS:
                tokens += [token.value for token in self._model.tokenize(word)]
            else:
                tokens += self._encode(word)
        return tokens


_CAPITAL_SIGMA = "\u03a3"
_FINAL_SIGMA = "\u03c2"


def _has_special(text: str) -> bool:
    return "[" in text and any(token in text for token in SPECIAL_TOKENS)


def _is_removed(char: str) -> bool:
    """BERT's clean-up drops NUL, U+FFFD and control characters (category C, but tab, LF and CR)."""
    return char in "\x00\ufffd" or (char not in "\t\n\r" and unicodedata.category(char)[0] == "C")


def _is_whitespace(char: str) -> bool:
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


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
