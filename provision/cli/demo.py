"""``provision demo``: the command that walks a newcomer through the whole pipeline, offline.

The library does the work (:func:`provision.api.demo`); this prints
its narration as it goes and exits 0 when the demo's validation passed and no step failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from provision import api
from provision.cli.common import errors
from provision.errors import EXIT_FAILURE

__all__ = ["demo"]


def demo(
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the work folder (manifest, cache, audit.json) to look around.")
    ] = False,
    workdir: Annotated[
        Path | None,
        typer.Option("--dir", metavar="DIR", help="Work in this new or empty folder instead of a temp folder."),
    ] = None,
) -> None:
    """Walk through fetch, verify, preprocess, validate and audit on generated data (no network, < 1 min).

    Example: provision demo --keep
    """
    with errors():
        report = api.demo(workdir, say=typer.echo, keep=keep)
    if not report.ok:
        raise typer.Exit(EXIT_FAILURE)
