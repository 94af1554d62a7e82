"""What every command shares: the common options, settings from the environment, JSON output,
and the one-line rendering of errors with their exit codes (a traceback only with PROVISION_DEBUG=1)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, cast

import typer
import typer.core

from provision.config import Settings
from provision.errors import EXIT_FAILURE, ProvisionError

__all__ = [
    "CacheDir",
    "Json",
    "Name",
    "PlainCommand",
    "PlainGroup",
    "Quiet",
    "Subset",
    "Suite",
    "debug",
    "errors",
    "print_json",
    "settings",
]


CacheDir = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        metavar="DIR",
        envvar="PROVISION_CACHE",
        show_envvar=True,
        help="Cache root (a big scratch disk or a shared NFS folder).",
    ),
]


Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
Name = Annotated[str, typer.Argument(metavar="NAME", help="A dataset, model or benchmark (or one of their aliases).")]


Subset = Annotated[
    str | None,
    typer.Option("--subset", metavar="K", help="The benchmark's subset dataset of this size, else the first K items."),
]


Suite = Annotated[
    str | None,
    typer.Option(
        "--suite",
        metavar="SUITE",
        help="inference or training: names resolve in that MLPerf suite only (llama3.1_8b is training's).",
    ),
]


Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or notes.")]
Verbose = Annotated[
    bool,
    typer.Option("--verbose", "-v", help="Show each source's first failure even when stderr is not a terminal."),
]


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


class PlainCommand(typer.core.TyperCommand):
    """A command whose help names its arguments as written (``NAME...``, ``[NAME]``), without the
    type annotations and braces typer adds when rich is off (``{names}... <list[str]>``)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """``[OPTIONS]`` and each argument's metavar."""
        return ["[OPTIONS]", *(self._shown(p) for p in self.get_params(ctx) if p.param_type_name == "argument")]

    def format_options(self, ctx: Any, formatter: Any) -> None:
        """An Arguments section (metavar, help) and the Options section as typer writes it."""
        arguments = [
            (self._shown(p), getattr(p, "help", None) or "")
            for p in self.get_params(ctx)
            if p.param_type_name == "argument"
        ]
        options = [r for p in self.get_params(ctx) if p.param_type_name == "option" and (r := p.get_help_record(ctx))]
        if arguments:
            with formatter.section("Arguments"):
                formatter.write_dl(arguments)
        if options:
            with formatter.section("Options"):
                formatter.write_dl(options)

    @staticmethod
    def _shown(param: Any) -> str:
        return str(param.metavar or param.name.upper())


def _usage_error(exc: BaseException) -> bool:
    """Whether ``exc`` is click's usage error (a bad option, a missing argument): it carries an exit code
    of 2, the context of the command and a message (typer vendors click: recognised by what it carries,
    never by its text)."""
    return (
        getattr(exc, "exit_code", None) == 2 and callable(getattr(exc, "format_message", None)) and hasattr(exc, "ctx")
    )


class PlainGroup(typer.core.TyperGroup):
    """The app's group: a usage error is one line, ``provision: error: …; try 'provision CMD --help'``
    (exit 2), like every other error; ``provision`` alone shows the help (exit 2)."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command line; in standalone mode (the console script, CliRunner) exit with its code."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, windows_expand_args, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        try:
            code = super().main(argv, prog_name, complete_var, False, windows_expand_args, **extra)
        except typer.Abort:
            typer.echo("provision: interrupted", err=True)
            sys.exit(130)
        except Exception as exc:
            if not _usage_error(exc):
                raise
            if not argv:  # plain 'provision': the help, as click shows it
                cast(Any, exc).show()
                sys.exit(2)
            ctx = getattr(exc, "ctx", None)
            where = ctx.command_path if ctx is not None else "provision"
            message = cast(Any, exc).format_message().strip().rstrip(".")
            typer.echo(f"provision: error: {message}; try '{where} --help'", err=True)
            sys.exit(2)
        sys.exit(code if isinstance(code, int) else 0)
