"""Deterministic preprocessing recipes, registered by name.

Manifests name a recipe (``[benchmark.preprocess] recipe = "..."``) and give its
parameters; they never name import paths. Recipe modules (one per family) register
themselves with :func:`register`; the recipes arrive with the preprocessing issue.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["Recipe", "get", "names", "register"]


@dataclass(frozen=True)
class Recipe:
    """A named, versioned preprocessing function and its parameter defaults."""

    name: str
    version: str
    run: Callable[..., Any]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""


_REGISTRY: dict[str, Recipe] = {}

F = TypeVar("F", bound=Callable[..., Any])


def register(
    name: str, *, version: str, defaults: Mapping[str, Any] | None = None, description: str = ""
) -> Callable[[F], F]:
    """Decorator: register ``fn`` as recipe ``name`` (names are unique)."""

    def deco(fn: F) -> F:
        if name in _REGISTRY:
            raise ValueError(f"preprocessing recipe {name!r} is registered twice")
        _REGISTRY[name] = Recipe(name, version, fn, dict(defaults or {}), description)
        return fn

    return deco


def get(name: str) -> Recipe:
    """The recipe called ``name``; ``KeyError`` listing the known ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none yet"
        raise KeyError(f"unknown preprocessing recipe {name!r}; known: {known}") from None


def names() -> list[str]:
    """Registered recipe names, sorted."""
    return sorted(_REGISTRY)
