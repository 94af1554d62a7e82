"""Deterministic preprocessing recipes, registered by name.

Manifests name a recipe (``[benchmark.preprocess] recipe = "..."``) and give its
parameters; they never name import paths. Recipe modules (one per family, listed in
``RECIPE_MODULES``) register themselves with :func:`~preprocess.recipe.register` when :func:`load_all`
imports them; they import :mod:`preprocess.recipe`, never this package, so nothing imports back.

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

from preprocess.recipe import Inputs, Params, Recipe, register, registered

__all__ = ["RECIPE_MODULES", "Inputs", "Params", "Recipe", "get", "load_all", "names", "register"]

#: Recipe modules, imported by :func:`load_all` (never an import path from a manifest).
RECIPE_MODULES: tuple[str, ...] = ("imagenet", "openimages", "squad", "kits19")


def load_all() -> None:
    """Import every recipe module so that its recipes are registered."""
    for module in RECIPE_MODULES:
        importlib.import_module(f"preprocess.{module}")


def get(name: str) -> Recipe:
    """The recipe called ``name``; ``KeyError`` listing the known ones otherwise."""
    load_all()
    known = registered()
    try:
        return known[name]
    except KeyError:
        listed = ", ".join(sorted(known)) or "none yet"
        raise KeyError(f"unknown preprocessing recipe {name!r}; known: {listed}") from None


def names() -> list[str]:
    """Registered recipe names, sorted."""
    load_all()
    return sorted(registered())
