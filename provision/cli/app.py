"""The ``provision`` command: the Typer app, its commands in help order, and the entry point.

Each command lives in the module of its group (:mod:`.catalog`, :mod:`.cache`, :mod:`.pipeline`,
:mod:`.harness`, :mod:`.audit`, :mod:`.doctor`, :mod:`.demo`, :mod:`.fleet`): it parses, calls one
:mod:`provision.api` function and renders. This module only assembles them, so no command module imports it back.

Start-up matters (``provision --help`` is typed often): the command modules import only typer
and light provision modules at top level, and each command imports what it needs when it
runs, so the help, ``--version`` and the catalogue commands load no HTTP, numeric or runtime
library (``tests/test_startup.py``, ``benchmarks/startup.py``). For the same reason help and
usage errors are click's plain text (``rich_markup_mode=None``): typer's rich rendering imports
rich and ``typer.rich_utils``, which alone take longer than importing typer itself, so a
``provision --help`` drawn with rich cannot start within twice the time of ``import typer``
(benchmarks/README.md). Each command's summary in ``provision --help`` is the first paragraph of
its docstring, in full (click would cut it at its first full stop or at the line's width).
"""

from __future__ import annotations

import gc
import inspect
from typing import Annotated

import typer

from provision.cli import audit, cache, catalog, demo, doctor, fleet, harness, pipeline
from provision.cli.common import PlainCommand, PlainGroup
from provision.version import __version__

__all__ = ["app", "main"]

app = typer.Typer(
    name="provision",
    help=(
        "Set up ML benchmark machines: fetch and verify datasets and reference checkpoints "
        "described by manifests.\n\nExit codes: 0 ok, 1 failure, 2 usage, 3 integrity "
        "(checksum/size/missing), 4 source/network, 5 accuracy below target, 6 manifest error."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help and errors: see the module docstring
    cls=PlainGroup,  # usage errors as one line
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"provision {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit."),
    ] = False,
) -> None:
    # The options of 'provision' itself (before the command); the app's help above describes it.
    pass


def _summary(command: object) -> str:
    """The first paragraph of a command's docstring, on one line."""
    return " ".join(inspect.cleandoc(getattr(command, "__doc__", None) or "").split("\n\n")[0].split())


for _name, _command in (
    ("list", catalog.list_cmd),
    ("show", catalog.show),
    ("fetch", cache.fetch),
    ("verify", cache.verify),
    ("path", cache.path),
    ("preprocess", pipeline.preprocess),
    ("validate", pipeline.validate),
    ("run", pipeline.run),
    ("harness", harness.harness),
    ("lint", catalog.lint),
    ("hash", cache.hash_cmd),
    ("status", cache.status),
    ("gc", cache.gc),
    ("audit", audit.audit),
    ("demo", demo.demo),
    ("doctor", doctor.doctor),
):
    app.command(_name, short_help=_summary(_command), cls=PlainCommand)(_command)

app.add_typer(fleet.mirror_app, name="mirror", short_help="Export or push the cache as a content-addressed mirror.")
app.add_typer(fleet.bundle_app, name="bundle", short_help="Create, import or list air-gapped bundles.")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    finally:
        # At exit the interpreter's last garbage collections scan every object the command made:
        # about 80 ms of a `provision fetch` here (benchmarks/README.md). Frozen objects are not
        # scanned; finalizers, atexit handlers and the flush of output run as before.
        gc.freeze()
