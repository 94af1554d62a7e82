"""``mlc-r2://<host>/metadata/<name>.uri``: MLCommons R2 buckets (stub)."""

from __future__ import annotations

from .base import AttemptFailed, SourceContext
from .listing import Listed

__all__ = ["list_r2"]


def list_r2(url: str, ctx: SourceContext) -> list[Listed]:
    """Resolve the ``.uri`` and ``.md5`` metadata into the files to download."""
    raise AttemptFailed("the MLCommons R2 source is not implemented yet")
