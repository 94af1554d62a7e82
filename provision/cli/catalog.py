"""``provision list``, ``show`` and ``lint``: what the manifests define, and whether they are well-formed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from provision import api
from provision.cli.common import CacheDir, Json, errors, print_json, settings
from provision.cli.render import human_bytes, render_benchmark, render_detail
from provision.errors import EXIT_MANIFEST

__all__ = ["lint", "list_cmd", "show"]


def list_cmd(cache_dir: CacheDir = None, json_out: Json = False) -> None:
    """List every dataset, model and benchmark the manifests define."""
    with errors():
        rows = api.list_entries(settings(cache_dir))
        if json_out:
            print_json({"entries": rows})
            return
        for r in rows:
            size = human_bytes(r["size"]) if r.get("size") else "?"
            if r.get("unknown_sizes"):
                size += "+"  # some files' sizes are not published
            state = r.get("state", "")
            extra = f"{r.get('format') or r.get('status') or ''}".strip()
            typer.echo(f"{r['name']:<32} {r['kind']:<9} {size:>11} {state:<10} {extra:<11} {r['description']}".rstrip())


def show(name: str, cache_dir: CacheDir = None, json_out: Json = False) -> None:
    """Show what the manifests say about NAME and its state in the cache."""
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
        typer.Argument(help="Manifest files or folders (default: built-in + PROVISION_MANIFESTS)."),
    ] = None,
) -> None:
    """Check manifests; report every problem, exit 6 if any."""
    with errors():
        problems = api.lint(paths or (), settings())
        for p in problems:
            typer.echo(p, err=True)
        if problems:
            typer.echo(f"provision: {len(problems)} manifest problem(s)", err=True)
            raise typer.Exit(EXIT_MANIFEST)
        typer.echo("manifests ok")
