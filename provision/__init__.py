"""provision: fetch, verify, preprocess and validate ML benchmark data and checkpoints."""

from __future__ import annotations

__version__ = "0.1.0"
