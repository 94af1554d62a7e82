"""The ``squad-bert`` outputs as the MLPerf reference's feature cache, ``eval_features.pickle``.

What the reference does with that file (mlcommons/inference ``language/bert``): ``squad_QSL.py``
and ``accuracy-squad.py`` look for ``eval_features.pickle`` in their working folder and, when it
is there, ``pickle.load`` it instead of tokenizing the dev set themselves. The file they write is
``pickle.dump`` of a list of ``create_squad_data.InputFeatures``, one per feature in sample order,
and they only read attributes of its elements: ``input_ids``, ``input_mask``, ``segment_ids`` (the
SUTs, which feed ``np.array(...).astype(np.int64)``), ``unique_id``, ``example_index``, ``tokens``,
``token_to_orig_map`` and ``token_is_max_context`` (``accuracy-squad.py``'s predictions).

:func:`write_eval_features` writes that file from the recipe's outputs: a protocol-2 pickle of a
list whose elements are made as the unpickler makes any plain object of the reference's own
class, i.e. as its own file makes them: ``GLOBAL create_squad_data InputFeatures`` (resolved at
load time from the reference's module, beside ``run.py``), ``NEWOBJ`` with no arguments, ``BUILD``
with the attribute dict. The dict holds what ``convert_examples_to_features`` sets for
evaluation: ``unique_id``, ``example_index``, ``doc_span_index``, ``tokens``,
``token_to_orig_map`` and ``token_is_max_context`` (integer keys), ``input_ids``, ``input_mask``
and ``segment_ids`` (lists of Python ints, ``max_seq_length`` long), ``start_position`` and
``end_position`` (``None``) and ``is_impossible`` (``False``). Loaded there, each element is an
``InputFeatures`` with exactly the attributes the reference's own conversion gives it.

The list is written one feature at a time, so memory stays that of ``features.json``: the few
opcodes of the list and of each object are written here, and each attribute dict is pickled by
the standard pickler in its memo-free mode (``Pickler.fast``; the dicts hold no cycles), so no
memo index is defined twice and ``pickletools.dis`` reads the file.
"""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from provision.errors import IntegrityError

__all__ = ["FEATURE_ATTRIBUTES", "FEATURE_CLASS", "write_eval_features"]

#: Where the reference's feature class lives (``language/bert/create_squad_data.py``), as module and name.
FEATURE_CLASS = ("create_squad_data", "InputFeatures")

#: The attributes ``InputFeatures.__init__`` sets, in its order.
FEATURE_ATTRIBUTES = (
    "unique_id",
    "example_index",
    "doc_span_index",
    "tokens",
    "token_to_orig_map",
    "token_is_max_context",
    "input_ids",
    "input_mask",
    "segment_ids",
    "start_position",
    "end_position",
    "is_impossible",
)

# The protocol-2 opcodes written here (pickletools names them).
_PROTO_2 = b"\x80\x02"
_EMPTY_LIST = b"]"
_MARK = b"("
_APPENDS = b"e"
_GLOBAL = b"c" + f"{FEATURE_CLASS[0]}\n{FEATURE_CLASS[1]}\n".encode("ascii")
_EMPTY_TUPLE = b")"
_NEWOBJ = b"\x81"
_BUILD = b"b"
_STOP = b"."
_BATCH = 1000  # items per APPENDS, as the pickler batches them


def _arrays(out_dir: Path, count: int) -> tuple[npt.NDArray[Any], ...]:
    arrays = []
    for name in ("input_ids", "input_mask", "segment_ids"):
        path = out_dir / f"{name}.npy"
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            message = f"{path}: cannot read it ({exc}); rerun 'provision preprocess'"
            raise IntegrityError(message, path=str(path)) from exc
        if array.ndim != 2 or array.shape[0] != count or not np.issubdtype(array.dtype, np.integer):
            raise IntegrityError(
                f"{path}: expected an integer array of {count} rows (one per feature of features.json), "
                f"got {array.dtype} {array.shape}; rerun 'provision preprocess'",
                path=str(path),
            )
        arrays.append(array)
    return tuple(arrays)


def _features(out_dir: Path) -> list[Any]:
    path = out_dir / "features.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"{path}: cannot read it ({exc}); rerun 'provision preprocess'", path=str(path)) from exc
    if not isinstance(doc, list):
        raise IntegrityError(f"{path}: expected a JSON list of features, got {type(doc).__name__}", path=str(path))
    return doc


def _attributes(feature: Any, rows: tuple[npt.NDArray[Any], ...], where: str) -> dict[str, Any]:
    """The attribute dict of one reference ``InputFeatures`` (see the module docstring)."""
    try:
        state = {
            "unique_id": int(feature["unique_id"]),
            "example_index": int(feature["example_index"]),
            "doc_span_index": int(feature["doc_span_index"]),
            "tokens": [str(token) for token in feature["tokens"]],
            "token_to_orig_map": {int(k): int(v) for k, v in feature["token_to_orig_map"].items()},
            "token_is_max_context": {int(k): bool(v) for k, v in feature["token_is_max_context"].items()},
        }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise IntegrityError(
            f"{where}: expected unique_id, example_index, doc_span_index, tokens, token_to_orig_map and "
            f"token_is_max_context, got {exc!r}; rerun 'provision preprocess'",
            path=where,
        ) from None
    ids, mask, segments = (row.tolist() for row in rows)
    state.update(input_ids=ids, input_mask=mask, segment_ids=segments)
    state.update(start_position=None, end_position=None, is_impossible=False)
    return {name: state[name] for name in FEATURE_ATTRIBUTES}


def write_eval_features(out_dir: Path, dest: IO[bytes]) -> int:
    """Write ``eval_features.pickle`` for the ``squad-bert`` outputs in ``out_dir`` to ``dest``; the feature count.

    :class:`IntegrityError` (one line) when the outputs are unreadable or disagree with each other.
    """
    features = _features(out_dir)
    arrays = _arrays(out_dir, len(features))
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=2)
    pickler.fast = True  # no memo: every feature is self-contained (see the module docstring)
    dest.write(_PROTO_2 + _EMPTY_LIST)
    for start in range(0, len(features), _BATCH):
        dest.write(_MARK)
        for index in range(start, min(start + _BATCH, len(features))):
            state = _attributes(features[index], tuple(a[index] for a in arrays), f"{out_dir}/features.json[{index}]")
            features[index] = None  # free the parsed feature as it is written
            buffer.seek(0)
            buffer.truncate()
            pickler.dump(state)
            body = buffer.getvalue()
            if not (body.startswith(_PROTO_2) and body.endswith(_STOP)):  # pragma: no cover - the pickler's contract
                raise IntegrityError(f"pickling feature {index} gave an unexpected stream; report this")
            dest.write(_GLOBAL + _EMPTY_TUPLE + _NEWOBJ + body[len(_PROTO_2) : -len(_STOP)] + _BUILD)
        dest.write(_APPENDS)
    dest.write(_STOP)
    return len(features)
