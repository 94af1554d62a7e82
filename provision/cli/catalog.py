"""``provision list``, ``show`` and ``lint``: what the manifests define, and whether they are well-formed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from provision import api
from provision.cli.common import CacheDir, Json, Name, errors, print_json, settings
from provision.cli.render import human_bytes, render_benchmark, render_detail
from provision.errors import EXIT_MANIFEST

__all__ = ["lint", "list_cmd", "show"]


def list_cmd(
    kind: Annotated[
        str | None, typer.Option("--kind", metavar="KIND", help="Only datasets, models or benchmarks.")
    ] = None,
    cache_dir: CacheDir = None,
    json_out: Json = False,
) -> None:
    """List every dataset, model and benchmark the manifests define.

    SIZE is the download; "?" means no size is published for it, and a "+" after a size means
    some of its files have no published size, so there is more to download than shown. STATE is
    what the cache holds: present, partial, absent, or unverified (files without a complete record).

    Example: provision list --kind benchmark
    """
    with errors():
        rows = api.list_entries(settings(cache_dir), kind=kind)
        if json_out:
            print_json({"entries": rows})
            return
        table = [("NAME", "KIND", "SIZE", "STATE", "FORMAT/STATUS", "DESCRIPTION")]
        for r in rows:
            size = human_bytes(r["size"]) if r.get("size") else "?"
            if r.get("unknown_sizes"):
                size += "+"  # some files' sizes are not published
            extra = f"{r.get('format') or r.get('status') or ''}".strip()
            table.append((r["name"], r["kind"], size, r.get("state", ""), extra, r["description"]))
        width = max(len(row[0]) for row in table)
        for name, kind_, size, state, extra, description in table:
            typer.echo(f"{name:<{width}}  {kind_:<9} {size:>11}  {state:<10} {extra:<13} {description}".rstrip())
        if any(("?" in row[2] or "+" in row[2]) for row in table[1:]):
            typer.echo('size: "?" not published; "+" some files\' sizes not published (more to download than shown)')


def show(name: Name, cache_dir: CacheDir = None, json_out: Json = False) -> None:
    """Show what the manifests say about NAME and its state in the cache.

    Example: provision show resnet50
    """
    with errors():
        doc = api.describe(name, settings(cache_dir))
        if json_out:
            print_json(doc)
            return
        if doc["kind"] == "benchmark":
            render_benchmark(doc)
        else:
            render_detail(doc)


def lint(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="[PATH]...",
            help="Manifest files or folders (default: built-in + PROVISION_MANIFESTS).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Check manifests; report every problem, exit 6 if any.

    Example: provision lint ./my-manifests
    """
    with errors():
        problems = api.lint(paths or (), settings())
        for p in problems:
            typer.echo(p, err=True)
        if problems:
            typer.echo(f"provision: {len(problems)} manifest problem(s)", err=True)
            raise typer.Exit(EXIT_MANIFEST)
        typer.echo("manifests ok")
