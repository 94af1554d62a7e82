"""``provision doctor [NAME]``: one line per check (ok / warn / fail / skip, with the fix); exit 1 on any fail."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from provision import api
from provision.cli.common import CacheDir, Json, errors, print_json, settings
from provision.errors import EXIT_FAILURE

if TYPE_CHECKING:
    from provision.readiness.run import DoctorReport

__all__ = ["doctor", "render"]

_WIDTH = 28


def render(report: DoctorReport) -> list[str]:
    """``STATUS  check  detail  (fix: ...)`` lines and a summary line."""
    width = min(_WIDTH, max((len(c.name) for c in report.checks), default=0))
    lines = []
    for c in report.checks:
        fix = f"  (fix: {c.fix})" if c.fix else ""
        lines.append(f"{c.status.upper():<5} {c.name:<{width}}  {c.detail}{fix}")
    counts = report.counts()
    what = report.name or "this machine"
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    verdict = "ready" if report.ok else "not ready"
    lines.append(f"{what}: {verdict} ({summary}; cache {report.cache_dir})")
    return lines


def doctor(
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="[NAME]",
            help="A benchmark, dataset or model (default: only the machine checks).",
            show_default=False,
        ),
    ] = None,
    no_network: Annotated[
        bool, typer.Option("--no-network", help="Skip the reachability checks (no request leaves this machine).")
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", metavar="SECONDS", min=0.1, help="Seconds each host may take to answer (connect and read)."
        ),
    ] = 3.0,
    cache_dir: CacheDir = None,
    json_out: Json = False,
) -> None:
    """Is this machine ready for NAME? Python and packages, cache write access and locks, free disk,
    source hosts, credentials (never shown) and GPUs: one line per check with its fix.

    Exit 0 when no check fails (warnings and skips are fine), 1 otherwise.

    Example: provision doctor resnet50 --no-network
    """
    with errors():
        report = api.doctor(name, settings(cache_dir), network=not no_network, timeout=timeout)
        if json_out:
            print_json(report.to_json())
        else:
            for line in render(report):
                typer.echo(line)
        if not report.ok:
            raise typer.Exit(EXIT_FAILURE)
