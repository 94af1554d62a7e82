"""``hf://<repo_id>@<revision>/<path>`` and ``hf-dataset://…``: the Hugging Face Hub (stub)."""

from __future__ import annotations

from .base import AttemptFailed, SourceContext
from .listing import Listed
from .partial import Sink

__all__ = ["fetch_hf", "list_hf"]


def fetch_hf(url: str, sink: Sink, ctx: SourceContext) -> None:
    """Download one Hub file into ``sink``."""
    raise AttemptFailed("the Hugging Face source is not implemented yet")


def list_hf(url: str, ctx: SourceContext) -> list[Listed]:
    """The files a Hub URL with a glob (``hf://org/repo@rev/*.safetensors``) stands for."""
    raise AttemptFailed("the Hugging Face source is not implemented yet")
