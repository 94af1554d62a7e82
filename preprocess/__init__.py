"""Deterministic preprocessing recipes, registered by name.

Manifests name a recipe (``[benchmark.preprocess] recipe = "..."``) and give its
parameters; they never name import paths. Recipe modules (one per family, listed in
``_MODULES``) register themselves with :func:`register` when :func:`load_all` imports them.

A recipe is split so that the framework (``provision.preprocessing``) can run it on many
cores and many machines and still produce byte-identical outputs:

- ``items(inputs, params)`` lists the work items (e.g. image file names) in a fixed,
  deterministic order;
- ``process(item, inputs, out_dir, params)`` handles one item and writes its outputs under
  ``out_dir``; it must be a pure function of the item's input bytes and the parameters
  (no clocks, no unseeded randomness, no dependence on other items or on order);
- ``finalize(items, inputs, out_dir, params)`` (optional) runs once after every item, in
  one process, and writes index files (e.g. ``val_map.txt``) or merges per-item parts;
- ``libraries()`` names the library versions that can change output bytes (opencv and its
  JPEG library, numpy, pillow, tokenizers); they go into the run record and the cache key.

``inputs`` maps roles to paths: ``"data"`` is the dataset's artifact folder in the cache,
``"labels"`` the benchmark's labels file (when it has one), ``"model:<name>"`` a model's
folder (e.g. for a vocabulary file).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Recipe", "get", "load_all", "names", "register"]

Inputs = Mapping[str, Path]
Params = Mapping[str, Any]


@dataclass(frozen=True)
class Recipe:
    """A named, versioned preprocessing recipe (see the module docstring)."""

    name: str
    version: str
    items: Callable[[Inputs, Params], list[str]]
    process: Callable[[str, Inputs, Path, Params], None]
    finalize: Callable[[list[str], Inputs, Path, Params], None] | None = None
    libraries: Callable[[], dict[str, str]] = field(default=lambda: {})
    defaults: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    #: Input roles the recipe reads: "data", "labels", "model" (the chosen model's folder,
    #: also given as "model:<name>"). Only these go into the cache key.
    uses: tuple[str, ...] = ("data", "labels")


_REGISTRY: dict[str, Recipe] = {}

#: Recipe modules, imported by :func:`load_all` (never an import path from a manifest).
_MODULES: tuple[str, ...] = ("imagenet", "openimages", "squad")


def register(recipe: Recipe) -> Recipe:
    """Add ``recipe`` to the registry (names are unique)."""
    if recipe.name in _REGISTRY and _REGISTRY[recipe.name] is not recipe:
        raise ValueError(f"preprocessing recipe {recipe.name!r} is registered twice")
    _REGISTRY[recipe.name] = recipe
    return recipe


def load_all() -> None:
    """Import every recipe module so that its recipes are registered."""
    for module in _MODULES:
        importlib.import_module(f"preprocess.{module}")


def get(name: str) -> Recipe:
    """The recipe called ``name``; ``KeyError`` listing the known ones otherwise."""
    load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none yet"
        raise KeyError(f"unknown preprocessing recipe {name!r}; known: {known}") from None


def names() -> list[str]:
    """Registered recipe names, sorted."""
    load_all()
    return sorted(_REGISTRY)
