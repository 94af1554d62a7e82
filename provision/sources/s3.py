"""``s3://bucket/key``: S3-compatible object stores via boto3 (stub)."""

from __future__ import annotations

from .base import AttemptFailed, SourceContext
from .listing import Listed
from .partial import Sink

__all__ = ["fetch_s3", "list_s3"]


def fetch_s3(url: str, sink: Sink, ctx: SourceContext) -> None:
    """Download one object into ``sink``."""
    raise AttemptFailed("the S3 source is not implemented yet")


def list_s3(url: str, ctx: SourceContext) -> list[Listed]:
    """The objects under an ``s3://bucket/prefix/`` folder entry."""
    raise AttemptFailed("the S3 source is not implemented yet")
