"""Character classes of BERT's basic tokenizer, shared by the ``squad-bert`` recipe
(:mod:`preprocess.squad_tokenizer`) and SQuAD scoring (:mod:`provision.metrics.squad`)."""

from __future__ import annotations

__all__ = ["CJK_RANGES", "SPECIAL_TOKENS", "is_cjk"]

#: The special tokens of Hugging Face's BertTokenizer (its ``never_split`` words).
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

#: The code point blocks BERT treats as CJK ideographs (each becomes a word of its own).
CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def is_cjk(char: str) -> bool:
    """Whether ``char`` is in one of :data:`CJK_RANGES`."""
    cp = ord(char)
    return any(lo <= cp <= hi for lo, hi in CJK_RANGES)
