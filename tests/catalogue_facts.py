"""The facts tables of ``tests/facts_*.py`` merged: one module per group of benchmarks, each table
typed from ``../shared/reference/mlperf-more-sources.md`` (see a module's docstring for its sections)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

__all__ = ["ACCESS", "ALIASES", "APPROX_SIZES", "BENCHMARKS", "CHECKSUMS", "FOLDERS", "LISTED_COUNTS", "PINS"]
__all__ += ["QUALITY", "TARGETS", "UNPUBLISHED"]

_MODULES = [importlib.import_module(p.stem) for p in sorted(Path(__file__).parent.glob("facts_*.py"))]


def _dicts(name: str) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for module in _MODULES:
        table = getattr(module, name, {})
        overlap = set(out) & set(table)
        if overlap:
            raise ValueError(f"{module.__name__}.{name}: {sorted(overlap)} also in another facts module")
        out.update(table)
    return out


def _lists(name: str) -> list[Any]:
    return [row for module in _MODULES for row in getattr(module, name, [])]


BENCHMARKS: dict[str, tuple[str, tuple[str, ...], int | None, int | None, int | None, tuple[str, ...]]] = _dicts(
    "BENCHMARKS"
)
TARGETS: dict[str, dict[str, tuple[list[float], float | None]]] = _dicts("TARGETS")
QUALITY: dict[str, list[tuple[str, str, float]]] = _dicts("QUALITY")
CHECKSUMS: list[tuple[str, str, str]] = _lists("CHECKSUMS")
PINS: list[tuple[str, str, str, str]] = _lists("PINS")
LISTED_COUNTS: dict[tuple[str, str], int] = _dicts("LISTED_COUNTS")
FOLDERS: dict[tuple[str, str], str] = _dicts("FOLDERS")
APPROX_SIZES: dict[tuple[str, str], int] = _dicts("APPROX_SIZES")
ALIASES: dict[str, str] = _dicts("ALIASES")
ACCESS: dict[str, str] = _dicts("ACCESS")
UNPUBLISHED: set[tuple[str, str]] = set(_lists("UNPUBLISHED"))
