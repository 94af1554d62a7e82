"""A preprocessing recipe: what it is, and the registry recipes add themselves to.

Recipe modules import this module (never the ``preprocess`` package) and :func:`register` their
recipes when :func:`preprocess.load_all` imports them; see the package docstring for the contract.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Inputs", "Params", "Recipe", "register", "registered"]

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


def register(recipe: Recipe, *, replace: bool = False) -> Recipe:
    """Add ``recipe`` to the registry. Names are unique: another recipe of the same name is refused
    unless ``replace`` (a recipe edited in place, e.g. during development)."""
    if not replace and recipe.name in _REGISTRY and _REGISTRY[recipe.name] is not recipe:
        raise ValueError(f"preprocessing recipe {recipe.name!r} is registered twice")
    _REGISTRY[recipe.name] = recipe
    return recipe


def registered() -> dict[str, Recipe]:
    """The recipes registered so far, by name."""
    return dict(_REGISTRY)
