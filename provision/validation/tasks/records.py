"""The MLPerf generative datasets as rows: JSON lists, JSON lines, Parquet files and pandas pickles.

The reference implementations ship their evaluation sets as ``pd.read_json`` files
(``cnn_eval.json``) or pandas pickles (``open_orca_…pkl``, DeepSeek-R1's, Llama 3.1 405B's). A
pickle can run code when it is loaded, so provision never hands one to :func:`pickle.load`: the
unpickler here resolves only the classes and rebuild functions of NumPy and pandas that a
DataFrame is made of (pandas' own compatibility map for older pickles applied first), and refuses
anything else (``os.system``, ``builtins.eval``, a file-writing class) with one line naming it.
The file has also been verified against its published checksum before validation reads it.
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from provision.errors import IntegrityError, MissingDependencyError, UsageError

__all__ = ["read_rows", "safe_load_pickle"]

_SAFE_BUILTINS = frozenset(
    {"slice", "frozenset", "set", "complex", "range", "bytearray", "list", "dict", "tuple", "int", "float", "str"}
    | {"bytes", "bool", "object"}
)
#: Rebuild functions a DataFrame pickle calls (besides the classes themselves).
_SAFE_FUNCTIONS = frozenset({"new_block", "_new_Index", "_new_PeriodIndex", "scalar", "_frombuffer", "_reconstructor"})
_UNSAFE_MODULES = ("pandas.io", "pandas.core.computation", "numpy.lib.npyio", "numpy.f2py", "numpy.distutils")
_UNSAFE_NAMES = frozenset({"memmap", "HDFStore", "ExcelWriter", "ExcelFile", "HDF5ExtError", "eval", "exec"})


def _allowed(module: str, name: str, found: Any) -> bool:
    if module == "builtins":
        return name in _SAFE_BUILTINS
    if (module, name) == ("copyreg", "_reconstructor"):
        return True
    home = str(getattr(found, "__module__", "") or module)
    if home.split(".")[0] not in ("numpy", "pandas") or home.startswith(_UNSAFE_MODULES):
        return False
    if name in _UNSAFE_NAMES:
        return False
    return isinstance(found, type) or name in _SAFE_FUNCTIONS or "unpickle" in name or "reconstruct" in name


def safe_load_pickle(path: Path) -> Any:
    """Load a pandas/NumPy pickle with only the classes and functions a DataFrame needs."""
    try:
        from pandas.compat.pickle_compat import Unpickler as PandasUnpickler
    except ImportError:
        raise MissingDependencyError("pandas", "llm", "reading the MLPerf dataset pickles") from None

    class _Restricted(PandasUnpickler):  # type: ignore[misc]
        def find_class(self, module: str, name: str) -> Any:
            found = super().find_class(module, name)
            if not _allowed(module, name, found):
                raise IntegrityError(
                    f"{path}: the pickle asks for {module}.{name}, which a pandas DataFrame never needs; "
                    "refusing to load it; check it with 'provision verify --full' and fetch the published file again",
                    path=str(path),
                )
            return found

    if path.name.endswith(".gz"):
        import gzip

        try:
            with gzip.open(path, "rb") as packed:
                data = packed.read()
        except (OSError, EOFError) as exc:
            raise IntegrityError(f"{path}: not a readable gzip file ({exc})", path=str(path)) from exc
    else:
        with path.open("rb") as handle:
            data = handle.read()
    try:
        return _Restricted(io.BytesIO(data)).load()
    except IntegrityError:
        raise
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError) as exc:
        raise IntegrityError(f"{path}: not a readable pandas pickle ({exc})", path=str(path)) from exc


def _json_rows(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IntegrityError(f"{path}: not valid JSON ({exc})", path=str(path)) from exc
    if isinstance(doc, dict) and doc and all(isinstance(v, dict) for v in doc.values()):
        # pandas' "columns" orient: {column: {row: value}}
        rows = sorted({r for col in doc.values() for r in col}, key=lambda r: int(r) if str(r).isdigit() else 0)
        return [{col: doc[col].get(r) for col in doc} for r in rows]
    if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
        raise IntegrityError(f"{path}: expected a JSON list of objects (one per sample)", path=str(path))
    return doc


def _parquet(path: Path) -> Any:
    """A Parquet file as a DataFrame (pandas through pyarrow; Parquet holds data only, no code)."""
    try:
        import pandas as pd
        import pyarrow  # noqa: F401  (pandas' Parquet engine)
    except ImportError:
        raise MissingDependencyError("pyarrow", "llm", "reading Parquet dataset files") from None
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise IntegrityError(f"{path}: not a readable Parquet file ({str(exc)[:200]})", path=str(path)) from exc


def read_rows(path: Path, columns: Sequence[str]) -> list[dict[str, Any]]:
    """The rows of a dataset file (``.json``, ``.jsonl``, ``.parquet``, ``.pkl``/``.pickle``, gzipped or not),
    each with ``columns``.

    UsageError naming the columns the file has when one is missing.
    """
    if not path.is_file():
        raise UsageError(f"{path}: no such dataset file; check [benchmark.generation] file or run 'provision fetch'")
    if path.suffix in (".json", ".jsonl"):
        rows = _json_rows(path)
        have = set(rows[0]) if rows else set()
    elif path.name.endswith((".pkl", ".pickle", ".pkl.gz", ".pickle.gz")):
        frame = safe_load_pickle(path)
        if not hasattr(frame, "to_dict") or not hasattr(frame, "columns"):
            raise IntegrityError(f"{path}: expected a pandas DataFrame, got {type(frame).__name__}", path=str(path))
        have = {str(c) for c in frame.columns}
        rows = frame.to_dict(orient="records") if not set(columns) - have else []
    elif path.suffix == ".parquet":
        frame = _parquet(path)
        have = {str(c) for c in frame.columns}
        rows = frame.to_dict(orient="records") if not set(columns) - have else []
    else:
        raise UsageError(
            f"{path}: unknown dataset file type {path.suffix!r}; expected .json, .jsonl, .parquet, .pkl or .pkl.gz"
        )
    missing = [c for c in columns if c not in have]
    if missing:
        raise UsageError(
            f"{path}: no column {', '.join(map(repr, missing))} (it has {', '.join(sorted(have)) or 'none'}); "
            "fix [benchmark.generation] prompt/reference"
        )
    return rows
