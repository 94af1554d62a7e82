"""What every command shares: the common options, settings from the environment, JSON output,
and the one-line rendering of errors with their exit codes (a traceback only with PROVISION_DEBUG=1)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from provision.config import Settings
from provision.errors import EXIT_FAILURE, ProvisionError

__all__ = ["CacheDir", "Json", "Quiet", "Subset", "debug", "errors", "print_json", "settings"]


CacheDir = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        envvar="PROVISION_CACHE",
        show_envvar=True,
        help="Cache root (a big scratch disk or a shared NFS folder).",
    ),
]


Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


Subset = Annotated[
    str | None,
    typer.Option("--subset", help="The benchmark's subset dataset of this size, else the first K items."),
]


Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or notes.")]


def debug() -> bool:
    return os.environ.get("PROVISION_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}


@contextlib.contextmanager
def errors() -> Iterator[None]:
    """Turn library errors into one stderr line and their exit code."""
    try:
        yield
    except typer.Exit:
        raise
    except ProvisionError as exc:
        if debug():
            traceback.print_exc()
        typer.echo(f"provision: error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except BrokenPipeError:
        # stdout went away (e.g. `provision show x | head`): stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(0) from None
    except KeyboardInterrupt:
        typer.echo(
            "provision: interrupted; partial downloads are kept aside and never taken as complete",
            err=True,
        )
        raise typer.Exit(130) from None
    except Exception as exc:
        if debug():
            traceback.print_exc()
        typer.echo(
            f"provision: error: unexpected {exc.__class__.__name__}: {exc} "
            "(rerun with PROVISION_DEBUG=1 for a traceback and report it)",
            err=True,
        )
        raise typer.Exit(EXIT_FAILURE) from None


def settings(cache_dir: Path | None = None, **overrides: Any) -> Settings:
    return Settings.from_env(cache_dir=cache_dir, **overrides)


def print_json(doc: Any) -> None:
    typer.echo(json.dumps(doc, indent=2, default=str))
