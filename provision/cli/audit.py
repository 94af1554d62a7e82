"""``provision audit NAME -o report.json`` and ``provision audit diff A.json B.json``.

``audit`` is one
command whose first argument is a benchmark name or the word ``diff``: a typer group cannot
take both a NAME argument and a ``diff`` subcommand (the group's argument would swallow the
word ``diff``, and options after NAME would not parse).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from provision import api
from provision.cli.common import CacheDir, Json, errors, print_json, settings
from provision.errors import EXIT_FAILURE, EXIT_OK, UsageError

__all__ = ["audit", "summary"]


def summary(doc: dict[str, Any], size: int, seconds: float) -> str:
    """One line: what was audited, the report's size, files counted and re-hashed, seconds."""
    stats = doc.get("stats") or {}
    results = len(doc.get("validation") or [])
    pre = "" if doc.get("preprocessed") is not None else ", no preprocessing run (see notes)"
    return (
        f"{doc['benchmark']} ({doc.get('model') or 'no model'}): {size} bytes, {stats.get('files_checked', 0)} files "
        f"counted ({stats.get('files_rehashed', 0)} re-hashed), {results} validation result(s){pre}, {seconds:.2f} s"
    )


def _report(name: str, output: Path | None, model: str | None, subset: str | None, cache_dir: Path | None) -> None:
    from provision.auditing.document import write_audit

    started = time.perf_counter()
    doc = api.audit(name, settings(cache_dir), model=model, subset=subset)
    if output is None:
        typer.echo(json.dumps(doc, sort_keys=True, indent=1, ensure_ascii=False, default=str))
        return
    size = write_audit(doc, output)
    typer.echo(str(output))
    typer.echo(summary(doc, size, time.perf_counter() - started))


def audit(
    target: Annotated[
        str,
        typer.Argument(
            metavar="NAME|diff", help="A benchmark to audit, or 'diff' to compare two reports.", show_default=False
        ),
    ],
    reports: Annotated[
        list[Path] | None,
        typer.Argument(metavar="[A.json B.json]", help="With 'diff': the two reports.", show_default=False),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="With NAME: write the report here (default: stdout)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", metavar="MODEL", help="With NAME: one of the benchmark's models (default: as 'run')."),
    ] = None,
    subset: Annotated[
        str | None, typer.Option("--subset", metavar="K", help="With NAME: the subset that was run.")
    ] = None,
    cache_dir: CacheDir = None,
    json_out: Json = False,
    first: Annotated[
        int, typer.Option("--first", metavar="N", min=1, help="With 'diff': file names listed per finding.")
    ] = 10,
    data_a: Annotated[
        Path | None,
        typer.Option("--data-a", metavar="DIR", help="With 'diff': A's preprocessed folder, where it is here."),
    ] = None,
    data_b: Annotated[
        Path | None,
        typer.Option("--data-b", metavar="DIR", help="With 'diff': B's preprocessed folder, where it is here."),
    ] = None,
) -> None:
    """Write what decided a benchmark's result here, or compare two such reports.

    'provision audit NAME -o report.json' records the manifests, every fetched file's
    checksums, the extracted and preprocessed trees (per-file digests), the validation results,
    the library builds and the environment (secrets redacted); it reads no file that is
    unchanged since it was verified. 'provision audit diff A.json B.json' lists what differs,
    most likely cause first, and exits 0 when nothing that can change results differs, 1 otherwise.

    Examples:

    \b
    provision audit resnet50 -o a.json
    provision audit diff a.json b.json
    """
    with errors():
        if target != "diff":
            if reports:
                raise UsageError(
                    f"provision audit {target}: unexpected argument {str(reports[0])!r}; to compare two reports "
                    "run 'provision audit diff A.json B.json'"
                )
            if json_out or data_a is not None or data_b is not None:
                raise UsageError("--json, --data-a and --data-b go with 'provision audit diff A.json B.json'")
            _report(target, output, model, subset, cache_dir)
            return
        if len(reports or []) != 2:
            raise UsageError(f"provision audit diff takes two reports (A.json B.json), got {len(reports or [])}")
        if output is not None or model is not None or subset is not None:
            raise UsageError("-o, --model and --subset go with 'provision audit NAME'; diff compares written reports")
        a, b = reports or []
        result = api.audit_diff(a, b, first=first, data_a=data_a, data_b=data_b)
        if json_out:
            print_json(result.to_json())
        else:
            for line in result.lines():
                typer.echo(line)
        raise typer.Exit(EXIT_OK if result.equivalent else EXIT_FAILURE)
